"""Workload `consults`: the peak of a sale, 2,000 visitors opening consults within a minute.

One `orderchat serve` (SQLite, `--rate-limits off`: every visitor comes from
127.0.0.1, and the per-address limit on new consults would refuse all but the
first few) with a shop `consults.toml` in its workflows dir: one queue, `shop`,
served round-robin by 10 `customer_service` agents, each taking at most
`max_open_per_agent` open consults (by default three quarters of the visitors
shared out among the agents, so that the last quarter waits in the queue). The
agents and an admin are written into the database before the server starts
(`bench/_seed.py`); each agent holds a WebSocket connection (`hello` with its
token, then every frame is read and timed as it comes).

The visitors: `POST /api/consults/start` (a name, a language, where they came
from, a first question), paced evenly over 60 s (`--consults-seconds`), from
one httpx AsyncClient with a bounded number of requests in flight. For each
consult, from just before its request is sent:

- **first staff notification**: until any agent's connection has a `message`
  frame of the consult's conversation (its id is the answer's `consult.id`);
- **assigned agent**: until the agent the consult went to has the
  `consult_assigned` note naming them (`meta.consult.assignee`);
- **queued note**: for a consult that waits, until any agent has its
  `consult_queued` note.

Every agent is a member of every consult of its queue, so each must hear each
consult's `consult_opened` note exactly once. After the last start and a drain,
the inbox is read back as the admin (`GET /api/consults?view=all`, pages of
200) and as each agent (`view=mine`), and checked: every consult started is
there once; an open one has an agent and no position, a queued one a position
and no agent; no agent holds more than the limit; the positions of a queue are
1..Q; nobody waits while an agent has room; round-robin shares them out evenly;
each consult is as its start answered (nothing closes, so nothing moves); and
the answers' `total` and `counts` agree with what was listed. Each failure is a
violation; any violation, failed start or missing notification is an error
(the command exits 1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench._cluster import tree_cpu_seconds
from bench._load import machine_busy_seconds
from bench._report import Progress, Row, row
from bench._seed import SeededUser, seed_users
from bench._server import BenchServer, rss_kib, scratch_dir
from bench.fanout import WS_OPTIONS, hello_frame, percentile, started_server, ws_url
from orderchat.core.model import Role

NAME = "consults"
DESCRIPTION = (
    "2,000 visitors open consults within a minute: time to first staff notification, "
    "the inbox checked"
)

FULL_VISITORS, FULL_SECONDS = 2_000, 60.0
QUICK_VISITORS, QUICK_SECONDS = 40, 2.0
AGENTS = 10
ASSIGNED_SHARE = 0.75  # of the visitors, by default: the agents' room; the rest queue
QUEUE = "shop"
CONCURRENCY = 64  # starts in flight at most
START_TIMEOUT_S = 30.0  # one request
CONNECT_TIMEOUT_S = 30.0  # an agent's connection and welcome
DRAIN_MAX_S = 30.0  # after the last answer, for notifications still due
SETTLE_S = 1.0  # after the drain: a frame now would be a duplicate
PAGE = 200
INBOX_TIMEOUT_S = 60.0  # one inbox request
SAMPLE_ERRORS = 10

RULES = """\
# bench/consults.py: one queue, round-robin, room for {capacity} open consults an agent.
first_response_s = 3600       # nobody answers during the run: no escalation inside it
max_open_per_agent = {capacity}
timezone = "Asia/Shanghai"

[[queue]]
name = "{queue}"
roles = ["customer_service"]
strategy = "round_robin"
"""

NAMES = ("张先生", "李女士", "王芳", "Alex Chen", "Maria Rossi", "陈小姐", "Tom", "赵磊")
QUESTIONS = (
    "去西藏徒步，这款背包够用吗？",
    "帐篷的防水指数 3000mm 是什么意思？",
    "Is the TNT-2P tent good for snow?",
    "能开发票吗？今天下单什么时候发货？",
    "Do you ship to Hong Kong, and how long does it take?",
    "这件冲锋衣有没有 XL 码？",
)
SKUS = ("TNT-2P", "BAG-0142", "JKT-XL", "TNT-3P")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("consults workload")
    group.add_argument(
        "--consults-visitors",
        "--visitors",
        dest="consults_visitors",
        type=int,
        default=None,
        metavar="N",
        help=f"consults opened (default {FULL_VISITORS:,}, {QUICK_VISITORS} with --quick)",
    )
    group.add_argument(
        "--consults-seconds",
        "--seconds",
        dest="consults_seconds",
        type=float,
        default=None,
        metavar="S",
        help=f"the starts are paced evenly over S seconds (default {FULL_SECONDS:g}, "
        f"{QUICK_SECONDS:g} with --quick)",
    )
    group.add_argument(
        "--consults-agents",
        type=int,
        default=AGENTS,
        metavar="N",
        help=f"customer_service agents, each connected (default {AGENTS})",
    )
    group.add_argument(
        "--consults-max-open",
        type=int,
        default=None,
        metavar="N",
        help="max_open_per_agent in the shop's consults.toml (default: room for "
        f"{ASSIGNED_SHARE * 100:.0f}%% of the visitors among the agents; the rest queue)",
    )
    group.add_argument(
        "--consults-concurrency",
        type=int,
        default=CONCURRENCY,
        metavar="N",
        help=f"starts in flight at most (default {CONCURRENCY})",
    )


@dataclass(frozen=True)
class Settings:
    visitors: int
    seconds: float
    agents: int
    capacity: int
    concurrency: int
    quick: bool

    @classmethod
    def from_options(cls, options: argparse.Namespace) -> Settings:
        quick = bool(getattr(options, "quick", False))
        visitors = getattr(options, "consults_visitors", None) or (
            QUICK_VISITORS if quick else FULL_VISITORS
        )
        seconds = getattr(options, "consults_seconds", None) or (
            QUICK_SECONDS if quick else FULL_SECONDS
        )
        agents = int(getattr(options, "consults_agents", AGENTS))
        capacity = getattr(options, "consults_max_open", None) or max(
            1, math.ceil(visitors * ASSIGNED_SHARE / max(agents, 1))
        )
        concurrency = int(getattr(options, "consults_concurrency", CONCURRENCY))
        if visitors < 1 or seconds <= 0:
            raise ValueError("--consults-visitors at least 1, --consults-seconds above 0")
        if not 1 <= agents <= 1000:
            raise ValueError("--consults-agents: 1 to 1,000")
        if not 1 <= capacity <= 1000:
            raise ValueError("--consults-max-open: 1 to 1,000 (consults.toml's bounds)")
        if concurrency < 1:
            raise ValueError("--consults-concurrency: at least 1")
        return cls(visitors, float(seconds), agents, capacity, concurrency, quick)

    @property
    def expected_assigned(self) -> int:
        return min(self.visitors, self.agents * self.capacity)


# --- what the agents hear ------------------------------------------------------------


@dataclass
class Board:
    """Every `message` frame the agents' connections got, as the timings need them."""

    first_any: dict[str, float] = field(default_factory=dict)  # conv -> first frame at staff
    assigned: dict[str, tuple[float, str]] = field(default_factory=dict)  # conv -> (t, agent)
    queued: dict[str, float] = field(default_factory=dict)  # conv -> first consult_queued
    opened: dict[str, Counter[str]] = field(default_factory=dict)  # agent -> conv -> notes
    seen: set[tuple[str, str, int]] = field(default_factory=set)  # (agent, conv, seq)
    duplicates: int = 0
    frames: int = 0
    messages: int = 0
    problems: list[str] = field(default_factory=list)

    def take(self, agent: str, data: str | bytes, at: float) -> None:
        self.frames += 1
        frame = orjson.loads(data)
        op = frame.get("op")
        if op == "error":
            self.problems.append(f"agent {agent}: {str(frame)[:300]}")
            return
        if op != "message":
            return
        self.messages += 1
        conv, seq = str(frame.get("conv")), int(frame.get("seq", -1))
        if (agent, conv, seq) in self.seen:
            self.duplicates += 1
            return
        self.seen.add((agent, conv, seq))
        self.first_any.setdefault(conv, at)
        meta = frame.get("meta") or {}
        event = meta.get("event")
        consult = meta.get("consult") or {}
        if event == "consult_opened":
            self.opened.setdefault(agent, Counter())[conv] += 1
        elif event == "consult_assigned" and consult.get("assignee") == agent:
            self.assigned.setdefault(conv, (at, agent))
        elif event == "consult_queued":
            self.queued.setdefault(conv, at)


async def connect_agent(url: str, agent: SeededUser) -> ClientConnection:
    ws = await connect(url, **WS_OPTIONS)
    await ws.send(hello_frame(agent.token, "bench-agent", None).decode())
    async with asyncio.timeout(CONNECT_TIMEOUT_S):
        while True:
            frame = orjson.loads(await ws.recv())
            if frame.get("op") == "welcome":
                return ws
            if frame.get("op") == "error":
                raise RuntimeError(f"agent {agent.username} refused: {frame}")


async def listen(ws: ClientConnection, agent: str, board: Board) -> None:
    """Read every frame until the connection closes (or the task is cancelled)."""
    try:
        async for data in ws:
            board.take(agent, data, time.perf_counter())
    except ConnectionClosed as exc:
        board.problems.append(f"agent {agent}: connection closed during the run: {exc}")
        return
    board.problems.append(f"agent {agent}: the server closed the connection")


# --- the visitors --------------------------------------------------------------------


@dataclass
class Start:
    """One visitor's start: when it went out and what came back."""

    index: int
    due: float  # its place in the pacing, seconds after the first
    sent: float = 0.0  # perf_counter just before the request
    answered: float = 0.0
    status_code: int = 0
    consult: dict[str, Any] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.consult is not None and self.error is None


def visitor_body(index: int) -> dict[str, Any]:
    """A visitor as the page, the widget or a QR code brings them; a first question."""
    body: dict[str, Any] = {
        "name": f"{NAMES[index % len(NAMES)]} {index}",
        "language": "en" if index % 4 == 3 else "zh-CN",
        "text": QUESTIONS[index % len(QUESTIONS)],
        "device": "bench-visitor",
    }
    kind = index % 3
    if kind == 1:
        sku = SKUS[index % len(SKUS)]
        body.update(source="widget", sku=sku, page_url=f"https://shop.example/p/{sku.lower()}")
    elif kind == 2:
        body.update(source="qr", tag="counter")
    else:
        body.update(source="page")
    if index % 5 == 0:
        body["phone"] = f"+86 138 0000 {index % 10_000:04d}"
    return body


async def start_one(http: httpx.AsyncClient, start: Start) -> None:
    body = visitor_body(start.index)
    start.sent = time.perf_counter()
    try:
        resp = await http.post("/api/consults/start", json=body)
    except httpx.HTTPError as exc:
        start.answered = time.perf_counter()
        start.error = f"{type(exc).__name__}: {exc}"
        return
    start.answered = time.perf_counter()
    start.status_code = resp.status_code
    if resp.status_code != 201:
        start.error = f"status {resp.status_code}: {resp.text[:300]}"
        return
    consult = resp.json().get("consult")
    if not isinstance(consult, dict) or not isinstance(consult.get("id"), str):
        start.error = f"an answer without a consult: {resp.text[:300]}"
        return
    start.consult = consult


async def start_all(
    base_url: str, settings: Settings, progress: Progress
) -> tuple[list[Start], float]:
    """Every start on its schedule, at most `concurrency` in flight; (starts, t0)."""
    interval = settings.seconds / settings.visitors
    starts = [Start(i, i * interval) for i in range(settings.visitors)]
    gate = asyncio.Semaphore(settings.concurrency)
    limits = httpx.Limits(
        max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency
    )
    tasks: set[asyncio.Task[None]] = set()

    async def one(start: Start) -> None:
        try:
            await start_one(http, start)
        finally:
            gate.release()
            progress.advance(1)

    async with httpx.AsyncClient(
        base_url=base_url, timeout=START_TIMEOUT_S, trust_env=False, limits=limits
    ) as http:
        t0 = time.perf_counter()
        for start in starts:  # bounded: one pass over the visitors
            delay = t0 + start.due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await gate.acquire()
            task = asyncio.create_task(one(start))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=START_TIMEOUT_S + 5)
            for task in late:
                task.cancel()
    for start in starts:
        if not start.ok and start.error is None:
            start.error = "no answer in time"
    return starts, t0


async def drain(board: Board, starts: Sequence[Start], agents: Sequence[str]) -> float:
    """Until every notification due has come (bounded), then a settle; seconds waited."""
    began = time.perf_counter()
    ok = [s.consult for s in starts if s.consult is not None]
    ids = [c["id"] for c in ok]
    assigned = [c["id"] for c in ok if c.get("status") == "open"]
    queued = [c["id"] for c in ok if c.get("status") == "queued"]
    while time.perf_counter() - began < DRAIN_MAX_S:
        if (
            all(i in board.first_any for i in ids)
            and all(i in board.assigned for i in assigned)
            and all(i in board.queued for i in queued)
            and all(len(board.opened.get(a, ())) >= len(ids) for a in agents)
        ):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(SETTLE_S)
    return time.perf_counter() - began


# --- the inbox -----------------------------------------------------------------------


@dataclass
class Inbox:
    listed: list[dict[str, Any]]
    total: int
    counts: dict[str, int]
    pages: int
    page_ms: list[float]
    mine: dict[str, dict[str, Any]]  # agent -> {"total", "counts"}
    problems: list[str]


async def read_inbox(
    base_url: str, admin: SeededUser, agents: Sequence[SeededUser], expected: int
) -> Inbox:
    """The admin's whole `all` view page by page, and each agent's `mine` view."""
    listed: list[dict[str, Any]] = []
    page_ms: list[float] = []
    problems: list[str] = []
    total, counts, pages = 0, {}, 0
    max_pages = expected // PAGE + 5
    async with httpx.AsyncClient(
        base_url=base_url, timeout=INBOX_TIMEOUT_S, trust_env=False
    ) as http:
        headers = {"Authorization": f"Bearer {admin.token}"}
        offset = 0
        while pages < max_pages:  # bounded: the total says when to stop
            params = [
                ("view", "all"),
                ("status", "queued"),
                ("status", "open"),
                ("limit", str(PAGE)),
                ("offset", str(offset)),
            ]
            clock = time.perf_counter()
            resp = await http.get("/api/consults", params=params, headers=headers)
            page_ms.append((time.perf_counter() - clock) * 1000)
            pages += 1
            if resp.status_code != 200:
                problems.append(f"inbox page at {offset}: {resp.status_code} {resp.text[:300]}")
                break
            body = resp.json()
            page = body.get("consults") or []
            total, counts = int(body.get("total", -1)), dict(body.get("counts") or {})
            listed.extend(page)
            offset += len(page)
            if not page or offset >= total:
                break
        mine: dict[str, dict[str, Any]] = {}
        for agent in agents:
            resp = await http.get(
                "/api/consults",
                params={"view": "mine", "limit": "1"},
                headers={"Authorization": f"Bearer {agent.token}"},
            )
            if resp.status_code != 200:
                problems.append(f"{agent.username}'s inbox: {resp.status_code} {resp.text[:300]}")
                continue
            body = resp.json()
            mine[agent.id] = {"total": body.get("total"), "counts": body.get("counts") or {}}
    return Inbox(listed, total, counts, pages, page_ms, mine, problems)


def check_inbox(
    inbox: Inbox, starts: Sequence[Start], agents: Sequence[str], capacity: int
) -> dict[str, int]:
    """Violations of what the inbox must be after the rush, by kind; each should be 0."""
    answered = {s.consult["id"]: s.consult for s in starts if s.consult is not None}
    listed_ids = Counter(str(c.get("id")) for c in inbox.listed)
    by_id = {str(c.get("id")): c for c in inbox.listed}
    open_of: Counter[str] = Counter()
    positions: dict[str, list[int]] = {}
    bad_state = 0
    for consult in inbox.listed:
        assignee = (consult.get("assignee") or {}).get("id")
        position = consult.get("position")
        status = consult.get("status")
        if status == "open" and assignee is not None and position is None:
            open_of[assignee] += 1
        elif status == "queued" and assignee is None and isinstance(position, int):
            positions.setdefault(str(consult.get("queue")), []).append(position)
        else:
            bad_state += 1
    queued = sum(len(p) for p in positions.values())
    gaps = 0
    for found in positions.values():
        want = Counter(range(1, len(found) + 1))
        gaps += sum(((Counter(found) - want) + (want - Counter(found))).values())
    shares = [open_of.get(a, 0) for a in agents]
    room_left = sum(1 for n in shares if n < capacity) if queued else 0
    moved = 0
    for consult_id, answer in answered.items():
        now = by_id.get(consult_id)
        if now is None:
            continue
        moved += _state(answer) != _state(now)
    counts_wrong = 0
    counts_wrong += inbox.total != len(inbox.listed)
    counts_wrong += inbox.counts.get("all") != len(inbox.listed)
    counts_wrong += inbox.counts.get("unassigned") != queued
    counts_wrong += inbox.counts.get("mine", 0) != 0  # the admin holds none
    for agent in agents:
        view = inbox.mine.get(agent)
        if view is None:
            counts_wrong += 1
            continue
        theirs = open_of.get(agent, 0)
        counts_wrong += view["total"] != theirs
        counts_wrong += view["counts"].get("mine") != theirs
        counts_wrong += view["counts"].get("role") != len(inbox.listed)
        counts_wrong += view["counts"].get("unassigned") != queued
    return {
        "missing": sum(1 for i in answered if i not in listed_ids),
        "listed_twice": sum(n - 1 for n in listed_ids.values() if n > 1),
        "stray": sum(1 for i in listed_ids if i not in answered),
        "bad_state": bad_state,
        "agents_over_limit": sum(1 for n in shares if n > capacity),
        "queue_position_gaps": gaps,
        "queued_while_an_agent_had_room": room_left,
        "round_robin_uneven": int(bool(shares) and max(shares) - min(shares) > 1),
        "changed_since_the_answer": moved,
        "totals_and_counts_wrong": int(counts_wrong),
        "inbox_requests_failed": len(inbox.problems),
    }


def _state(consult: dict[str, Any]) -> tuple[Any, Any, Any]:
    return (
        consult.get("status"),
        (consult.get("assignee") or {}).get("id"),
        consult.get("position"),
    )


def check_notifications(
    board: Board, starts: Sequence[Start], agents: Sequence[str]
) -> dict[str, int]:
    """What the agents should have heard and did not (or heard twice); each should be 0."""
    ok = [s.consult for s in starts if s.consult is not None]
    ids = {c["id"] for c in ok}
    assigned = {c["id"]: (c.get("assignee") or {}).get("id") for c in ok if c["status"] == "open"}
    queued = [c["id"] for c in ok if c["status"] == "queued"]
    opened_missing = opened_twice = 0
    for agent in agents:
        heard = board.opened.get(agent, Counter())
        opened_missing += sum(1 for i in ids if heard.get(i, 0) == 0)
        opened_twice += sum(n - 1 for n in heard.values() if n > 1)
    return {
        "first_notification_missing": sum(1 for i in ids if i not in board.first_any),
        "assigned_note_missing": sum(1 for i in assigned if i not in board.assigned),
        "assigned_to_another_agent": sum(
            1 for i, a in assigned.items() if i in board.assigned and board.assigned[i][1] != a
        ),
        "queued_note_missing": sum(1 for i in queued if i not in board.queued),
        "opened_note_missing_at_an_agent": opened_missing,
        "opened_note_twice_at_an_agent": opened_twice,
        "frames_twice": board.duplicates,
        "connection_problems": len(board.problems),
    }


# --- the run -------------------------------------------------------------------------


@dataclass
class Measured:
    starts: list[Start]
    t0: float
    board: Board
    drain_s: float
    server_cpu_s: float
    client_cpu_s: float  # this process: the visitors and the agents
    machine_cpu_s: float  # every process on the machine, ours and anyone else's
    phase_s: float
    inbox: Inbox


async def drive(
    server: BenchServer,
    agents: Sequence[SeededUser],
    admin: SeededUser,
    settings: Settings,
    progress: Progress,
) -> Measured:
    board = Board()
    progress.set_note("agents connecting")
    sockets = await asyncio.gather(*(connect_agent(ws_url(server), a) for a in agents))
    listeners = [
        asyncio.create_task(listen(ws, a.id, board)) for ws, a in zip(sockets, agents, strict=True)
    ]
    try:
        progress.set_note(f"{settings.visitors:,} visitors starting")
        cpu, own, machine = (
            tree_cpu_seconds(server.pid),
            time.process_time(),
            machine_busy_seconds(),
        )
        clock = time.perf_counter()
        starts, t0 = await start_all(server.base_url, settings, progress)
        progress.set_note("waiting for the last notifications")
        drain_s = await drain(board, starts, [a.id for a in agents])
        phase_s = time.perf_counter() - clock
        server_cpu_s = tree_cpu_seconds(server.pid) - cpu
        client_cpu_s = time.process_time() - own
        machine_cpu_s = machine_busy_seconds() - machine
    finally:
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        for ws in sockets:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 5)
    progress.set_note("reading the inbox back")
    ok = sum(1 for s in starts if s.ok)
    inbox = await read_inbox(server.base_url, admin, agents, ok)
    progress.advance(1)
    return Measured(
        starts, t0, board, drain_s, server_cpu_s, client_cpu_s, machine_cpu_s, phase_s, inbox
    )


def write_rules(data_dir: Path, capacity: int) -> str:
    rules = RULES.format(capacity=capacity, queue=QUEUE)
    workflows = data_dir / "workflows"
    workflows.mkdir(parents=True, exist_ok=True)
    (workflows / "consults.toml").write_text(rules, encoding="utf-8")
    return rules


def server_log_problems(server: BenchServer) -> list[str]:
    """Lines of the server's log that say something went wrong."""
    try:
        text = server.log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [
        line
        for line in text.splitlines()
        if "Traceback" in line or " ERROR " in line or line.startswith("ERROR")
    ]


def run(options: argparse.Namespace) -> dict[str, Any]:
    settings = Settings.from_options(options)
    with Progress(NAME, settings.visitors + 1) as progress, scratch_dir("consults-") as work:
        data_dir = work / "data"
        progress.set_note("seeding staff")
        agents = seed_users(data_dir, settings.agents, prefix="agent", role=Role.CUSTOMER_SERVICE)
        [admin] = seed_users(data_dir, 1, prefix="admin", role=Role.ADMIN)
        rules = write_rules(data_dir, settings.capacity)
        progress.set_note("starting the server")
        with started_server(data_dir) as server:
            measured = uvloop.run(drive(server, agents, admin, settings, progress))
            rss = rss_kib(server.pid)
            log_problems = server_log_problems(server)
    agent_ids = [a.id for a in agents]
    violations = check_inbox(measured.inbox, measured.starts, agent_ids, settings.capacity)
    missed = check_notifications(measured.board, measured.starts, agent_ids)
    rows = build_rows(settings, measured, violations, missed)
    rows.append(row(NAME, "server RSS after the run", rss / 1024, "MiB"))
    errors = collect_errors(measured, violations, missed, log_problems)
    return {
        "rows": rows,
        "settings": settings_document(settings, rules),
        "checks": {
            "inbox_violations": violations,
            "inbox_violations_total": sum(violations.values()),
            "notifications": missed,
            "notifications_total": sum(missed.values()),
            "failed_starts": sum(1 for s in measured.starts if not s.ok),
            "server_log_problems": len(log_problems),
            "inbox_total": measured.inbox.total,
            "inbox_counts": measured.inbox.counts,
            "inbox_pages": measured.inbox.pages,
            "agents_open": _agent_shares(measured.inbox, agent_ids),
        },
        "samples": samples(measured, log_problems),
        "errors": errors,
    }


def _agent_shares(inbox: Inbox, agents: Sequence[str]) -> list[int]:
    shares = Counter(
        (c.get("assignee") or {}).get("id") for c in inbox.listed if c.get("status") == "open"
    )
    return [shares.get(a, 0) for a in agents]


def _ms(values: Sequence[float]) -> list[float]:
    return [v * 1000 for v in values]


def latencies(measured: Measured) -> dict[str, list[float]]:
    """Seconds from each start's send: to the first frame at staff, to its agent, to its
    queued note; and the answer itself."""
    board = measured.board
    first, assigned, queued, answer = [], [], [], []
    for start in measured.starts:
        if start.consult is None:
            continue
        consult_id = start.consult["id"]
        answer.append(start.answered - start.sent)
        if consult_id in board.first_any:
            first.append(board.first_any[consult_id] - start.sent)
        if consult_id in board.assigned:
            assigned.append(board.assigned[consult_id][0] - start.sent)
        if consult_id in board.queued:
            queued.append(board.queued[consult_id] - start.sent)
    return {"first": first, "assigned": assigned, "queued": queued, "answer": answer}


def _percentile_rows(label: str, values_ms: Sequence[float], quantiles: Sequence[int]) -> list[Row]:
    if not values_ms:
        return [row(NAME, f"{label}: none measured", 0, "ms")]
    rows = [row(NAME, f"{label} p{q}", percentile(values_ms, q), "ms") for q in quantiles]
    rows.append(row(NAME, f"{label} max", max(values_ms), "ms"))
    return rows


def build_rows(
    settings: Settings,
    measured: Measured,
    violations: dict[str, int],
    missed: dict[str, int],
) -> list[Row]:
    times = {k: _ms(v) for k, v in latencies(measured).items()}
    ok = [s for s in measured.starts if s.ok]
    statuses = Counter(str(s.consult.get("status")) for s in ok if s.consult is not None)
    rows: list[Row] = []
    rows += _percentile_rows("first staff notification", times["first"], (50, 95, 99))
    rows += _percentile_rows(
        f"assigned agent's note ({statuses['open']:,} assigned)", times["assigned"], (50, 95, 99)
    )
    rows += _percentile_rows(
        f"queued note at staff ({statuses['queued']:,} queued)", times["queued"], (50, 99)
    )
    rows += _percentile_rows("POST /api/consults/start answer", times["answer"], (50, 99))
    span = max((s.answered for s in ok), default=measured.t0) - min(
        (s.sent for s in ok), default=measured.t0
    )
    lateness = [max(0.0, (s.sent - measured.t0 - s.due) * 1000) for s in measured.starts if s.sent]
    rows += [
        row(NAME, "starts/s achieved", len(ok) / span if span > 0 else 0.0, "starts/s")
        | {"reference": "starts/s planned"},
        row(NAME, "starts/s planned", settings.visitors / settings.seconds, "starts/s"),
        row(NAME, "start sent late vs the pacing, p99", percentile(lateness, 99), "ms"),
        row(NAME, "consults started", len(ok), f"of {settings.visitors:,}"),
        row(NAME, "consults assigned", statuses["open"], "consults")
        | {"expected": settings.expected_assigned},
        row(NAME, "consults queued", statuses["queued"], "consults")
        | {"expected": len(ok) - settings.expected_assigned},
        row(NAME, "inbox violations (expected 0)", sum(violations.values()), "violations"),
        row(NAME, "notifications missing or doubled (expected 0)", sum(missed.values()), "frames"),
        row(NAME, "server CPU, starts and drain", measured.server_cpu_s, "CPU s"),
        row(
            NAME,
            "server CPU per consult",
            measured.server_cpu_s * 1000 / max(len(ok), 1),
            "CPU ms",
        ),
        row(
            NAME,
            "server CPU, share of one core",
            100 * measured.server_cpu_s / measured.phase_s if measured.phase_s else 0.0,
            "%",
        ),
        row(
            NAME,
            "load generator CPU (visitors and agents), share of one core",
            100 * measured.client_cpu_s / measured.phase_s if measured.phase_s else 0.0,
            "%",
        ),
        row(
            NAME,
            f"machine CPU busy, all processes ({os.cpu_count()} cores)",
            100 * measured.machine_cpu_s / measured.phase_s if measured.phase_s else 0.0,
            "% of one core",
        ),
        row(
            NAME,
            f"inbox page of {PAGE}, admin view=all, median",
            statistics.median(measured.inbox.page_ms) if measured.inbox.page_ms else 0.0,
            "ms",
        ),
    ]
    return rows


def collect_errors(
    measured: Measured,
    violations: dict[str, int],
    missed: dict[str, int],
    log_problems: Sequence[str],
) -> list[str]:
    errors: list[str] = []
    failed = [s for s in measured.starts if not s.ok]
    if failed:
        errors.append(f"{len(failed)} starts failed; first: {failed[0].error}")
    bad = {k: v for k, v in violations.items() if v}
    if bad:
        errors.append(f"inbox violations: {bad}")
    bad = {k: v for k, v in missed.items() if v}
    if bad:
        errors.append(f"notifications: {bad}")
    errors += measured.inbox.problems[:SAMPLE_ERRORS]
    errors += measured.board.problems[:SAMPLE_ERRORS]
    if log_problems:
        errors.append(
            f"{len(log_problems)} error lines in the server's log; first: {log_problems[0][:300]}"
        )
    return errors


def samples(measured: Measured, log_problems: Sequence[str]) -> dict[str, Any]:
    board = measured.board
    consults: list[dict[str, Any]] = []
    for start in measured.starts:
        item: dict[str, Any] = {
            "i": start.index,
            "due_s": round(start.due, 4),
            "sent_s": round(start.sent - measured.t0, 4) if start.sent else None,
        }
        if start.consult is None:
            item["error"] = start.error
        else:
            consult_id = start.consult["id"]
            item.update(
                id=consult_id,
                status=start.consult.get("status"),
                assignee=(start.consult.get("assignee") or {}).get("id"),
                position=start.consult.get("position"),
                answer_ms=round((start.answered - start.sent) * 1000, 3),
            )
            for key, at in (
                ("first_ms", board.first_any.get(consult_id)),
                ("assigned_ms", (board.assigned.get(consult_id) or (None,))[0]),
                ("queued_ms", board.queued.get(consult_id)),
            ):
                item[key] = None if at is None else round((at - start.sent) * 1000, 3)
        consults.append(item)
    return {
        "consults": consults,
        "drain_s": round(measured.drain_s, 3),
        "phase_s": round(measured.phase_s, 3),
        "server_cpu_s": round(measured.server_cpu_s, 3),
        "client_cpu_s": round(measured.client_cpu_s, 3),
        "machine_cpu_s": round(measured.machine_cpu_s, 3),
        "frames_at_agents": board.frames,
        "message_frames_at_agents": board.messages,
        "inbox_page_ms": [round(ms, 3) for ms in measured.inbox.page_ms],
        "inbox_problems": measured.inbox.problems[:SAMPLE_ERRORS],
        "connection_problems": board.problems[:SAMPLE_ERRORS],
        "server_log_problems": list(log_problems[:SAMPLE_ERRORS]),
    }


def settings_document(settings: Settings, rules: str) -> dict[str, Any]:
    return {
        "visitors": settings.visitors,
        "seconds": settings.seconds,
        "agents": settings.agents,
        "max_open_per_agent": settings.capacity,
        "expected_assigned": settings.expected_assigned,
        "concurrency": settings.concurrency,
        "consults_toml": rules,
        "server": "orderchat serve, SQLite, --rate-limits off (every visitor is 127.0.0.1)",
        "client": "one httpx AsyncClient (keep-alive pool of `concurrency`), uvloop, "
        "the agents' WebSocket connections in the same event loop",
        "first staff notification": "from just before POST /api/consults/start is sent to the "
        "first `message` frame of the consult's conversation at any agent's connection",
        "assigned agent's note": "to the `consult_assigned` frame naming the agent, on that "
        "agent's own connection",
        "server_cpu": "utime+stime of the server's process tree from /proc, from the first "
        "start to the end of the drain",
    }
