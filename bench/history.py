"""Workload `history` (W4): pages of a conversation with 1,000,000 messages.

Sending a million messages over the WebSocket would take minutes and measure
the writer, not history. So, before the server starts, the conversation is
written straight into the data dir with the server's own write path: two users
are seeded (`bench/_seed.py`), the direct conversation between them is made by
the server's `CreateConversation` operation, and the messages are appended by
`WriteTxn.append_message` and stored by `WriteTxn.flush`, 20,000 per
transaction, exactly as the group-commit writer does for sends: messages with
seq 1..N and their hash chain, one `message` event each, the conversation's
`last_seq`/`last_hash`/`last_activity_ms`, the sender's read mark and the event
stream's head. The two users take turns as the sender; every message has a
client `ref` and about 100 characters of text.

Then the server starts on that data dir, and one member reads pages of 50 over
one keep-alive HTTP connection, one request after the other:

| page | request |
|---|---|
| newest | `GET /api/conversations/{id}/messages?limit=50` |
| middle | `...?before={N/2}&limit=50` |
| random | `...?before=R&limit=50`, R drawn anew for each request |
| oldest | `...?after=0&limit=50` |

Each page must hold the 50 messages it names, in ascending seq. The target is
p99 under 20 ms for every page.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from bench._report import Progress, Row, row
from bench._seed import SeededUser, seed_users
from bench._server import rss_kib, scratch_dir
from bench.fanout import percentile, started_server
from orderchat.core.ids import ConversationId, UserId
from orderchat.core.model import ConversationKind, MessageKind, NewConversation
from orderchat.services.chat.conversations import CreateConversation
from orderchat.services.ports import SystemClock, system_ids
from orderchat.services.writer import WriteTxn
from orderchat.settings import Settings
from orderchat.storage import accounts as account_store
from orderchat.storage.engine import Database
from orderchat.storage.stream import CounterPositions

NAME = "history"
DESCRIPTION = "pages of 50 from a conversation of 1,000,000 messages: newest, middle, random"

FULL_MESSAGES = 1_000_000
QUICK_MESSAGES = 10_000
FULL_REQUESTS = 500
QUICK_REQUESTS = 50
PAGE = 50
BATCH = 20_000
WARMUP = 10  # untimed requests of each page before the timed ones
TARGET_P99_MS = 20.0
TEXT_CHARS = 100
SEED = 20240601  # the random pages are the same in every run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("history workload")
    group.add_argument(
        "--history-messages",
        type=int,
        default=None,
        metavar="N",
        help=f"messages in the conversation (default {FULL_MESSAGES:,}, "
        f"{QUICK_MESSAGES:,} with --quick)",
    )
    group.add_argument(
        "--history-requests",
        type=int,
        default=None,
        metavar="N",
        help=f"timed requests of each page (default {FULL_REQUESTS}, "
        f"{QUICK_REQUESTS} with --quick)",
    )


def message_text(seq: int) -> str:
    head = f"message {seq}: the order ships on Tuesday, invoice to follow"
    return (head + " " + "." * TEXT_CHARS)[:TEXT_CHARS]


async def _positions(conn: AsyncConnection) -> CounterPositions:
    """Stream positions as the server's SQLite writer takes them: the head counter."""
    positions = CounterPositions()
    await positions.begin(conn)
    return positions


async def seed_history(
    data_dir: Path,
    first: SeededUser,
    second: SeededUser,
    count: int,
    progress: Progress | None = None,
) -> str:
    """Write a direct conversation of `count` messages as the server would; its id."""
    db = Database(Settings(data_dir=data_dir).resolved_database_url)
    try:
        async with db.write("bench_history_conversation") as conn:
            user = await account_store.get_user(conn, UserId(first.id))
            tx = WriteTxn(conn, _now_ms(), _IDS, await _positions(conn), {})
            view = await CreateConversation(
                user, NewConversation(ConversationKind.DIRECT, None, (UserId(second.id),))
            ).apply(tx)
            await tx.flush(set())
        conv_id = ConversationId(view.conv.id)
        senders = (UserId(first.id), UserId(second.id))
        done = 0
        while done < count:
            size = min(BATCH, count - done)
            async with db.write("bench_history_messages") as conn:
                tx = WriteTxn(conn, _now_ms(), _IDS, await _positions(conn), {})
                await tx.conversation(conv_id)
                await tx.members([conv_id])
                for seq in range(done + 1, done + size + 1):
                    await tx.append_message(
                        tx.convs[conv_id],
                        senders[seq % 2],
                        MessageKind.TEXT,
                        message_text(seq),
                        ref=f"hist-{seq:09d}",
                    )
                tx.deliveries.clear()  # nobody is connected: nothing to deliver
                await tx.flush({conv_id})
            done += size
            if progress is not None:
                progress.advance(size, f"seeding {done:,}/{count:,}")
    finally:
        await db.close()
    return conv_id


_IDS = system_ids(SystemClock())


def _now_ms() -> int:
    return int(time.time() * 1000)


def _db_bytes(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in data_dir.glob("orderchat.db*") if p.is_file())


def _sizes(options: argparse.Namespace) -> tuple[int, int]:
    quick = bool(getattr(options, "quick", False))
    count = getattr(options, "history_messages", None) or (
        QUICK_MESSAGES if quick else FULL_MESSAGES
    )
    requests = getattr(options, "history_requests", None) or (
        QUICK_REQUESTS if quick else FULL_REQUESTS
    )
    if count < 2 * PAGE or requests < 1:
        raise ValueError(f"--history-messages must be at least {2 * PAGE}, requests at least 1")
    return count, requests


def _pages(count: int, requests: int) -> dict[str, list[tuple[dict[str, int], range]]]:
    """Per page kind: (query parameters, the seqs the page must hold) for every request."""
    rng = random.Random(SEED)
    middle = count // 2
    newest = ({"limit": PAGE}, range(count - PAGE + 1, count + 1))
    mid = ({"before": middle, "limit": PAGE}, range(middle - PAGE, middle))
    oldest = ({"after": 0, "limit": PAGE}, range(1, PAGE + 1))
    randoms = []
    for _ in range(requests + WARMUP):
        before = rng.randint(PAGE + 1, count + 1)
        randoms.append(({"before": before, "limit": PAGE}, range(before - PAGE, before)))
    return {
        "newest": [newest] * (requests + WARMUP),
        "middle": [mid] * (requests + WARMUP),
        "random": randoms,
        "oldest": [oldest] * (requests + WARMUP),
    }


def run(options: argparse.Namespace) -> dict[str, Any]:
    count, requests = _sizes(options)
    pages = _pages(count, requests)
    settings: dict[str, Any] = {
        "messages": count,
        "requests_per_page": requests,
        "warmup_per_page": WARMUP,
        "page": PAGE,
        "batch": BATCH,
        "text_chars": TEXT_CHARS,
        "seeding": "server write path (CreateConversation, WriteTxn.append_message, "
        "WriteTxn.flush) before the server starts",
        "client": "httpx, one keep-alive connection, sequential requests",
        "target_p99_ms": TARGET_P99_MS,
    }
    errors: list[str] = []
    samples: dict[str, list[float]] = {}
    progress = Progress("history", count + len(pages) * (requests + WARMUP))
    with progress, scratch_dir("history-") as work:
        data_dir = work / "data"
        progress.set_note("seeding users")
        first, second = seed_users(data_dir, 2, prefix="hist")
        clock = time.perf_counter()
        conv = asyncio.run(seed_history(data_dir, first, second, count, progress))
        settings["seed_s"] = round(time.perf_counter() - clock, 3)
        settings["db_bytes"] = _db_bytes(data_dir)
        progress.set_note("starting the server")
        with started_server(data_dir) as server:
            headers = {"Authorization": f"Bearer {first.token}"}
            with httpx.Client(
                base_url=server.base_url,
                headers=headers,
                timeout=30,
                trust_env=False,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            ) as http:
                for kind, plan in pages.items():
                    samples[kind] = _measure(http, conv, kind, plan, errors, progress)
            settings["server_rss_kib"] = rss_kib(server.pid)
        settings["db_bytes_after"] = _db_bytes(data_dir)

    rows: list[Row] = []
    for kind, times in samples.items():
        if not times:
            continue
        rows += [
            row(NAME, f"{kind} page p50", statistics.median(times), "ms"),
            row(NAME, f"{kind} page p99", percentile(times, 99), "ms", target_ms=TARGET_P99_MS),
            row(NAME, f"{kind} page max", max(times), "ms"),
        ]
    rows += [
        row(NAME, "seeding", settings["seed_s"], "s"),
        row(NAME, "seeding rate", count / max(settings["seed_s"], 1e-9), "msg/s"),
        row(NAME, "database size", settings["db_bytes"] / 2**20, "MiB"),
        row(NAME, "database bytes per message", settings["db_bytes"] / count, "B"),
    ]
    worst = max((percentile(t, 99) for t in samples.values() if t), default=float("nan"))
    checks = {
        "target_p99_ms": TARGET_P99_MS,
        "worst_p99_ms": round(worst, 3),
        "target_met": worst < TARGET_P99_MS,
        "pages_ok": not errors,
    }
    return {
        "rows": rows,
        "settings": settings,
        "checks": checks,
        "samples": {k: [round(t, 3) for t in v] for k, v in samples.items()},
        "errors": errors,
    }


def _measure(
    http: httpx.Client,
    conv: str,
    kind: str,
    plan: list[tuple[dict[str, int], range]],
    errors: list[str],
    progress: Progress,
) -> list[float]:
    """Time each request of the plan (after the warm-up ones) and check its page."""
    path = f"/api/conversations/{conv}/messages"
    times: list[float] = []
    bad = 0
    for number, (params, expected) in enumerate(plan):
        started = time.perf_counter()
        resp = http.get(path, params=params)
        elapsed_ms = (time.perf_counter() - started) * 1000
        problem = _check_page(resp, expected)
        if problem is not None:
            bad += 1
            if bad <= 5:
                errors.append(f"{kind} page {params}: {problem}")
        if number >= WARMUP:
            times.append(elapsed_ms)
        progress.advance(1, f"{kind} pages")
    if bad > 5:
        errors.append(f"{kind}: {bad} bad pages in all")
    return times


def _check_page(resp: httpx.Response, expected: range) -> str | None:
    if resp.status_code != 200:
        return f"status {resp.status_code}: {resp.text[:200]}"
    messages = resp.json().get("messages")
    if not isinstance(messages, list):
        return "no message list"
    seqs = [m.get("seq") for m in messages]
    if seqs != list(expected):
        return f"seqs {seqs[:3]}..{seqs[-3:]} (len {len(seqs)}), expected {expected}"
    for message in messages:
        if message.get("text") != message_text(int(message["seq"])):
            return f"message {message['seq']} has the wrong text"
    return None
