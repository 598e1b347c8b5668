"""The pure rules of files: names, types, kinds and the upload and Range headers."""

from __future__ import annotations

import base64

import pytest

from orderchat.core.errors import BadRequest, Conflict, TooLarge
from orderchat.core.media import (
    OCTET_STREAM,
    MediaKind,
    PreconditionFailed,
    PreviewStatus,
    RangeNotSatisfiable,
    UnsupportedMediaType,
    check_attachment_kind,
    check_offset,
    check_quota,
    check_upload_length,
    clean_filename,
    family,
    media_descriptor,
    normalize_type,
    parse_checksum,
    parse_length,
    parse_metadata,
    parse_ranges,
    previewable,
    served_type,
    tus_version,
    verified_type,
)
from orderchat.core.model import MessageKind


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("样品-第二轮.jpg", "样品-第二轮.jpg"),
        ("../../etc/passwd", "passwd"),
        ("C:\\x\\evil.txt", "evil.txt"),
        ("..", None),
        (".bashrc", "bashrc"),
        ("a\x00b\nc\u202e.txt", "abc.txt"),
        ("  spaced name.pdf  ", "spaced name.pdf"),
        ("dir/", None),
        ("", None),
    ],
)
def test_file_names_are_shown_never_used_as_paths(raw: str, shown: str | None) -> None:
    if shown is None:
        with pytest.raises(BadRequest):
            clean_filename(raw)
    else:
        assert clean_filename(raw) == shown


def test_long_names_keep_their_extension() -> None:
    name = clean_filename("长" * 300 + ".pdf")
    assert len(name) == 255
    assert name.endswith(".pdf")
    assert len(clean_filename("x" * 400)) == 255


def test_a_name_must_be_a_string() -> None:
    with pytest.raises(BadRequest):
        clean_filename(42)


@pytest.mark.parametrize(
    ("raw", "mime"),
    [
        ("audio/webm;codecs=opus", "audio/webm"),
        ("IMAGE/JPEG", "image/jpeg"),
        (None, OCTET_STREAM),
        ("", OCTET_STREAM),
    ],
)
def test_declared_types_lose_their_parameters(raw: str | None, mime: str) -> None:
    assert normalize_type(raw) == mime


@pytest.mark.parametrize("raw", ["image", "a/b/c", "<script>/x", "text/ html", 5])
def test_a_declared_type_must_look_like_one(raw: object) -> None:
    with pytest.raises(BadRequest):
        normalize_type(raw)


@pytest.mark.parametrize(
    ("declared", "sniffed", "recorded"),
    [
        ("image/jpeg", "image/jpeg", "image/jpeg"),
        ("audio/webm", "video/webm", "audio/webm"),  # a browser's voice recording
        ("audio/mp4", "video/mp4", "audio/mp4"),
        ("audio/ogg", "audio/ogg", "audio/ogg"),
        ("audio/wav", "audio/x-wav", "audio/wav"),
        ("image/jpg", "image/jpeg", "image/jpg"),
        ("text/csv", "text/plain", "text/csv"),
        (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/zip",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        ("application/msword", "application/x-ole-storage", "application/msword"),
        ("application/acad", OCTET_STREAM, "application/acad"),  # a format no sniffer knows
        (OCTET_STREAM, "image/png", "image/png"),  # undeclared: recorded as what it is
        ("text/html", "text/html", "text/html"),  # allowed as a file, never served as a page
    ],
)
def test_types_that_agree_with_the_bytes(declared: str, sniffed: str, recorded: str) -> None:
    assert verified_type(declared, sniffed) == recorded


@pytest.mark.parametrize(
    ("declared", "sniffed"),
    [
        ("image/png", "text/html"),  # a "picture" that is a page with a script
        ("image/jpeg", "image/svg+xml"),
        ("image/png", OCTET_STREAM),  # pictures must be pictures
        ("audio/webm", "application/pdf"),
        ("video/mp4", "image/jpeg"),
        ("text/plain", "text/html"),
        ("text/csv", "image/png"),
        ("application/pdf", "application/zip"),
        ("application/zip", "application/x-executable"),
        ("image/svg+xml", OCTET_STREAM),
    ],
)
def test_types_that_lie_are_refused(declared: str, sniffed: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        verified_type(declared, sniffed)


@pytest.mark.parametrize(
    ("mime", "served"),
    [
        ("image/jpeg", "image/jpeg"),
        ("audio/webm", "audio/webm"),
        ("application/pdf", "application/pdf"),
        ("text/plain", "text/plain"),
        ("text/html", OCTET_STREAM),
        ("image/svg+xml", OCTET_STREAM),
        ("application/xhtml+xml", OCTET_STREAM),
        ("text/xml", OCTET_STREAM),
        ("application/javascript", OCTET_STREAM),
        ("text/javascript", OCTET_STREAM),
        ("application/rss+xml", OCTET_STREAM),
        ("multipart/related", OCTET_STREAM),
    ],
)
def test_nothing_is_served_as_a_type_a_browser_runs(mime: str, served: str) -> None:
    assert served_type(mime) == served


@pytest.mark.parametrize(
    ("kind", "mime", "ok"),
    [
        (MessageKind.IMAGE, "image/png", True),
        (MessageKind.IMAGE, "application/pdf", False),
        (MessageKind.VOICE, "audio/ogg", True),
        (MessageKind.VOICE, "video/webm", True),  # how browsers record voice
        (MessageKind.VOICE, "image/png", False),
        (MessageKind.VIDEO, "video/mp4", True),
        (MessageKind.VIDEO, "audio/mp4", False),
        (MessageKind.FILE, "application/zip", True),
        (MessageKind.FILE, "image/png", True),
        (MessageKind.TEXT, "image/png", False),
    ],
)
def test_a_message_kind_promises_what_its_files_are(kind: MessageKind, mime: str, ok: bool) -> None:
    if ok:
        check_attachment_kind(kind, mime)
    else:
        with pytest.raises(BadRequest):
            check_attachment_kind(kind, mime)


def test_families_and_previews() -> None:
    assert family("image/heic") is MediaKind.IMAGE
    assert family("audio/mpeg") is MediaKind.VOICE
    assert family("video/quicktime") is MediaKind.VIDEO
    assert family("application/pdf") is MediaKind.FILE
    assert previewable("application/pdf")
    assert previewable("video/mp4")
    assert not previewable("application/zip")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_upload_metadata_is_base64_utf8() -> None:
    raw = f"filename {_b64('样品.jpg')},filetype {_b64('image/jpeg')},conv {_b64('c_1')},flag"
    assert parse_metadata(raw) == {
        "filename": "样品.jpg",
        "filetype": "image/jpeg",
        "conv": "c_1",
        "flag": "",
    }
    assert parse_metadata(None) == {}


@pytest.mark.parametrize(
    "raw",
    [
        "filename !!!notbase64",
        f"filename {_b64('a')},filename {_b64('b')}",
        "a b c",
        f"filename {base64.b64encode(bytes([0xFF, 0xFE])).decode()}",
        "x" * 5000,
    ],
)
def test_bad_upload_metadata(raw: str) -> None:
    with pytest.raises(BadRequest):
        parse_metadata(raw)


def test_checksum_header() -> None:
    parsed = parse_checksum("sha1 " + base64.b64encode(b"x" * 20).decode())
    assert parsed is not None
    assert parsed.algorithm == "sha1"
    assert parsed.digest == b"x" * 20
    assert parse_checksum(None) is None
    for bad in ["crc32 AAAA", "sha1", "sha1 not-base64!", "sha1 a b"]:
        with pytest.raises(BadRequest):
            parse_checksum(bad)


def test_lengths_offsets_and_limits() -> None:
    assert parse_length("123", "Upload-Length") == 123
    for bad in [None, "-1", "1.5", "abc", "+3", "", "1" * 20]:
        with pytest.raises(BadRequest):
            parse_length(bad, "Upload-Length")
    check_upload_length(10, 10)
    with pytest.raises(TooLarge):
        check_upload_length(11, 10)
    with pytest.raises(BadRequest):
        check_upload_length(0, 10)
    check_quota(5, 5, 10)
    with pytest.raises(TooLarge):
        check_quota(6, 5, 10)
    check_offset(5, 5, 10)
    with pytest.raises(Conflict):
        check_offset(4, 5, 10)
    tus_version("1.0.0")
    with pytest.raises(PreconditionFailed):
        tus_version("0.2.2")
    with pytest.raises(PreconditionFailed):
        tus_version(None)


@pytest.mark.parametrize(
    ("header", "ranges"),
    [
        ("bytes=0-99", [(0, 99)]),
        ("bytes=100-", [(100, 999)]),
        ("bytes=-50", [(950, 999)]),
        ("bytes=-5000", [(0, 999)]),
        ("bytes=990-5000", [(990, 999)]),
        ("bytes=0-0, 10-19", [(0, 0), (10, 19)]),
        ("bytes=0-9,5000-6000", [(0, 9)]),
    ],
)
def test_ranges(header: str, ranges: list[tuple[int, int]]) -> None:
    assert parse_ranges(header, 1000) == ranges


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_ranges_past_the_end(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_ranges(header, 1000)


@pytest.mark.parametrize("header", ["items=0-1", "bytes=", "bytes=a-b", "bytes=5-1", "bytes=-"])
def test_malformed_ranges(header: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_ranges(header, 1000)
    assert not isinstance(caught.value, RangeNotSatisfiable)


def test_descriptor_links_only_what_exists() -> None:
    pending = media_descriptor(
        "up_1", "a.webm", "audio/webm", 10, None, PreviewStatus.PENDING, None, None
    )
    assert pending["kind"] == "voice"
    assert pending["url"] == "/api/media/up_1"
    preview = pending["preview"]
    assert isinstance(preview, dict)
    assert preview["url"] is None
    assert preview["playback"] is None
    made = {"playback_file": "playback.m4a", "duration_ms": 1000, "peaks": [1] * 64}
    ready = media_descriptor(
        "up_1", "a.webm", "audio/webm", 10, "ab", PreviewStatus.READY, None, made
    )
    preview = ready["preview"]
    assert isinstance(preview, dict)
    assert preview["playback"] == "/api/media/up_1/playback"
    assert preview["duration_ms"] == 1000
    assert preview["status"] == "ready"
