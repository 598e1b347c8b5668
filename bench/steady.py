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
clearly fails (p99 over 1 s, or anything lost). A target's best rate is the
highest at which it held (p99 under 200 ms, nothing lost) with every lower rate
holding too.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._cluster import ClusterError, Store
from bench._load import (
    LoadPool,
    StepResult,
    default_workers,
    load_pool,
    machine_busy_seconds,
    raise_fd_limit,
)
from bench._report import Progress, Row
from bench._server import tree_rss_kib
from bench._steady_targets import (
    BASELINE,
    CHANNEL_MEMBERS,
    DIRECT_SHARE,
    ORDERCHAT,
    USERS,
    Target,
    Topology,
    is_orderchat,
    open_target,
    orderchat_name,
    send_shares,
)

NAME = "steady"
DESCRIPTION = "200 users, send rate stepped 50 -> 12,000 msg/s: latency, losses, CPU, RSS"

RATES = (50, 200, 500, 1000, 2000, 4000, 8000, 12000)
QUICK_RATES = (50, 200)
STEP_S = 20.0
QUICK_STEP_S = 2.0
P99_TARGET_MS = 200.0  # a step "holds" below this p99 with nothing lost
P99_FAIL_MS = 1000.0  # a step over this (or with losses) ends the target's stepping
DRAIN_IDLE_S = 5.0  # the drain ends after this long without a new delivery
QUICK_DRAIN_IDLE_S = 2.0
WARMUP_S = 1.0
QUICK_WARMUP_S = 0.3
WARMUP_RATE = 100.0
REFERENCE_RATE = 200  # p99 at this rate, OrderChat against the durable relay
TARGETS = (ORDERCHAT, "relay", "durable relay")


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
        "--store",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="OrderChat's store: its default SQLite, or a throwaway PostgreSQL and Redis "
        "started by the benchmark (default sqlite)",
    )
    group.add_argument(
        "--nodes",
        type=int,
        default=1,
        metavar="N",
        help="OrderChat nodes on the store, user i on node i %% N (default 1; "
        "more than one needs --store postgres)",
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
    # OrderChat's target name -> the store it runs on; `orderchat` in --steady-targets
    # stands for all of them, in this order.
    stores: tuple[tuple[str, Store], ...] = ((ORDERCHAT, Store("sqlite", 1)),)

    def store_of(self, target: str) -> Store:
        return dict(self.stores).get(target, Store("sqlite", 1))

    @classmethod
    def from_options(
        cls, options: argparse.Namespace, stores: Sequence[Store] | None = None
    ) -> Settings:
        """The settings of a run; `stores` (the scale-out comparison) overrides --store."""
        explicit = stores is not None
        if stores is None:
            stores = [Store(getattr(options, "store", "sqlite"), getattr(options, "nodes", 1))]
        for store in stores:
            store.check()
        named = tuple((orderchat_name(store, explicit=explicit), store) for store in stores)
        settings = cls._from_options(options)
        targets: list[str] = []
        for target in settings.targets:
            targets += [name for name, _ in named] if target == ORDERCHAT else [target]
        return dataclasses.replace(settings, targets=tuple(targets), stores=named)

    @classmethod
    def _from_options(cls, options: argparse.Namespace) -> Settings:
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


# --- measuring -----------------------------------------------------------------------


def step_record(target: Target, result: StepResult) -> dict[str, Any]:
    """One step's figures, as kept in "samples" and turned into rows."""
    wall = max(result.send_seconds, 1e-9)
    probes = target.cpu_probes()
    start = result.probe_start or (0.0,) * (2 + len(probes))
    end = result.probe_end or (0.0,) * (2 + len(probes))
    used = {name: end[2 + i] - start[2 + i] for i, (name, _) in enumerate(probes)}
    servers = [name for name, _ in probes[: len(target.server_pids)]]
    return {
        "target": target.name,
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
        "server_cpu_pct": sum(used[name] for name in servers) / wall * 100,
        "generator_cpu_pct": (end[0] - start[0]) / wall * 100,
        # every core together, whatever ran: server + generator + anything else
        "machine_cpu_pct": (end[1] - start[1]) / wall * 100,
        "server_rss_mib": sum(tree_rss_kib(pid) for pid in target.server_pids) / 1024,
        "generator_max_lag_ms": result.max_lag_ms,
        "send_s": result.send_seconds,
        "drain_s": result.drain_seconds,
        "errors": result.error_texts,
        **_cpu_costs(target, servers, used, result.sent),
    }


def _cpu_costs(
    target: Target, servers: list[str], used: dict[str, float], sent: int
) -> dict[str, Any]:
    """CPU seconds of each process group, per 1,000 messages sent in the step.

    A node of several is also charged per 1,000 messages it took in itself
    (its users' sends), the figure to set against a single node's: with the
    work shared out evenly, that stays where one node's was.
    """
    per_1k = 1000 / max(sent, 1)
    shares = send_shares(target.conversations, len(servers))
    return {
        "cpu_s": used,
        "cpu_s_per_1k_msgs": {name: seconds * per_1k for name, seconds in used.items()},
        "node_send_share": dict(zip(servers, shares, strict=True)),
        "cpu_s_per_1k_own_msgs": {
            name: used[name] * per_1k / max(share, 1e-9)
            for name, share in zip(servers, shares, strict=True)
        },
    }


def failed(record: dict[str, Any]) -> bool:
    return bool(record["p99_ms"] > P99_FAIL_MS or record["losses"] or record["duplicates"])


def holds(record: dict[str, Any]) -> bool:
    return bool(
        record["p99_ms"] < P99_TARGET_MS and not record["losses"] and not record["duplicates"]
    )


def best_rate(records: Sequence[dict[str, Any]]) -> int:
    """The highest rate that held with every lower rate holding too; 0 if the lowest failed.

    A target that stalls at 2,000 msg/s and recovers at 4,000 cannot be trusted
    with 4,000: its users would have met the stall on the way up.
    """
    best = 0
    for record in sorted(records, key=lambda r: r["rate"]):
        if not holds(record):
            break
        best = int(record["rate"])
    return best


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
    opened = 0
    connect_errors: list[str] = []
    for node, url in enumerate(target.ws_urls):
        node_opened, node_errors = pool.connect(url, target.users_of(node))
        opened += node_opened
        connect_errors += node_errors
    if opened != len(target.users):
        return [], [f"{target.name}: {opened}/{len(target.users)} connected", *connect_errors]
    pool.plan(target.conversations)
    probe = _probe(target, pool)
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
        record = step_record(target, result)
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


def _probe(target: Target, pool: LoadPool) -> Callable[[], tuple[float, ...]]:
    """CPU seconds so far: the load generator, the machine, then each of the target's groups."""
    readers = [read for _, read in target.cpu_probes()]

    def probe() -> tuple[float, ...]:
        return (pool.cpu_seconds(), machine_busy_seconds(), *(read() for read in readers))

    return probe


# --- rows ----------------------------------------------------------------------------


def best_label(target: str) -> str:
    return f"{target} best R (p99<{P99_TARGET_MS:g} ms, no loss)"


def _p99_label(target: str) -> str:
    return f"{target} p99 at {REFERENCE_RATE} msg/s"


def build_rows(records: dict[str, list[dict[str, Any]]], settings: Settings) -> list[Row]:
    rows: list[Row] = []
    measured = [t for t in settings.targets if t in records]
    durable = "durable relay" if "durable relay" in records else None
    for target in measured:
        rows.append(
            {
                "metric": best_label(target),
                "value": best_rate(records[target]),
                "unit": "msg/s",
                "reference": best_label(durable) if durable and is_orderchat(target) else None,
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
                    "reference": _p99_label(durable) if durable and is_orderchat(target) else None,
                }
            )
    if BASELINE in records and ORDERCHAT in records:
        rows += _against_baseline(rows)
    rows.append(
        {"metric": "load generator processes", "value": settings.workers, "unit": "processes"}
    )
    durable_rates = {r["rate"] for r in records.get("durable relay", [])}
    for target in measured:
        for record in records[target]:
            rate = int(record["rate"])
            compared = is_orderchat(target) and rate in durable_rates
            rows += _step_rows(target, record, "durable relay" if compared else None)
    return rows


def _step_rows(target: str, record: dict[str, Any], reference: str | None) -> list[Row]:
    """A step's figures, and OrderChat's CPU per 1,000 messages for every process group."""
    name = f"{target} R={int(record['rate'])}"
    p99_ref = f"{reference} R={int(record['rate'])} p99" if reference else None
    rows: list[Row] = [
        {"metric": f"{name} {label}", "value": record[key], "unit": unit, "reference": ref}
        for key, label, unit, ref in (
            ("p50_ms", "p50", "ms", None),
            ("p95_ms", "p95", "ms", None),
            ("p99_ms", "p99", "ms", p99_ref),
            ("max_ms", "max", "ms", None),
            ("delivered_per_s", "delivered", "deliveries/s", None),
            ("losses", "losses", "deliveries", None),
            ("duplicates", "duplicates", "deliveries", None),
            ("server_cpu_pct", "server CPU", "% of a core", None),
            ("server_rss_mib", "server RSS", "MiB", None),
        )
    ]
    if is_orderchat(target) or len(record.get("cpu_s_per_1k_msgs", {})) > 1:
        rows += [
            {"metric": f"{name} CPU {group}", "value": value, "unit": "CPU s per 1,000 msgs"}
            for group, value in record["cpu_s_per_1k_msgs"].items()
        ]
    return rows


def _against_baseline(rows: list[Row]) -> list[Row]:
    """This revision's two headline figures again, each against the baseline's."""
    values = {row["metric"]: row["value"] for row in rows}
    compared: list[Row] = []
    for label in (best_label, _p99_label):
        if label(ORDERCHAT) in values and label(BASELINE) in values:
            compared.append(
                {
                    "metric": label(ORDERCHAT) + " vs baseline",
                    "value": values[label(ORDERCHAT)],
                    "unit": "msg/s" if label is best_label else "ms",
                    "reference": label(BASELINE),
                }
            )
    return compared


# --- the workload --------------------------------------------------------------------


@dataclass
class Measured:
    """What `measure` found: every target's steps, the errors, the checks."""

    records: dict[str, list[dict[str, Any]]]
    errors: list[str]
    checks: dict[str, dict[str, Any]]
    duration_s: float


def run(options: argparse.Namespace) -> dict[str, Any]:
    settings = Settings.from_options(options)
    measured = measure(settings, NAME)
    out_dir = Path(getattr(options, "out", Path("bench/results")))
    plot(measured, out_dir / "steady-latency.png")
    return {
        "rows": build_rows(measured.records, settings),
        "settings": settings_document(settings, measured),
        "checks": measured.checks,
        "samples": {"steps": [r for recs in measured.records.values() for r in recs]},
        "errors": measured.errors,
    }


def measure(settings: Settings, label: str) -> Measured:
    """Every target of the settings in turn, under the same load from the same workers."""
    raise_fd_limit()
    topology = Topology.make()
    records: dict[str, list[dict[str, Any]]] = {}
    errors: list[str] = []
    started = time.monotonic()
    with (
        Progress(label, len(settings.targets) * len(settings.rates)) as progress,
        load_pool(settings.workers) as pool,
    ):
        for name in settings.targets:
            store = settings.store_of(name)
            try:
                with open_target(name, topology, store, settings.baseline) as target:
                    target_records, target_errors = measure_target(target, pool, settings, progress)
            except (ImportError, ClusterError) as exc:
                errors.append(f"{name}: the target is not available: {exc}")
                progress.advance(len(settings.rates))
                continue
            records[name] = target_records
            errors.extend(target_errors)
    checks = {
        target: {
            "steps": len(recs),
            "losses": sum(r["losses"] for r in recs),
            "duplicates": sum(r["duplicates"] for r in recs),
            "late": sum(r["late"] for r in recs),
            "error_frames": sum(r["error_frames"] for r in recs),
            "closed_connections": sum(r["closed"] for r in recs),
            "stopped_early": len(recs) < len(settings.rates),
            "best_rate": best_rate(recs),
        }
        for target, recs in records.items()
    }
    for target_name, summary in checks.items():
        if summary["error_frames"]:
            errors.append(
                f"{target_name}: {summary['error_frames']} error frames or reader failures"
            )
    return Measured(records, errors, checks, time.monotonic() - started)


def plot(measured: Measured, path: Path) -> None:
    """The latency plot; a missing plot is reported among the errors, the figures still count."""
    try:
        from bench._plots import plot_steady

        plot_steady(measured.records, path)
    except Exception as exc:
        measured.errors.append(f"plotting failed: {type(exc).__name__}: {exc}")


def settings_document(settings: Settings, measured: Measured) -> dict[str, Any]:
    topology = Topology.make()
    return {
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
        "stores": {name: store.label for name, store in settings.stores},
        "nodes_assignment": "user i connects to node i % N",
        "p99_target_ms": P99_TARGET_MS,
        "p99_fail_ms": P99_FAIL_MS,
        "best_rate": "the highest rate held (p99 < 200 ms, nothing lost) "
        "with every lower rate held too",
        "duration_s": measured.duration_s,
    }


def value_at(records: dict[str, list[dict[str, Any]]], name: str, rate: int, key: str) -> Any:
    """A target's figure at one rate step."""
    return next(r[key] for r in records[name] if r["rate"] == rate)


def cpu_rows(records: dict[str, list[dict[str, Any]]], off: str, on: str) -> list[Row]:
    """Server CPU per 1,000 messages, `on` against `off`, at the highest rate both held."""
    held = [{r["rate"] for r in records.get(name, []) if holds(r)} for name in (off, on)]
    common = held[0] & held[1]
    if not common:
        return []
    rate = max(common)
    label = f"server CPU per 1,000 msgs at {rate} msg/s"
    return [
        {
            "metric": f"{on} {label}",
            "value": value_at(records, on, rate, "cpu_s_per_1k_msgs")[on],
            "unit": "CPU s",
            "reference": f"{off} {label}",
        },
        {
            "metric": f"{off} {label}",
            "value": value_at(records, off, rate, "cpu_s_per_1k_msgs")[off],
            "unit": "CPU s",
        },
    ]


def on_off_verdict(
    best: dict[str, int], ratio: float | None, off: str, target: float, rates: Sequence[int]
) -> tuple[list[Row], dict[str, Any]]:
    """Whether on / off meets `target`, and a row when it cannot be known.

    When the off leg held the highest rate asked of it, its true best is higher than
    any step shows and on / off at most what the head row says: such a ratio proves
    nothing, and the target is not met whatever it is.
    """
    highest = max(rates, default=0)
    held_highest = bool(highest) and best[off] >= highest
    rows: list[Row] = []
    if held_highest:
        metric = f"{off} held the highest step: on / off is at most the ratio"
        rows.append({"metric": metric, "value": highest, "unit": "msg/s"})
    check = {
        "ratio": ratio,
        "target": target,
        "met": ratio is not None and ratio >= target and not held_highest,
        "off_held_the_highest_step": held_highest,
        "best_rate": best,
    }
    return rows, check


def on_off_rows(
    records: dict[str, list[dict[str, Any]]], off: str, on: str, target: float
) -> tuple[dict[str, int], float | None, list[Row]]:
    """Two targets' best rates, their ratio against `target`, `on`'s p99 at the
    reference rate, and CPU per message side by side: the head of an on/off report."""
    best = {name: best_rate(records.get(name, [])) for name in (off, on)}
    ratio = best[on] / best[off] if best[off] else None
    rows: list[Row] = [
        {
            "metric": f"W1 on / off best R (target >= {target:g})",
            "value": best[on],
            "unit": "msg/s",
            "reference": best_label(off),
            # Given, not looked up: a report of several rounds names its rows by
            # round, so no row carries the reference's name.
            "ratio": ratio,
        }
    ]
    p99 = f" p99 at {REFERENCE_RATE} msg/s"
    if any(r["rate"] == REFERENCE_RATE for r in records.get(on, [])):
        rows.append(
            {
                "metric": on + p99 + " vs off",
                "value": value_at(records, on, REFERENCE_RATE, "p99_ms"),
                "unit": "ms",
                "reference": off + p99,
            }
        )
    return best, ratio, rows + cpu_rows(records, off, on)
