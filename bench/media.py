"""Workload `media`: one big file uploaded with tus and downloaded again, over loopback.

The reference is what the disk can do without the server: a plain copy of the
same file on the same filesystem, with and without an fsync of the copy (the
server flushes an upload to disk before linking it into the blob store). The
server's figures are its upload and download throughput, their ratio to the
copy, and its peak resident memory while the bytes pass through it.

Each round copies, uploads and downloads the file once; the file gets a new
first 16 bytes in every round, so every upload is new content for the blob
store rather than a duplicate of the previous round's.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import os
import shutil
import statistics
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import httpcore
import httpx

from bench._report import Progress, Row
from bench._server import RssMonitor, rss_kib, running_server, scratch_dir

NAME = "media"
DESCRIPTION = "tus upload and ranged download of a big file over loopback, against a disk copy"

MIB = 1 << 20
FULL_SIZE_MIB = 1024
QUICK_SIZE_MIB = 16
PATCH_MIB = 64
RANGE_MIB = 100
BLOCK = 16 * MIB  # random bytes generated once and reused, rotated, for every block
IO_CHUNK = MIB  # what the upload reads from disk and hands to the socket at a time
# httpcore reads a response 64 KiB at a time, which caps a loopback download in
# Python at 300-450 MiB/s on a typical machine, below what a server can send; read
# 1 MiB at a time, and take the chunks as they come (re-chunking them to a fixed
# size copies every byte once more), so that the download figure is the server's.
DOWNLOAD_READ = MIB
SERVER_MAX_UPLOAD = 2 << 30  # the server's default `--max-upload-bytes`
SERVER_QUOTA = 20 << 30  # the server's default `--upload-quota-bytes`
TUS = {"Tus-Resumable": "1.0.0"}
TIMEOUT = httpx.Timeout(600.0, connect=10.0)


class BenchFailure(RuntimeError):
    """The server answered something the media contract does not allow."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("media workload")
    group.add_argument(
        "--size-mib",
        type=int,
        default=None,
        metavar="N",
        help=f"size of the test file (default {FULL_SIZE_MIB}, {QUICK_SIZE_MIB} with --quick)",
    )
    group.add_argument(
        "--patch-mib",
        type=int,
        default=PATCH_MIB,
        metavar="N",
        help=f"body size of each tus PATCH request (default {PATCH_MIB})",
    )
    group.add_argument(
        "--repeat",
        type=int,
        default=None,
        metavar="N",
        help="rounds of copy, upload and download (default 2, 1 with --quick)",
    )


@dataclass(frozen=True)
class Settings:
    size: int
    patch: int
    repeat: int
    range_start: int
    range_length: int
    quick: bool

    @classmethod
    def from_options(cls, options: argparse.Namespace) -> Settings:
        quick = bool(getattr(options, "quick", False))
        size_mib = getattr(options, "size_mib", None) or (
            QUICK_SIZE_MIB if quick else FULL_SIZE_MIB
        )
        repeat = getattr(options, "repeat", None) or (1 if quick else 2)
        patch_mib = getattr(options, "patch_mib", None) or PATCH_MIB
        if size_mib < 1 or repeat < 1 or patch_mib < 1:
            raise ValueError("--size-mib, --repeat and --patch-mib must be at least 1")
        size = size_mib * MIB
        range_length = size // 2 if quick else min(RANGE_MIB * MIB, size // 2)
        return cls(
            size=size,
            patch=patch_mib * MIB,
            repeat=repeat,
            range_start=(size - range_length) // 2,
            range_length=range_length,
            quick=quick,
        )

    @property
    def range_label(self) -> str:
        return f"download range {_mib_text(self.range_length)} MiB"

    def server_args(self) -> tuple[str, ...]:
        """Flags that raise the server's limits, only when the file needs them."""
        args: list[str] = []
        if self.size > SERVER_MAX_UPLOAD:
            args += ["--max-upload-bytes", str(self.size)]
        if self.size * self.repeat > SERVER_QUOTA:
            args += ["--upload-quota-bytes", str(self.size * (self.repeat + 1))]
        return tuple(args)


def _mib_text(nbytes: int) -> str:
    return f"{nbytes / MIB:g}"


# --- the test file -----------------------------------------------------------------


def make_file(path: Path, size: int, progress: Progress) -> None:
    """Random-ish bytes, fast: one random block, rotated differently for every block.

    The rotation is never a multiple of a page, so no 4 KiB block of the file
    repeats another, and each block starts with its own counter.
    """
    base = os.urandom(min(BLOCK, size))
    written = 0
    index = 0
    with path.open("wb") as out:
        while written < size:
            shift = (index * 4099) % len(base)
            block = bytearray(base[shift:])
            block += base[:shift]
            block[:8] = index.to_bytes(8, "big")
            count = min(len(block), size - written)
            out.write(memoryview(block)[:count])
            written += count
            index += 1
            progress.advance(count)
        out.flush()
        os.fsync(out.fileno())  # nothing of it is left to write back during a timed phase


def stamp(path: Path, round_no: int) -> None:
    """Give the file new first bytes, so that each round uploads new content."""
    with path.open("r+b") as out:
        out.write(b"bench-round-" + round_no.to_bytes(4, "big"))
        out.flush()
        os.fsync(out.fileno())


def sha256_of(path: Path, start: int = 0, length: int | None = None) -> str:
    hasher = hashlib.sha256()
    with path.open("rb", buffering=0) as source:
        source.seek(start)
        left = length if length is not None else os.fstat(source.fileno()).st_size - start
        while left > 0:
            chunk = source.read(min(4 * MIB, left))
            if not chunk:
                break
            hasher.update(chunk)
            left -= len(chunk)
    return hasher.hexdigest()


# --- the phases ----------------------------------------------------------------------


def copy_once(source: Path, target: Path, *, fsync: bool) -> float:
    """Seconds to copy `source` to `target`, with an `fsync` of the copy when `fsync`.

    Afterwards, untimed, the copy gives its page cache back, so that every
    timed phase of a round finds the same free memory (on a virtual machine
    memory touched for the first time can cost more than the disk): a copy
    without `fsync` is deleted before any of it was written to disk; a flushed
    copy is dropped from the page cache and deleted only at the end of the run,
    so that freeing (on a filesystem mounted with `discard`: trimming) its blocks
    does not happen while the next phase is timed.
    """
    started = time.perf_counter()
    shutil.copyfile(source, target)
    if fsync:
        fd = os.open(target, os.O_RDONLY)
        try:
            os.fsync(fd)
            elapsed = time.perf_counter() - started
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    else:
        elapsed = time.perf_counter() - started
        target.unlink()
    return elapsed


def _expect(resp: httpx.Response, status: int, what: str) -> None:
    if resp.status_code != status:
        try:
            body = resp.text[:500]
        except httpx.ResponseNotRead:
            body = ""
        raise BenchFailure(f"{what}: expected {status}, got {resp.status_code} {body}".rstrip())


def _metadata(pairs: dict[str, str]) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode('ascii')}" for key, value in pairs.items()
    )


def _body(
    source: BinaryIO, offset: int, length: int, progress: Progress, note: str
) -> Iterator[bytes]:
    """The bytes `offset .. offset + length` of the file, read from disk as they are sent."""
    source.seek(offset)
    left = length
    while left > 0:
        chunk = source.read(min(IO_CHUNK, left))
        if not chunk:
            raise BenchFailure("the test file ended early")
        left -= len(chunk)
        progress.advance(len(chunk), note)
        yield chunk


def upload(
    client: httpx.Client,
    settings: Settings,
    path: Path,
    conversation: str,
    progress: Progress,
    note: str,
) -> tuple[str, float]:
    """Upload the file with tus; the id and the seconds from the create to the last 204."""
    metadata = _metadata(
        {
            "conv": conversation,
            "filename": "bench-media.bin",
            "filetype": "application/octet-stream",
        }
    )
    started = time.perf_counter()
    resp = client.post(
        "/api/uploads",
        headers={**TUS, "Upload-Length": str(settings.size), "Upload-Metadata": metadata},
    )
    _expect(resp, 201, "POST /api/uploads")
    location = resp.headers.get("Location")
    if not location:
        raise BenchFailure("POST /api/uploads answered without a Location")
    upload_id = str(resp.json()["id"])
    offset = int(resp.headers.get("Upload-Offset", "0"))
    with path.open("rb", buffering=0) as source:
        while offset < settings.size:
            length = min(settings.patch, settings.size - offset)
            resp = client.patch(
                location,
                content=_body(source, offset, length, progress, note),
                headers={
                    **TUS,
                    "Content-Type": "application/offset+octet-stream",
                    "Content-Length": str(length),
                    "Upload-Offset": str(offset),
                },
            )
            _expect(resp, 204, f"PATCH {location} at offset {offset}")
            new_offset = int(resp.headers.get("Upload-Offset", "-1"))
            if new_offset != offset + length:
                raise BenchFailure(
                    f"PATCH at offset {offset} with {length} bytes answered "
                    f"Upload-Offset {new_offset}, not {offset + length}"
                )
            offset = new_offset
    return upload_id, time.perf_counter() - started


@contextlib.contextmanager
def large_reads(size: int = DOWNLOAD_READ) -> Iterator[None]:
    """Make httpx's HTTP/1.1 connections read responses `size` bytes at a time."""
    connection = httpcore.HTTP11Connection
    before = connection.READ_NUM_BYTES
    connection.READ_NUM_BYTES = size
    try:
        yield
    finally:
        connection.READ_NUM_BYTES = before


@dataclass
class Download:
    sha256: str
    received: int
    seconds: float
    status: int
    content_range: str | None
    content_encoding: str | None


def download(
    client: httpx.Client,
    url: str,
    headers: dict[str, str],
    expect_status: int,
    progress: Progress,
    note: str,
) -> Download:
    """Stream `url`, hashing it as it arrives; nothing is kept in memory or on disk."""
    hasher = hashlib.sha256()
    received = 0
    with large_reads():
        started = time.perf_counter()
        with client.stream("GET", url, headers=headers) as resp:
            if resp.status_code != expect_status:
                resp.read()
                _expect(resp, expect_status, f"GET {url}")
            for chunk in resp.iter_bytes():
                hasher.update(chunk)
                received += len(chunk)
                progress.advance(len(chunk), note)
        seconds = time.perf_counter() - started
    return Download(
        sha256=hasher.hexdigest(),
        received=received,
        seconds=seconds,
        status=resp.status_code,
        content_range=resp.headers.get("Content-Range"),
        content_encoding=resp.headers.get("Content-Encoding"),
    )


# --- the workload --------------------------------------------------------------------


def _throughput_rows(
    label: str, seconds: list[float], nbytes: int, reference: str | None
) -> list[Row]:
    if not seconds:
        return []
    rates = [nbytes / MIB / s for s in seconds]
    return [
        {
            "metric": f"{label} best",
            "value": max(rates),
            "unit": "MiB/s",
            "reference": f"{reference} best" if reference else None,
        },
        {
            "metric": f"{label} median",
            "value": statistics.median(rates),
            "unit": "MiB/s",
            "reference": f"{reference} median" if reference else None,
        },
    ]


def _memory_row(metric: str, kib: list[int]) -> list[Row]:
    if not kib:
        return []
    return [{"metric": metric, "value": max(kib) / 1024, "unit": "MiB", "reference": None}]


@dataclass
class MediaRun:
    """The state of one run of the workload: its settings, scratch files and figures."""

    settings: Settings
    work: Path
    progress: Progress
    samples: dict[str, list[float]] = field(
        default_factory=lambda: {
            "copy_s": [],
            "copy_fsync_s": [],
            "upload_s": [],
            "download_s": [],
            "range_s": [],
        }
    )
    memory: dict[str, list[int]] = field(
        default_factory=lambda: {"idle_kib": [], "upload_peak_kib": [], "download_peak_kib": []}
    )
    rounds: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> Path:
        return self.work / "source.bin"

    def execute(self) -> None:
        settings = self.settings
        self.progress.set_note(f"writing a {_mib_text(settings.size)} MiB test file")
        make_file(self.source, settings.size, self.progress)
        data_dir = self.work / "server"
        data_dir.mkdir()
        self.environment["same_filesystem"] = self.source.stat().st_dev == data_dir.stat().st_dev
        self.progress.set_note("starting the server")
        with running_server(data_dir, settings.server_args()) as server:
            command = server.command()
            self.environment["server_command"] = ["python", *command[1:]]
            self.memory["idle_kib"].append(rss_kib(server.pid))
            try:
                with server.client(TIMEOUT) as client:
                    for round_no in range(1, settings.repeat + 1):
                        self.one_round(client, server.conversation, server.pid, round_no)
            except (BenchFailure, httpx.HTTPError, KeyError, ValueError) as exc:
                self.errors.append(
                    f"{type(exc).__name__}: {exc}\n--- server log ---\n{server.log_tail()}"
                )

    def one_round(self, client: httpx.Client, conversation: str, pid: int, round_no: int) -> None:
        settings, size, progress = self.settings, self.settings.size, self.progress
        tag = f"round {round_no}/{settings.repeat}"
        record: dict[str, Any] = {"round": round_no}
        self.rounds.append(record)

        progress.set_note(f"{tag}: hashing the test file")
        stamp(self.source, round_no)
        record["sha256"] = expected = sha256_of(self.source)
        expected_range = sha256_of(self.source, settings.range_start, settings.range_length)

        progress.set_note(f"{tag}: warming up")
        copy = self.work / f"copy-{round_no}.bin"
        copy_once(self.source, copy, fsync=False)  # the page cache the copies reuse
        progress.set_note(f"{tag}: copy")
        self.samples["copy_s"].append(copy_once(self.source, copy, fsync=False))
        progress.advance(size)
        progress.set_note(f"{tag}: copy+fsync")
        flushed = self.work / f"copy-fsync-{round_no}.bin"
        self.samples["copy_fsync_s"].append(copy_once(self.source, flushed, fsync=True))
        progress.advance(size)

        with RssMonitor(pid) as upload_memory:
            upload_id, seconds = upload(
                client, settings, self.source, conversation, progress, f"{tag}: upload"
            )
        self.samples["upload_s"].append(seconds)
        self.memory["upload_peak_kib"].append(upload_memory.peak_kib)
        record["upload_id"] = upload_id

        resp = client.get(f"/api/uploads/{upload_id}")
        _expect(resp, 200, f"GET /api/uploads/{upload_id}")
        state = resp.json()
        record["server_state"] = state.get("state")
        record["server_sha256"] = state.get("sha256")
        record["server_size"] = state.get("size")
        if state.get("sha256") != expected or state.get("state") != "finished":
            self.errors.append(
                f"{tag}: the finished upload reads state={state.get('state')!r} "
                f"sha256={state.get('sha256')!r}, the file's sha256 is {expected}"
            )

        url = f"/api/media/{upload_id}"
        end = settings.range_start + settings.range_length - 1
        with RssMonitor(pid) as download_memory:
            whole = download(client, url, {}, 200, progress, f"{tag}: download")
            part = download(
                client,
                url,
                {"Range": f"bytes={settings.range_start}-{end}"},
                206,
                progress,
                f"{tag}: ranged download",
            )
        self.memory["download_peak_kib"].append(download_memory.peak_kib)
        self.samples["download_s"].append(whole.seconds)
        self.samples["range_s"].append(part.seconds)

        expected_content_range = f"bytes {settings.range_start}-{end}/{size}"
        whole_ok = whole.sha256 == expected and whole.received == size
        part_ok = part.sha256 == expected_range and part.received == settings.range_length
        record.update(
            download_sha256=whole.sha256,
            download_bytes=whole.received,
            download_content_encoding=whole.content_encoding,
            range_sha256=part.sha256,
            range_expected_sha256=expected_range,
            range_bytes=part.received,
            range_content_range=part.content_range,
        )
        record["sha256_ok"] = (
            whole_ok
            and part_ok
            and part.content_range == expected_content_range
            and record["server_sha256"] == expected
        )
        if not whole_ok:
            self.errors.append(
                f"{tag}: the download has {whole.received} bytes with sha256 {whole.sha256}, "
                f"the file {size} bytes with sha256 {expected}"
            )
        if not part_ok:
            self.errors.append(
                f"{tag}: the ranged download has {part.received} bytes with sha256 "
                f"{part.sha256}, the range {settings.range_length} bytes with sha256 "
                f"{expected_range}"
            )
        if part.content_range != expected_content_range:
            self.errors.append(
                f"{tag}: Content-Range {part.content_range!r}, expected {expected_content_range!r}"
            )

    def rows(self) -> list[Row]:
        settings, samples, memory = self.settings, self.samples, self.memory
        size = settings.size
        rows: list[Row] = []
        rows += _throughput_rows("copy+fsync", samples["copy_fsync_s"], size, None)
        rows += _throughput_rows("copy (no fsync)", samples["copy_s"], size, None)
        rows += _throughput_rows("upload tus", samples["upload_s"], size, "copy+fsync")
        rows += _throughput_rows("download", samples["download_s"], size, "copy+fsync")
        rows += _throughput_rows(
            settings.range_label, samples["range_s"], settings.range_length, "copy+fsync"
        )
        rows += _memory_row("server RSS idle", memory["idle_kib"])
        rows += _memory_row("server RSS peak upload", memory["upload_peak_kib"])
        rows += _memory_row("server RSS peak download", memory["download_peak_kib"])
        return rows

    def result(self) -> dict[str, Any]:
        settings = self.settings
        return {
            "rows": self.rows(),
            "settings": {
                **asdict(settings),
                "size_mib": settings.size / MIB,
                "patch_mib": settings.patch / MIB,
                "range_mib": settings.range_length / MIB,
                "io_chunk_bytes": IO_CHUNK,
                "download_read_bytes": DOWNLOAD_READ,
                **self.environment,
            },
            "checks": {
                "sha256_ok": bool(self.rounds)
                and all(record.get("sha256_ok") for record in self.rounds),
                "rounds": self.rounds,
            },
            "samples": {**self.samples, **self.memory},
            "errors": self.errors,
        }


def run(options: argparse.Namespace) -> dict[str, Any]:
    settings = Settings.from_options(options)
    # bytes written, then per round: two copies, the upload, the download and the range
    total = settings.size + settings.repeat * (4 * settings.size + settings.range_length)
    progress = Progress(NAME, total)
    failed = True
    try:
        with scratch_dir(f"{NAME}-") as work:
            media_run = MediaRun(settings, work, progress)
            media_run.execute()
        failed = bool(media_run.errors)
    finally:
        progress.close(failed=failed)
    return media_run.result()
