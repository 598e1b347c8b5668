"""Workload `steady` (W1): a fixed aggregate send rate, stepped up, over 200 connected users.

The users are in 100 direct conversations (pairs, every user in one) and two
channels of 20 members. 80 % of the messages go to the direct conversations
(0.8 % to each) and 20 % to the channels (10 % to each), like a shop where most
talk is one to one and a few team channels are busy; the sender of each message
is a member of its conversation drawn at random. So each message is due at 4.6
other members on average: 1 in a direct conversation, 19 in a channel.

Each target gets the same load, one after the other in the same run:
`orderchat` (a real server, SQLite, its default storage), `relay` (forwards at
once, stores nothing) and `durable relay` (stores each message in SQLite with
group commit and forwards after commit). The load generator runs in separate
worker processes (see `bench/_load.py`), each sending its share of the rate on a
fixed schedule without waiting for acks.

For each target and rate: end-to-end latency percentiles (send -> receipt at
each other member), deliveries per second, losses, duplicates, and the server's
CPU (% of one core) and resident memory. A target stops stepping once a step
clearly fails (p99 over 1 s, or anything lost).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from bench._load import (
    LoadConversation,
    LoadPool,
    LoadUser,
    StepResult,
    cpu_seconds,
    default_workers,
    load_pool,
    machine_busy_seconds,
    raise_fd_limit,
)
from bench._report import Progress, Row
from bench._seed import seed_users
from bench._server import running_server, scratch_dir, tree_rss_kib

NAME = "steady"
DESCRIPTION = "200 users, send rate stepped 50 -> 12,000 msg/s: latency, losses, CPU, RSS"

RATES = (50, 200, 500, 1000, 2000, 4000, 8000, 12000)
QUICK_RATES = (50, 200)
STEP_S = 20.0
QUICK_STEP_S = 2.0
USERS = 200
CHANNELS = 2
CHANNEL_MEMBERS = 20
DIRECT_SHARE = 0.8  # of all messages; the rest goes to the channels
P99_TARGET_MS = 200.0  # a step "holds" below this p99 with nothing lost
P99_FAIL_MS = 1000.0  # a step over this (or with losses) ends the target's stepping
DRAIN_IDLE_S = 5.0  # the drain ends after this long without a new delivery
QUICK_DRAIN_IDLE_S = 2.0
WARMUP_S = 1.0
QUICK_WARMUP_S = 0.3
WARMUP_RATE = 100.0
REFERENCE_RATE = 200  # p99 at this rate, OrderChat against the durable relay
TARGETS = ("orderchat", "relay", "durable relay")
# With --steady-baseline: the same server from another revision's source, measured
# in the same run, so a change to the hot path is judged against its own parent.
BASELINE = "orderchat baseline"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("steady workload")
    group.add_argument(
        "--steady-step-s",
        type=float,
        default=None,
        metavar="S",
        help=f"seconds at each rate (default {STEP_S:g}, {QUICK_STEP_S:g} with --quick)",
    )
    group.add_argument(
        "--steady-rates",
        type=_rates,
        default=None,
        metavar="R,R,...",
        help="aggregate send rates in msg/s (default "
        + ",".join(str(r) for r in RATES)
        + "; "
        + ",".join(str(r) for r in QUICK_RATES)
        + " with --quick)",
    )
    group.add_argument(
        "--steady-workers",
        type=int,
        default=None,
        metavar="N",
        help=f"load generator processes (default {default_workers()} here)",
    )
    group.add_argument(
        "--steady-targets",
        type=_targets,
        default=None,
        metavar="T,T,...",
        help="targets to measure (default all: orderchat,relay,durable-relay)",
    )
    group.add_argument(
        "--steady-baseline",
        type=Path,
        default=None,
        metavar="SRC",
        help="also measure the server of another checkout's src/ directory, as a baseline",
    )


def _rates(text: str) -> tuple[int, ...]:
    try:
        rates = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of rates: {text!r}") from None
    if not rates or min(rates) < 1:
        raise argparse.ArgumentTypeError("rates are positive integers")
    return rates


def _targets(text: str) -> tuple[str, ...]:
    names = tuple(part.strip().replace("-", " ") for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in TARGETS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"targets are among {', '.join(TARGETS)}")
    return names


@dataclass(frozen=True)
class Settings:
    rates: tuple[int, ...]
    step_s: float
    drain_idle_s: float
    workers: int
    targets: tuple[str, ...]
    quick: bool
    baseline: Path | None = None

    @classmethod
    def from_options(cls, options: argparse.Namespace) -> Settings:
        quick = bool(getattr(options, "quick", False))
        rates = getattr(options, "steady_rates", None) or (QUICK_RATES if quick else RATES)
        step_s = getattr(options, "steady_step_s", None) or (QUICK_STEP_S if quick else STEP_S)
        workers = getattr(options, "steady_workers", None) or default_workers()
        targets = getattr(options, "steady_targets", None) or TARGETS
        baseline = getattr(options, "steady_baseline", None)
        if baseline is not None:
            if not (baseline / "orderchat" / "__init__.py").is_file():
                raise ValueError(f"--steady-baseline {baseline} holds no orderchat package")
            targets = (*targets, BASELINE)
        if step_s <= 0 or workers < 1:
            raise ValueError("--steady-step-s and --steady-workers must be positive")
        return cls(
            rates=tuple(rates),
            step_s=float(step_s),
            drain_idle_s=QUICK_DRAIN_IDLE_S if quick else DRAIN_IDLE_S,
            workers=int(workers),
            targets=tuple(targets),
            quick=quick,
            baseline=baseline,
        )


# --- who talks to whom ---------------------------------------------------------------


@dataclass(frozen=True)
class Topology:
    """User indices 0..199; conversations as lists of member indices with their weights."""

    directs: tuple[tuple[int, int], ...]
    channels: tuple[tuple[int, ...], ...]

    @classmethod
    def make(cls) -> Topology:
        directs = tuple((2 * n, 2 * n + 1) for n in range(USERS // 2))
        # Channel members spread over all users (and so over every load worker).
        step = USERS // CHANNEL_MEMBERS
        channels = tuple(
            tuple(range(offset, USERS, step))[:CHANNEL_MEMBERS]
            for offset in (0, step // 2)[:CHANNELS]
        )
        return cls(directs, channels)

    def conversations(
        self, direct_ids: Sequence[str], channel_ids: Sequence[str]
    ) -> list[LoadConversation]:
        direct_weight = DIRECT_SHARE / len(self.directs)
        channel_weight = (1 - DIRECT_SHARE) / len(self.channels)
        convs = [
            LoadConversation(conv_id, pair, direct_weight)
            for conv_id, pair in zip(direct_ids, self.directs, strict=True)
        ]
        convs += [
            LoadConversation(conv_id, members, channel_weight)
            for conv_id, members in zip(channel_ids, self.channels, strict=True)
        ]
        return convs

    def mean_recipients(self) -> float:
        direct = DIRECT_SHARE * 1
        channel = sum((1 - DIRECT_SHARE) / len(self.channels) * (len(m) - 1) for m in self.channels)
        return direct + channel


# --- targets -------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    ws_url: str
    pid: int
    users: list[LoadUser]
    conversations: list[LoadConversation]


class _Relay(Protocol):
    port: int
    pid: int
    ws_url: str


@contextlib.contextmanager
def orderchat_target(
    topology: Topology, name: str = "orderchat", source: Path | None = None
) -> Iterator[Target]:
    """A real server with the 200 users seeded and the conversations made over HTTP."""
    with scratch_dir("steady-") as work:
        data_dir = work / "data"
        seeded = seed_users(data_dir, USERS, prefix="steady")
        with running_server(data_dir, source=source) as server:
            direct_ids: list[str] = []
            channel_ids: list[str] = []
            with httpx.Client(base_url=server.base_url, timeout=30, trust_env=False) as client:
                for a, b in topology.directs:
                    direct_ids.append(
                        _create(
                            client, seeded[a].token, {"kind": "direct", "members": [seeded[b].id]}
                        )
                    )
                for number, members in enumerate(topology.channels):
                    body = {
                        "kind": "channel",
                        "title": f"steady {number}",
                        "members": [seeded[m].id for m in members[1:]],
                    }
                    channel_ids.append(_create(client, seeded[members[0]].token, body))
            users = [LoadUser(n, u.id, u.token) for n, u in enumerate(seeded)]
            yield Target(
                name,
                f"ws://127.0.0.1:{server.port}/ws",
                server.pid,
                users,
                topology.conversations(direct_ids, channel_ids),
            )


def _create(client: httpx.Client, token: str, body: dict[str, Any]) -> str:
    resp = client.post(
        "/api/conversations", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    if resp.status_code not in (200, 201):
        raise RuntimeError(f"creating a conversation failed: {resp.status_code} {resp.text}")
    return str(resp.json()["id"])


@contextlib.contextmanager
def relay_target(topology: Topology, durable: bool) -> Iterator[Target]:
    """The plain or durable relay reference, with the same users and conversations."""
    from bench._targets import running_relay

    users = [LoadUser(n, f"u{n:05d}", f"u{n:05d}") for n in range(USERS)]
    direct_ids = [f"d{n:04d}" for n in range(len(topology.directs))]
    channel_ids = [f"c{n:02d}" for n in range(len(topology.channels))]
    conversations = topology.conversations(direct_ids, channel_ids)
    members = {c.conv_id: [users[m].user_id for m in c.members] for c in conversations}
    with running_relay(members, durable=durable) as relay:
        yield Target(
            "durable relay" if durable else "relay", relay.ws_url, relay.pid, users, conversations
        )


def open_target(
    name: str, topology: Topology, baseline: Path | None = None
) -> contextlib.AbstractContextManager[Target]:
    if name == "orderchat":
        return orderchat_target(topology)
    if name == BASELINE:
        return orderchat_target(topology, BASELINE, baseline)
    return relay_target(topology, durable=name == "durable relay")


# --- measuring -----------------------------------------------------------------------


def step_record(target: str, result: StepResult, server_pid: int) -> dict[str, Any]:
    """One step's figures, as kept in "samples" and turned into rows."""
    wall = max(result.send_seconds, 1e-9)
    (server_cpu0, gen_cpu0, machine0) = result.probe_start or (0.0, 0.0, 0.0)
    (server_cpu1, gen_cpu1, machine1) = result.probe_end or (0.0, 0.0, 0.0)
    return {
        "target": target,
        "rate": result.rate,
        "sent": result.sent,
        "sent_per_s": result.sent / wall,
        "expected": result.expected,
        "unique": result.unique,
        "delivered_per_s": result.unique / wall,
        "losses": result.losses,
        "duplicates": result.duplicates,
        "late": result.late,
        "error_frames": result.errors,
        "closed": result.closed,
        "p50_ms": result.latency_ms(0.50),
        "p90_ms": result.latency_ms(0.90),
        "p95_ms": result.latency_ms(0.95),
        "p99_ms": result.latency_ms(0.99),
        "p999_ms": result.latency_ms(0.999),
        "max_ms": result.max_ms,
        "server_cpu_pct": (server_cpu1 - server_cpu0) / wall * 100,
        "generator_cpu_pct": (gen_cpu1 - gen_cpu0) / wall * 100,
        # every core together, whatever ran: server + generator + anything else
        "machine_cpu_pct": (machine1 - machine0) / wall * 100,
        "server_rss_mib": tree_rss_kib(server_pid) / 1024,
        "generator_max_lag_ms": result.max_lag_ms,
        "send_s": result.send_seconds,
        "drain_s": result.drain_seconds,
        "errors": result.error_texts,
    }


def failed(record: dict[str, Any]) -> bool:
    return bool(record["p99_ms"] > P99_FAIL_MS or record["losses"] or record["duplicates"])


def holds(record: dict[str, Any]) -> bool:
    return bool(
        record["p99_ms"] < P99_TARGET_MS and not record["losses"] and not record["duplicates"]
    )


def measure_target(
    target: Target, pool: LoadPool, settings: Settings, progress: Progress
) -> tuple[list[dict[str, Any]], list[str]]:
    """Connect every user, warm up, then step through the rates until one clearly fails."""
    try:
        return _measure_target(target, pool, settings, progress)
    finally:
        pool.disconnect()


def _measure_target(
    target: Target, pool: LoadPool, settings: Settings, progress: Progress
) -> tuple[list[dict[str, Any]], list[str]]:
    records: list[dict[str, Any]] = []
    errors: list[str] = []
    max_drain = max(30.0, 3 * settings.step_s)
    progress.set_note(f"{target.name}: connecting {len(target.users)} users")
    opened, connect_errors = pool.connect(target.ws_url, target.users)
    if opened != len(target.users):
        return [], [f"{target.name}: {opened}/{len(target.users)} connected", *connect_errors]
    pool.plan(target.conversations)
    probe = _probe(target.pid, pool)
    progress.set_note(f"{target.name}: warm-up")
    warmup_s = QUICK_WARMUP_S if settings.quick else WARMUP_S
    warm = pool.run_step(WARMUP_RATE, warmup_s, settings.drain_idle_s, max_drain)
    if warm.losses or warm.duplicates:
        errors.append(
            f"{target.name}: warm-up lost {warm.losses} and doubled {warm.duplicates} "
            f"deliveries: {warm.error_texts[:3]}"
        )
    for position, rate in enumerate(settings.rates):
        progress.set_note(f"{target.name}: {rate} msg/s")
        result = pool.run_step(
            rate, settings.step_s, settings.drain_idle_s, max_drain, seed=position, probe=probe
        )
        record = step_record(target.name, result, target.pid)
        records.append(record)
        progress.advance(1)
        if record["losses"] or record["duplicates"]:
            errors.append(
                f"{target.name} at {rate} msg/s: {record['losses']} deliveries lost, "
                f"{record['duplicates']} doubled ({record['closed']} connections closed); "
                f"{result.error_texts[:3]}"
            )
        if failed(record):
            progress.advance(len(settings.rates) - position - 1)
            break
    return records, errors


def _probe(server_pid: int, pool: LoadPool) -> Callable[[], tuple[float, ...]]:
    def probe() -> tuple[float, ...]:
        return (cpu_seconds(server_pid), pool.cpu_seconds(), machine_busy_seconds())

    return probe


# --- rows ----------------------------------------------------------------------------


def _best_label(target: str) -> str:
    return f"{target} best R (p99<{P99_TARGET_MS:g} ms, no loss)"


def _p99_label(target: str) -> str:
    return f"{target} p99 at {REFERENCE_RATE} msg/s"


def build_rows(records: dict[str, list[dict[str, Any]]], settings: Settings) -> list[Row]:
    rows: list[Row] = []
    measured = [t for t in settings.targets if t in records]
    has_durable = "durable relay" in records
    for target in measured:
        passing = [r["rate"] for r in records[target] if holds(r)]
        rows.append(
            {
                "metric": _best_label(target),
                "value": max(passing) if passing else 0,
                "unit": "msg/s",
                "reference": _best_label("durable relay")
                if target == "orderchat" and has_durable
                else None,
            }
        )
    for target in measured:
        at_ref = [r for r in records[target] if r["rate"] == REFERENCE_RATE]
        if at_ref:
            rows.append(
                {
                    "metric": _p99_label(target),
                    "value": at_ref[0]["p99_ms"],
                    "unit": "ms",
                    "reference": _p99_label("durable relay")
                    if target == "orderchat" and has_durable
                    else None,
                }
            )
    if BASELINE in records and "orderchat" in records:
        rows += _against_baseline(rows)
    rows.append(
        {"metric": "load generator processes", "value": settings.workers, "unit": "processes"}
    )
    durable_rates = {r["rate"] for r in records.get("durable relay", [])}
    for target in measured:
        for record in records[target]:
            rate = int(record["rate"])
            name = f"{target} R={rate}"
            p99_ref = (
                f"durable relay R={rate} p99"
                if target == "orderchat" and rate in durable_rates
                else None
            )
            for key, label, unit, reference in (
                ("p50_ms", "p50", "ms", None),
                ("p95_ms", "p95", "ms", None),
                ("p99_ms", "p99", "ms", p99_ref),
                ("max_ms", "max", "ms", None),
                ("delivered_per_s", "delivered", "deliveries/s", None),
                ("losses", "losses", "deliveries", None),
                ("duplicates", "duplicates", "deliveries", None),
                ("server_cpu_pct", "server CPU", "% of a core", None),
                ("server_rss_mib", "server RSS", "MiB", None),
            ):
                rows.append(
                    {
                        "metric": f"{name} {label}",
                        "value": record[key],
                        "unit": unit,
                        "reference": reference,
                    }
                )
    return rows


def _against_baseline(rows: list[Row]) -> list[Row]:
    """This revision's two headline figures again, each against the baseline's."""
    values = {row["metric"]: row["value"] for row in rows}
    compared: list[Row] = []
    for label in (_best_label, _p99_label):
        if label("orderchat") in values and label(BASELINE) in values:
            compared.append(
                {
                    "metric": label("orderchat") + " vs baseline",
                    "value": values[label("orderchat")],
                    "unit": "msg/s" if label is _best_label else "ms",
                    "reference": label(BASELINE),
                }
            )
    return compared


# --- the workload --------------------------------------------------------------------


def run(options: argparse.Namespace) -> dict[str, Any]:
    settings = Settings.from_options(options)
    raise_fd_limit()
    topology = Topology.make()
    records: dict[str, list[dict[str, Any]]] = {}
    errors: list[str] = []
    started = time.monotonic()
    with (
        Progress("steady", len(settings.targets) * len(settings.rates)) as progress,
        load_pool(settings.workers) as pool,
    ):
        for name in settings.targets:
            try:
                with open_target(name, topology, settings.baseline) as target:
                    target_records, target_errors = measure_target(target, pool, settings, progress)
            except ImportError as exc:
                errors.append(f"{name}: the reference is not available: {exc}")
                progress.advance(len(settings.rates))
                continue
            records[name] = target_records
            errors.extend(target_errors)
    rows = build_rows(records, settings)
    checks = {
        target: {
            "steps": len(recs),
            "losses": sum(r["losses"] for r in recs),
            "duplicates": sum(r["duplicates"] for r in recs),
            "late": sum(r["late"] for r in recs),
            "error_frames": sum(r["error_frames"] for r in recs),
            "closed_connections": sum(r["closed"] for r in recs),
            "stopped_early": len(recs) < len(settings.rates),
        }
        for target, recs in records.items()
    }
    for target_name, summary in checks.items():
        if summary["error_frames"]:
            errors.append(
                f"{target_name}: {summary['error_frames']} error frames or reader failures"
            )
    out_dir = Path(getattr(options, "out", Path("bench/results")))
    try:
        from bench._plots import plot_steady

        plot_steady(records, out_dir / "steady-latency.png")
    except Exception as exc:  # a missing plot is reported, the figures still count
        errors.append(f"plotting failed: {type(exc).__name__}: {exc}")
    return {
        "rows": rows,
        "settings": {
            "users": USERS,
            "direct_conversations": len(topology.directs),
            "channels": len(topology.channels),
            "channel_members": CHANNEL_MEMBERS,
            "traffic_split": {"direct": DIRECT_SHARE, "channels": 1 - DIRECT_SHARE},
            "mean_recipients_per_message": topology.mean_recipients(),
            "rates": list(settings.rates),
            "step_s": settings.step_s,
            "drain_idle_s": settings.drain_idle_s,
            "warmup": {"rate": WARMUP_RATE, "seconds": WARMUP_S},
            "load_generator_processes": settings.workers,
            "text_chars": 100,
            "targets": list(settings.targets),
            "p99_target_ms": P99_TARGET_MS,
            "p99_fail_ms": P99_FAIL_MS,
            "duration_s": time.monotonic() - started,
        },
        "checks": checks,
        "samples": {"steps": [r for recs in records.values() for r in recs]},
        "errors": errors,
    }
