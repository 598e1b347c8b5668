"""Writing the dossier's ZIP: the PDF, the document, the originals, then the manifest.

The originals are copied as they are (stored, not recompressed: most are
pictures and videos already compressed) and hashed while they are copied, so
the manifest states the bytes that are in the ZIP, even if a blob on disk no
longer matches its name: the checker then says which file is not the one
its message sent, rather than the export hiding it.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from orderchat.core.dossier import DOCUMENT, MANIFEST, PDF
from orderchat.services.dossier.document import PackedFile

CHUNK_BYTES = 1024 * 1024

# (bytes done, bytes in all)
ByteProgress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Original:
    """A file to copy in, and where its bytes are on this machine."""

    packed: PackedFile
    source: Path


def _info(name: str, exported_at_ms: int, compress: int) -> zipfile.ZipInfo:
    moment = datetime.fromtimestamp(exported_at_ms / 1000, tz=UTC)
    info = zipfile.ZipInfo(name, date_time=moment.timetuple()[:6])
    info.compress_type = compress
    info.external_attr = 0o644 << 16
    return info


def _json_bytes(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def write_zip(
    target: Path,
    parts: tuple[bytes, Any],
    originals: Sequence[Original],
    manifest: Callable[[list[tuple[str, str, int]]], Any],
    exported_at_ms: int,
    progress: ByteProgress,
) -> None:
    """The ZIP at `target`: `parts` is (the PDF, the document); `manifest` is given every
    other file's (path, SHA-256, size) and returns manifest.json's content."""
    pdf, document = parts
    digests: list[tuple[str, str, int]] = []
    total = sum(o.packed.size for o in originals)
    done = 0
    with zipfile.ZipFile(target, "w", allowZip64=True) as archive:
        for name, data in ((PDF, pdf), (DOCUMENT, _json_bytes(document))):
            archive.writestr(_info(name, exported_at_ms, zipfile.ZIP_DEFLATED), data)
            digests.append((name, hashlib.sha256(data).hexdigest(), len(data)))
        for original in originals:
            info = _info(original.packed.path, exported_at_ms, zipfile.ZIP_STORED)
            digest, size = hashlib.sha256(), 0
            with original.source.open("rb") as source, archive.open(info, "w") as sink:
                while chunk := source.read(CHUNK_BYTES):
                    digest.update(chunk)
                    sink.write(chunk)
                    size += len(chunk)
                    progress(done + size, total)
            done += original.packed.size
            digests.append((original.packed.path, digest.hexdigest(), size))
        manifest_bytes = _json_bytes(manifest(digests))
        archive.writestr(_info(MANIFEST, exported_at_ms, zipfile.ZIP_DEFLATED), manifest_bytes)
    progress(total, total)
