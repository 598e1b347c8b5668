"""Workload `reconnect` (W3): 2,000 clients drop, miss 10 messages each, and come back at once.

Users are written into the data dir before the server starts: 2,000 clients
and 20 senders. Each client has a direct conversation with one sender (each
sender has 100 of them, made over HTTP), so that every message a client misses
is its own: 2,000 direct conversations, 20,000 missed messages per round.

1. The clients connect (several worker processes with uvloop) and every sender
   sends one message to each of its conversations; each client notes the
   `cursor` of every frame that carries one (`welcome`, `message`, `synced`)
   and keeps the last.
2. Each round: all clients close their sockets; each sender sends 10 messages
   to each of its conversations and waits for their acks (all are committed);
   then all clients reconnect at the same moment with
   `{"op":"hello","token":T,"device":D,"cursor":C}` and read until
   `{"op":"synced"}`.

The figure is the time from that moment until the last client has its
`synced` (target: under 5 s). Each client must have received exactly its 10
missed messages before `synced`, in seq order, none twice, nothing else; and
nothing more in the second after it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench._report import Progress, Row, row
from bench._seed import seed_users
from bench._server import rss_kib, scratch_dir
from bench.fanout import (
    WS_OPTIONS,
    WorkerPool,
    gather_limited,
    hello_frame,
    open_client,
    padded_text,
    percentile,
    require_fds,
    split,
    started_server,
    text_frame,
    ws_url,
)

NAME = "reconnect"
DESCRIPTION = "2,000 clients drop, miss 10 messages each, reconnect at once: time until all synced"

FULL_CLIENTS = 2000
QUICK_CLIENTS = 50
FULL_ROUNDS = 3
QUICK_ROUNDS = 1
MISSED = 10
DEFAULT_WORKERS = 4
CONVS_PER_SENDER = 100
TARGET_S = 5.0
CONNECT_TIMEOUT_S = 120.0
SEND_TIMEOUT_S = 120.0
RESUME_TIMEOUT_S = 60.0
SETTLE_S = 1.0
START_DELAY_S = 0.5  # the workers get the start time this far ahead
PROBLEMS_KEPT = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reconnect workload")
    group.add_argument(
        "--reconnect-clients",
        type=int,
        default=None,
        metavar="N",
        help=f"clients that drop and come back (default {FULL_CLIENTS}, "
        f"{QUICK_CLIENTS} with --quick)",
    )
    group.add_argument(
        "--reconnect-rounds",
        type=int,
        default=None,
        metavar="N",
        help=f"drop-miss-reconnect rounds (default {FULL_ROUNDS}, {QUICK_ROUNDS} with --quick)",
    )
    group.add_argument(
        "--reconnect-workers",
        type=int,
        default=DEFAULT_WORKERS,
        metavar="N",
        help=f"processes holding the connections (default {DEFAULT_WORKERS})",
    )


@dataclass
class _Client:
    user_id: str
    token: str
    conv: str
    ws: ClientConnection | None = None
    reader: asyncio.Task[None] | None = None
    cursor: str | None = None
    # (ref, seq) of the messages of the current phase, in arrival order
    live: list[tuple[str, int]] = field(default_factory=list)
    late: list[tuple[str, int]] = field(default_factory=list)  # after synced
    arrived: asyncio.Event | None = None
    awaited: str | None = None


@dataclass
class _Sender:
    user_id: str
    token: str
    convs: list[str]
    ws: ClientConnection | None = None
    reader: asyncio.Task[None] | None = None
    acks: dict[str, asyncio.Future[tuple[str, int]]] = field(default_factory=dict)


@dataclass
class _Resume:
    """What one client saw while it resumed."""

    opened_ns: int = 0
    synced_ns: int = 0
    replayed: list[tuple[str, str, int]] = field(default_factory=list)  # (conv, ref, seq)
    others: list[str] = field(default_factory=list)  # ops other than message
    failure: str | None = None


class ReconnectShare:
    """A worker's clients and the senders of their conversations."""

    def __init__(
        self,
        url: str,
        senders: list[tuple[str, str, list[str]]],
        clients: list[tuple[str, str, str]],
    ) -> None:
        self.url = url
        self.sender_specs = senders
        self.client_specs = clients
        self.senders: list[_Sender] = []
        self.clients: list[_Client] = []
        self.expected: dict[str, list[tuple[int, str]]] = {}  # conv -> (seq, ref) missed

    def __call__(self) -> ReconnectShare:
        return self

    async def handle(self, command: tuple[Any, ...]) -> tuple[Any, ...]:
        match command:
            case ("connect",):
                return await self._connect()
            case ("live", str(tag)):
                return await self._live(tag)
            case ("drop",):
                return await self._drop()
            case ("away", str(tag), int(count)):
                return await self._away(tag, count)
            case ("reconnect", int(start_ns), float(timeout_s)):
                return await self._reconnect(start_ns, timeout_s)
            case ("settle", float(seconds)):
                return await self._settle(seconds)
        raise ValueError(f"unknown command {command!r}")

    # --- connecting ------------------------------------------------------------------

    async def _connect(self) -> tuple[Any, ...]:
        self.senders = [_Sender(u, t, list(c)) for u, t, c in self.sender_specs]
        self.clients = [_Client(u, t, c) for u, t, c in self.client_specs]

        async def open_sender(sender: _Sender) -> None:
            sender.ws, _ = await open_client(self.url, sender.token, "rc-sender", None)
            sender.reader = asyncio.create_task(self._read_sender(sender))

        async def open_one(client: _Client) -> None:
            client.ws, welcome = await open_client(
                self.url, client.token, f"rc-{client.user_id}", None
            )
            client.cursor = welcome.get("cursor")
            client.reader = asyncio.create_task(self._read_live(client, client.ws))

        jobs = [open_sender(s) for s in self.senders]
        jobs += [open_one(c) for c in self.clients]
        results = await gather_limited(jobs, 100)
        failures = [repr(r) for r in results if isinstance(r, BaseException)]
        return ("connected", len(results) - len(failures), failures[:5])

    async def _read_sender(self, sender: _Sender) -> None:
        assert sender.ws is not None
        with contextlib.suppress(ConnectionClosed):
            async for raw in sender.ws:
                frame = orjson.loads(raw)
                op = frame.get("op")
                if op not in ("ack", "error"):
                    continue  # its own messages echoed back, and the like
                future = sender.acks.get(str(frame.get("ref")))
                if future is None or future.done():
                    continue
                if op == "ack":
                    future.set_result((str(frame["conv"]), int(frame["seq"])))
                else:
                    future.set_exception(RuntimeError(f"send refused: {frame}"))

    async def _read_live(self, client: _Client, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                frame = orjson.loads(raw)
                cursor = frame.get("cursor")
                if isinstance(cursor, str):
                    client.cursor = cursor
                if frame.get("op") != "message":
                    continue
                ref = str(frame.get("ref"))
                client.live.append((ref, int(frame.get("seq", 0))))
                if ref == client.awaited and client.arrived is not None:
                    client.arrived.set()

    # --- sending ---------------------------------------------------------------------

    async def _send_all(self, refs: list[tuple[_Sender, str, str]]) -> list[str]:
        """Send (sender, conv, ref) in order, pipelined per sender; problems, if any."""
        loop = asyncio.get_running_loop()
        for sender, _conv, ref in refs:
            sender.acks[ref] = loop.create_future()

        async def pump(sender: _Sender) -> None:
            assert sender.ws is not None
            for owner, conv, ref in refs:
                if owner is sender:
                    text = padded_text(f"{ref} for {conv}")
                    await sender.ws.send(text_frame(ref, conv, text), text=True)

        await asyncio.gather(*(pump(s) for s in self.senders))
        futures = [s.acks[ref] for s, _conv, ref in refs]
        done, pending = await asyncio.wait(futures, timeout=SEND_TIMEOUT_S)
        problems = [f"{len(pending)} sends not acked in {SEND_TIMEOUT_S}s"] if pending else []
        problems += [repr(f.exception()) for f in done if f.exception() is not None]
        return problems[:PROBLEMS_KEPT]

    async def _live(self, tag: str) -> tuple[Any, ...]:
        refs: list[tuple[_Sender, str, str]] = []
        by_conv = {c.conv: c for c in self.clients}
        for number, sender in enumerate(self.senders):
            for index, conv in enumerate(sender.convs):
                ref = f"{tag}-{number}-{index}"
                refs.append((sender, conv, ref))
                client = by_conv[conv]
                client.awaited, client.arrived = ref, asyncio.Event()
                client.live.clear()
        problems = await self._send_all(refs)
        events = [c.arrived.wait() for c in self.clients if c.arrived is not None]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*events), SEND_TIMEOUT_S)
        missing = sum(1 for c in self.clients if c.arrived is not None and not c.arrived.is_set())
        if missing:
            problems.append(f"{missing} clients did not get their live message")
        return ("live", len(refs), missing, problems)

    async def _drop(self) -> tuple[Any, ...]:
        sockets = [c.ws for c in self.clients if c.ws is not None]
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        readers = [c.reader for c in self.clients if c.reader is not None]
        await asyncio.gather(*readers, return_exceptions=True)
        for client in self.clients:
            client.ws = client.reader = None
            client.live.clear()
            client.late.clear()
        missing_cursor = sum(1 for c in self.clients if c.cursor is None)
        return ("dropped", len(sockets), missing_cursor)

    async def _away(self, tag: str, count: int) -> tuple[Any, ...]:
        refs: list[tuple[_Sender, str, str]] = []
        for number, sender in enumerate(self.senders):
            for n in range(count):  # round-robin over the conversations, as chat goes
                for index, conv in enumerate(sender.convs):
                    refs.append((sender, conv, f"{tag}-{number}-{index}-{n}"))
        problems = await self._send_all(refs)
        self.expected = {c.conv: [] for c in self.clients}
        for sender, _conv, ref in refs:
            future = sender.acks.pop(ref)
            if future.done() and future.exception() is None:
                acked_conv, seq = future.result()
                self.expected[acked_conv].append((seq, ref))
        for missed in self.expected.values():
            missed.sort()
        return ("away", len(refs), sum(len(m) for m in self.expected.values()), problems)

    # --- the storm -------------------------------------------------------------------

    async def _reconnect(self, start_ns: int, timeout_s: float) -> tuple[Any, ...]:
        results = [_Resume() for _ in self.clients]
        delay = (start_ns - time.time_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        jobs = [self._resume(c, r) for c, r in zip(self.clients, results, strict=True)]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*jobs), timeout_s)
        return ("reconnected", *self._judge(start_ns, results))

    async def _resume(self, client: _Client, result: _Resume) -> None:
        try:
            ws = await connect(self.url, **WS_OPTIONS)
        except Exception as exc:
            result.failure = f"connect: {exc!r}"
            return
        result.opened_ns = time.time_ns()
        client.ws = ws
        try:
            await ws.send(
                hello_frame(client.token, f"rc-{client.user_id}", client.cursor), text=True
            )
            while True:
                raw = await ws.recv()
                now = time.time_ns()
                frame = orjson.loads(raw)
                op = str(frame.get("op"))
                cursor = frame.get("cursor")
                if isinstance(cursor, str):
                    client.cursor = cursor
                if op == "message":
                    result.replayed.append(
                        (str(frame.get("conv")), str(frame.get("ref")), int(frame.get("seq", 0)))
                    )
                elif op == "synced":
                    result.synced_ns = now
                    break
                elif op == "error":
                    result.failure = f"error frame: {frame}"
                    return
                elif op != "welcome":
                    result.others.append(op)
        except Exception as exc:
            result.failure = f"resume: {exc!r}"
            return
        client.reader = asyncio.create_task(self._read_after_sync(client, ws))

    async def _read_after_sync(self, client: _Client, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                frame = orjson.loads(raw)
                cursor = frame.get("cursor")
                if isinstance(cursor, str):
                    client.cursor = cursor
                if frame.get("op") == "message":
                    client.late.append((str(frame.get("ref")), int(frame.get("seq", 0))))

    def _judge(self, start_ns: int, results: list[_Resume]) -> tuple[Any, ...]:
        """Per client, the replay against what it missed; the totals and timings."""
        synced: list[int] = []
        opened: list[int] = []
        problems: list[str] = []
        counts = {"failed": 0, "lost": 0, "duplicated": 0, "out_of_order": 0, "extra": 0}
        replayed = 0
        for client, result in zip(self.clients, results, strict=True):
            if result.failure is not None or not result.synced_ns:
                counts["failed"] += 1
                problems.append(f"{client.user_id}: {result.failure or 'not synced in time'}")
                continue
            synced.append(result.synced_ns - start_ns)
            opened.append(result.opened_ns - start_ns)
            expected = self.expected.get(client.conv, [])
            mine = [(seq, ref) for conv, ref, seq in result.replayed if conv == client.conv]
            replayed += len(mine)
            extra = len(result.replayed) - len(mine) + len(result.others)
            seen: set[tuple[int, str]] = set()
            duplicated = 0
            for item in mine:
                duplicated += item in seen
                seen.add(item)
            lost = len(set(expected) - seen)
            extra += len(seen - set(expected))
            in_order = all(a[0] < b[0] for a, b in itertools.pairwise(mine))
            counts["lost"] += lost
            counts["duplicated"] += duplicated
            counts["extra"] += extra
            counts["out_of_order"] += 0 if in_order else 1
            if lost or duplicated or extra or not in_order:
                problems.append(
                    f"{client.user_id}: expected seqs {[s for s, _ in expected]}, "
                    f"got {[s for s, _ in mine]}, others {result.others}"
                )
        return synced, opened, replayed, counts, problems[:PROBLEMS_KEPT]

    async def _settle(self, seconds: float) -> tuple[Any, ...]:
        await asyncio.sleep(seconds)
        late = sum(len(c.late) for c in self.clients)
        problems = [f"{c.user_id}: after synced {c.late}" for c in self.clients if c.late]
        return ("settled", late, problems[:PROBLEMS_KEPT])

    async def close(self) -> None:
        sockets = [c.ws for c in self.clients if c.ws is not None]
        sockets += [s.ws for s in self.senders if s.ws is not None]
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        tasks = [c.reader for c in self.clients if c.reader is not None]
        tasks += [s.reader for s in self.senders if s.reader is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _sizes(options: argparse.Namespace) -> tuple[int, int, int]:
    quick = bool(getattr(options, "quick", False))
    clients = getattr(options, "reconnect_clients", None) or (
        QUICK_CLIENTS if quick else FULL_CLIENTS
    )
    rounds = getattr(options, "reconnect_rounds", None) or (QUICK_ROUNDS if quick else FULL_ROUNDS)
    workers = getattr(options, "reconnect_workers", None) or DEFAULT_WORKERS
    if clients < 1 or rounds < 1 or workers < 1:
        raise ValueError("--reconnect-clients, -rounds and -workers must be at least 1")
    return clients, rounds, min(workers, clients)


async def _create_directs(
    base_url: str, pairs: list[tuple[str, str]], concurrency: int = 32
) -> list[str]:
    """One direct conversation per (sender token, client id), made over HTTP; their ids."""
    async with httpx.AsyncClient(base_url=base_url, timeout=120, trust_env=False) as http:

        async def make(token: str, member: str) -> str:
            resp = await http.post(
                "/api/conversations",
                json={"kind": "direct", "members": [member]},
                headers={"Authorization": f"Bearer {token}"},
            )
            if resp.status_code != 201:
                raise RuntimeError(f"creating a conversation: {resp.status_code} {resp.text}")
            return str(resp.json()["id"])

        results = await gather_limited([make(t, m) for t, m in pairs], concurrency)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [str(r) for r in results]


def run(options: argparse.Namespace) -> dict[str, Any]:
    count, rounds, workers = _sizes(options)
    per_sender = min(CONVS_PER_SENDER, math.ceil(count / workers))
    sender_count = math.ceil(count / per_sender)
    fd_limit = require_fds(count + sender_count)
    settings: dict[str, Any] = {
        "clients": count,
        "senders": sender_count,
        "conversations": f"{count} direct conversations, each a client and one sender "
        f"(a sender has up to {per_sender})",
        "missed_per_client": MISSED,
        "rounds": rounds,
        "worker_processes": workers,
        "fd_limit": fd_limit,
        "cursor": "the last cursor of any frame that carries one (welcome, message, synced)",
        "target_s": TARGET_S,
    }
    errors: list[str] = []
    samples: dict[str, Any] = {"rounds": []}
    progress = Progress("reconnect", 4 + 3 * rounds)
    with progress, scratch_dir("reconnect-") as work:
        data_dir = work / "data"
        progress.set_note(f"seeding {count + sender_count} users")
        users = seed_users(data_dir, count + sender_count, prefix="rc")
        senders, clients = users[:sender_count], users[sender_count:]
        progress.advance(1, "starting the server")
        with started_server(data_dir) as server:
            progress.advance(1, f"making {count} conversations")
            owners = [senders[i // per_sender] for i in range(count)]
            convs = asyncio.run(
                _create_directs(
                    server.base_url, [(o.token, c.id) for o, c in zip(owners, clients, strict=True)]
                )
            )
            # A worker holds whole senders with all of their clients.
            groups = split(list(range(sender_count)), workers)
            makers: list[ReconnectShare] = []
            for group in groups:
                sender_specs = []
                client_specs = []
                for s in group:
                    mine = [i for i in range(count) if i // per_sender == s]
                    sender_specs.append((senders[s].id, senders[s].token, [convs[i] for i in mine]))
                    client_specs += [(clients[i].id, clients[i].token, convs[i]) for i in mine]
                makers.append(ReconnectShare(ws_url(server), sender_specs, client_specs))
            progress.advance(1, f"connecting {count + sender_count}")
            with WorkerPool(makers, fd_limit) as pool:
                answers = pool.ask(("connect",), CONNECT_TIMEOUT_S)
                connected = sum(int(a[1]) for a in answers)
                if connected != count + sender_count:
                    failures = [f for a in answers for f in a[2]]
                    raise RuntimeError(
                        f"{connected} of {count + sender_count} connected: {failures}"
                    )
                for answer in pool.ask(("live", "warm"), SEND_TIMEOUT_S + 30):
                    errors.extend(f"live: {p}" for p in answer[3])
                progress.advance(1, "round 1")
                for number in range(rounds):
                    record = _round(pool, number, errors, progress)
                    record["server_rss_kib"] = rss_kib(server.pid)
                    samples["rounds"].append(record)
    return _result(samples["rounds"], settings, samples, errors, count)


def _round(pool: WorkerPool, number: int, errors: list[str], progress: Progress) -> dict[str, Any]:
    record: dict[str, Any] = {"round": number + 1}
    dropped = pool.ask(("drop",), 60)
    if any(int(a[2]) for a in dropped):
        errors.append(f"round {number + 1}: clients without a cursor before the drop")
    time.sleep(0.5)  # the server sees the closes before the messages come
    progress.advance(1, f"round {number + 1}: messages while away")
    clock = time.perf_counter()
    away = pool.ask(("away", f"r{number}", MISSED), SEND_TIMEOUT_S + 30)
    record["away_s"] = time.perf_counter() - clock
    record["away_sent"] = sum(int(a[1]) for a in away)
    record["away_acked"] = sum(int(a[2]) for a in away)
    record["away_rate_per_s"] = record["away_acked"] / max(record["away_s"], 1e-9)
    errors.extend(f"round {number + 1} away: {p}" for a in away for p in a[3])
    progress.advance(1, f"round {number + 1}: reconnecting")
    start_ns = time.time_ns() + int(START_DELAY_S * 1e9)
    answers = pool.ask(("reconnect", start_ns, RESUME_TIMEOUT_S), RESUME_TIMEOUT_S + 30)
    synced = [t / 1e9 for a in answers for t in a[1]]
    opened = [t / 1e9 for a in answers for t in a[2]]
    counts = {k: sum(int(a[4][k]) for a in answers) for k in answers[0][4]}
    record["replayed"] = sum(int(a[3]) for a in answers)
    record["clients_synced"] = len(synced)
    record["all_synced_s"] = max(synced) if synced else None
    record["synced_p50_s"] = percentile(synced, 50)
    record["synced_p99_s"] = percentile(synced, 99)
    record["opened_p50_s"] = percentile(opened, 50)
    record["opened_max_s"] = max(opened) if opened else None
    settled = pool.ask(("settle", SETTLE_S), 30)
    counts["after_synced"] = sum(int(a[1]) for a in settled)
    record["counts"] = counts
    for answer in (*answers, *settled):
        problems = answer[5] if answer[0] == "reconnected" else answer[2]
        errors.extend(f"round {number + 1}: {p}" for p in problems)
    for name, value in counts.items():
        if value:
            errors.append(f"round {number + 1}: {value} {name.replace('_', ' ')}")
    note = f"all synced in {record['all_synced_s'] or 0:.2f} s"
    progress.advance(1, f"round {number + 1}: {note}")
    return record


def _result(
    records: list[dict[str, Any]],
    settings: dict[str, Any],
    samples: dict[str, Any],
    errors: list[str],
    count: int,
) -> dict[str, Any]:
    storms = [float(r["all_synced_s"]) for r in records if r["all_synced_s"] is not None]
    synced_p50s = [r["synced_p50_s"] for r in records]
    rows: list[Row] = []
    if storms:
        rows += [
            row(NAME, "all synced p50", statistics.median(storms), "s"),
            row(NAME, "all synced max", max(storms), "s", target_s=TARGET_S),
            row(NAME, "client synced p50", statistics.median(synced_p50s), "s"),
            row(NAME, "client synced p99", max(r["synced_p99_s"] for r in records), "s"),
            row(NAME, "client socket open max", max(r["opened_max_s"] or 0 for r in records), "s"),
        ]
    totals = {
        key: sum(int(r["counts"].get(key, 0)) for r in records)
        for key in ("failed", "lost", "duplicated", "out_of_order", "extra", "after_synced")
    }
    replayed = sum(int(r["replayed"]) for r in records)
    rows += [
        row(NAME, "messages replayed", replayed, "msgs"),
        row(NAME, "lost", totals["lost"], "msgs"),
        row(NAME, "duplicated", totals["duplicated"] + totals["after_synced"], "msgs"),
        row(
            NAME,
            "away send rate p50",
            statistics.median(r["away_rate_per_s"] for r in records),
            "msg/s",
        ),
        row(NAME, "server RSS", max(r["server_rss_kib"] for r in records) / 1024, "MiB"),
    ]
    expected = count * MISSED * len(records)
    if replayed != expected:
        errors.append(f"{replayed} messages replayed, {expected} expected")
    checks = {
        "target_s": TARGET_S,
        "target_met": bool(storms) and max(storms) < TARGET_S,
        "expected_replayed": expected,
        **totals,
        "nothing_lost_or_doubled": replayed == expected and not any(totals.values()),
    }
    return {
        "rows": rows,
        "settings": settings,
        "checks": checks,
        "samples": samples,
        "errors": errors,
    }
