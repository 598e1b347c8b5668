"""Content-addressed storage of finished files and of their previews.

A blob's name is the SHA-256 of its bytes, so the same file sent a hundred times
is stored once, and a name can never point at other bytes than it promises.
`BlobStore` is what the rest of the server needs; `LocalBlobStore` keeps blobs
in the data directory. A store on S3-compatible object storage implements the
same methods (`put` uploads and then deletes the local file; `local_path`
answers None, and downloads redirect to a signed URL instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from pathlib import Path
from typing import Protocol

_SHA256_HEX = frozenset("0123456789abcdef")


def _check_sha(sha256: str) -> str:
    if len(sha256) != 64 or not set(sha256) <= _SHA256_HEX:
        raise ValueError(f"not a SHA-256 hex digest: {sha256[:80]!r}")
    return sha256


class BlobStore(Protocol):
    async def put(self, sha256: str, source: Path) -> bool:
        """Move a complete, flushed local file in under its digest; True when it is new.

        The blob becomes visible whole or not at all. `source` is consumed.
        """

    async def exists(self, sha256: str) -> bool: ...

    def local_path(self, sha256: str) -> Path | None:
        """Where the blob can be read from on this machine, if anywhere."""

    async def delete(self, sha256: str) -> None:
        """Remove a blob and its previews; a missing blob is not an error."""

    async def put_previews(self, sha256: str, made_in: Path) -> None:
        """Adopt a directory of finished preview files for a blob, replacing any before."""

    def preview_path(self, sha256: str, name: str) -> Path | None: ...


class LocalBlobStore:
    """Blobs under `root/blobs/ab/cd/<sha256>`, previews under `root/previews/ab/cd/<sha256>/`."""

    def __init__(self, root: Path) -> None:
        self._blobs = root / "blobs"
        self._previews = root / "previews"

    def _blob_path(self, sha256: str) -> Path:
        _check_sha(sha256)
        return self._blobs / sha256[:2] / sha256[2:4] / sha256

    def _preview_dir(self, sha256: str) -> Path:
        _check_sha(sha256)
        return self._previews / sha256[:2] / sha256[2:4] / sha256

    async def put(self, sha256: str, source: Path) -> bool:
        return await asyncio.to_thread(self._put, self._blob_path(sha256), source)

    @staticmethod
    def _put(target: Path, source: Path) -> bool:
        if target.exists():
            source.unlink(missing_ok=True)
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        # The source was flushed by its writer; the rename is the one atomic
        # step, and flushing the directory makes the new name itself durable.
        os.replace(source, target)
        _fsync_dir(target.parent)
        return True

    async def exists(self, sha256: str) -> bool:
        return await asyncio.to_thread(self._blob_path(sha256).is_file)

    def local_path(self, sha256: str) -> Path | None:
        return self._blob_path(sha256)

    async def delete(self, sha256: str) -> None:
        def remove() -> None:
            self._blob_path(sha256).unlink(missing_ok=True)
            shutil.rmtree(self._preview_dir(sha256), ignore_errors=True)

        await asyncio.to_thread(remove)

    async def put_previews(self, sha256: str, made_in: Path) -> None:
        target = self._preview_dir(sha256)

        def adopt() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            for item in made_in.iterdir():
                with item.open("rb") as handle:
                    os.fsync(handle.fileno())
            if target.exists():  # previews made again replace the old ones
                shutil.rmtree(target)
            os.replace(made_in, target)
            _fsync_dir(target.parent)

        await asyncio.to_thread(adopt)

    def preview_path(self, sha256: str, name: str) -> Path | None:
        if not name or "/" in name or "\\" in name or name.startswith("."):
            return None
        return self._preview_dir(sha256) / name


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # some file systems cannot flush a directory
            os.fsync(fd)
    finally:
        os.close(fd)
