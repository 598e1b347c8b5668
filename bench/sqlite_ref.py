"""Workload `sqlite`: how many message rows SQLite commits a second, by batch size.

The reference for every durable figure: the rate at which message-sized rows
(about 200 bytes of text plus id, conversation, seq, sender, ref and time) can
be made durable in SQLite in WAL mode with synchronous=FULL, when each
transaction carries 1, 10, 100 or 1,000 of them. One transaction costs one
fsync of the WAL, so the batch size decides the rate: this is the ceiling a
group-commit server approaches as its batches grow. The table, the connection
settings and the insert are those of the durable relay (`bench.relay`).

No server and no network: the inserts run in this process, into a database in
a scratch directory under `bench/.work/` (the filesystem the servers use), for
a fixed time per batch size, each into a fresh database.
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench._report import Progress, Row
from bench._server import scratch_dir
from bench.relay import Row as MessageRow
from bench.relay import insert_rows, open_database

NAME = "sqlite"
DESCRIPTION = "group-commit inserts of message rows into SQLite (WAL, synchronous=FULL)"

BATCHES = (1, 10, 100, 1000)
DEFAULT_SECONDS = 3.0
QUICK_SECONDS = 0.3
TEXT_BYTES = 200
CONVERSATIONS = 100
MAX_ROWS = 50_000_000  # a bound on any one phase, whatever the disk does


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sqlite workload")
    group.add_argument(
        "--sqlite-seconds",
        type=float,
        default=None,
        metavar="S",
        help=f"seconds of inserts per batch size (default {DEFAULT_SECONDS:g}, "
        f"{QUICK_SECONDS:g} with --quick)",
    )


def make_rows(start: int, count: int, seqs: list[int]) -> list[MessageRow]:
    """`count` message rows, numbered from `start`, spread over the conversations."""
    rows: list[MessageRow] = []
    ts = int(time.time() * 1000)
    for n in range(start, start + count):
        conv = n % CONVERSATIONS
        seqs[conv] += 1
        text = f"{time.time_ns()} {n} ".ljust(TEXT_BYTES, "x")
        rows.append((f"m{n}", f"c{conv}", seqs[conv], f"u{conv}", f"r{n}", text, ts))
    return rows


def insert_for(path: Path, batch: int, seconds: float, progress: Progress) -> dict[str, Any]:
    """Insert batches of `batch` rows for `seconds`; the counts, and what the database holds."""
    db = open_database(path)
    try:
        journal = str(db.execute("PRAGMA journal_mode").fetchone()[0])
        synchronous = int(db.execute("PRAGMA synchronous").fetchone()[0])
        seqs = [0] * CONVERSATIONS
        rows = commits = 0
        started = time.perf_counter()
        deadline = started + seconds
        last = started
        while rows < MAX_ROWS:
            insert_rows(db, make_rows(rows + 1, batch, seqs))
            rows += batch
            commits += 1
            now = time.perf_counter()
            progress.advance(now - last, f"batch {batch}: {rows:,} rows")
            last = now
            if now >= deadline:
                break
        elapsed = time.perf_counter() - started
        stored = int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
    finally:
        db.close()
    return {
        "batch": batch,
        "rows": rows,
        "commits": commits,
        "seconds": elapsed,
        "msg_per_s": rows / elapsed,
        "commits_per_s": commits / elapsed,
        "stored": stored,
        "journal_mode": journal,
        "synchronous": synchronous,
    }


def run(options: argparse.Namespace) -> dict[str, Any]:
    quick = bool(getattr(options, "quick", False))
    seconds = getattr(options, "sqlite_seconds", None) or (
        QUICK_SECONDS if quick else DEFAULT_SECONDS
    )
    if seconds <= 0:
        raise ValueError("--sqlite-seconds must be positive")
    phases: list[dict[str, Any]] = []
    errors: list[str] = []
    progress = Progress(NAME, seconds * len(BATCHES))
    failed = True
    try:
        with scratch_dir(f"{NAME}-") as work:
            for batch in BATCHES:
                phases.append(insert_for(work / f"batch-{batch}.db", batch, seconds, progress))
        failed = False
    finally:
        progress.close(failed=failed)

    for phase in phases:
        if phase["stored"] != phase["rows"]:
            errors.append(
                f"batch {phase['batch']}: {phase['rows']} rows inserted, {phase['stored']} stored"
            )
        if phase["journal_mode"] != "wal" or phase["synchronous"] != 2:
            errors.append(
                f"batch {phase['batch']}: journal_mode={phase['journal_mode']} "
                f"synchronous={phase['synchronous']}, expected wal and 2 (FULL)"
            )
    rows: list[Row] = [
        {"metric": f"insert batch {p['batch']}", "value": p["msg_per_s"], "unit": "msg/s"}
        for p in phases
    ]
    best = max(phases, key=lambda p: p["msg_per_s"])
    rows.append(
        {
            "metric": "insert best",
            "value": best["msg_per_s"],
            "unit": "msg/s",
            "batch": best["batch"],
        }
    )
    return {
        "rows": rows,
        "settings": {
            "seconds_per_batch": seconds,
            "batches": list(BATCHES),
            "text_bytes": TEXT_BYTES,
            "conversations": CONVERSATIONS,
            "journal_mode": "wal",
            "synchronous": "FULL",
            "sqlite_version": sqlite3.sqlite_version,
            "best_batch": best["batch"],
        },
        "checks": {"stored_ok": not errors},
        "samples": {"phases": phases},
        "errors": errors,
    }
