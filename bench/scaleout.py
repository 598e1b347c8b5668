"""Workload `scaleout`: W1 (`steady`) on SQLite x1, PostgreSQL x1 and PostgreSQL x2, in one run.

The same 200 users, conversations, load generator and rates as `steady`,
against OrderChat on each store in turn (`bench/_cluster.py`: with
PostgreSQL the benchmark starts its own PostgreSQL, fsync on, and Redis, a
fresh database for each, and N nodes on them; user i connects to node i % N,
so every direct conversation has its two members on different nodes), and
against the relay and the durable relay, the references of `steady`.

The table starts with what the scale-out must show, as ratios:

- PostgreSQL x1 best rate / SQLite x1 best rate: at least 0.6 (a shared
  database costs something, not everything);
- PostgreSQL x2 / PostgreSQL x1: at least 1.3 (a second node adds capacity);
- each PostgreSQL x2 node's CPU per 1,000 messages it took in, against the
  single PostgreSQL node's: within 20 % (the cross-node work is not a tax
  on every message). CPU is compared at the highest rate every OrderChat
  set-up held, where none of them was saturated.

A best rate is the highest rate held (p99 < 200 ms, nothing lost) with every
lower rate held too. Then come the CPU seconds per 1,000 messages of every
process group (each node, all of PostgreSQL, Redis) at that rate, and every
step's figures as in `steady`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench import steady
from bench._cluster import Store, node_name, postgres_available
from bench._report import Row
from bench._steady_targets import orderchat_name

NAME = "scaleout"
DESCRIPTION = "W1 on SQLite x1, PostgreSQL x1 and x2 nodes, beside the relays: scale-out ratios"

DEFAULT_STORES = (Store("sqlite", 1), Store("postgres", 1), Store("postgres", 2))
PG_VS_SQLITE_TARGET = 0.6
TWO_VS_ONE_TARGET = 1.3
CPU_SPREAD_TARGET = 0.2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scaleout workload (also takes the --steady-* options)")
    group.add_argument(
        "--scaleout-stores",
        type=_stores,
        default=None,
        metavar="S,S,...",
        help="OrderChat set-ups to compare (default "
        + ",".join(s.label for s in DEFAULT_STORES)
        + ")",
    )


def _stores(text: str) -> tuple[Store, ...]:
    try:
        stores = tuple(Store.parse(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not stores:
        raise argparse.ArgumentTypeError("at least one store")
    return stores


def run(options: argparse.Namespace) -> dict[str, Any]:
    stores = getattr(options, "scaleout_stores", None) or DEFAULT_STORES
    missing = postgres_available()
    skipped: dict[str, str] = {}
    if missing is not None and any(s.kind == "postgres" for s in stores):
        print(f"scaleout: PostgreSQL set-ups skipped: {missing}", file=sys.stderr)
        skipped = {s.label: missing for s in stores if s.kind == "postgres"}
        stores = tuple(s for s in stores if s.kind != "postgres")
    settings = steady.Settings.from_options(options, stores=stores)
    measured = steady.measure(settings, NAME)
    out_dir = Path(getattr(options, "out", Path("bench/results")))
    steady.plot(measured, out_dir / "scaleout-latency.png")
    summary, checks = scaleout_rows(measured.records, stores)
    document = steady.settings_document(settings, measured)
    document["targets_ratios"] = {
        "postgres:1 / sqlite:1 best rate": f">= {PG_VS_SQLITE_TARGET}",
        "postgres:2 / postgres:1 best rate": f">= {TWO_VS_ONE_TARGET}",
        "postgres:2 node CPU per own message / postgres:1 node's": f"within "
        f"{CPU_SPREAD_TARGET:.0%}",
    }
    return {
        "rows": summary + steady.build_rows(measured.records, settings),
        "settings": document,
        "checks": {**checks, "targets": measured.checks, "skipped": skipped},
        "samples": {"steps": [r for recs in measured.records.values() for r in recs]},
        "errors": measured.errors,
    }


def _name(store: Store) -> str:
    return orderchat_name(store, explicit=True)


def _best_label(store: Store) -> str:
    return steady.best_label(_name(store))


def scaleout_rows(
    records: dict[str, list[dict[str, Any]]], stores: tuple[Store, ...] | list[Store]
) -> tuple[list[Row], dict[str, Any]]:
    """The headline rows: best rates, their ratios, and CPU per message at a common rate."""
    rows: list[Row] = []
    best = {s: steady.best_rate(records[_name(s)]) for s in stores if _has(records, s)}
    checks: dict[str, Any] = {"best_rate": {s.label: r for s, r in best.items()}}
    sqlite1, pg1, pg2 = Store("sqlite", 1), Store("postgres", 1), Store("postgres", 2)
    for numerator, denominator, target, key in (
        (pg1, sqlite1, PG_VS_SQLITE_TARGET, "postgres:1 / sqlite:1"),
        (pg2, pg1, TWO_VS_ONE_TARGET, "postgres:2 / postgres:1"),
    ):
        if numerator in best and denominator in best:
            rows.append(
                {
                    "metric": f"{key} best R (target >= {target:g})",
                    "value": best[numerator],
                    "unit": "msg/s",
                    "reference": _best_label(denominator),
                }
            )
            ratio = best[numerator] / best[denominator] if best[denominator] else None
            checks[key] = {"ratio": ratio, "target": target, "met": bool(ratio and ratio >= target)}
    cpu_rows, cpu_checks = _cpu_rows(records, [s for s in stores if s in best])
    return rows + cpu_rows, {**checks, **cpu_checks}


def _has(records: dict[str, list[dict[str, Any]]], store: Store) -> bool:
    return bool(records.get(_name(store)))


def common_rate(records: dict[str, list[dict[str, Any]]], stores: list[Store]) -> int | None:
    """The highest rate every set-up held (all lower ones too); else the lowest measured."""
    held = [steady.best_rate(records[_name(s)]) for s in stores]
    if held and min(held) > 0:
        return min(held)
    rates = [int(r["rate"]) for s in stores for r in records[_name(s)]]
    return min(rates) if rates else None


def _cpu_rows(
    records: dict[str, list[dict[str, Any]]], stores: list[Store]
) -> tuple[list[Row], dict[str, Any]]:
    rate = common_rate(records, stores)
    if rate is None:
        return [], {}
    rows: list[Row] = []
    costs: dict[str, dict[str, float]] = {}
    for store in stores:
        step = next((r for r in records[_name(store)] if r["rate"] == rate), None)
        if step is None:
            continue
        costs[store.label] = dict(step["cpu_s_per_1k_own_msgs"])
        for group, value in step["cpu_s_per_1k_own_msgs"].items():
            reference = None
            if store == Store("postgres", 2):
                reference = _cpu_label(Store("postgres", 1), node_name(0), rate, own=True)
            rows.append(
                {
                    "metric": _cpu_label(store, group, rate, own=True),
                    "value": value,
                    "unit": "CPU s per 1,000 msgs",
                    "reference": reference,
                }
            )
        for group, value in step["cpu_s_per_1k_msgs"].items():
            if group not in step["cpu_s_per_1k_own_msgs"]:
                rows.append(
                    {
                        "metric": _cpu_label(store, group, rate, own=False),
                        "value": value,
                        "unit": "CPU s per 1,000 msgs",
                    }
                )
    return rows, {"cpu_rate": rate, "cpu_s_per_1k_own_msgs": costs, **_cpu_check(costs)}


def _cpu_label(store: Store, group: str, rate: int, *, own: bool) -> str:
    whose = "its own msgs" if own else "msgs"
    return f"{_name(store)} {group} CPU per 1,000 {whose} at {rate}/s"


def _cpu_check(costs: dict[str, dict[str, float]]) -> dict[str, Any]:
    single = costs.get("postgres:1", {}).get(node_name(0))
    pair = costs.get("postgres:2", {})
    if not single or not pair:
        return {}
    ratios = {node: value / single for node, value in pair.items()}
    met = all(ratio <= 1 + CPU_SPREAD_TARGET for ratio in ratios.values())
    return {
        "postgres:2 node CPU / postgres:1 node CPU": {
            "ratios": ratios,
            "target": f"<= {1 + CPU_SPREAD_TARGET:g}",
            "met": met,
        }
    }
