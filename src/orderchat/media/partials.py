"""The files of uploads still being received, one per upload.

The file's length is the upload's offset: nothing else records how many bytes
arrived, so the offset a client resumes from is always what is really on disk.
Blocking file work runs in a thread, a few MiB at a time.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from orderchat.core.ids import UploadId

_UPLOAD_ID = re.compile(r"up_[0-9a-z]{21}")
HASH_CHUNK = 4 * 1024 * 1024


class PartialFiles:
    def __init__(self, root: Path) -> None:
        self._root = root / "uploads"

    def path(self, upload_id: str) -> Path:
        if not _UPLOAD_ID.fullmatch(upload_id):  # ids become file names: only ours
            raise ValueError(f"not an upload id: {upload_id[:80]!r}")
        return self._root / f"{upload_id}.part"

    async def create(self, upload_id: str) -> None:
        path = self.path(upload_id)

        def touch() -> None:
            self._root.mkdir(parents=True, exist_ok=True)
            path.touch(exist_ok=True)

        await asyncio.to_thread(touch)

    async def size(self, upload_id: str) -> int | None:
        """Bytes received so far, or None when the file is gone."""
        path = self.path(upload_id)
        try:
            return (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            return None

    async def truncate(self, upload_id: str, size: int) -> None:
        await asyncio.to_thread(os.truncate, self.path(upload_id), size)

    async def delete(self, upload_id: str) -> None:
        await asyncio.to_thread(self.path(upload_id).unlink, missing_ok=True)

    async def head(self, upload_id: str, count: int) -> bytes:
        def read() -> bytes:
            with self.path(upload_id).open("rb") as handle:
                return handle.read(count)

        return await asyncio.to_thread(read)

    async def flush_and_hash(self, upload_id: str) -> str:
        """Flush the file to disk and hash it whole: for uploads resumed after a restart."""

        def run() -> str:
            digest = hashlib.sha256()
            with self.path(upload_id).open("rb") as handle:
                os.fsync(handle.fileno())
                while block := handle.read(HASH_CHUNK):
                    digest.update(block)
            return digest.hexdigest()

        return await asyncio.to_thread(run)

    async def flush(self, upload_id: str) -> None:
        def run() -> None:
            with self.path(upload_id).open("rb") as handle:
                os.fsync(handle.fileno())

        await asyncio.to_thread(run)

    def ids(self) -> list[UploadId]:
        if not self._root.is_dir():
            return []
        found = self._root.glob("up_*.part")
        return [UploadId(p.stem) for p in found if _UPLOAD_ID.fullmatch(p.stem)]

    async def appender(self, upload_id: str, offset: int) -> Appender:
        handle = await asyncio.to_thread(self.path(upload_id).open, "r+b")
        handle.seek(offset)
        return Appender(handle)


class Appender:
    """Writes one request's body at the end of an upload, hashing as it goes."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle

    async def write(self, data: bytes | bytearray, hashers: Sequence[Any]) -> None:
        def run() -> None:
            self._handle.write(data)
            for hasher in hashers:  # hashlib releases the GIL on large buffers
                hasher.update(data)

        await asyncio.to_thread(run)

    async def close(self) -> None:
        await asyncio.to_thread(self._handle.close)
