"""Resumable uploads (docs/media.md §1, §2, §7) against a real server.

Uploads are made with tuspy, a real tus client, and by hand with httpx for what
no honest client sends. Interrupted uploads go through a proxy that cuts the
connection at an exact byte of the body. Every refused request is checked for
its status and error body and for having changed nothing: the database rows,
the files under DATA_DIR, and the upload's offset.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from tusclient.exceptions import TusCommunicationError

from tests.media_samples import html_disguised, random_bytes
from tests.media_support import (
    TUS,
    CuttingProxy,
    Evidence,
    assert_blob_stored,
    assert_blobs_whole,
    b64,
    blob_count,
    checksum_header,
    created_id,
    cutting_proxy,
    data_files,
    disposition,
    download,
    metadata,
    raw_upload,
    sha256,
    started_upload,
    tus_create,
    tus_delete,
    tus_failure_status,
    tus_head,
    tus_offset,
    tus_patch,
    tus_resume,
    tus_upload,
    tus_uploader,
    upload_id_of,
    wait_offset,
)
from tests.order_support import expect_error
from tests.support import Account, ServerProcess, start_server

pytestmark = pytest.mark.timeout(90)

GIB = 1024**3
OCTET = "application/octet-stream"
NO_SUCH_CONV = "c_doesnotexist0000000000"
NO_SUCH_UPLOAD = "up_doesnotexist000000000"
NOT_UTF8 = b"\xff\xfe.bin"


@dataclass(frozen=True)
class World:
    alice: Account  # uploads
    bob: Account  # a member of alice's conversation, but not the uploader
    carol: Account  # not a member
    conv: str  # alice and bob
    carols_conv: str  # carol alone


@pytest.fixture(scope="module")
def world(server: ServerProcess) -> World:
    alice, bob, carol = server.user(), server.user("warehouse"), server.user()
    conv = server.conversation(alice, "channel", [bob], title="uploads")["id"]
    carols = server.conversation(carol, "channel", [], title="carol's")["id"]
    return World(alice, bob, carol, conv, carols)


@pytest.fixture(scope="module")
def alice_http(server: ServerProcess, world: World) -> Iterator[httpx.Client]:
    with server.http(world.alice.token) as client:
        yield client


def _upload_state(http: httpx.Client, upload_id: str) -> dict[str, object]:
    resp = http.get(f"/api/uploads/{upload_id}")
    assert resp.status_code == 200, resp.text
    state: dict[str, object] = resp.json()
    return state


def _assert_downloads(server: ServerProcess, token: str, upload_id: str, data: bytes) -> None:
    resp = download(server, token, f"/api/media/{upload_id}")
    assert resp.status_code == 200, resp.text
    assert sha256(resp.content) == sha256(data)
    assert resp.content == data


# --- the protocol --------------------------------------------------------------


def test_options_advertises_tus_1_0_and_its_extensions(server: ServerProcess) -> None:
    resp = httpx.options(f"{server.base_url}/api/uploads", timeout=10)  # no token needed
    assert resp.status_code == 204, resp.text
    headers = resp.headers
    assert headers["Tus-Resumable"] == "1.0.0"
    assert "1.0.0" in [v.strip() for v in headers["Tus-Version"].split(",")]
    assert {v.strip() for v in headers["Tus-Extension"].split(",")} == {
        "creation",
        "termination",
        "checksum",
        "expiration",
    }
    assert int(headers["Tus-Max-Size"]) == 2 * GIB
    algorithms = {v.strip() for v in headers["Tus-Checksum-Algorithm"].split(",")}
    assert {"sha1", "sha256", "md5"} <= algorithms


def test_create_head_patch_and_state_follow_the_contract(
    server: ServerProcess, world: World, alice_http: httpx.Client
) -> None:
    data = random_bytes(1000, seed=1)
    uploads_before = data_files(server, "uploads")
    blobs_before = data_files(server, "blobs")
    created = tus_create(
        alice_http, conv=world.conv, length=1000, filename="样品-第二轮.bin", filetype=OCTET
    )
    assert created.status_code == 201, created.text
    body = created.json()
    upload_id = body["id"]
    assert {k: body[k] for k in ("id", "offset", "length")} == {
        "id": upload_id,
        "offset": 0,
        "length": 1000,
    }
    assert urlsplit(created.headers["Location"]).path == f"/api/uploads/{upload_id}"
    assert created.headers["Upload-Offset"] == "0"
    expires = parsedate_to_datetime(created.headers["Upload-Expires"])
    now = datetime.now(UTC)
    assert now + timedelta(hours=23) < expires < now + timedelta(hours=25), expires

    head = tus_head(alice_http, upload_id)
    assert head.status_code == 200
    assert head.headers["Upload-Offset"] == "0"
    assert head.headers["Upload-Length"] == "1000"
    assert "Upload-Expires" in head.headers
    assert "no-store" in head.headers["Cache-Control"]

    state = _upload_state(alice_http, upload_id)
    assert state["state"] == "receiving" and state["offset"] == 0, state
    assert state["id"] == upload_id and state["name"] == "样品-第二轮.bin", state

    patched = tus_patch(alice_http, upload_id, 0, data[:400])
    assert patched.status_code == 204, patched.text
    assert patched.headers["Upload-Offset"] == "400"
    assert tus_offset(alice_http, upload_id) == 400
    assert _upload_state(alice_http, upload_id)["offset"] == 400
    assert data_files(server, "uploads") != uploads_before, "no partial data in DATA_DIR/uploads"
    assert data_files(server, "blobs") == blobs_before, "a blob before the last byte"

    patched = tus_patch(alice_http, upload_id, 400, data[400:])
    assert patched.status_code == 204, patched.text
    assert patched.headers["Upload-Offset"] == "1000"
    head = tus_head(alice_http, upload_id)
    assert head.headers["Upload-Offset"] == "1000"
    assert "Upload-Expires" not in head.headers, "a finished upload does not expire"
    state = _upload_state(alice_http, upload_id)
    assert state["state"] == "finished" and state["offset"] == 1000, state
    assert state["sha256"] == sha256(data) and state["size"] == 1000, state
    assert state["type"] == OCTET and state["kind"] == "file", state
    assert data_files(server, "uploads") == uploads_before, "finished data left in uploads/"
    assert_blob_stored(server, data)
    _assert_downloads(server, world.alice.token, upload_id, data)


def test_a_missing_filetype_is_octet_stream_and_name_is_an_alias(
    server: ServerProcess, world: World, alice_http: httpx.Client
) -> None:
    data = random_bytes(300, seed=2)
    created = tus_create(
        alice_http,
        conv=None,
        length=len(data),
        upload_metadata=metadata(conv=world.conv, name="alias.bin"),
    )
    upload_id = created_id(created)
    assert tus_patch(alice_http, upload_id, 0, data).status_code == 204
    state = _upload_state(alice_http, upload_id)
    assert state["name"] == "alias.bin" and state["type"] == OCTET, state


@pytest.mark.parametrize("checksum", [False, True], ids=["plain", "checksum"])
def test_tuspy_uploads_in_chunks_and_the_bytes_come_back_identical(
    server: ServerProcess, world: World, alice_http: httpx.Client, checksum: bool
) -> None:
    data = random_bytes(300_000, seed=10 + checksum)
    upload_id = tus_upload(
        server,
        world.alice.token,
        world.conv,
        data,
        "chunks.bin",
        OCTET,
        64 * 1024,
        checksum=checksum,
    )
    state = _upload_state(alice_http, upload_id)
    assert state["state"] == "finished" and state["size"] == len(data), state
    assert state["sha256"] == sha256(data), state
    assert state["url"] == f"/api/media/{upload_id}", state
    _assert_downloads(server, world.alice.token, upload_id, data)
    assert_blob_stored(server, data)
    assert_blobs_whole(server)


def test_checksums_of_every_advertised_algorithm_are_accepted(
    server: ServerProcess, world: World, alice_http: httpx.Client
) -> None:
    data = random_bytes(900, seed=3)
    upload_id = started_upload(alice_http, world.conv, data, 0)
    for n, algorithm in enumerate(("sha1", "sha256", "md5")):
        body = data[n * 300 : (n + 1) * 300]
        resp = tus_patch(
            alice_http, upload_id, n * 300, body, checksum=checksum_header(body, algorithm)
        )
        assert resp.status_code == 204, (algorithm, resp.text)
    _assert_downloads(server, world.alice.token, upload_id, data)


# --- interrupted and resumed ------------------------------------------------------

DATA_LEN = 200_000
CHUNK = 65_536
LAST = DATA_LEN - 3 * CHUNK  # the fourth and last PATCH's body


@dataclass(frozen=True)
class CutCase:
    name: str
    checksum: bool
    patch: int  # which PATCH of the upload is cut (0 = the first)
    body_bytes: int  # how much of its body reaches the server
    offset_after: int  # what HEAD must say then
    same_uploader: bool  # resume with the same tuspy uploader, or a new one for the URL


CUTS = [
    CutCase("mid-first-chunk", False, 0, 30_000, 30_000, False),
    CutCase("mid-first-chunk-checksum", True, 0, 30_000, 0, True),
    CutCase("whole-first-chunk-answer-lost", False, 0, CHUNK, CHUNK, True),
    CutCase("whole-first-chunk-answer-lost-checksum", True, 0, CHUNK, CHUNK, False),
    CutCase("at-chunk-boundary", False, 1, 0, CHUNK, False),
    CutCase("at-chunk-boundary-checksum", True, 1, 0, CHUNK, True),
    CutCase("one-byte-into-third-chunk", False, 2, 1, 2 * CHUNK + 1, True),
    CutCase("mid-third-chunk-checksum", True, 2, 1000, 2 * CHUNK, False),
    CutCase("one-byte-before-the-end", False, 3, LAST - 1, DATA_LEN - 1, False),
    CutCase("one-byte-before-the-end-checksum", True, 3, LAST - 1, 3 * CHUNK, True),
]


@pytest.mark.parametrize("case", CUTS, ids=[c.name for c in CUTS])
def test_an_upload_cut_at_any_byte_resumes_to_identical_bytes(
    server: ServerProcess, world: World, alice_http: httpx.Client, case: CutCase
) -> None:
    data = random_bytes(DATA_LEN, seed=100 + CUTS.index(case))
    digest = sha256(data)
    token = world.alice.token
    with cutting_proxy(server) as proxy:
        cut = proxy.cut(body_bytes=case.body_bytes, skip=case.patch)
        uploader = tus_uploader(
            proxy.base_url,
            token,
            data,
            conv=world.conv,
            filename=f"{case.name}.bin",
            filetype=OCTET,
            chunk_size=CHUNK,
            checksum=case.checksum,
        )
        with pytest.raises(TusCommunicationError):
            uploader.upload()
        assert cut.done.wait(5), "the proxy never cut the request"
        assert cut.forwarded_body == case.body_bytes
        upload_id = upload_id_of(uploader.url)

        offset = wait_offset(alice_http, upload_id, case.offset_after)
        assert offset == case.offset_after, (
            f"HEAD after the cut: expected {case.offset_after}, got {offset}"
        )
        assert blob_count(server, digest) == 0, "a blob before the upload finished"
        assert_blobs_whole(server)

        if case.same_uploader:
            # tuspy again: ask HEAD where to go on, then upload the rest through the proxy.
            for _ in range(100):
                uploader.offset = uploader.get_offset()
                try:
                    uploader.upload()
                    break
                except TusCommunicationError as exc:
                    if tus_failure_status(exc) != 409:  # the cut PATCH still closing
                        raise
                    time.sleep(0.05)
            assert uploader.offset == DATA_LEN
    if not case.same_uploader:
        direct = f"{server.base_url}/api/uploads/{upload_id}"
        resumed = tus_resume(
            server.base_url, token, direct, data, chunk_size=CHUNK, checksum=case.checksum
        )
        assert resumed.offset == DATA_LEN

    state = _upload_state(alice_http, upload_id)
    assert state["state"] == "finished" and state["sha256"] == digest, state
    _assert_downloads(server, token, upload_id, data)
    assert_blob_stored(server, data)
    assert_blobs_whole(server)


def test_a_connection_closed_at_once_after_its_last_bytes_resumes_cleanly(
    server: ServerProcess, world: World, alice_http: httpx.Client
) -> None:
    """The last bytes and the close reach the server together. The offset it keeps
    is a prefix of what was sent (the HTTP server may drop bytes still buffered
    when it sees the close), never more, and the upload resumes from it."""
    data = random_bytes(DATA_LEN, seed=99)
    with cutting_proxy(server) as proxy:
        cut = proxy.cut(body_bytes=30_000, linger_s=0)
        uploader = tus_uploader(
            proxy.base_url,
            world.alice.token,
            data,
            conv=world.conv,
            filename="abrupt.bin",
            filetype=OCTET,
            chunk_size=CHUNK,
        )
        with pytest.raises(TusCommunicationError):
            uploader.upload()
        assert cut.done.wait(5)
    upload_id = upload_id_of(uploader.url)
    offset = wait_offset(alice_http, upload_id, 30_000, timeout_s=2)
    assert 0 <= offset <= 30_000
    direct = f"{server.base_url}/api/uploads/{upload_id}"  # the proxy is gone
    tus_resume(server.base_url, world.alice.token, direct, data, chunk_size=CHUNK)
    _assert_downloads(server, world.alice.token, upload_id, data)


def test_a_second_patch_while_one_is_running_is_a_conflict(
    server: ServerProcess, world: World, alice_http: httpx.Client
) -> None:
    data = random_bytes(20_000, seed=98)
    upload_id = started_upload(alice_http, world.conv, data, 0, "busy.bin")
    with cutting_proxy(server) as proxy:
        cut = proxy.cut(body_bytes=1000, linger_s=1.5)  # a PATCH that stalls mid-body
        stalled = threading.Thread(target=_patch_through, args=(proxy, world, upload_id, data))
        stalled.start()
        try:
            assert cut.reached.wait(5), "the stalled PATCH never got through the proxy"
            time.sleep(0.3)  # the server is reading that body now
            before = data_files(server, "uploads")
            expect_error(tus_patch(alice_http, upload_id, 0, data[:10]), 409, "conflict")
            assert data_files(server, "uploads") == before
        finally:
            stalled.join(10)
        assert cut.done.wait(10), "the stalled PATCH was not let go"
    assert wait_offset(alice_http, upload_id, 1000) == 1000, "the stalled PATCH's bytes"
    resp = tus_patch(alice_http, upload_id, 1000, data[1000:])
    assert resp.status_code == 204, resp.text
    _assert_downloads(server, world.alice.token, upload_id, data)


def _patch_through(proxy: CuttingProxy, world: World, upload_id: str, data: bytes) -> None:
    auth = {"Authorization": f"Bearer {world.alice.token}"}
    with (
        httpx.Client(base_url=proxy.base_url, headers=auth, timeout=10) as via_proxy,
        contextlib.suppress(httpx.TransportError),
    ):
        tus_patch(via_proxy, upload_id, 0, data)


def test_a_cut_checksummed_patch_leaves_no_trace_in_the_partial_file(
    server: ServerProcess, world: World, alice_http: httpx.Client
) -> None:
    """With a checksum, a cut body is discarded whole: the partial file keeps its size."""
    data = random_bytes(50_000, seed=7)
    upload_id = started_upload(alice_http, world.conv, data, 10_000)
    sizes = data_files(server, "uploads")
    with cutting_proxy(server) as proxy:
        cut = proxy.cut(body_bytes=5_000)
        with httpx.Client(
            base_url=proxy.base_url, headers=server.auth(world.alice.token), timeout=10
        ) as via_proxy:
            body = data[10_000:]
            with pytest.raises(httpx.TransportError):
                tus_patch(via_proxy, upload_id, 10_000, body, checksum=checksum_header(body))
        assert cut.done.wait(5)
    assert wait_offset(alice_http, upload_id, 10_000) == 10_000
    time.sleep(0.2)  # let the server finish with the cut request
    assert tus_offset(alice_http, upload_id) == 10_000
    assert data_files(server, "uploads") == sizes


# --- cancelling -------------------------------------------------------------------


def test_delete_cancels_and_deletes_the_partial_data(
    server: ServerProcess, world: World, alice_http: httpx.Client
) -> None:
    data = random_bytes(5000, seed=8)
    uploads_before = data_files(server, "uploads")
    upload_id = started_upload(alice_http, world.conv, data, 2000)
    assert data_files(server, "uploads") != uploads_before

    resp = tus_delete(alice_http, upload_id)
    assert resp.status_code == 204, resp.text
    assert tus_head(alice_http, upload_id).status_code == 404
    expect_error(alice_http.get(f"/api/uploads/{upload_id}"), 404, "not_found")
    expect_error(tus_patch(alice_http, upload_id, 2000, data[2000:]), 404, "not_found")
    expect_error(tus_delete(alice_http, upload_id), 404, "not_found")
    expect_error(alice_http.get(f"/api/media/{upload_id}"), 404, "not_found")
    assert data_files(server, "uploads") == uploads_before, "partial data left behind"
    assert blob_count(server, sha256(data)) == 0


def test_a_finished_upload_not_yet_sent_may_be_cancelled(
    server: ServerProcess, world: World, alice_http: httpx.Client
) -> None:
    data = random_bytes(3000, seed=13)
    upload_id = raw_upload(alice_http, world.conv, data, "unsent.bin")
    assert tus_delete(alice_http, upload_id).status_code == 204
    assert tus_head(alice_http, upload_id).status_code == 404
    expect_error(alice_http.get(f"/api/media/{upload_id}"), 404, "not_found")
    expect_error(alice_http.get(f"/api/uploads/{upload_id}"), 404, "not_found")


# --- storage -------------------------------------------------------------------------


def test_the_same_content_uploaded_twice_is_stored_once(
    server: ServerProcess, world: World, alice_http: httpx.Client
) -> None:
    data = random_bytes(70_000, seed=9)
    first = tus_upload(server, world.alice.token, world.conv, data, "first.bin", OCTET, 30_000)
    second = raw_upload(alice_http, world.conv, data, "second.bin")
    assert first != second
    one, two = _upload_state(alice_http, first), _upload_state(alice_http, second)
    assert one["sha256"] == two["sha256"] == sha256(data)
    assert (one["name"], two["name"]) == ("first.bin", "second.bin")
    assert blob_count(server, sha256(data)) == 1
    assert len(server.db_rows("SELECT 1 FROM blobs WHERE sha256 = ?", sha256(data))) == 1
    _assert_downloads(server, world.alice.token, first, data)
    _assert_downloads(server, world.alice.token, second, data)


def test_a_blob_appears_only_whole_and_only_at_the_last_byte(
    server: ServerProcess, world: World, alice_http: httpx.Client
) -> None:
    data = random_bytes(120_000, seed=11)
    blobs_before = set(data_files(server, "blobs"))
    upload_id = started_upload(alice_http, world.conv, data, 119_999)
    assert set(data_files(server, "blobs")) == blobs_before
    assert tus_patch(alice_http, upload_id, 119_999, data[119_999:]).status_code == 204
    new = set(data_files(server, "blobs")) - blobs_before
    digest = sha256(data)
    assert new == {f"{digest[:2]}/{digest[2:4]}/{digest}"}, new
    assert_blob_stored(server, data)
    assert_blobs_whole(server)


# --- bad input: creation -----------------------------------------------------------------

Make = Callable[[World, httpx.Client], httpx.Response]


@dataclass(frozen=True)
class Bad:
    name: str
    make: Make
    status: int
    code: str


def _create(**fields: object) -> Make:
    def make(w: World, http: httpx.Client) -> httpx.Response:
        args: dict[str, object] = {
            "conv": w.conv,
            "length": 1000,
            "filename": "bad.bin",
            "filetype": OCTET,
        }
        args.update(fields)
        if args["conv"] == "CAROL":
            args["conv"] = w.carols_conv
        return tus_create(http, **args)  # type: ignore[arg-type]

    return make


def _create_meta(build: Callable[[World], str]) -> Make:
    return lambda w, http: tus_create(http, conv=None, length=1000, upload_metadata=build(w))


CREATE_CASES = [
    Bad("no-tus-resumable", _create(headers={"Tus-Resumable": None}), 412, "bad_request"),
    Bad("tus-resumable-0.2.2", _create(headers={"Tus-Resumable": "0.2.2"}), 412, "bad_request"),
    Bad("no-upload-length", _create(length=None), 400, "bad_request"),
    Bad("upload-length-not-a-number", _create(length="lots"), 400, "bad_request"),
    Bad("upload-length-negative", _create(length=-5), 400, "bad_request"),
    Bad("upload-length-fraction", _create(length="1.5"), 400, "bad_request"),
    Bad("upload-length-blank", _create(length=""), 400, "bad_request"),
    Bad("empty-file", _create(length=0), 400, "bad_request"),
    Bad("over-the-largest-file", _create(length=2 * GIB + 1), 413, "too_large"),
    Bad("no-metadata", _create_meta(lambda w: ""), 400, "bad_request"),
    Bad("no-filename", _create(filename=None), 400, "bad_request"),
    Bad("empty-filename", _create(filename=""), 400, "bad_request"),
    Bad("no-conv", _create(conv=None), 400, "bad_request"),
    Bad(
        "metadata-not-base64",
        _create_meta(lambda w: f"conv {b64(w.conv)},filename %%%not-base64%%%"),
        400,
        "bad_request",
    ),
    Bad(
        "metadata-not-utf8",
        _create_meta(lambda w: f"conv {b64(w.conv)},filename {b64(NOT_UTF8)}"),
        400,
        "bad_request",
    ),
    Bad("non-member-conv", _create(conv="CAROL"), 403, "forbidden"),
    Bad("unknown-conv", _create(conv=NO_SUCH_CONV), 404, "not_found"),
]


@pytest.mark.pg_sample(6)
@pytest.mark.parametrize("case", CREATE_CASES, ids=[c.name for c in CREATE_CASES])
def test_a_bad_create_is_refused_and_creates_nothing(
    server: ServerProcess, world: World, alice_http: httpx.Client, case: Bad
) -> None:
    before = Evidence.take(server)
    resp = case.make(world, alice_http)
    expect_error(resp, case.status, case.code)
    if case.status == 412:
        assert resp.headers.get("Tus-Version"), "a 412 names the versions the server speaks"
    assert "Location" not in resp.headers
    before.assert_unchanged()


def test_creating_without_a_token_is_unauthorized(server: ServerProcess, world: World) -> None:
    before = Evidence.take(server)
    with server.http() as anonymous:
        resp = tus_create(anonymous, conv=world.conv, length=10, filetype=OCTET)
    expect_error(resp, 401, "unauthorized")
    before.assert_unchanged()


# --- bad input: on an upload in progress ---------------------------------------------------

HALF_DATA = random_bytes(1000, seed=12)
HALF_AT = 100


@dataclass(frozen=True)
class Half:
    world: World
    upload_id: str
    alice: httpx.Client
    bob: httpx.Client
    carol: httpx.Client
    anonymous: httpx.Client


@pytest.fixture(scope="module")
def half(server: ServerProcess, world: World, alice_http: httpx.Client) -> Iterator[Half]:
    """Alice's upload of HALF_DATA with the first HALF_AT bytes received."""
    upload_id = started_upload(alice_http, world.conv, HALF_DATA, HALF_AT, "half.bin")
    with (
        server.http(world.bob.token) as bob,
        server.http(world.carol.token) as carol,
        server.http() as anonymous,
    ):
        yield Half(world, upload_id, alice_http, bob, carol, anonymous)


Poke = Callable[[Half], httpx.Response]
REST = HALF_DATA[HALF_AT:]
NEXT = HALF_DATA[HALF_AT : HALF_AT + 10]


def _patch(who: str = "alice", upload: str | None = None, **kwargs: object) -> Poke:
    def poke(h: Half) -> httpx.Response:
        args: dict[str, object] = {"offset": HALF_AT, "body": NEXT}
        args.update(kwargs)
        client = getattr(h, who)
        return tus_patch(client, upload or h.upload_id, **args)  # type: ignore[arg-type]

    return poke


def _other(method: str, who: str, upload: str | None = None) -> Poke:
    def poke(h: Half) -> httpx.Response:
        client: httpx.Client = getattr(h, who)
        target = upload or h.upload_id
        if method == "HEAD":
            return tus_head(client, target)
        if method == "DELETE":
            return tus_delete(client, target)
        return client.get(f"/api/uploads/{target}", headers=TUS)

    return poke


@dataclass(frozen=True)
class BadPatch:
    name: str
    poke: Poke
    status: int
    code: str | None  # None: a HEAD, whose answer has no body


PATCH_CASES = [
    BadPatch("offset-behind", _patch(offset=0), 409, "conflict"),
    BadPatch("offset-ahead", _patch(offset=HALF_AT + 100), 409, "conflict"),
    BadPatch("offset-missing", _patch(offset=None), 400, "bad_request"),
    BadPatch("offset-not-a-number", _patch(offset="ten"), 400, "bad_request"),
    BadPatch("offset-negative", _patch(offset=-1), 400, "bad_request"),
    BadPatch("content-type-octet-stream", _patch(content_type=OCTET), 415, "bad_request"),
    BadPatch("content-type-json", _patch(content_type="application/json"), 415, "bad_request"),
    BadPatch("content-type-missing", _patch(content_type=None), 415, "bad_request"),
    BadPatch(
        "checksum-mismatch",
        _patch(checksum=checksum_header(b"something else")),
        460,
        "bad_request",
    ),
    BadPatch(
        "checksum-mismatch-sha256",
        _patch(checksum=checksum_header(NEXT[:-1], "sha256")),
        460,
        "bad_request",
    ),
    BadPatch(
        "checksum-unsupported-algorithm", _patch(checksum="crc32 AAAAAA=="), 400, "bad_request"
    ),
    BadPatch("checksum-without-digest", _patch(checksum="sha1"), 400, "bad_request"),
    BadPatch("checksum-digest-not-base64", _patch(checksum="sha1 %%%%"), 400, "bad_request"),
    BadPatch("body-longer-than-what-is-left", _patch(body=REST + b"x"), 413, "too_large"),
    BadPatch("no-tus-resumable", _patch(headers={"Tus-Resumable": None}), 412, "bad_request"),
    BadPatch("tus-resumable-0.2.2", _patch(headers={"Tus-Resumable": "0.2.2"}), 412, "bad_request"),
    BadPatch("someone-elses-patch", _patch("bob"), 404, "not_found"),
    BadPatch("someone-elses-patch-non-member", _patch("carol"), 404, "not_found"),
    BadPatch("someone-elses-head", _other("HEAD", "bob"), 404, None),
    BadPatch("someone-elses-get", _other("GET", "bob"), 404, "not_found"),
    BadPatch("someone-elses-delete", _other("DELETE", "bob"), 404, "not_found"),
    BadPatch("someone-elses-delete-non-member", _other("DELETE", "carol"), 404, "not_found"),
    BadPatch("unknown-upload-patch", _patch(upload=NO_SUCH_UPLOAD), 404, "not_found"),
    BadPatch("unknown-upload-head", _other("HEAD", "alice", NO_SUCH_UPLOAD), 404, None),
    BadPatch("unknown-upload-get", _other("GET", "alice", NO_SUCH_UPLOAD), 404, "not_found"),
    BadPatch("unknown-upload-delete", _other("DELETE", "alice", NO_SUCH_UPLOAD), 404, "not_found"),
    BadPatch("path-trick-upload-id", _patch(upload="..%2F..%2Fetc%2Fpasswd"), 404, "not_found"),
    BadPatch("no-token-patch", _patch("anonymous"), 401, "unauthorized"),
    BadPatch("no-token-delete", _other("DELETE", "anonymous"), 401, "unauthorized"),
]


@pytest.mark.pg_sample(8)
@pytest.mark.parametrize("case", PATCH_CASES, ids=[c.name for c in PATCH_CASES])
def test_a_bad_request_on_an_upload_changes_nothing(
    server: ServerProcess, half: Half, case: BadPatch
) -> None:
    before = Evidence.take(server)
    resp = case.poke(half)
    if case.code is None:
        assert resp.status_code == case.status, resp.status_code
    else:
        expect_error(resp, case.status, case.code)
    if case.status == 412:
        assert resp.headers.get("Tus-Version"), "a 412 names the versions the server speaks"
    assert tus_offset(half.alice, half.upload_id) == HALF_AT, "the offset moved"
    before.assert_unchanged()


def test_the_upload_poked_at_still_finishes_with_its_own_bytes(
    server: ServerProcess, half: Half
) -> None:
    resp = tus_patch(half.alice, half.upload_id, HALF_AT, REST, checksum=checksum_header(REST))
    assert resp.status_code == 204, resp.text
    _assert_downloads(server, half.world.alice.token, half.upload_id, HALF_DATA)


# --- types that lie, names that try ------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "filetype"),
    [("invoice.png", "image/png"), ("photo.jpg", "image/jpeg"), ("clip.mp4", "video/mp4")],
)
def test_a_declared_type_that_lies_is_refused_and_the_upload_deleted(
    server: ServerProcess, world: World, alice_http: httpx.Client, filename: str, filetype: str
) -> None:
    data = html_disguised()
    before = Evidence.take(server)
    upload_id = created_id(
        tus_create(
            alice_http, conv=world.conv, length=len(data), filename=filename, filetype=filetype
        )
    )
    expect_error(tus_patch(alice_http, upload_id, 0, data), 415, "bad_request")
    assert tus_head(alice_http, upload_id).status_code == 404, "the lying upload is still there"
    expect_error(alice_http.get(f"/api/uploads/{upload_id}"), 404, "not_found")
    expect_error(alice_http.get(f"/api/media/{upload_id}"), 404, "not_found")
    before.assert_unchanged()  # nothing of it kept: no row, no partial file, no blob


def test_a_lie_is_found_in_the_first_chunk_tuspy_sends(
    server: ServerProcess, world: World, alice_http: httpx.Client
) -> None:
    data = html_disguised() * 40
    before = Evidence.take(server)
    uploader = tus_uploader(
        server.base_url,
        world.alice.token,
        data,
        conv=world.conv,
        filename="big.png",
        filetype="image/png",
        chunk_size=1024,
    )
    with pytest.raises(TusCommunicationError) as failed:
        uploader.upload()
    assert tus_failure_status(failed.value) == 415
    assert tus_head(alice_http, upload_id_of(uploader.url)).status_code == 404
    before.assert_unchanged()
    assert uploader.offset == 0, (
        f"the first 1024 bytes were HTML, yet {uploader.offset} bytes were taken before the 415"
    )


NAMES = [
    ("../../etc/passwd", "passwd"),
    ("C:\\x\\evil.txt", "evil.txt"),
    ("..\\..\\windows\\win.ini", "win.ini"),
    ("/var/tmp/report.txt", "report.txt"),
    ("bad\x00na\x07me\r\n.txt", "badname.txt"),
    ("\x1b[31mred.txt", "[31mred.txt"),
    (".bashrc", "bashrc"),
    ("...hidden.txt", "hidden.txt"),
    ("样品-第二轮.jpg", "样品-第二轮.jpg"),
    ("订单 OD-10023 发票 (最终版).pdf", "订单 OD-10023 发票 (最终版).pdf"),
]


@pytest.mark.parametrize(("given", "shown"), NAMES, ids=[repr(n) for n, _ in NAMES])
def test_a_file_name_is_only_shown_never_used_as_a_path(
    server: ServerProcess, world: World, alice_http: httpx.Client, given: str, shown: str
) -> None:
    data = random_bytes(64, seed=len(given))
    outside_before = _files_around(server)
    upload_id = raw_upload(alice_http, world.conv, data, given)
    assert _upload_state(alice_http, upload_id)["name"] == shown
    resp = download(server, world.alice.token, f"/api/media/{upload_id}")
    assert resp.status_code == 200
    assert disposition(resp.headers["Content-Disposition"]) == ("attachment", shown)
    assert _files_around(server) - outside_before <= _inside(server), "a file outside DATA_DIR"
    for name in ("passwd", "evil.txt", "win.ini", "report.txt"):
        assert not any(p.name == name for p in server.data_dir.parent.rglob("*")), name


def test_a_long_file_name_is_cut_to_255_characters(
    server: ServerProcess, world: World, alice_http: httpx.Client
) -> None:
    upload_id = raw_upload(alice_http, world.conv, b"long name", "货" * 300 + ".txt")
    name = _upload_state(alice_http, upload_id)["name"]
    assert isinstance(name, str) and len(name) == 255 and set(name) <= {"货", ".", "t", "x"}


def _files_around(server: ServerProcess) -> set[Path]:
    return {p for p in server.data_dir.parent.rglob("*") if p.is_file()}


def _inside(server: ServerProcess) -> set[Path]:
    return {p for p in server.data_dir.rglob("*") if p.is_file()}


# --- limits: a server of its own ------------------------------------------------------------


def test_largest_file_and_quota_are_enforced(tmp_path: Path, store: str) -> None:
    own = start_server(
        tmp_path,
        "--rate-limits",
        "off",
        "--max-upload-bytes",
        "100000",
        "--upload-quota-bytes",
        "250000",
        store=store,
    )
    try:
        _check_limits(own)
    finally:
        own.stop()


def _check_limits(own: ServerProcess) -> None:
    amy, ben = own.user(), own.user()
    conv = own.conversation(amy, "channel", [ben], title="limits")["id"]
    options = httpx.options(f"{own.base_url}/api/uploads", timeout=10)
    assert int(options.headers["Tus-Max-Size"]) == 100_000

    def refused(http: httpx.Client, length: int) -> None:
        before = Evidence.take(own)
        resp = tus_create(http, conv=conv, length=length, filetype=OCTET)
        expect_error(resp, 413, "too_large")
        before.assert_unchanged()

    with own.http(amy.token) as amy_http, own.http(ben.token) as ben_http:
        refused(amy_http, 100_001)
        first = created_id(tus_create(amy_http, conv=conv, length=100_000, filetype=OCTET))
        second = created_id(tus_create(amy_http, conv=conv, length=100_000, filetype=OCTET))
        refused(amy_http, 60_000)  # 260,000 would be over the quota
        third = created_id(tus_create(amy_http, conv=conv, length=50_000, filetype=OCTET))
        refused(amy_http, 1)  # exactly at the quota now
        # The quota is per user.
        created_id(tus_create(ben_http, conv=conv, length=100_000, filetype=OCTET))
        # A cancelled upload gives its room back.
        assert tus_delete(amy_http, second).status_code == 204
        fourth = created_id(tus_create(amy_http, conv=conv, length=60_000, filetype=OCTET))
        # A finished upload still counts.
        data = random_bytes(50_000, seed=20)
        assert tus_patch(amy_http, third, 0, data).status_code == 204
        refused(amy_http, 50_000)  # 100,000 + 50,000 + 60,000 + 50,000 > 250,000
        created_id(tus_create(amy_http, conv=conv, length=40_000, filetype=OCTET))
        # The largest file can be filled; a body over what is left is refused.
        body = random_bytes(100_000, seed=21)
        assert tus_patch(amy_http, first, 0, body).status_code == 204
        expect_error(
            tus_patch(amy_http, fourth, 0, random_bytes(60_001, seed=22)), 413, "too_large"
        )
        assert tus_offset(amy_http, fourth) == 0


def test_too_many_new_uploads_are_rate_limited(tmp_path: Path) -> None:
    own = start_server(tmp_path)  # rate limits on, as in production
    try:
        _check_rate_limit(own)
    finally:
        own.stop()


def _check_rate_limit(own: ServerProcess) -> None:
    amy = own.user()
    conv = own.conversation(amy, "channel", [], title="rate")["id"]
    statuses: list[int] = []
    limited: httpx.Response | None = None
    deadline = time.monotonic() + 20
    with own.http(amy.token) as http:
        for _ in range(80):
            if time.monotonic() > deadline:
                break
            before = Evidence.take(own) if len(statuses) >= 28 else None
            resp = tus_create(http, conv=conv, length=10, filetype=OCTET)
            statuses.append(resp.status_code)
            if resp.status_code == 429:
                limited = resp
                assert before is not None
                before.assert_unchanged()
                break
            assert resp.status_code == 201, resp.text
        assert limited is not None, f"no 429 after {len(statuses)} new uploads"
        assert statuses[:30] == [201] * 30, "a burst of 30 is allowed"
        expect_error(limited, 429, "rate_limited")
        retry_after = int(limited.headers["Retry-After"])
        assert 0 <= retry_after <= 5, retry_after
        # After the wait the client may go on.
        time.sleep(max(retry_after, 1))
        assert tus_create(http, conv=conv, length=10, filetype=OCTET).status_code == 201
