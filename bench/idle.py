"""Workload `idle` (W5): server memory per idle authenticated connection.

N connections (10,000; 200 with `--quick`), opened in five equal steps, each
one a different seeded user with one session that says hello and then stays
quiet. At 0 and after each step, once the server's resident memory has settled,
it is sampled. The figure is (RSS at N - RSS at 0) / N, in KiB; the slope
between the first and the last step, which leaves out whatever the server
allocates once for its first connections, is kept too.

Measured against OrderChat and against the plain relay (same wire, no
authentication, no storage) in the same run. The file-descriptor limit is raised
to its hard limit in the harness, which the servers inherit, and in the load
generator's worker processes.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._load import LoadPool, LoadUser, default_workers, load_pool, raise_fd_limit
from bench._report import Progress, Row
from bench._seed import seed_users
from bench._server import running_server, scratch_dir, tree_rss_kib

NAME = "idle"
DESCRIPTION = "memory per idle authenticated WebSocket connection, up to 10,000"

CONNECTIONS = 10_000
QUICK_CONNECTIONS = 200
STEPS = 5
CONNECT_CONCURRENCY = 100  # handshakes in flight per worker process
SETTLE_S = 1.0  # wait at least this long after a step before sampling
SETTLE_MAX_S = 10.0
SETTLE_TOLERANCE = 0.005  # RSS has settled when two samples 0.5 s apart differ less than this
QUICK_SETTLE_S = 0.2
TARGETS = ("orderchat", "relay")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("idle workload")
    group.add_argument(
        "--idle-connections",
        type=int,
        default=None,
        metavar="N",
        help=f"idle connections at the end (default {CONNECTIONS:,}, "
        f"{QUICK_CONNECTIONS} with --quick)",
    )
    group.add_argument(
        "--idle-workers",
        type=int,
        default=None,
        metavar="N",
        help=f"load generator processes holding the connections (default {default_workers()})",
    )


@dataclass(frozen=True)
class Settings:
    connections: int
    steps: tuple[int, ...]
    workers: int
    settle_s: float
    quick: bool

    @classmethod
    def from_options(cls, options: argparse.Namespace) -> Settings:
        quick = bool(getattr(options, "quick", False))
        total = getattr(options, "idle_connections", None) or (
            QUICK_CONNECTIONS if quick else CONNECTIONS
        )
        workers = getattr(options, "idle_workers", None) or default_workers()
        if total < STEPS or workers < 1:
            raise ValueError(f"--idle-connections must be at least {STEPS}")
        steps = tuple(round(total * n / STEPS) for n in range(STEPS + 1))
        return cls(
            connections=int(total),
            steps=steps,
            workers=int(workers),
            settle_s=QUICK_SETTLE_S if quick else SETTLE_S,
            quick=quick,
        )


@dataclass
class Target:
    name: str
    ws_url: str
    pid: int
    users: list[LoadUser]


@contextlib.contextmanager
def orderchat_target(count: int) -> Iterator[Target]:
    with scratch_dir("idle-") as work:
        data_dir = work / "data"
        seeded = seed_users(data_dir, count, prefix="idle")
        with running_server(data_dir) as server:
            users = [LoadUser(n, u.id, u.token) for n, u in enumerate(seeded)]
            yield Target("orderchat", f"ws://127.0.0.1:{server.port}/ws", server.pid, users)


@contextlib.contextmanager
def relay_target(count: int) -> Iterator[Target]:
    from bench._targets import running_relay

    users = [LoadUser(n, f"u{n:05d}", f"u{n:05d}") for n in range(count)]
    # One conversation, so that the relay has the shape it has in the steady workload.
    with running_relay({"idle": [users[0].user_id, users[-1].user_id]}, durable=False) as relay:
        yield Target("relay", relay.ws_url, relay.pid, users)


def settled_rss_kib(pid: int, minimum_s: float, quick: bool = False) -> int:
    """The server's RSS once two samples 0.5 s apart agree (or after SETTLE_MAX_S).

    With `quick`, one sample after `minimum_s`: the run checks that it works.
    """
    time.sleep(minimum_s)
    if quick:
        return tree_rss_kib(pid)
    deadline = time.monotonic() + SETTLE_MAX_S
    previous = tree_rss_kib(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        current = tree_rss_kib(pid)
        if abs(current - previous) <= SETTLE_TOLERANCE * max(previous, 1):
            return current
        previous = current
    return previous


def measure_target(
    target: Target, pool: LoadPool, settings: Settings, progress: Progress
) -> tuple[list[dict[str, Any]], list[str]]:
    errors: list[str] = []
    records: list[dict[str, Any]] = []
    try:
        progress.set_note(f"{target.name}: 0 connections")
        records.append(
            {
                "target": target.name,
                "connections": 0,
                "rss_kib": settled_rss_kib(target.pid, settings.settle_s, settings.quick),
                "connect_s": 0.0,
            }
        )
        for previous, count in zip(settings.steps, settings.steps[1:], strict=False):
            progress.set_note(f"{target.name}: {count:,} connections")
            started = time.monotonic()
            opened, connect_errors = pool.connect(
                target.ws_url, target.users[previous:count], CONNECT_CONCURRENCY
            )
            connect_s = time.monotonic() - started
            if opened != count - previous:
                errors.append(
                    f"{target.name}: {opened}/{count - previous} connections opened: "
                    f"{connect_errors[:3]}"
                )
            rss = settled_rss_kib(target.pid, settings.settle_s, settings.quick)
            records.append(
                {
                    "target": target.name,
                    "connections": pool.connection_count(),
                    "rss_kib": rss,
                    "connect_s": connect_s,
                }
            )
            progress.advance(1)
        stats = pool.stats()
        if stats.get("open", 0) != settings.connections or stats.get("closed", 0):
            errors.append(
                f"{target.name}: {stats.get('open', 0)}/{settings.connections} connections "
                f"still open at the end, {stats.get('closed', 0)} closed by the server: "
                f"{stats['error_texts'][:3]}"
            )
    finally:
        pool.disconnect()
    for record in records:
        record["rss_mib"] = record["rss_kib"] / 1024
    return records, errors


def per_connection_kib(records: list[dict[str, Any]]) -> tuple[float, float]:
    """(RSS at N - RSS at 0) / N, and the slope from the first step to the last."""
    first, last = records[0], records[-1]
    overall = (last["rss_kib"] - first["rss_kib"]) / max(last["connections"], 1)
    if len(records) > 2:
        step = records[1]
        slope = (last["rss_kib"] - step["rss_kib"]) / max(
            last["connections"] - step["connections"], 1
        )
    else:
        slope = overall
    return overall, slope


def build_rows(records: dict[str, list[dict[str, Any]]], settings: Settings) -> list[Row]:
    rows: list[Row] = []
    has_relay = "relay" in records
    n = settings.connections
    per_label = f"KiB per idle connection at {n:,}"
    slope_label = f"KiB per idle connection, {settings.steps[1]:,} to {n:,}"
    for target, recs in records.items():
        if len(recs) < 2:
            continue
        overall, slope = per_connection_kib(recs)
        reference = target == "orderchat" and has_relay
        rows += [
            {
                "metric": f"{target} {per_label}",
                "value": overall,
                "unit": "KiB",
                "reference": f"relay {per_label}" if reference else None,
            },
            {
                "metric": f"{target} {slope_label}",
                "value": slope,
                "unit": "KiB",
                "reference": f"relay {slope_label}" if reference else None,
            },
            {"metric": f"{target} RSS at 0", "value": recs[0]["rss_mib"], "unit": "MiB"},
            {
                "metric": f"{target} RSS at {recs[-1]['connections']:,}",
                "value": recs[-1]["rss_mib"],
                "unit": "MiB",
            },
        ]
    return rows


def run(options: argparse.Namespace) -> dict[str, Any]:
    settings = Settings.from_options(options)
    fd_limit = raise_fd_limit()
    records: dict[str, list[dict[str, Any]]] = {}
    errors: list[str] = []
    if fd_limit < settings.connections + 1000:
        errors.append(
            f"the open-file limit is {fd_limit}, too low for {settings.connections} connections"
        )
    seed_started = time.monotonic()
    with Progress("idle", len(TARGETS) * STEPS) as progress, load_pool(settings.workers) as pool:
        for name in TARGETS:
            opener = orderchat_target if name == "orderchat" else relay_target
            try:
                if name == "orderchat":
                    progress.set_note(f"orderchat: seeding {settings.connections:,} users")
                with opener(settings.connections) as target:
                    target_records, target_errors = measure_target(target, pool, settings, progress)
            except ImportError as exc:
                errors.append(f"{name}: the reference is not available: {exc}")
                progress.advance(STEPS)
                continue
            records[name] = target_records
            errors.extend(target_errors)
    rows = build_rows(records, settings)
    rows.append(
        {"metric": "load generator processes", "value": settings.workers, "unit": "processes"}
    )
    checks: dict[str, Any] = {}
    for target_name, recs in records.items():
        overall, slope = per_connection_kib(recs)
        checks[target_name] = {
            "connections": recs[-1]["connections"],
            "kib_per_connection": overall,
            "kib_per_connection_slope": slope,
            "connect_s": sum(r["connect_s"] for r in recs),
        }
    try:
        from bench._plots import plot_idle

        plot_idle(records, Path(options.out) / "idle-memory.png")
    except Exception as exc:  # a missing plot is reported, the figures still count
        errors.append(f"plotting failed: {type(exc).__name__}: {exc}")
    return {
        "rows": rows,
        "settings": {
            "connections": settings.connections,
            "steps": list(settings.steps),
            "users": "one seeded user per connection, one session each",
            "load_generator_processes": settings.workers,
            "connect_concurrency_per_process": CONNECT_CONCURRENCY,
            "settle_s": settings.settle_s,
            "fd_limit": fd_limit,
            "targets": list(records),
            "duration_s": time.monotonic() - seed_started,
        },
        "checks": checks,
        "samples": {"steps": [r for recs in records.values() for r in recs]},
        "errors": errors,
    }
