"""Rules for files: names, types, which message kind carries which file, and the
headers of the tus upload protocol and of HTTP Range requests, all without I/O.

Types matter twice. On the way in, the type a client declares is checked against
what the bytes really are, so that a message's "photo" cannot be a web page. On
the way out, only passive types are served as themselves: anything a browser
could run is served as opaque bytes.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from orderchat.core.errors import BadRequest, Conflict, TooLarge
from orderchat.core.model import MessageKind

MAX_FILENAME_CHARS = 255
OCTET_STREAM = "application/octet-stream"
TUS_VERSION = "1.0.0"
CHECKSUM_ALGORITHMS = ("sha1", "sha256", "md5")
MAX_METADATA_CHARS = 4096

_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_DIGITS = re.compile(r"[0-9]{1,19}")


class MediaKind(StrEnum):
    """The family of a file, which decides its previews and its message kind."""

    IMAGE = "image"
    VOICE = "voice"
    VIDEO = "video"
    FILE = "file"


class PreviewStatus(StrEnum):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"
    NONE = "none"  # a type without previews


class UnsupportedMediaType(BadRequest):
    """The body's type is not what the request says (HTTP 415)."""


class ChecksumMismatch(BadRequest):
    """The tus checksum extension's own status (HTTP 460)."""


class PreconditionFailed(BadRequest):
    """A tus request without the protocol version this server speaks (HTTP 412)."""


def clean_filename(raw: object) -> str:
    """The name to show and to offer on download; never used as a path.

    Directory parts of either separator are dropped, as are control characters
    and leading dots (no hidden files, no `..`), so `../../etc/passwd` becomes
    `passwd` and `C:\\x\\y.txt` becomes `y.txt`.
    """
    if not isinstance(raw, str):
        raise BadRequest("the file name must be a string")
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.strip().lstrip(".").strip()
    if not name:
        raise BadRequest("the file needs a name")
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = stem[: MAX_FILENAME_CHARS - len(ext) - 1] + "." + ext
        else:
            name = name[:MAX_FILENAME_CHARS]
    return name


def normalize_type(raw: object) -> str:
    """A declared MIME type without parameters (`audio/webm;codecs=opus` → `audio/webm`)."""
    if raw is None or raw == "":
        return OCTET_STREAM
    if not isinstance(raw, str):
        raise BadRequest("the file type must be a string")
    mime = raw.split(";", 1)[0].strip().lower()
    if not _MIME.fullmatch(mime):
        raise BadRequest(f"{raw[:80]!r} is not a MIME type")
    return mime


def family(mime: str) -> MediaKind:
    top = mime.split("/", 1)[0]
    if top == "image":
        return MediaKind.IMAGE
    if top == "audio":
        return MediaKind.VOICE
    if top == "video":
        return MediaKind.VIDEO
    return MediaKind.FILE


# Sniffers report some formats under another name than browsers declare them:
# a recorded voice message in webm or mp4 is "video/..." to libmagic, a CSV is
# text, an office document is a zip.
_SAME_BYTES: dict[str, frozenset[str]] = {
    "video/webm": frozenset({"audio/webm", "video/x-matroska", "audio/x-matroska"}),
    "video/mp4": frozenset(
        {"audio/mp4", "audio/x-m4a", "audio/m4a", "audio/aac", "video/quicktime"}
    ),
    "video/quicktime": frozenset({"video/mp4", "audio/mp4"}),
    "audio/x-m4a": frozenset({"audio/mp4", "audio/m4a", "video/mp4"}),
    "audio/ogg": frozenset({"audio/opus", "application/ogg", "video/ogg"}),
    "audio/x-wav": frozenset({"audio/wav", "audio/wave", "audio/vnd.wave"}),
    "audio/mpeg": frozenset({"audio/mp3"}),
    "image/jpeg": frozenset({"image/jpg", "image/pjpeg"}),
    "image/x-ms-bmp": frozenset({"image/bmp"}),
    "image/heic": frozenset({"image/heif"}),
    "application/zip": frozenset({"application/x-zip-compressed"}),
}
# Declared types that are containers for zip, so "application/zip" bytes are right.
_ZIP_BASED = re.compile(
    r"application/(vnd\.openxmlformats-officedocument\..+|vnd\.oasis\.opendocument\..+"
    r"|epub\+zip|java-archive|vnd\.android\.package-archive|vnd\.ms-.+\.macroenabled\..+)"
)
_OLE_BASED = re.compile(r"application/(msword|vnd\.ms-excel|vnd\.ms-powerpoint|vnd\.visio)")
_TEXT_LIKE = re.compile(r"text/.+|application/(json|csv|x-csv|x-ndjson|sql|x-yaml|yaml)")
# What a sniffer says of text in every encoding it recognises.
_TEXT_SNIFFED = frozenset({"text/plain", "text/csv", "application/csv", "text/x-ascii"})
# Types a browser would interpret (run script, render a document): never
# accepted under another name, and never served as themselves.
_ACTIVE = re.compile(
    r"text/(html|xml|javascript|ecmascript|xsl|x-.*script.*)|image/svg\+xml"
    r"|application/(xhtml\+xml|xml|javascript|ecmascript|x-shockwave-flash|.+\+xml)"
    r"|multipart/.+|message/.+"
)


def verified_type(declared: str, sniffed: str) -> str:
    """The type to record for a file whose bytes sniff as `sniffed`.

    The declared type is kept when the bytes agree with it (it is usually the
    more precise name: `audio/webm` rather than `video/webm`). A file declared
    as opaque bytes is recorded as what it is. A disagreement is refused, so
    that a "picture" cannot be a page with a script in it.

    Raises:
        UnsupportedMediaType: the bytes are something else than declared.
    """
    if declared == OCTET_STREAM:
        return sniffed
    if declared == sniffed:
        return declared
    if declared in _SAME_BYTES.get(sniffed, ()) or sniffed in _SAME_BYTES.get(declared, ()):
        return declared
    if sniffed == "application/zip" and _ZIP_BASED.fullmatch(declared):
        return declared
    if sniffed in ("application/x-ole-storage", "application/cdfv2") and _OLE_BASED.fullmatch(
        declared
    ):
        return declared
    if sniffed in _TEXT_SNIFFED and _TEXT_LIKE.fullmatch(declared) and not is_active(declared):
        return declared
    if sniffed == OCTET_STREAM and family(declared) is MediaKind.FILE and not is_active(declared):
        # Unknown binary formats (CAD drawings, proprietary archives) are files
        # the sniffer cannot name; only the families with previews must match.
        return declared
    raise UnsupportedMediaType(f"the file is declared as {declared} but its content is {sniffed}")


def is_active(mime: str) -> bool:
    return _ACTIVE.fullmatch(mime) is not None


def served_type(mime: str) -> str:
    """The Content-Type a download goes out with: never one a browser would run."""
    return OCTET_STREAM if is_active(mime) else mime


_KIND_ACCEPTS: dict[MessageKind, frozenset[MediaKind]] = {
    MessageKind.IMAGE: frozenset({MediaKind.IMAGE}),
    MessageKind.VOICE: frozenset({MediaKind.VOICE}),
    MessageKind.VIDEO: frozenset({MediaKind.VIDEO}),
    MessageKind.FILE: frozenset(MediaKind),
}
# Browsers record voice in a video container when asked for audio.
_VOICE_CONTAINERS = frozenset({"video/webm", "video/mp4", "video/ogg"})


def check_attachment_kind(kind: MessageKind, mime: str) -> None:
    """A message's kind promises what its files are: an `image` message shows pictures."""
    if mime in _VOICE_CONTAINERS and kind is MessageKind.VOICE:
        return
    accepted = _KIND_ACCEPTS.get(kind)
    if accepted is None:
        raise BadRequest(f"a {kind.value} message carries no files")
    if family(mime) not in accepted:
        raise BadRequest(f"a {kind.value} message cannot carry a file of type {mime}")


def previewable(mime: str) -> bool:
    """Whether the preview maker has anything to say about this type."""
    return family(mime) is not MediaKind.FILE or mime == "application/pdf"


@dataclass(frozen=True, slots=True)
class Checksum:
    algorithm: str
    digest: bytes


def tus_version(header: str | None) -> None:
    if header != TUS_VERSION:
        raise PreconditionFailed(f"send 'Tus-Resumable: {TUS_VERSION}'")


def parse_length(raw: str | None, name: str) -> int:
    """A non-negative byte count from a header; bool-like and signed forms refused."""
    if raw is None:
        raise BadRequest(f"the {name} header is required")
    raw = raw.strip()
    if not _DIGITS.fullmatch(raw):
        raise BadRequest(f"{name} must be a whole number of bytes")
    return int(raw)


def check_upload_length(length: int, max_bytes: int) -> None:
    if length == 0:
        raise BadRequest("the file is empty")
    if length > max_bytes:
        raise TooLarge(f"the file is {length} bytes; the limit is {max_bytes}")


def check_quota(used: int, length: int, quota: int) -> None:
    if used + length > quota:
        raise TooLarge(
            f"this upload would take your files to {used + length} bytes; your quota is {quota}"
        )


def parse_metadata(raw: str | None) -> dict[str, str]:
    """`Upload-Metadata`: comma-separated `key base64value` pairs, values UTF-8."""
    if raw is None or not raw.strip():
        return {}
    if len(raw) > MAX_METADATA_CHARS:
        raise BadRequest(f"Upload-Metadata is longer than {MAX_METADATA_CHARS} characters")
    pairs: dict[str, str] = {}
    for item in raw.split(","):
        parts = item.strip().split(" ")
        key = parts[0]
        if not key or len(parts) > 2 or not key.isascii() or not key.isprintable():
            raise BadRequest(f"Upload-Metadata item {item.strip()[:40]!r} is not 'key base64'")
        if key in pairs:
            raise BadRequest(f"Upload-Metadata names {key!r} twice")
        value = ""
        if len(parts) == 2:
            try:
                value = base64.b64decode(parts[1], validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise BadRequest(f"Upload-Metadata value of {key!r} is not base64 UTF-8") from None
        pairs[key] = value
    return pairs


def parse_checksum(raw: str | None) -> Checksum | None:
    """`Upload-Checksum: ALGORITHM BASE64DIGEST`, or None when absent."""
    if raw is None:
        return None
    parts = raw.strip().split(" ")
    if len(parts) != 2:
        raise BadRequest("Upload-Checksum must be 'ALGORITHM BASE64DIGEST'")
    algorithm = parts[0].lower()
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise BadRequest(
            f"checksum algorithm {parts[0][:20]!r} is not supported; "
            f"use one of {', '.join(CHECKSUM_ALGORITHMS)}"
        )
    try:
        digest = base64.b64decode(parts[1], validate=True)
    except binascii.Error:
        raise BadRequest("the Upload-Checksum digest is not base64") from None
    return Checksum(algorithm, digest)


def check_offset(claimed: int, actual: int, length: int) -> None:
    """tus appends only at the end: any other offset is a client that lost its place."""
    if claimed != actual:
        raise Conflict(f"Upload-Offset is {claimed} but the upload has {actual} bytes")
    if actual > length:  # pragma: no cover - the store never lets this happen
        raise Conflict("the upload is longer than declared")


def parse_ranges(raw: str, size: int) -> list[tuple[int, int]]:
    """`Range: bytes=…` as inclusive (start, end) pairs, clamped to the file.

    Raises:
        BadRequest: the header is not a byte range.
        RangeNotSatisfiable: every range starts past the end.
    """
    unit, _, spec = raw.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        raise BadRequest("Range must be 'bytes=START-END[, …]'")
    ranges: list[tuple[int, int]] = []
    for part in spec.split(","):
        first, dash, last = part.strip().partition("-")
        if not dash or not (first or last):
            raise BadRequest(f"{part.strip()[:40]!r} is not a byte range")
        if not all(_DIGITS.fullmatch(x) for x in (first, last) if x):
            raise BadRequest(f"{part.strip()[:40]!r} is not a byte range")
        if not first:  # the last N bytes
            count = int(last)
            if count == 0:
                continue
            ranges.append((max(0, size - count), size - 1))
            continue
        start = int(first)
        if last and int(last) < start:
            raise BadRequest(f"{part.strip()[:40]!r} ends before it starts")
        end = int(last) if last else size - 1
        if start < size:
            ranges.append((start, min(end, size - 1)))
    if not ranges:
        raise RangeNotSatisfiable(f"no part of the range is within the file's {size} bytes")
    return ranges


class RangeNotSatisfiable(BadRequest):
    """HTTP 416: the range lies outside the file."""


def media_descriptor(
    media_id: str,
    name: str,
    mime: str,
    size: int,
    sha256: str | None,
    status: PreviewStatus,
    error: str | None,
    preview: dict[str, object] | None,
) -> dict[str, object]:
    """How a file appears in a message, the library and `/info`: the same everywhere."""
    base = f"/api/media/{media_id}"
    made = preview or {}
    return {
        "id": media_id,
        "name": name,
        "type": mime,
        "size": size,
        "sha256": sha256,
        "kind": family(mime).value,
        "url": base,
        "preview": {
            "status": status.value,
            "error": error,
            "url": f"{base}/preview" if made.get("preview_file") else None,
            "width": made.get("width"),
            "height": made.get("height"),
            "duration_ms": made.get("duration_ms"),
            "pages": made.get("pages"),
            "peaks": made.get("peaks"),
            "playback": f"{base}/playback" if made.get("playback_file") else None,
        },
    }
