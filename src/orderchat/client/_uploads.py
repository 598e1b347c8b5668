"""Sending files: a tus upload that resumes by itself, then the message naming it.

A request cut off by the network is not an error here: the client asks the
server how much it kept (`HEAD`) and goes on from there, a bounded number of
times. Refusals (too large, over quota, a type that does not match its bytes)
are raised at once as the same `ServerError`s the rest of the SDK raises.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
from pathlib import Path
from typing import BinaryIO

import httpx

from orderchat.client._errors import ProtocolError, TransportError
from orderchat.client._http import error_for

TUS_VERSION = "1.0.0"
DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024
MAX_RESUMES = 8


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _metadata(fields: dict[str, str]) -> str:
    return ",".join(f"{key} {_b64(value.encode())}" for key, value in fields.items())


async def upload(
    http: httpx.AsyncClient,
    conv: str,
    source: bytes | Path,
    *,
    filename: str | None = None,
    content_type: str | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> str:
    """Upload a file for a conversation and return its id, ready to be sent.

    Raises:
        TooLargeError: over the server's size limit or the user's quota.
        BadRequestError: the declared type does not match the bytes.
        TransportError: the network failed more than `MAX_RESUMES` times in a row.
    """
    if isinstance(source, Path):
        name = filename or source.name
        opener: BinaryIO = await asyncio.to_thread(source.open, "rb")
        length = os.fstat(opener.fileno()).st_size
    else:
        if filename is None:
            raise ValueError("a file given as bytes needs a filename")
        name, length, opener = filename, len(source), io.BytesIO(source)
    fields = {"conv": conv, "filename": name}
    if content_type:
        fields["filetype"] = content_type
    headers = {"Tus-Resumable": TUS_VERSION}
    created = await _call(
        http,
        "POST",
        "/api/uploads",
        {**headers, "Upload-Length": str(length), "Upload-Metadata": _metadata(fields)},
    )
    location = str(created.headers.get("location") or "")
    if not location:
        raise ProtocolError("the upload was created without a Location")
    offset = 0
    failures = 0
    with opener as stream:
        while offset < length:
            chunk = await asyncio.to_thread(_read_at, stream, offset, chunk_bytes)
            patch_headers = {
                **headers,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
                "Upload-Checksum": "sha256 " + _b64(hashlib.sha256(chunk).digest()),
            }
            try:
                answer = await _call(http, "PATCH", location, patch_headers, chunk)
                offset = int(answer.headers["upload-offset"])
                failures = 0
            except (TransportError, KeyError, ValueError):
                failures += 1
                if failures > MAX_RESUMES:
                    raise
                await asyncio.sleep(min(5.0, 0.2 * 2**failures))
                head = await _call(http, "HEAD", location, headers)
                offset = int(head.headers.get("upload-offset", "0"))
    return location.rsplit("/", 1)[-1]


def _read_at(stream: BinaryIO, offset: int, count: int) -> bytes:
    stream.seek(offset)
    return stream.read(count)


async def _call(
    http: httpx.AsyncClient,
    method: str,
    path: str,
    headers: dict[str, str],
    content: bytes | None = None,
) -> httpx.Response:
    try:
        response = await http.request(method, path, headers=headers, content=content)
    except httpx.HTTPError as exc:
        raise TransportError(f"{method} {path} failed: {exc!r}") from exc
    if response.status_code == 460:  # checksum mismatch: the body was damaged; resend it
        raise TransportError(f"{method} {path}: the server received damaged bytes")
    if not response.is_success:
        raise error_for(response)
    return response
