"""Workload `fanout` (W2): one message to a channel of 2,000 connected members.

2,001 users are written into the data dir before the server starts (see
`bench/_seed.py`): one sender and 2,000 receivers. The sender creates one
channel with all of them in a single `POST /api/conversations`, so the channel
has 2,001 members. The receivers connect over WebSocket from several worker
processes (uvloop, spawned, each holding a share of the connections); the
sender connects from this process. Then, round after round, the sender sends
one text message and every receiver notes the wall-clock time (`time.time_ns()`,
one clock for all processes of the machine) at which the message reached it.

The figure is the time from the send until the last receiver has the message:
`max(receipt) - send`, for each round; the rows are its median and worst over
the rounds (target: under 1 s). Every receiver must get every round's message
exactly once; a missing or repeated one is an error.

The helpers at the top (worker processes, the file-descriptor limit, a server
on a seeded data dir) are shared with the `reconnect` workload.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing
import os
import resource
import statistics
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator, Sequence
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson
import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as sync_connect

from bench._report import Progress, Row, row
from bench._seed import seed_users
from bench._server import BenchServer, rss_kib, scratch_dir
from orderchat.core.model import MessageKind
from orderchat.protocol.codec import encode_client_frame
from orderchat.protocol.frames import Hello, PostMessage

NAME = "fanout"
DESCRIPTION = "one message to a channel of 2,000 connected members: time until the last has it"

FULL_MEMBERS = 2000
QUICK_MEMBERS = 50
FULL_ROUNDS = 5
QUICK_ROUNDS = 2
DEFAULT_WORKERS = 4
TARGET_MS = 1000.0
TEXT_BYTES = 100
ROUND_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 120.0
SETTLE_S = 0.5  # after the last round: anything arriving now is a duplicate
PAUSE_S = 0.3  # between rounds

# As the project's client connects (orderchat.client): no protocol pings, its
# frame-size limit, permessage-deflate offered; never through a proxy.
MAX_SERVER_FRAME_BYTES = 4 * 1024 * 1024
WS_OPTIONS: dict[str, Any] = {
    "ping_interval": None,
    "max_size": MAX_SERVER_FRAME_BYTES,
    "open_timeout": 60,
    "close_timeout": 5,
    "proxy": None,
}


# --- shared with the reconnect workload ----------------------------------------------


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's open-file limit to at least `wanted` where allowed.

    Children inherit it, the server included, so call it before starting them.
    Returns the soft limit now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    if hard != resource.RLIM_INFINITY and hard < wanted:
        with contextlib.suppress(ValueError, OSError):  # a raised hard limit needs privilege
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def require_fds(connections: int) -> int:
    """The open-file limit, raised for a server holding `connections` sockets, or an error."""
    needed = connections + 256  # the database, the log, listening sockets, a margin
    limit = raise_fd_limit(2 * connections + 1024)
    if limit < needed:
        raise RuntimeError(
            f"the open-file limit is {limit} and cannot be raised to {needed}: "
            f"raise it (ulimit -n) or use fewer connections"
        )
    return limit


@contextlib.contextmanager
def started_server(data_dir: Path, extra_args: tuple[str, ...] = ()) -> Iterator[BenchServer]:
    """A server on a data dir that was seeded already; no admin is made."""
    server = BenchServer(data_dir, extra_args)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def ws_url(server: BenchServer) -> str:
    return f"ws://127.0.0.1:{server.port}/ws"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def split(items: Sequence[Any], parts: int) -> list[list[Any]]:
    """`items` dealt into `parts` nearly equal contiguous slices (none empty)."""
    parts = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), parts)
    out: list[list[Any]] = []
    start = 0
    for n in range(parts):
        end = start + size + (1 if n < extra else 0)
        out.append(list(items[start:end]))
        start = end
    return out


def text_frame(ref: str, conv: str, text: str) -> bytes:
    return encode_client_frame(PostMessage(ref, conv, MessageKind.TEXT, text, (), (), None))


def hello_frame(token: str, device: str, cursor: str | None) -> bytes:
    return encode_client_frame(Hello(token, device, cursor))


def padded_text(head: str, size: int = TEXT_BYTES) -> str:
    return (head + " " + "x" * size)[:size] if len(head) < size else head


class WorkerError(RuntimeError):
    """A worker process failed, or did not answer in time."""


class Handler(Protocol):
    async def handle(self, command: tuple[Any, ...]) -> tuple[Any, ...]: ...

    async def close(self) -> None: ...


def run_worker(pipe: Pipe, make: Callable[[], Handler], fd_limit: int) -> None:
    """The body of a worker process: answer the parent's commands until `exit`."""
    raise_fd_limit(fd_limit)
    uvloop.run(_serve_commands(pipe, make))


async def _serve_commands(pipe: Pipe, make: Callable[[], Handler]) -> None:
    loop = asyncio.get_running_loop()
    handler = make()
    try:
        while True:
            try:
                command: tuple[Any, ...] = await loop.run_in_executor(None, pipe.recv)
            except (EOFError, OSError):
                return  # the parent is gone
            if command[0] == "exit":
                pipe.send(("ok",))
                return
            try:
                reply = await handler.handle(command)
            except Exception:
                reply = ("error", traceback.format_exc())
            pipe.send(reply)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(handler.close(), 30)


class WorkerPool:
    """Worker processes (spawned) that each run `run_worker` with their own handler."""

    def __init__(self, makers: Sequence[Callable[[], Handler]], fd_limit: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Pipe] = []
        self.procs: list[Any] = []
        for maker in makers:
            parent_end, child_end = context.Pipe()
            proc = context.Process(
                target=run_worker, args=(child_end, maker, fd_limit), daemon=True
            )
            proc.start()
            child_end.close()
            self.pipes.append(parent_end)
            self.procs.append(proc)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def ask(self, command: tuple[Any, ...], timeout_s: float) -> list[tuple[Any, ...]]:
        """Send a command to every worker; their answers, in worker order."""
        self.tell(command)
        return self.answers(str(command[0]), timeout_s)

    def tell(self, command: tuple[Any, ...]) -> None:
        """Send a command to every worker without waiting for the answers."""
        for pipe in self.pipes:
            pipe.send(command)

    def answers(self, label: str, timeout_s: float) -> list[tuple[Any, ...]]:
        """Every worker's answer to the command told last, in worker order."""
        deadline = time.monotonic() + timeout_s
        found: list[tuple[Any, ...]] = []
        for number, pipe in enumerate(self.pipes):
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise WorkerError(f"worker {number} did not answer {label!r} in {timeout_s}s")
            answer: tuple[Any, ...] = pipe.recv()
            if answer[0] == "error":
                raise WorkerError(f"worker {number} failed on {label!r}:\n{answer[1]}")
            found.append(answer)
        return found

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError, ValueError):
                pipe.send(("exit",))
        deadline = time.monotonic() + 30
        for proc in self.procs:
            proc.join(max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
        for pipe in self.pipes:
            pipe.close()


async def open_client(
    url: str, token: str, device: str, cursor: str | None
) -> tuple[ClientConnection, dict[str, Any]]:
    """A connection that has said hello; with the server's `welcome` frame."""
    ws = await connect(url, **WS_OPTIONS)
    try:
        await ws.send(hello_frame(token, device, cursor), text=True)
        welcome = orjson.loads(await asyncio.wait_for(ws.recv(), 60))
    except BaseException:
        await ws.close()
        raise
    if welcome.get("op") != "welcome":
        await ws.close()
        raise WorkerError(f"expected welcome, got {welcome}")
    return ws, welcome


async def gather_limited(jobs: Sequence[Awaitable[Any]], limit: int) -> list[Any]:
    """Await the jobs at most `limit` at a time; their results or exceptions, in order."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Awaitable[Any]) -> Any:
        async with gate:
            return await job

    return list(await asyncio.gather(*(one(job) for job in jobs), return_exceptions=True))


# --- the fan-out workload --------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("fanout workload")
    group.add_argument(
        "--fanout-members",
        type=int,
        default=None,
        metavar="N",
        help=f"receivers in the channel (default {FULL_MEMBERS}, {QUICK_MEMBERS} with --quick)",
    )
    group.add_argument(
        "--fanout-rounds",
        type=int,
        default=None,
        metavar="N",
        help=f"messages sent, one per round (default {FULL_ROUNDS}, {QUICK_ROUNDS} with --quick)",
    )
    group.add_argument(
        "--fanout-workers",
        type=int,
        default=DEFAULT_WORKERS,
        metavar="N",
        help=f"processes holding the receivers' connections (default {DEFAULT_WORKERS})",
    )


class FanoutReceivers:
    """A worker's share of the receivers: connects them and notes when messages arrive."""

    def __init__(self, url: str, clients: list[tuple[str, str]]) -> None:
        self.url = url
        self.clients = clients  # (user id, token)
        self.sockets: list[ClientConnection] = []
        self.readers: list[asyncio.Task[None]] = []
        # ref -> client index -> receipt times (more than one: a duplicate)
        self.receipts: dict[str, dict[int, list[int]]] = {}
        self.complete: dict[str, asyncio.Event] = {}
        self.collected: set[str] = set()  # refs the parent asked about: those it sent

    def __call__(self) -> FanoutReceivers:
        return self

    async def handle(self, command: tuple[Any, ...]) -> tuple[Any, ...]:
        match command:
            case ("connect",):
                return await self._connect()
            case ("collect", str(ref), float(timeout_s)):
                return await self._collect(ref, timeout_s)
            case ("finish", float(settle_s)):
                await asyncio.sleep(settle_s)
                return self._summary()
        raise ValueError(f"unknown command {command!r}")

    async def _connect(self) -> tuple[Any, ...]:
        async def job(index: int) -> None:
            user_id, token = self.clients[index]
            ws, _welcome = await open_client(self.url, token, f"fan-{user_id}", None)
            self.sockets.append(ws)
            self.readers.append(asyncio.create_task(self._read(index, user_id, ws)))

        results = await gather_limited([job(i) for i in range(len(self.clients))], 100)
        failures = [repr(r) for r in results if isinstance(r, BaseException)]
        return ("connected", len(self.sockets), failures[:5])

    async def _read(self, index: int, user_id: str, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                now = time.time_ns()
                frame = orjson.loads(raw)
                if frame.get("op") != "message":
                    continue
                if frame.get("sender") == user_id:
                    continue
                ref = str(frame.get("ref"))
                per_client = self.receipts.setdefault(ref, {})
                times = per_client.setdefault(index, [])
                times.append(now)
                if len(times) == 1 and len(per_client) == len(self.clients):
                    self._event(ref).set()

    def _event(self, ref: str) -> asyncio.Event:
        event = self.complete.get(ref)
        if event is None:
            event = self.complete[ref] = asyncio.Event()
        return event

    async def _collect(self, ref: str, timeout_s: float) -> tuple[Any, ...]:
        self.collected.add(ref)
        per_client = self.receipts.setdefault(ref, {})
        if len(per_client) < len(self.clients):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event(ref).wait(), timeout_s)
        firsts = [times[0] for times in per_client.values()]
        return ("collected", ref, firsts, len(self.clients) - len(per_client))

    def _summary(self) -> tuple[Any, ...]:
        duplicates = sum(
            len(times) - 1 for per_client in self.receipts.values() for times in per_client.values()
        )
        unexpected = [ref for ref in self.receipts if ref not in self.collected]
        return ("finished", duplicates, unexpected[:20], len(unexpected))

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)


def _sizes(options: argparse.Namespace) -> tuple[int, int, int]:
    quick = bool(getattr(options, "quick", False))
    members = getattr(options, "fanout_members", None) or (QUICK_MEMBERS if quick else FULL_MEMBERS)
    rounds = getattr(options, "fanout_rounds", None) or (QUICK_ROUNDS if quick else FULL_ROUNDS)
    workers = getattr(options, "fanout_workers", None) or DEFAULT_WORKERS
    if members < 1 or rounds < 1 or workers < 1:
        raise ValueError("--fanout-members, --fanout-rounds and --fanout-workers must be >= 1")
    return members, rounds, min(workers, members)


def run(options: argparse.Namespace) -> dict[str, Any]:
    members, rounds, workers = _sizes(options)
    fd_limit = require_fds(members + 1)
    settings: dict[str, Any] = {
        "receivers": members,
        "channel_members": members + 1,
        "rounds": rounds,
        "worker_processes": workers,
        "text_bytes": TEXT_BYTES,
        "fd_limit": fd_limit,
        "compression": "permessage-deflate offered, as orderchat.client does",
        "target_ms": TARGET_MS,
    }
    errors: list[str] = []
    samples: dict[str, Any] = {"rounds": []}
    progress = Progress("fanout", 4 + rounds)
    with progress, scratch_dir("fanout-") as work:
        data_dir = work / "data"
        progress.set_note(f"seeding {members + 1} users")
        users = seed_users(data_dir, members + 1, prefix="fan")
        sender, receivers = users[0], users[1:]
        progress.advance(1, "starting the server")
        with started_server(data_dir) as server:
            headers = {"Authorization": f"Bearer {sender.token}"}
            with httpx.Client(
                base_url=server.base_url, headers=headers, timeout=120, trust_env=False
            ) as http:
                resp = http.post(
                    "/api/conversations",
                    json={
                        "kind": "channel",
                        "title": "fanout",
                        "members": [r.id for r in receivers],
                    },
                )
            if resp.status_code != 201:
                raise RuntimeError(f"creating the channel: {resp.status_code} {resp.text[:500]}")
            conv = str(resp.json()["id"])
            if len(resp.json()["members"]) != members + 1:
                errors.append(f"the channel has {len(resp.json()['members'])} members")
            progress.advance(1, f"connecting {members} receivers")

            url = ws_url(server)
            shares = split([(r.id, r.token) for r in receivers], workers)
            makers = [FanoutReceivers(url, share) for share in shares]
            with WorkerPool(makers, fd_limit) as pool:
                connected = pool.ask(("connect",), CONNECT_TIMEOUT_S)
                total = sum(int(a[1]) for a in connected)
                for answer in connected:
                    errors.extend(f"connect: {failure}" for failure in answer[2])
                if total != members:
                    raise RuntimeError(f"only {total} of {members} receivers connected")
                settings["server_rss_connected_kib"] = rss_kib(server.pid)
                progress.advance(1, "sending")
                records = _rounds(pool, url, sender.token, sender.id, conv, rounds, progress)
                samples["rounds"] = records
                finished = pool.ask(("finish", SETTLE_S), 60)
            progress.advance(1, "done")

    duplicates = sum(int(a[1]) for a in finished)
    unexpected = sum(int(a[3]) for a in finished)
    missing = sum(int(r["missing"]) for r in records)
    if missing:
        errors.append(f"{missing} receipts missing over {rounds} rounds")
    if duplicates:
        errors.append(f"{duplicates} messages received more than once")
    if unexpected:
        errors.append(f"{unexpected} messages nobody sent in this run")
    errors.extend(str(e) for r in records for e in r.get("errors", []))

    last = [float(r["last_ms"]) for r in records if r["last_ms"] is not None]
    median_member = [float(r["median_ms"]) for r in records if r["median_ms"] is not None]
    acks = [float(r["ack_ms"]) for r in records if r["ack_ms"] is not None]
    rows: list[Row] = []
    if last:
        rows += [
            row(NAME, "last member p50", statistics.median(last), "ms"),
            row(NAME, "last member max", max(last), "ms", target_ms=TARGET_MS),
            row(NAME, "median member p50", statistics.median(median_member), "ms"),
            row(NAME, "sender ack p50", statistics.median(acks) if acks else math.nan, "ms"),
        ]
    rss_mib = settings["server_rss_connected_kib"] / 1024
    rows.append(row(NAME, "server RSS connected", rss_mib, "MiB"))
    checks = {
        "target_ms": TARGET_MS,
        "target_met": bool(last) and max(last) < TARGET_MS,
        "missing": missing,
        "duplicates": duplicates,
        "unexpected": unexpected,
        "each_once": missing == 0 and duplicates == 0 and unexpected == 0,
    }
    return {
        "rows": rows,
        "settings": settings,
        "checks": checks,
        "samples": samples,
        "errors": errors,
    }


def _rounds(
    pool: WorkerPool,
    url: str,
    token: str,
    user_id: str,
    conv: str,
    rounds: int,
    progress: Progress,
) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    with sync_connect(url, **WS_OPTIONS) as ws:
        ws.send(hello_frame(token, "fan-sender", None), text=True)
        welcome = orjson.loads(ws.recv(timeout=30))
        if welcome.get("op") != "welcome":
            raise RuntimeError(f"the sender got {welcome}")
        for number in range(rounds):
            ref = f"fan-{os.getpid()}-{number}"
            text = padded_text(f"fan-out round {number}")
            frame = text_frame(ref, conv, text)
            # The workers answer when every receiver of theirs has the message,
            # or at the timeout; meanwhile this process waits for its ack.
            pool.tell(("collect", ref, ROUND_TIMEOUT_S))
            sent = time.time_ns()
            ws.send(frame, text=True)
            record: dict[str, Any] = {"ref": ref, "sent_ns": sent, "errors": []}
            record["ack_ms"] = _await_ack(ws, ref, sent, record["errors"])
            answers = pool.answers("collect", ROUND_TIMEOUT_S + 10)
            firsts = [t for a in answers for t in a[2]]
            record["missing"] = sum(int(a[3]) for a in answers)
            record["received"] = len(firsts)
            if firsts:
                delays = [(t - sent) / 1e6 for t in firsts]
                record["last_ms"] = max(delays)
                record["first_ms"] = min(delays)
                record["median_ms"] = statistics.median(delays)
                record["p99_ms"] = percentile(delays, 99)
            else:
                record["last_ms"] = record["first_ms"] = record["median_ms"] = None
            records.append(record)
            progress.advance(
                1, f"round {number + 1}/{rounds}: last {record['last_ms'] or 0:.0f} ms"
            )
            time.sleep(PAUSE_S)
    return records


def _await_ack(ws: Any, ref: str, sent: int, errors: list[str]) -> float | None:
    deadline = time.monotonic() + ROUND_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            frame = orjson.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        except TimeoutError:
            break
        if frame.get("op") == "ack" and frame.get("ref") == ref:
            return (time.time_ns() - sent) / 1e6
        if frame.get("op") == "error":
            errors.append(f"the send of {ref} failed: {frame}")
            return None
    errors.append(f"no ack for {ref} in {ROUND_TIMEOUT_S}s")
    return None
