"""What bytes really are, by their content (libmagic), never by their name."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import magic

# libmagic handles are not safe to share between threads: one per thread.
_local = threading.local()
SNIFF_BYTES = 64 * 1024


def _magic() -> magic.Magic:
    found: magic.Magic | None = getattr(_local, "magic", None)
    if found is None:
        found = magic.Magic(mime=True)
        _local.magic = found
    return found


async def sniff_bytes(data: bytes) -> str:
    return await asyncio.to_thread(lambda: str(_magic().from_buffer(data[:SNIFF_BYTES])))


async def sniff_file(path: Path) -> str:
    return await asyncio.to_thread(lambda: str(_magic().from_file(str(path))))
