"""Media in messages, previews, downloads and the file library (docs/media.md §3-§7).

Files are uploaded with tuspy and sent over the WebSocket as members do. What a
member receives, what each route serves to whom, and what a refused send left
behind (nothing: the database rows and the data directory are compared) are all
read from the real server.
"""

from __future__ import annotations

import asyncio
import io
import time
from dataclasses import dataclass
from typing import Any

import av
import httpx
import pytest
from PIL import Image

from tests import media_samples as samples
from tests.media_support import (
    PREVIEW_FIELDS,
    Evidence,
    assert_blob_stored,
    assert_blobs_whole,
    assert_descriptor,
    created_id,
    data_files,
    disposition,
    media_info,
    send_media,
    sha256,
    started_upload,
    tus_create,
    tus_delete,
    tus_offset,
    tus_patch,
    tus_upload,
    wait_preview,
)
from tests.order_support import Customer, Shop, error_of, expect_error
from tests.support import (
    Account,
    PeerPool,
    ServerProcess,
    barrier,
    collect_until,
    messages,
)

pytestmark = pytest.mark.timeout(90)

Json = dict[str, Any]
OCTET = "application/octet-stream"
NO_SUCH_UPLOAD = "up_doesnotexist000000000"
NO_SUCH_CONV = "c_doesnotexist0000000000"


@dataclass(frozen=True)
class World:
    alice: Account  # sends
    bob: Account  # the other member
    carol: Account  # in alice's other conversation only
    admin: Account
    conv: str  # alice and bob
    other_conv: str  # alice and carol


@pytest.fixture(scope="module")
def world(server: ServerProcess) -> World:
    alice, bob, carol = server.user(), server.user("warehouse"), server.user()
    conv = server.conversation(alice, "channel", [bob], title="media")["id"]
    other = server.conversation(alice, "channel", [carol], title="media elsewhere")["id"]
    assert server.admin is not None
    return World(alice, bob, carol, server.admin, conv, other)


@dataclass(frozen=True)
class Sample:
    id: str
    data: bytes
    name: str
    type: str


SAMPLE_FILES: dict[str, tuple[bytes, str, str]] = {
    "jpeg": (samples.jpeg(64, 48), "横向.jpg", "image/jpeg"),
    "jpeg_rotated": (samples.jpeg(64, 48, orientation=6), "竖拍.jpg", "image/jpeg"),
    "png_alpha": (samples.png(40, 30, alpha=True), "logo.png", "image/png"),
    "voice_webm": (samples.voice_webm(1.0), "voice.webm", "audio/webm"),
    "voice_ogg": (samples.voice_ogg(1.0), "voice.ogg", "audio/ogg"),
    "voice_wav": (samples.wav(1.0), "voice.wav", "audio/wav"),
    "voice_m4a": (samples.voice_m4a(1.0), "voice.m4a", "audio/mp4"),
    "video_mp4": (samples.video_mp4(2.0, 160, 120), "clip.mp4", "video/mp4"),
    "pdf": (samples.pdf(3), "订单-发票.pdf", "application/pdf"),
    "corrupt": (samples.corrupt_jpeg(), "broken.jpg", "image/jpeg"),
    "binary": (samples.random_bytes(1000, seed=40), "data.bin", OCTET),
}


@pytest.fixture(scope="module")
def uploaded(server: ServerProcess, world: World) -> dict[str, Sample]:
    """Every sample uploaded by alice for her conversation with bob, up front, so that
    their previews are made side by side while the tests run."""
    found: dict[str, Sample] = {}
    for key, (data, name, type_) in SAMPLE_FILES.items():
        media_id = tus_upload(server, world.alice.token, world.conv, data, name, type_)
        found[key] = Sample(media_id, data, name, type_)
    return found


def _upload(
    server: ServerProcess,
    who: Account | Customer,
    conv: str,
    data: bytes,
    name: str = "file.bin",
    type_: str = OCTET,
) -> str:
    return tus_upload(server, who.token, conv, data, name, type_)


def _get(server: ServerProcess, token: str | None, path: str, **headers: str) -> httpx.Response:
    with server.http(token) as client:
        return client.get(path, headers=headers)


def _assert_served(server: ServerProcess, token: str, media_id: str, data: bytes) -> None:
    resp = _get(server, token, f"/api/media/{media_id}")
    assert resp.status_code == 200, resp.text
    assert resp.content == data


def _assert_hidden(server: ServerProcess, token: str | None, media_id: str) -> None:
    """Every route of the file answers 404, the same as for an id that does not exist."""
    for suffix in ("", "/info", "/preview", "/playback"):
        resp = _get(server, token, f"/api/media/{media_id}{suffix}")
        expect_error(resp, 404, "not_found")


async def _send(
    server: ServerProcess,
    who: Account | Customer,
    conv: str,
    kind: str,
    ids: list[str],
    **extra: Any,
) -> Json:
    async with PeerPool(server) as pool:
        peer = await pool.open(who.token)
        ack = await send_media(peer, conv, kind, ids, f"r-{time.monotonic_ns()}", **extra)
    assert ack["op"] == "ack", ack
    return ack


async def _recall(server: ServerProcess, admin: Account, conv: str, seq: int) -> None:
    async with PeerPool(server) as pool:
        peer = await pool.open(admin.token)
        ref = f"recall-{time.monotonic_ns()}"
        await peer.send({"op": "recall", "ref": ref, "conv": conv, "seq": seq})
        ack = await peer.recv_ack(ref)
    assert ack["op"] == "ack", ack


def _library(server: ServerProcess, token: str, path: str, **params: Any) -> httpx.Response:
    with server.http(token) as client:
        return client.get(path, params=params)


# --- sending ---------------------------------------------------------------------------


async def test_an_image_message_carries_the_descriptor_to_every_member(
    server: ServerProcess, world: World
) -> None:
    data = samples.jpeg(80, 60)
    media_id = _upload(server, world.alice, world.conv, data, "样品.jpg", "image/jpeg")
    async with PeerPool(server) as pool:
        alice = await pool.open(world.alice.token)
        bob = await pool.record(world.bob.token)
        await alice.send(
            {
                "op": "send",
                "ref": "img-1",
                "conv": world.conv,
                "kind": "image",
                "text": "第二轮样品",
                "attachments": [{"id": media_id}],
            }
        )
        frames = await collect_until(
            alice, lambda f: f.get("ref") == "img-1" and f["op"] in ("ack", "error")
        )
        ack = frames[-1]
        assert ack["op"] == "ack", ack
        mine = [f for f in frames if f["op"] == "message" and f.get("ref") == "img-1"]
        own = mine[0] if mine else await alice.recv_op("message")  # either order is fine
        got = await bob.wait_for(lambda f: f.get("op") == "message" and f.get("ref") == "img-1")
    assert (got["seq"], got["id"]) == (ack["seq"], ack["id"])
    assert (
        got["kind"] == "image" and got["text"] == "第二轮样品" and got["sender"] == world.alice.id
    )
    assert len(got["attachments"]) == 1
    descriptor = got["attachments"][0]
    assert_descriptor(
        descriptor, media_id=media_id, name="样品.jpg", type_="image/jpeg", data=data, kind="image"
    )
    assert own["attachments"] == got["attachments"]

    stored = next(m for m in messages(server, world.bob.token, world.conv) if m["id"] == ack["id"])
    assert [a["id"] for a in stored["attachments"]] == [media_id]
    assert_descriptor(
        stored["attachments"][0],
        media_id=media_id,
        name="样品.jpg",
        type_="image/jpeg",
        data=data,
        kind="image",
    )
    _assert_served(server, world.bob.token, media_id, data)
    served = _get(server, world.bob.token, f"/api/media/{media_id}")
    assert served.headers["Content-Type"].split(";")[0] == "image/jpeg"
    state = _get(server, world.alice.token, f"/api/uploads/{media_id}").json()
    assert state["state"] == "finished" and state["offset"] == len(data), state


@pytest.mark.parametrize("caption", ["", None], ids=["empty", "absent"])
async def test_the_caption_is_optional(
    server: ServerProcess, world: World, caption: str | None
) -> None:
    data = samples.random_bytes(500, seed=41 + (caption is None))
    media_id = _upload(server, world.alice, world.conv, data, "notes.bin")
    async with PeerPool(server) as pool:
        alice = await pool.open(world.alice.token)
        bob = await pool.open(world.bob.token)
        ref = f"caption-{caption is None}"
        ack = await send_media(alice, world.conv, "file", [media_id], ref, caption)
        assert ack["op"] == "ack", ack
        got = await bob.recv_op("message")
    assert got["ref"] == ref and got["text"] == "" and got["kind"] == "file"
    assert [a["id"] for a in got["attachments"]] == [media_id]


async def test_a_message_may_carry_several_files(server: ServerProcess, world: World) -> None:
    first, second = samples.png(10, 10), samples.png(12, 12)
    ids = [
        _upload(server, world.alice, world.conv, first, "five-a.png", "image/png"),
        _upload(server, world.alice, world.conv, second, "five-b.png", "image/png"),
    ]
    async with PeerPool(server) as pool:
        alice = await pool.open(world.alice.token)
        bob = await pool.open(world.bob.token)
        ack = await send_media(alice, world.conv, "image", ids, "two-files", "两张")
        assert ack["op"] == "ack", ack
        got = await bob.recv_op("message")
    assert [a["id"] for a in got["attachments"]] == ids
    for descriptor, data, name in zip(
        got["attachments"], (first, second), ("five-a.png", "five-b.png"), strict=True
    ):
        assert_descriptor(
            descriptor,
            media_id=descriptor["id"],
            name=name,
            type_="image/png",
            data=data,
            kind="image",
        )
    files = _library(server, world.bob.token, f"/api/conversations/{world.conv}/files").json()
    assert {f["id"] for f in files["files"] if f["seq"] == ack["seq"]} == set(ids)


@dataclass(frozen=True)
class Refusable:
    """Uploads that some sends must refuse."""

    bobs: str  # bob's, for the same conversation
    unfinished: str
    other_conv: str  # alice's, for her conversation with carol
    sent: str  # already in a message
    pdf: str
    image: str
    audio: str


@pytest.fixture(scope="module")
def refusable(server: ServerProcess, world: World) -> Refusable:
    with server.http(world.alice.token) as http:
        unfinished = started_upload(http, world.conv, samples.random_bytes(900, seed=42), 300)
    sent = _upload(server, world.alice, world.conv, samples.random_bytes(200, seed=43))
    asyncio.run(_send(server, world.alice, world.conv, "file", [sent]))
    return Refusable(
        bobs=_upload(server, world.bob, world.conv, samples.random_bytes(200, seed=44)),
        unfinished=unfinished,
        other_conv=_upload(server, world.alice, world.other_conv, samples.random_bytes(200, 45)),
        sent=sent,
        pdf=_upload(server, world.alice, world.conv, samples.pdf(1), "a.pdf", "application/pdf"),
        image=_upload(server, world.alice, world.conv, samples.png(20, 20), "a.png", "image/png"),
        audio=_upload(
            server, world.alice, world.conv, samples.voice_m4a(0.5), "a.m4a", "audio/mp4"
        ),
    )


@dataclass(frozen=True)
class BadSend:
    name: str
    kind: str
    attachments: Any  # a list of upload ids, or the raw field
    codes: frozenset[str]
    text: str | None = ""


def _ids(*names: str) -> list[str]:
    return [f"<{n}>" for n in names]


SEND_CASES = [
    BadSend("someone-elses-upload", "file", _ids("bobs"), frozenset({"forbidden"})),
    BadSend("unfinished-upload", "file", _ids("unfinished"), frozenset({"conflict"})),
    BadSend("upload-for-another-conv", "file", _ids("other_conv"), frozenset({"bad_request"})),
    BadSend("already-sent", "file", _ids("sent"), frozenset({"conflict"})),
    BadSend("unknown-upload", "file", [NO_SUCH_UPLOAD], frozenset({"not_found"})),
    BadSend("image-kind-with-a-pdf", "image", _ids("pdf"), frozenset({"bad_request"})),
    BadSend("voice-kind-with-an-image", "voice", _ids("image"), frozenset({"bad_request"})),
    BadSend("video-kind-with-audio", "video", _ids("audio"), frozenset({"bad_request"})),
    BadSend(
        "text-kind-with-attachments", "text", _ids("image"), frozenset({"bad_request"}), "hello"
    ),
    BadSend("image-kind-without-attachments", "image", [], frozenset({"bad_request"})),
    BadSend(
        "good-then-unknown", "image", [*_ids("image"), NO_SUCH_UPLOAD], frozenset({"not_found"})
    ),
    BadSend(
        "good-then-someone-elses", "file", [*_ids("pdf"), *_ids("bobs")], frozenset({"forbidden"})
    ),
    BadSend(
        "same-upload-twice", "image", _ids("image", "image"), frozenset({"bad_request", "conflict"})
    ),
    BadSend("attachment-id-not-a-string", "image", "RAW:int", frozenset({"bad_request"})),
    BadSend("attachments-not-a-list", "image", "RAW:object", frozenset({"bad_request"})),
]


def _attachments(case: BadSend, r: Refusable) -> list[Any] | dict[str, Any]:
    if case.attachments == "RAW:int":
        return [{"id": 5}]
    if case.attachments == "RAW:object":
        return {"id": r.image}
    return [{"id": getattr(r, a[1:-1]) if a.startswith("<") else a} for a in case.attachments]


@pytest.mark.pg_sample(6)
@pytest.mark.parametrize("case", SEND_CASES, ids=[c.name for c in SEND_CASES])
async def test_a_refused_send_stores_nothing(
    server: ServerProcess, world: World, refusable: Refusable, case: BadSend
) -> None:
    before = Evidence.take(server)  # after every preview is made: no media event comes now
    async with PeerPool(server) as pool:
        alice = await pool.open(world.alice.token)
        bob = await pool.open(world.bob.token)
        ref = f"bad-{case.name}"
        frame: Json = {
            "op": "send",
            "ref": ref,
            "conv": world.conv,
            "kind": case.kind,
            "attachments": _attachments(case, refusable),
        }
        if case.text is not None:
            frame["text"] = case.text
        await alice.send(frame)
        answer = await alice.recv_ack(ref)
        assert answer["op"] == "error", f"expected an error, got {answer}"
        assert answer["code"] in case.codes, answer
        assert isinstance(answer.get("message"), str) and answer["message"], answer
        sent_to_bob = await barrier(bob)
        assert sent_to_bob == [], f"a member was sent something for a refused send: {sent_to_bob}"
        before.assert_unchanged()


async def test_uploads_a_refused_send_named_can_still_be_sent(
    server: ServerProcess, world: World, refusable: Refusable
) -> None:
    await _send(server, world.alice, world.conv, "image", [refusable.image])
    await _send(server, world.alice, world.conv, "file", [refusable.pdf])
    await _send(server, world.alice, world.conv, "voice", [refusable.audio])
    await _send(server, world.bob, world.conv, "file", [refusable.bobs])


async def test_a_voice_message_may_be_a_browser_recording_typed_as_video(
    server: ServerProcess, world: World
) -> None:
    data = samples.voice_webm(0.5)
    media_id = _upload(server, world.alice, world.conv, data, "rec.webm", "video/webm")
    await _send(server, world.alice, world.conv, "voice", [media_id])
    _assert_served(server, world.bob.token, media_id, data)


def test_a_sent_upload_cannot_be_cancelled(
    server: ServerProcess, world: World, refusable: Refusable
) -> None:
    before = Evidence.take(server)
    with server.http(world.alice.token) as http:
        expect_error(tus_delete(http, refusable.sent), 409, "conflict")
    before.assert_unchanged()
    _assert_served(server, world.bob.token, refusable.sent, samples.random_bytes(200, seed=43))


# --- previews -----------------------------------------------------------------------------


def _image(resp: httpx.Response) -> Image.Image:
    assert resp.status_code == 200, resp.text
    img = Image.open(io.BytesIO(resp.content))
    img.load()
    return img


def _dark(pixel: Any) -> bool:
    return sum(pixel[:3]) < 150


def test_an_image_thumbnail_applies_the_exif_orientation(
    server: ServerProcess, world: World, uploaded: dict[str, Sample]
) -> None:
    token = world.alice.token
    plain = wait_preview(server, token, uploaded["jpeg"].id)
    assert plain["kind"] == "image" and plain["preview"]["status"] == "ready", plain
    assert (plain["preview"]["width"], plain["preview"]["height"]) == (64, 48)

    rotated = wait_preview(server, token, uploaded["jpeg_rotated"].id)
    preview = rotated["preview"]
    assert preview["status"] == "ready" and preview["error"] is None, preview
    assert (preview["width"], preview["height"]) == (48, 64), "orientation 6 shows it portrait"
    assert preview["url"] == f"/api/media/{uploaded['jpeg_rotated'].id}/preview"
    resp = _get(server, token, preview["url"])
    assert resp.headers["Content-Type"].split(";")[0] == "image/jpeg"
    thumb = _image(resp).convert("RGB")
    assert thumb.height > thumb.width, thumb.size
    # The mark drawn in the stored top-left corner is at the top right once turned.
    assert _dark(thumb.getpixel((thumb.width - 2, 1))), "the thumbnail was not turned"
    assert not _dark(thumb.getpixel((1, 1)))
    assert data_files(server, "previews"), "previews land in DATA_DIR/previews"
    # The original stays byte for byte, EXIF and all.
    _assert_served(server, token, uploaded["jpeg_rotated"].id, uploaded["jpeg_rotated"].data)


def test_a_png_with_alpha_gets_a_thumbnail(
    server: ServerProcess, world: World, uploaded: dict[str, Sample]
) -> None:
    info = wait_preview(server, world.alice.token, uploaded["png_alpha"].id)
    assert info["preview"]["status"] == "ready", info
    assert (info["preview"]["width"], info["preview"]["height"]) == (40, 30)
    thumb = _image(_get(server, world.alice.token, info["preview"]["url"]))
    assert thumb.width * 30 == thumb.height * 40 or abs(thumb.width / thumb.height - 4 / 3) < 0.1


@pytest.mark.parametrize(
    ("key", "needs_playback"),
    [("voice_webm", True), ("voice_ogg", True), ("voice_wav", True), ("voice_m4a", False)],
)
def test_a_voice_message_gets_duration_peaks_and_if_needed_a_playback_copy(
    server: ServerProcess,
    world: World,
    uploaded: dict[str, Sample],
    key: str,
    needs_playback: bool,
) -> None:
    sample = uploaded[key]
    token = world.alice.token
    info = wait_preview(server, token, sample.id)
    assert info["kind"] == "voice", info
    preview = info["preview"]
    assert preview["status"] == "ready", preview
    assert abs(preview["duration_ms"] - 1000) <= 150, preview["duration_ms"]
    peaks = preview["peaks"]
    assert isinstance(peaks, list) and len(peaks) == 64, peaks
    assert all(isinstance(p, int | float) and 0 <= p <= 100 for p in peaks), peaks
    assert max(peaks) > 0, "a tone has a waveform"
    if needs_playback:
        assert preview["playback"] == f"/api/media/{sample.id}/playback", preview
        resp = _get(server, token, preview["playback"])
        assert resp.status_code == 200, resp.text
        assert resp.headers["Content-Type"].split(";")[0] == "audio/mp4"
        with av.open(io.BytesIO(resp.content)) as container:
            stream = container.streams.audio[0]
            assert stream.codec_context.name == "aac"
            seconds = float(container.duration or 0) / av.time_base
            assert 0.8 <= seconds <= 1.3, seconds
    else:
        assert preview["playback"] is None, "AAC in MP4 plays everywhere as it is"
    _assert_served(server, token, sample.id, sample.data)


def test_a_video_gets_a_poster_frame_size_and_duration(
    server: ServerProcess, world: World, uploaded: dict[str, Sample]
) -> None:
    sample = uploaded["video_mp4"]
    info = wait_preview(server, world.alice.token, sample.id)
    assert info["kind"] == "video", info
    preview = info["preview"]
    assert preview["status"] == "ready", preview
    assert (preview["width"], preview["height"]) == (160, 120)
    assert abs(preview["duration_ms"] - 2000) <= 300, preview["duration_ms"]
    resp = _get(server, world.alice.token, preview["url"])
    assert resp.headers["Content-Type"].split(";")[0] == "image/jpeg"
    poster = _image(resp)
    assert abs(poster.width / poster.height - 4 / 3) < 0.1, poster.size


def test_a_pdf_gets_its_first_page_and_page_count(
    server: ServerProcess, world: World, uploaded: dict[str, Sample]
) -> None:
    sample = uploaded["pdf"]
    info = wait_preview(server, world.alice.token, sample.id)
    assert info["kind"] == "file" and info["type"] == "application/pdf", info
    assert info["preview"]["status"] == "ready", info
    assert info["preview"]["pages"] == 3
    page = _image(_get(server, world.alice.token, info["preview"]["url"]))
    assert page.height > page.width, "the first page, portrait"


def test_a_corrupt_image_fails_its_preview_and_stays_downloadable(
    server: ServerProcess, world: World, uploaded: dict[str, Sample]
) -> None:
    sample = uploaded["corrupt"]
    info = wait_preview(server, world.alice.token, sample.id)
    preview = info["preview"]
    assert preview["status"] == "failed", preview
    assert isinstance(preview["error"], str) and preview["error"], preview
    _assert_served(server, world.alice.token, sample.id, sample.data)
    assert server.proc is not None and server.proc.poll() is None, "the server went down"


def test_a_plain_file_has_no_preview(
    server: ServerProcess, world: World, uploaded: dict[str, Sample]
) -> None:
    info = wait_preview(server, world.alice.token, uploaded["binary"].id)
    assert info["kind"] == "file"
    assert info["preview"]["status"] == "none", info
    assert info["preview"]["url"] is None


async def test_a_preview_finished_after_sending_reaches_members_as_a_durable_event(
    server: ServerProcess, world: World
) -> None:
    data = samples.video_mp4(3.0, 320, 240)
    async with PeerPool(server) as pool:
        bob = await pool.record(world.bob.token, "bob-live")
        alice = await pool.open(world.alice.token)
        start = len(bob.frames)
        media_id = await asyncio.to_thread(
            _upload, server, world.alice, world.conv, data, "fresh.mp4", "video/mp4"
        )
        ack = await send_media(alice, world.conv, "video", [media_id], "fresh-video")
        assert ack["op"] == "ack", ack
        message = await bob.wait_for(
            lambda f: f.get("op") == "message" and f.get("ref") == "fresh-video", 10, start
        )
        status = message["attachments"][0]["preview"]["status"]
        assert status in ("pending", "ready"), message
        if status == "ready":
            return  # the preview beat the send; then no event is owed
        event = await bob.wait_for(
            lambda f: f.get("op") == "media" and f.get("id") == media_id, 30, start
        )
    assert event["conv"] == world.conv and event["seq"] == ack["seq"], event
    assert event["message"] == ack["id"], event
    assert event["preview"]["status"] == "ready", event
    assert set(event["preview"]) >= PREVIEW_FIELDS
    assert event["preview"]["width"] == 320 and event["preview"]["height"] == 240
    assert isinstance(event["cursor"], str)
    # Durable: a device resuming from before the message gets the event again.
    async with PeerPool(server) as pool:
        later = await pool.open(world.bob.token, "bob-later", cursor=message["cursor"])
        replay = await collect_until(later, lambda f: f.get("op") == "synced", 10)
    replayed = [f for f in replay if f.get("op") == "media" and f.get("id") == media_id]
    assert len(replayed) == 1, replay
    assert replayed[0]["cursor"] == event["cursor"]
    info = media_info(server, world.bob.token, media_id)
    assert info["preview"] == event["preview"]


# --- downloading ------------------------------------------------------------------------------


async def test_only_the_uploader_and_then_the_members_may_download(
    server: ServerProcess, world: World
) -> None:
    data = samples.random_bytes(2000, seed=46)
    media_id = _upload(server, world.alice, world.conv, data, "secret.bin")
    _assert_served(server, world.alice.token, media_id, data)
    _assert_hidden(server, world.bob.token, media_id)  # a member, but not sent yet
    _assert_hidden(server, world.carol.token, media_id)
    expect_error(_get(server, None, f"/api/media/{media_id}"), 401, "unauthorized")

    await _send(server, world.alice, world.conv, "file", [media_id])
    _assert_served(server, world.bob.token, media_id, data)
    assert media_info(server, world.bob.token, media_id)["id"] == media_id
    _assert_hidden(server, world.carol.token, media_id)
    expect_error(_get(server, None, f"/api/media/{media_id}"), 401, "unauthorized")
    _assert_hidden(server, world.alice.token, NO_SUCH_UPLOAD)


@pytest.fixture(scope="module")
def ranged(server: ServerProcess, world: World) -> Sample:
    data = samples.random_bytes(1000, seed=47)
    media_id = _upload(server, world.alice, world.conv, data, "ranged.bin")
    asyncio.run(_send(server, world.alice, world.conv, "file", [media_id]))
    return Sample(media_id, data, "ranged.bin", OCTET)


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, 999),
        ("bytes=-50", 950, 999),
        ("bytes=999-999", 999, 999),
        ("bytes=900-5000", 900, 999),
    ],
)
def test_a_range_is_served_with_206_and_content_range(
    server: ServerProcess, world: World, ranged: Sample, spec: str, start: int, end: int
) -> None:
    resp = _get(server, world.bob.token, f"/api/media/{ranged.id}", Range=spec)
    assert resp.status_code == 206, resp.text
    assert resp.headers["Content-Range"] == f"bytes {start}-{end}/1000"
    assert resp.content == ranged.data[start : end + 1]
    assert int(resp.headers["Content-Length"]) == end - start + 1


def test_several_ranges_are_served_as_multipart_byteranges(
    server: ServerProcess, world: World, ranged: Sample
) -> None:
    resp = _get(server, world.bob.token, f"/api/media/{ranged.id}", Range="bytes=0-9,20-29,-5")
    assert resp.status_code == 206, resp.text
    content_type = resp.headers["Content-Type"]
    assert content_type.startswith("multipart/byteranges"), content_type
    boundary = content_type.split("boundary=", 1)[1].strip().strip('"').encode()
    parts = []
    for chunk in resp.content.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, body = chunk.lstrip(b"\r\n").partition(b"\r\n\r\n")
        headers = dict(
            (k.strip().lower(), v.strip())
            for k, _, v in (line.decode().partition(":") for line in head.split(b"\r\n"))
        )
        parts.append((headers["content-range"], body.removesuffix(b"\r\n")))
    assert parts == [
        ("bytes 0-9/1000", ranged.data[0:10]),
        ("bytes 20-29/1000", ranged.data[20:30]),
        ("bytes 995-999/1000", ranged.data[995:]),
    ]


@pytest.mark.parametrize("spec", ["bytes=1000-1100", "bytes=5000-"])
def test_a_range_past_the_end_is_416_with_an_error_body(
    server: ServerProcess, world: World, ranged: Sample, spec: str
) -> None:
    resp = _get(server, world.bob.token, f"/api/media/{ranged.id}", Range=spec)
    assert resp.status_code == 416, resp.text
    error_of(resp)


def test_etag_is_the_sha256_and_conditional_requests_are_honoured(
    server: ServerProcess, world: World, ranged: Sample
) -> None:
    path = f"/api/media/{ranged.id}"
    resp = _get(server, world.bob.token, path)
    assert resp.status_code == 200
    etag = resp.headers["ETag"]
    assert etag.removeprefix("W/").strip('"') == sha256(ranged.data), etag
    directives = {d.strip() for d in resp.headers["Cache-Control"].split(",")}
    assert directives == {"private", "max-age=31536000", "immutable"}, directives

    cached = _get(server, world.bob.token, path, **{"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    changed = _get(server, world.bob.token, path, **{"If-None-Match": '"0000"'})
    assert changed.status_code == 200 and changed.content == ranged.data

    same = _get(server, world.bob.token, path, Range="bytes=0-9", **{"If-Range": etag})
    assert same.status_code == 206 and same.content == ranged.data[:10]
    other = _get(server, world.bob.token, path, Range="bytes=0-9", **{"If-Range": '"0000"'})
    assert other.status_code == 200 and other.content == ranged.data


async def test_a_download_names_the_file_in_any_script_and_is_never_run(
    server: ServerProcess, world: World, uploaded: dict[str, Sample]
) -> None:
    sample = uploaded["pdf"]
    await _send(server, world.alice, world.conv, "file", [sample.id])
    resp = _get(server, world.bob.token, f"/api/media/{sample.id}")
    assert resp.status_code == 200
    header = resp.headers["Content-Disposition"]
    assert "filename*=utf-8''" in header.lower(), header
    assert disposition(header) == ("attachment", "订单-发票.pdf")
    assert resp.headers["Content-Type"].split(";")[0] == "application/pdf"
    for route in (f"/api/media/{sample.id}", f"/api/media/{sample.id}/preview"):
        resp = _get(server, world.bob.token, route)
        assert resp.status_code == 200, (route, resp.text)
        assert resp.headers["X-Content-Type-Options"] == "nosniff", route
        csp = {d.strip() for d in resp.headers["Content-Security-Policy"].split(";")}
        assert {"default-src 'none'", "sandbox"} <= csp, (route, csp)


@pytest.mark.parametrize(
    ("data", "name", "declared"),
    [
        (samples.html_disguised(), "invoice.html", "text/html"),
        (samples.svg_with_script(), "logo.svg", "image/svg+xml"),
    ],
    ids=["html", "svg"],
)
async def test_a_type_a_browser_would_run_is_served_as_octet_stream(
    server: ServerProcess, world: World, data: bytes, name: str, declared: str
) -> None:
    media_id = _upload(server, world.alice, world.conv, data, name, declared)
    await _send(server, world.alice, world.conv, "file", [media_id])
    resp = _get(server, world.bob.token, f"/api/media/{media_id}")
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].split(";")[0] == OCTET
    assert disposition(resp.headers["Content-Disposition"]) == ("attachment", name)
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in resp.headers["Content-Security-Policy"]
    assert resp.content == data


async def test_a_recalled_file_is_hidden_from_members_but_not_from_an_admin(
    server: ServerProcess, world: World
) -> None:
    data = samples.random_bytes(700, seed=48)
    media_id = _upload(server, world.alice, world.conv, data, "oops.bin")
    ack = await _send(server, world.alice, world.conv, "file", [media_id])
    _assert_served(server, world.bob.token, media_id, data)
    await _recall(server, world.admin, world.conv, ack["seq"])
    _assert_hidden(server, world.bob.token, media_id)
    _assert_hidden(server, world.alice.token, media_id)  # the uploader too
    _assert_served(server, world.admin.token, media_id, data)
    for who in (world.alice, world.bob):
        files = _library(server, who.token, f"/api/conversations/{world.conv}/files")
        assert media_id not in {f["id"] for f in files.json()["files"]}
    with server.http(world.alice.token) as http:
        expect_error(tus_delete(http, media_id), 409, "conflict")


# --- customers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerWorld:
    shop: Shop
    order: Json
    me: Customer
    staff: Account
    theirs: Json
    them: Customer


@pytest.fixture(scope="module")
def customers(order_shop: Shop) -> CustomerWorld:
    mine, theirs = order_shop.create_order("retail"), order_shop.create_order("retail")
    return CustomerWorld(
        order_shop,
        mine,
        order_shop.customer(mine),
        order_shop.staff["customer_service"],
        theirs,
        order_shop.customer(theirs),
    )


async def test_a_customer_shares_files_in_their_own_order_only(customers: CustomerWorld) -> None:
    server, me, staff = customers.shop.server, customers.me, customers.staff
    conv, other_conv = customers.order["conv"], customers.theirs["conv"]

    photo = samples.jpeg(40, 30)
    mine = _upload(server, me, conv, photo, "收到的货.jpg", "image/jpeg")
    public = await _send(server, me, conv, "image", [mine], text="包装破了")
    _assert_served(server, staff.token, mine, photo)
    _assert_served(server, me.token, mine, photo)

    note = samples.random_bytes(300, seed=49)
    internal = _upload(server, staff, conv, note, "内部-成本.xlsx")
    await _send(server, staff, conv, "file", [internal], internal=True)
    _assert_served(server, staff.token, internal, note)
    _assert_hidden(server, me.token, internal)

    theirs_data = samples.random_bytes(300, seed=50)
    theirs = _upload(server, customers.them, other_conv, theirs_data, "theirs.bin")
    await _send(server, customers.them, other_conv, "file", [theirs])
    _assert_hidden(server, me.token, theirs)

    # The libraries show a customer what they may see, and nothing of another order.
    for path in (f"/api/conversations/{conv}/files", f"/api/orders/{customers.order['id']}/files"):
        resp = _library(server, me.token, path)
        assert resp.status_code == 200, resp.text
        listed = resp.json()["files"]
        assert [f["id"] for f in listed] == [mine], (path, listed)
        assert listed[0]["seq"] == public["seq"] and listed[0]["sender"] == me.id
        staff_view = _library(server, staff.token, path).json()["files"]
        assert [f["id"] for f in staff_view] == [internal, mine], path
        only_files = _library(server, staff.token, path, kind="file").json()["files"]
        assert [f["id"] for f in only_files] == [internal], path
    for path in (
        f"/api/conversations/{other_conv}/files",
        f"/api/orders/{customers.theirs['id']}/files",
    ):
        resp = _library(server, me.token, path)
        assert resp.status_code in (403, 404), resp.text
        error_of(resp)
        assert theirs not in resp.text

    # A customer cannot upload into another order's conversation.
    before = Evidence.take(server)
    with server.http(me.token) as http:
        resp = tus_create(http, conv=other_conv, length=10, filename="x.bin", filetype=OCTET)
    assert resp.status_code in (403, 404), resp.text
    error_of(resp)
    before.assert_unchanged()


# --- the file library ------------------------------------------------------------------------


@dataclass(frozen=True)
class Library:
    conv: str
    sent: list[Json]  # one entry per file, newest first: {"id", "seq", "kind", "message"}
    recalled: str


@pytest.fixture(scope="module")
def library(server: ServerProcess, world: World) -> Library:
    conv = server.conversation(world.alice, "channel", [world.bob], title="library")["id"]

    def up(data: bytes, name: str, type_: str, who: Account = world.alice) -> str:
        return _upload(server, who, conv, data, name, type_)

    plan: list[tuple[Account, str, list[str]]] = [
        (world.alice, "image", [up(samples.jpeg(30, 20), "one.jpg", "image/jpeg")]),
        (world.bob, "voice", [up(samples.voice_m4a(0.3), "two.m4a", "audio/mp4", world.bob)]),
        (world.alice, "file", [up(samples.pdf(1), "three.pdf", "application/pdf")]),
        (world.alice, "video", [up(samples.video_mp4(0.5, 64, 48), "four.mp4", "video/mp4")]),
        (world.alice, "image", [up(samples.png(14, 10), "five.png", "image/png")]),
        (world.alice, "file", [up(samples.random_bytes(99, 51), "six.bin", OCTET)]),
        (world.alice, "file", [up(samples.random_bytes(98, 52), "recalled.bin", OCTET)]),
    ]

    async def send_all() -> list[Json]:
        acks = []
        async with PeerPool(server) as pool:
            peers = {a.id: await pool.open(a.token) for a in (world.alice, world.bob)}
            for n, (who, kind, ids) in enumerate(plan):
                ack = await send_media(peers[who.id], conv, kind, ids, f"lib-{n}")
                assert ack["op"] == "ack", ack
                acks.append(ack)
                if n == 2:
                    await peers[who.id].send_text(conv, "a text between files", "lib-text")
        return acks

    acks = asyncio.run(send_all())
    asyncio.run(_recall(server, world.admin, conv, acks[-1]["seq"]))
    sent = [
        {"id": media_id, "seq": ack["seq"], "kind": kind, "message": ack["id"], "sender": who.id}
        for (who, kind, ids), ack in zip(plan[:-1], acks[:-1], strict=True)
        for media_id in ids
    ]
    sent.sort(key=lambda f: -f["seq"])
    return Library(conv, sent, plan[-1][2][0])


def _kind_of(entry: Json) -> str:
    return {"image": "image", "voice": "voice", "video": "video"}.get(entry["kind"], "file")


def test_the_library_lists_every_file_newest_first(
    server: ServerProcess, world: World, library: Library
) -> None:
    resp = _library(server, world.bob.token, f"/api/conversations/{library.conv}/files")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    files = body["files"]
    assert body["next"] is None
    assert [f["seq"] for f in files] == [f["seq"] for f in library.sent]
    assert sorted(f["id"] for f in files) == sorted(f["id"] for f in library.sent)
    assert library.recalled not in {f["id"] for f in files}
    by_id = {f["id"]: f for f in library.sent}
    for f in files:
        expected = by_id[f["id"]]
        assert {"message", "seq", "sender", "ts"} <= set(f), f
        assert f["message"] == expected["message"] and f["sender"] == expected["sender"], f
        assert isinstance(f["ts"], int) and f["ts"] > 1_600_000_000_000
        assert f["kind"] == _kind_of(expected), f
        assert f["url"] == f"/api/media/{f['id']}"
        assert set(f["preview"]) >= PREVIEW_FIELDS


@pytest.mark.parametrize("kind", ["image", "voice", "video", "file"])
def test_the_library_filters_by_kind(
    server: ServerProcess, world: World, library: Library, kind: str
) -> None:
    resp = _library(
        server, world.alice.token, f"/api/conversations/{library.conv}/files", kind=kind
    )
    assert resp.status_code == 200, resp.text
    got = [(f["seq"], f["id"]) for f in resp.json()["files"]]
    expected = [(f["seq"], f["id"]) for f in library.sent if _kind_of(f) == kind]
    assert sorted(got, reverse=True) == sorted(expected, reverse=True)
    assert [s for s, _ in got] == sorted((s for s, _ in got), reverse=True)


def test_the_library_pages_with_before_and_next(
    server: ServerProcess, world: World, library: Library
) -> None:
    path = f"/api/conversations/{library.conv}/files"
    seen: list[tuple[int, str]] = []
    before: int | None = None
    pages = 0
    for _ in range(20):
        params: dict[str, Any] = {"limit": 2}
        if before is not None:
            params["before"] = before
        resp = _library(server, world.bob.token, path, **params)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["files"], "an empty page before the end"
        seen.extend((f["seq"], f["id"]) for f in body["files"])
        pages += 1
        if body["next"] is None:
            break
        assert body["next"] == body["files"][-1]["seq"], body
        before = body["next"]
    assert pages >= 3
    assert sorted(seen, reverse=True) == sorted(
        ((f["seq"], f["id"]) for f in library.sent), reverse=True
    )
    assert len(seen) == len(set(seen)), "a file listed twice"
    one = _library(server, world.bob.token, path, kind="file", limit=1).json()
    assert len(one["files"]) == 1 and one["next"] == one["files"][0]["seq"], one


@pytest.mark.parametrize(
    "params",
    [{"kind": "sticker"}, {"before": "soon"}, {"limit": 0}, {"limit": "many"}],
    ids=["kind", "before", "limit-zero", "limit-word"],
)
def test_a_bad_library_query_is_a_bad_request(
    server: ServerProcess, world: World, library: Library, params: dict[str, Any]
) -> None:
    resp = _library(server, world.bob.token, f"/api/conversations/{library.conv}/files", **params)
    expect_error(resp, 400, "bad_request")


def test_the_library_is_for_members_only(
    server: ServerProcess, world: World, library: Library
) -> None:
    resp = _library(server, world.carol.token, f"/api/conversations/{library.conv}/files")
    expect_error(resp, 403, "forbidden")
    resp = _library(server, world.alice.token, f"/api/conversations/{NO_SUCH_CONV}/files")
    expect_error(resp, 404, "not_found")
    expect_error(
        _library(server, "", f"/api/conversations/{library.conv}/files"), 401, "unauthorized"
    )


# --- restarts ----------------------------------------------------------------------------------


@pytest.fixture
def restarted(own_server: ServerProcess) -> ServerProcess:
    own_server.start()
    own_server.create_admin()
    return own_server


async def test_files_survive_a_restart(restarted: ServerProcess) -> None:
    server = restarted
    amy, ben = server.user(), server.user()
    conv = server.conversation(amy, "channel", [ben], title="restart")["id"]
    photo = samples.jpeg(50, 40)
    sent = _upload(server, amy, conv, photo, "before-restart.jpg", "image/jpeg")
    ack = await _send(server, amy, conv, "image", [sent])
    before = wait_preview(server, ben.token, sent)
    rest = samples.random_bytes(4000, seed=53)
    with server.http(amy.token) as http:
        half = started_upload(http, conv, rest, 1500)

    server.restart()

    _assert_served(server, ben.token, sent, photo)
    assert media_info(server, ben.token, sent) == before
    assert _get(server, ben.token, before["preview"]["url"]).status_code == 200
    files = _library(server, ben.token, f"/api/conversations/{conv}/files").json()["files"]
    assert [(f["id"], f["seq"]) for f in files] == [(sent, ack["seq"])]
    with server.http(amy.token) as http:
        assert tus_offset(http, half) == 1500
        assert tus_patch(http, half, 1500, rest[1500:]).status_code == 204
        created_id(tus_create(http, conv=conv, length=5, filetype=OCTET))
    _assert_served(server, amy.token, half, rest)
    assert_blob_stored(server, photo)
    assert_blob_stored(server, rest)
    assert_blobs_whole(server)
