"""Receiving one request's body into an upload's file on disk.

Bytes are gathered into writes of `WRITE_BYTES`; one write (and its hashing)
runs in a thread while the next bytes arrive. A body that goes quiet for
`BODY_IDLE_S`, or whose connection is cut, ends early, keeping what came.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from orderchat.core.errors import DomainError, TooLarge
from orderchat.core.texts import say
from orderchat.media.partials import Appender

# Bytes gathered before one write to disk: few thread hops, little memory.
WRITE_BYTES = 4 * 1024 * 1024
# A request body that sends nothing for this long is treated as cut off.
BODY_IDLE_S = 60.0


class ConnectionCut(Exception):
    """The client went away in the middle of a request body."""


class TooLargeBody(TooLarge):
    """A PATCH body longer than what is left of the upload."""

    def __init__(self, left: int) -> None:
        super().__init__(say("receiving.body_longer_than_left", left=left))


async def write_body(
    appender: Appender, hashers: Sequence[Any], body: AsyncIterator[bytes], remaining: int
) -> tuple[int, bool, DomainError | None]:
    """Write a request body through `appender`, up to `remaining` bytes.

    Returns how many bytes were handed to the appender, whether the body was
    cut off, and the error that stopped it early (a body past `remaining`).
    """
    buffer = bytearray()
    received = 0  # bytes handed to the writer
    cut = False
    failure: DomainError | None = None
    # One write (and its hashing) runs in a thread while the next bytes arrive.
    writing: asyncio.Future[None] | None = None

    async def settle() -> None:
        nonlocal writing
        if writing is not None:
            done, writing = writing, None
            await done

    async def hand_over(data: bytearray) -> None:
        nonlocal writing, received
        await settle()
        writing = asyncio.ensure_future(appender.write(data, hashers))
        received += len(data)

    try:
        chunks = aiter(body)
        while True:
            try:
                async with asyncio.timeout(BODY_IDLE_S):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                break
            except (ConnectionCut, TimeoutError):
                cut = True
                break
            if received + len(buffer) + len(chunk) > remaining:
                failure = TooLargeBody(remaining)
                break
            buffer += chunk
            if len(buffer) >= WRITE_BYTES:
                await hand_over(buffer)
                buffer = bytearray()
        if buffer and failure is None:
            await hand_over(buffer)
        await settle()
    finally:
        if writing is not None:  # an error on the way: let the thread finish first
            with contextlib.suppress(Exception):
                await writing
    return received, cut, failure
