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
from orderchat.core.texts import say

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
        raise BadRequest(say("media.file_name_must_string"))
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.strip().lstrip(".").strip()
    if not name:
        raise BadRequest(say("media.file_needs_name"))
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
        raise BadRequest(say("media.file_type_must_string"))
    mime = raw.split(";", 1)[0].strip().lower()
    if not _MIME.fullmatch(mime):
        raise BadRequest(say("media.not_mime_type", raw=raw[:80]))
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
    raise UnsupportedMediaType(
        say("media.file_declared_as_but_content", declared=declared, sniffed=sniffed)
    )


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
        raise BadRequest(say("media.message_carries_no_files", value=kind.value))
    if family(mime) not in accepted:
        raise BadRequest(say("media.message_cannot_carry_file_type", value=kind.value, mime=mime))


def previewable(mime: str) -> bool:
    """Whether the preview maker has anything to say about this type."""
    return family(mime) is not MediaKind.FILE or mime == "application/pdf"


@dataclass(frozen=True, slots=True)
class Checksum:
    algorithm: str
    digest: bytes


def tus_version(header: str | None) -> None:
    if header != TUS_VERSION:
        raise PreconditionFailed(say("media.send_tus_resumable", tus_version=TUS_VERSION))


def parse_length(raw: str | None, name: str) -> int:
    """A non-negative byte count from a header; bool-like and signed forms refused."""
    if raw is None:
        raise BadRequest(say("media.header_required", name=name))
    raw = raw.strip()
    if not _DIGITS.fullmatch(raw):
        raise BadRequest(say("media.must_whole_number_bytes", name=name))
    return int(raw)


def check_upload_length(length: int, max_bytes: int) -> None:
    if length == 0:
        raise BadRequest(say("media.file_empty"))
    if length > max_bytes:
        raise TooLarge(say("media.file_bytes_limit", length=length, max_bytes=max_bytes))


def check_quota(used: int, length: int, quota: int) -> None:
    if used + length > quota:
        raise TooLarge(
            say("media.upload_would_take_your_files", used_length=used + length, quota=quota)
        )


def parse_metadata(raw: str | None) -> dict[str, str]:
    """`Upload-Metadata`: comma-separated `key base64value` pairs, values UTF-8."""
    if raw is None or not raw.strip():
        return {}
    if len(raw) > MAX_METADATA_CHARS:
        raise BadRequest(
            say(
                "media.upload_metadata_longer_than_characters",
                max_metadata_chars=MAX_METADATA_CHARS,
            )
        )
    pairs: dict[str, str] = {}
    for item in raw.split(","):
        parts = item.strip().split(" ")
        key = parts[0]
        if not key or len(parts) > 2 or not key.isascii() or not key.isprintable():
            raise BadRequest(say("media.upload_metadata_item_not_key", item=item.strip()[:40]))
        if key in pairs:
            raise BadRequest(say("media.upload_metadata_names_twice", key=key))
        value = ""
        if len(parts) == 2:
            try:
                value = base64.b64decode(parts[1], validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise BadRequest(say("media.upload_metadata_value_not_base64", key=key)) from None
        pairs[key] = value
    return pairs


def parse_checksum(raw: str | None) -> Checksum | None:
    """`Upload-Checksum: ALGORITHM BASE64DIGEST`, or None when absent."""
    if raw is None:
        return None
    parts = raw.strip().split(" ")
    if len(parts) != 2:
        raise BadRequest(say("media.upload_checksum_must_algorithm_base64digest"))
    algorithm = parts[0].lower()
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise BadRequest(
            say(
                "media.checksum_algorithm_not_supported_use",
                algorithm=parts[0][:20],
                algorithms=", ".join(CHECKSUM_ALGORITHMS),
            )
        )
    try:
        digest = base64.b64decode(parts[1], validate=True)
    except binascii.Error:
        raise BadRequest(say("media.upload_checksum_digest_not_base64")) from None
    return Checksum(algorithm, digest)


def check_offset(claimed: int, actual: int, length: int) -> None:
    """tus appends only at the end: any other offset is a client that lost its place."""
    if claimed != actual:
        raise Conflict(say("media.upload_offset_but_upload_has", claimed=claimed, actual=actual))
    if actual > length:  # pragma: no cover - the store never lets this happen
        raise Conflict(say("media.upload_longer_than_declared"))


def parse_ranges(raw: str, size: int) -> list[tuple[int, int]]:
    """`Range: bytes=…` as inclusive (start, end) pairs, clamped to the file.

    Raises:
        BadRequest: the header is not a byte range.
        RangeNotSatisfiable: every range starts past the end.
    """
    unit, _, spec = raw.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        raise BadRequest(say("media.range_must_bytes_start_end"))
    ranges: list[tuple[int, int]] = []
    for part in spec.split(","):
        first, dash, last = part.strip().partition("-")
        if not dash or not (first or last):
            raise BadRequest(say("media.not_byte_range", part=part.strip()[:40]))
        if not all(_DIGITS.fullmatch(x) for x in (first, last) if x):
            raise BadRequest(say("media.not_byte_range", part=part.strip()[:40]))
        if not first:  # the last N bytes
            count = int(last)
            if count == 0:
                continue
            ranges.append((max(0, size - count), size - 1))
            continue
        start = int(first)
        if last and int(last) < start:
            raise BadRequest(say("media.ends_before_starts", part=part.strip()[:40]))
        end = int(last) if last else size - 1
        if start < size:
            ranges.append((start, min(end, size - 1)))
    if not ranges:
        raise RangeNotSatisfiable(say("media.no_part_range_within_file", size=size))
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
