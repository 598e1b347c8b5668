"""Workload `failover` (W3 scaled out): two PostgreSQL nodes, one killed while messages flow.

The set-up is `postgres:2` (`bench/_cluster.py`): a throwaway PostgreSQL and
Redis and two OrderChat nodes. 2,000 clients and 20 senders are written into
the database; each client has a direct conversation with one sender (a sender
has up to 100). Client i connects to node i % 2, sender s to node s % 2, so
half the conversations cross from one node to the other.

1. Everyone connects; every sender sends one message to each of its
   conversations and each client must get it (across nodes too). Each client
   keeps the last `cursor` of any frame that carries one.
2. The senders send 10 messages to each of their conversations as fast as they
   can, without waiting; once a quarter of them are acked (by both nodes),
   node 0 is killed with SIGKILL. Its clients see their sockets close and
   reconnect at once, straight to node 1's port (with `--failover-via nginx`:
   to an nginx in front of both nodes, which must find node 0 gone), with
   `hello` and their cursor, and read until `synced`.
   Node 0's senders lose their sockets too: what they sent without an ack may
   or may not have been stored, and is not counted either way.
3. The figure is the time from the kill until the last of node 0's clients has
   its `synced` (target: under 5 s). Then every message that was acked, before
   or after the kill, must reach its client: live, in the replay, or live
   again after it; none twice.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench._cluster import (
    Cluster,
    ClusterError,
    Store,
    describe,
    postgres_available,
    running_cluster,
)
from bench._report import Progress, Row, row
from bench._server import free_port, scratch_dir
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
    text_frame,
)
from bench.reconnect import CONVS_PER_SENDER, _create_directs

NAME = "failover"
DESCRIPTION = (
    "2,000 clients on two PostgreSQL nodes, one killed mid-burst: time until its clients "
    "are synced on the other, nothing acked lost"
)

FULL_CLIENTS = 2000
QUICK_CLIENTS = 50
BURST = 10  # messages to each conversation around the kill
DEFAULT_WORKERS = 4
TARGET_S = 5.0
KILL_AT = 0.25  # node 0 is killed once this share of the burst has its answer
KILL_WAIT_S = 30.0  # or after this long, whatever came
CONNECT_TIMEOUT_S = 120.0
SEND_TIMEOUT_S = 60.0
RESUME_TIMEOUT_S = 60.0
DELIVERY_TIMEOUT_S = 30.0
SETTLE_S = 1.0
PROBLEMS_KEPT = 20
VICTIM = 0  # the node that is killed
SURVIVOR = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("failover workload")
    group.add_argument(
        "--failover-clients",
        type=int,
        default=None,
        metavar="N",
        help=f"clients over the two nodes (default {FULL_CLIENTS}, {QUICK_CLIENTS} with --quick)",
    )
    group.add_argument(
        "--failover-via",
        choices=("direct", "nginx"),
        default="direct",
        help="where node 0's clients reconnect: straight to node 1's port (default), or "
        "to nginx in front of both nodes, which finds node 0 gone",
    )
    group.add_argument(
        "--failover-workers",
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
    node: int
    ws: ClientConnection | None = None
    reader: asyncio.Task[None] | None = None
    cursor: str | None = None
    refs: list[str] = field(default_factory=list)  # every message ref received, in order
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    awaited: str | None = None
    closed_ns: int = 0  # when its first socket closed under it
    synced_ns: int = 0  # when the resumed connection said synced
    failure: str | None = None


@dataclass
class _Sender:
    user_id: str
    token: str
    convs: list[str]
    node: int
    ws: ClientConnection | None = None
    reader: asyncio.Task[None] | None = None
    acks: dict[str, asyncio.Future[int]] = field(default_factory=dict)  # ref -> ack time ns
    conv_of: dict[str, str] = field(default_factory=dict)  # ref -> conversation
    pump: asyncio.Task[None] | None = None


class FailoverShare:
    """A worker's senders and their clients, each on the node of its index."""

    def __init__(
        self,
        urls: list[str],
        resume_url: str,
        senders: list[tuple[str, str, list[str], int]],
        clients: list[tuple[str, str, str, int]],
    ) -> None:
        self.urls = urls
        self.resume_url = resume_url  # node 1's own port, or nginx in front of both
        self.sender_specs = senders
        self.client_specs = clients
        self.senders: list[_Sender] = []
        self.clients: list[_Client] = []
        self.closing = False

    def __call__(self) -> FailoverShare:
        return self

    async def handle(self, command: tuple[Any, ...]) -> tuple[Any, ...]:
        match command:
            case ("connect",):
                return await self._connect()
            case ("live", str(tag)):
                return await self._live(tag)
            case ("burst", str(tag), int(count)):
                return self._burst(tag, count)
            case ("acks",):
                acked = sum(1 for s in self.senders for f in s.acks.values() if f.done())
                return ("acks", acked, sum(len(s.acks) for s in self.senders))
            case ("collect", int(kill_ns)):
                return await self._collect(kill_ns)
        raise ValueError(f"unknown command {command!r}")

    # --- connecting and reading ------------------------------------------------------

    async def _connect(self) -> tuple[Any, ...]:
        self.senders = [_Sender(u, t, list(c), n) for u, t, c, n in self.sender_specs]
        self.clients = [_Client(u, t, c, n) for u, t, c, n in self.client_specs]

        async def open_sender(sender: _Sender) -> None:
            sender.ws, _ = await open_client(self.urls[sender.node], sender.token, "fo-s", None)
            sender.reader = asyncio.create_task(self._read_sender(sender))

        async def open_one(client: _Client) -> None:
            url = self.urls[client.node]
            client.ws, welcome = await open_client(url, client.token, f"fo-{client.user_id}", None)
            client.cursor = welcome.get("cursor")
            client.reader = asyncio.create_task(self._read_client(client))

        jobs = [open_sender(s) for s in self.senders] + [open_one(c) for c in self.clients]
        results = await gather_limited(jobs, 100)
        failures = [repr(r) for r in results if isinstance(r, BaseException)]
        return ("connected", len(results) - len(failures), failures[:5])

    async def _read_sender(self, sender: _Sender) -> None:
        assert sender.ws is not None
        with contextlib.suppress(ConnectionClosed):
            async for raw in sender.ws:
                now = time.time_ns()
                frame = orjson.loads(raw)
                if frame.get("op") not in ("ack", "error"):
                    continue
                future = sender.acks.get(str(frame.get("ref")))
                if future is None or future.done():
                    continue
                if frame["op"] == "ack":
                    future.set_result(now)
                else:
                    future.set_exception(RuntimeError(f"send refused: {frame}"))
        for future in sender.acks.values():  # never acked: not counted either way
            if not future.done():
                future.set_exception(ConnectionError("the sender's node went away"))

    def _note(self, client: _Client, raw: str | bytes) -> str:
        frame = orjson.loads(raw)
        cursor = frame.get("cursor")
        if isinstance(cursor, str):
            client.cursor = cursor
        op = str(frame.get("op"))
        if op == "message":
            ref = str(frame.get("ref"))
            client.refs.append(ref)
            if ref == client.awaited:
                client.arrived.set()
        elif op == "error":
            client.failure = f"error frame: {frame}"
        return op

    async def _read_client(self, client: _Client) -> None:
        """Read until the socket closes; a client of the killed node then moves over."""
        assert client.ws is not None
        with contextlib.suppress(ConnectionClosed):
            async for raw in client.ws:
                self._note(client, raw)
        if self.closing or client.node != VICTIM:
            return
        client.closed_ns = time.time_ns()
        await self._resume(client)

    async def _resume(self, client: _Client) -> None:
        try:
            client.ws = await connect(self.resume_url, **WS_OPTIONS)
            hello = hello_frame(client.token, f"fo-{client.user_id}", client.cursor)
            await client.ws.send(hello, text=True)
            async with asyncio.timeout(RESUME_TIMEOUT_S):
                while self._note(client, await client.ws.recv()) != "synced":
                    pass
            client.synced_ns = time.time_ns()
            async for raw in client.ws:
                self._note(client, raw)
        except ConnectionClosed:
            if not self.closing:
                client.failure = client.failure or "the resumed connection closed"
        except Exception as exc:
            client.failure = f"resume: {exc!r}"

    # --- sending ---------------------------------------------------------------------

    async def _pump(self, sender: _Sender, refs: list[tuple[str, str]]) -> None:
        assert sender.ws is not None
        loop = asyncio.get_running_loop()
        for conv, ref in refs:
            sender.acks[ref] = loop.create_future()
            sender.conv_of[ref] = conv
        # Once the node is gone the reader fails every future still waiting.
        with contextlib.suppress(ConnectionClosed):
            for conv, ref in refs:
                frame = text_frame(ref, conv, padded_text(f"{ref} for {conv}"))
                await sender.ws.send(frame, text=True)

    async def _live(self, tag: str) -> tuple[Any, ...]:
        by_conv = {c.conv: c for c in self.clients}
        pumps = []
        for number, sender in enumerate(self.senders):
            refs = [(conv, f"{tag}-{number}-{i}") for i, conv in enumerate(sender.convs)]
            for conv, ref in refs:
                by_conv[conv].awaited = ref
                by_conv[conv].arrived.clear()
            pumps.append(self._pump(sender, refs))
        await asyncio.gather(*pumps)
        events = [c.arrived.wait() for c in self.clients]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*events), SEND_TIMEOUT_S)
        missing = sum(1 for c in self.clients if not c.arrived.is_set())
        no_cursor = sum(1 for c in self.clients if c.cursor is None)
        return ("live", missing, no_cursor)

    def _burst(self, tag: str, count: int) -> tuple[Any, ...]:
        for number, sender in enumerate(self.senders):
            sender.acks.clear()  # the warm-up's, all answered
            sender.conv_of.clear()
            refs = [
                (conv, f"{tag}-{number}-{index}-{n}")
                for n in range(count)  # round-robin over the conversations, as chat goes
                for index, conv in enumerate(sender.convs)
            ]
            sender.pump = asyncio.create_task(self._pump(sender, refs))
        return ("bursting",)

    # --- after the kill --------------------------------------------------------------

    async def _collect(self, kill_ns: int) -> tuple[Any, ...]:
        """Wait for the acks, the resumes and the deliveries; judge each client."""
        pumps = [s.pump for s in self.senders if s.pump is not None]
        await asyncio.gather(*pumps, return_exceptions=True)
        futures = [f for s in self.senders for f in s.acks.values()]
        if futures:
            await asyncio.wait(futures, timeout=SEND_TIMEOUT_S)
        expected = self._acked()
        victims = [c for c in self.clients if c.node == VICTIM]
        deadline = time.monotonic() + RESUME_TIMEOUT_S + DELIVERY_TIMEOUT_S
        while time.monotonic() < deadline:
            resumed = all(c.synced_ns or c.failure for c in victims)
            if resumed and all(expected[c.conv] <= set(c.refs) for c in self.clients):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(SETTLE_S)
        return ("collected", *self._judge(kill_ns, expected))

    def _acked(self) -> dict[str, set[str]]:
        """conv -> the refs acked to its sender (the messages that must arrive)."""
        expected: dict[str, set[str]] = {c.conv: set() for c in self.clients}
        for sender in self.senders:
            for ref, future in sender.acks.items():
                if _acked_at(future) is not None:
                    expected[sender.conv_of[ref]].add(ref)
        return expected

    def _judge(self, kill_ns: int, expected: dict[str, set[str]]) -> tuple[Any, ...]:
        acked_at = [_acked_at(f) for s in self.senders for f in s.acks.values()]
        acked_before = sum(1 for at in acked_at if at is not None and at < kill_ns)
        counts = {"lost": 0, "duplicated": 0, "failed": 0, "acked": 0, "acked_before_kill": 0}
        counts["acked"] = sum(len(refs) for refs in expected.values())
        counts["acked_before_kill"] = acked_before
        synced: list[int] = []
        closed: list[int] = []
        problems: list[str] = []
        for client in self.clients:
            if client.node == VICTIM:
                if client.synced_ns and client.failure is None:
                    synced.append(client.synced_ns - kill_ns)
                    closed.append(client.closed_ns - kill_ns)
                else:
                    counts["failed"] += 1
                    problems.append(f"{client.user_id}: {client.failure or 'not synced'}")
            received = [r for r in client.refs if r in expected[client.conv]]
            lost = expected[client.conv] - set(received)
            counts["lost"] += len(lost)
            counts["duplicated"] += len(received) - len(set(received))
            if lost:
                problems.append(f"{client.user_id}: {len(lost)} acked messages never arrived")
        return synced, closed, counts, problems[:PROBLEMS_KEPT]

    async def close(self) -> None:
        self.closing = True
        sockets = [c.ws for c in self.clients if c.ws is not None]
        sockets += [s.ws for s in self.senders if s.ws is not None]
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        tasks = [c.reader for c in self.clients if c.reader is not None]
        tasks += [t for s in self.senders for t in (s.reader, s.pump) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _sizes(options: argparse.Namespace) -> tuple[int, int]:
    quick = bool(getattr(options, "quick", False))
    clients = getattr(options, "failover_clients", None) or (
        QUICK_CLIENTS if quick else FULL_CLIENTS
    )
    workers = getattr(options, "failover_workers", None) or DEFAULT_WORKERS
    if clients < 2 or workers < 1:
        raise ValueError("--failover-clients must be at least 2, --failover-workers at least 1")
    return clients, min(workers, clients)


def run(options: argparse.Namespace) -> dict[str, Any]:
    count, workers = _sizes(options)
    via = getattr(options, "failover_via", "direct")
    per_sender = min(CONVS_PER_SENDER, math.ceil(count / workers))
    sender_count = math.ceil(count / per_sender)
    settings: dict[str, Any] = {
        "clients": count,
        "senders": sender_count,
        "placement": "client i on node i % 2, sender s on node s % 2",
        "burst_per_conversation": BURST,
        "kill_when": f"{KILL_AT:.0%} of the burst is acked (at most {KILL_WAIT_S:g} s)",
        "killed": f"node-{VICTIM} (SIGKILL)",
        "reconnect_to": f"node-{SURVIVOR}, straight to its port"
        if via == "direct"
        else "nginx in front of both nodes (round robin, next upstream on error)",
        "worker_processes": workers,
        "target_s": TARGET_S,
    }
    missing = postgres_available()
    if missing is not None:
        print(f"failover: skipped, PostgreSQL is not available: {missing}", file=sys.stderr)
        return {"rows": [], "settings": settings, "checks": {"skipped": missing}, "errors": []}
    # Each client of the killed node holds two sockets for a moment, in the server too.
    fd_limit = require_fds(2 * count + sender_count)
    errors: list[str] = []
    progress = Progress(NAME, 5)
    try:
        with progress, scratch_dir("failover-") as work:
            sizes = (count, sender_count, per_sender, workers, fd_limit)
            record = _measure(work, sizes, via, progress)
    except ClusterError as exc:
        return {"rows": [], "settings": settings, "errors": [str(exc)]}
    settings["cluster"] = record.pop("cluster")
    errors += record.pop("errors")
    return _result(record, settings, errors)


def _measure(
    work: Path, sizes: tuple[int, int, int, int, int], via: str, progress: Progress
) -> dict[str, Any]:
    count, sender_count, per_sender, workers, fd_limit = sizes
    store = Store("postgres", 2)
    progress.set_note(f"starting {store.label} with {count + sender_count} users")
    with (
        running_cluster(store, work, count + sender_count, "fo") as (cluster, users),
        _resume_url(work, cluster, via) as resume_url,
    ):
        senders, clients = users[:sender_count], users[sender_count:]
        progress.advance(1, f"making {count} conversations")
        owners = [senders[i // per_sender] for i in range(count)]
        pairs = [(o.token, c.id) for o, c in zip(owners, clients, strict=True)]
        convs = asyncio.run(_create_directs(cluster.base_urls[0], pairs))
        makers = []
        for group in split(list(range(sender_count)), workers):
            sender_specs = []
            client_specs = []
            for s in group:
                mine = [i for i in range(count) if i // per_sender == s]
                sender_specs.append(
                    (senders[s].id, senders[s].token, [convs[i] for i in mine], s % 2)
                )
                client_specs += [(clients[i].id, clients[i].token, convs[i], i % 2) for i in mine]
            makers.append(FailoverShare(cluster.ws_urls, resume_url, sender_specs, client_specs))
        progress.advance(1, f"connecting {count + sender_count}")
        with WorkerPool(makers, fd_limit) as pool:
            errors = _connect_and_warm(pool, count + sender_count)
            progress.advance(1, "burst, then node 0 killed")
            pool.ask(("burst", "b", BURST), 30)
            _wait_for_acks(pool, KILL_AT, KILL_WAIT_S)
            kill_ns = time.time_ns()
            os.kill(cluster.nodes[VICTIM].pid, signal.SIGKILL)
            progress.advance(1, f"node 0's clients moving to node {SURVIVOR}")
            timeout = 2 * SEND_TIMEOUT_S + RESUME_TIMEOUT_S + DELIVERY_TIMEOUT_S + 30
            answers = pool.ask(("collect", kill_ns), timeout)
            progress.advance(1)
        return {"answers": answers, "errors": errors, "cluster": describe(cluster)}


@contextlib.contextmanager
def _resume_url(work: Path, cluster: Cluster, via: str) -> Iterator[str]:
    """Where node 0's clients go back: node 1's port, or an nginx started for the run."""
    if via == "direct":
        yield cluster.ws_urls[SURVIVOR]
        return
    from scripts.services import Nginx, ServiceError

    try:
        with Nginx(work / "nginx", free_port(), [node.port for node in cluster.nodes]) as nginx:
            yield nginx.url.replace("http://", "ws://", 1) + "/ws"
    except ServiceError as exc:
        raise ClusterError(f"nginx: {exc}") from exc


def _wait_for_acks(pool: WorkerPool, share: float, timeout_s: float) -> None:
    """Until `share` of the burst is answered, so that both nodes have acked some of it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answers = pool.ask(("acks",), 30)
        done, total = sum(int(a[1]) for a in answers), sum(int(a[2]) for a in answers)
        if total and done >= share * total:
            return
        time.sleep(0.02)


def _connect_and_warm(pool: WorkerPool, expected: int) -> list[str]:
    answers = pool.ask(("connect",), CONNECT_TIMEOUT_S)
    connected = sum(int(a[1]) for a in answers)
    if connected != expected:
        failures = [f for a in answers for f in a[2]]
        raise RuntimeError(f"{connected} of {expected} connected: {failures}")
    errors: list[str] = []
    for answer in pool.ask(("live", "warm"), SEND_TIMEOUT_S + 30):
        if answer[1]:
            errors.append(f"warm-up: {answer[1]} clients did not get their message")
        if answer[2]:
            errors.append(f"warm-up: {answer[2]} clients without a cursor")
    return errors


def _result(record: dict[str, Any], settings: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    answers = record["answers"]
    synced = [t / 1e9 for a in answers for t in a[1]]
    closed = [t / 1e9 for a in answers for t in a[2]]
    counts = {k: sum(int(a[3][k]) for a in answers) for k in answers[0][3]}
    errors += [p for a in answers for p in a[4]]
    for name in ("lost", "duplicated", "failed"):
        if counts[name]:
            errors.append(f"{counts[name]} {name}")
    all_synced = max(synced) if synced else None
    rows: list[Row] = []
    if all_synced is not None:
        rows += [
            row(NAME, "all synced after the kill", all_synced, "s", target_s=TARGET_S),
            row(NAME, "client synced p50", percentile(synced, 50), "s"),
            row(NAME, "client synced p99", percentile(synced, 99), "s"),
            row(NAME, "client saw the close max", max(closed), "s"),
        ]
    rows += [
        row(NAME, "clients moved", len(synced), "clients"),
        row(NAME, "messages acked", counts["acked"], "msgs"),
        row(NAME, "acked before the kill", counts["acked_before_kill"], "msgs"),
        row(NAME, "lost", counts["lost"], "msgs"),
        row(NAME, "duplicated", counts["duplicated"], "msgs"),
        row(NAME, "clients not synced", counts["failed"], "clients"),
    ]
    checks = {
        "target_s": TARGET_S,
        "target_met": all_synced is not None and all_synced < TARGET_S,
        **counts,
        "nothing_lost_or_doubled": not (counts["lost"] or counts["duplicated"]),
    }
    samples = {"synced_s": synced, "close_seen_s": closed}
    return {
        "rows": rows,
        "settings": settings,
        "checks": checks,
        "samples": samples,
        "errors": errors,
    }


def _acked_at(future: asyncio.Future[int]) -> int | None:
    """When the ack came (time_ns), or None for a send never acked."""
    if not future.done() or future.cancelled() or future.exception() is not None:
        return None
    return future.result()
