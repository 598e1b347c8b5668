"""`python -m bench [WORKLOAD ...] [--quick] [--out DIR]`: run benchmarks, print, keep JSON.

A workload is a module of this package with `NAME`, `DESCRIPTION` and
`run(options) -> dict`, and optionally `add_arguments(parser)` for options of its
own. `run` returns `{"rows": [...], "settings": {...}, "checks": {...},
"samples": {...}, "errors": [...]}`; only `rows` is required. A workload that
reports errors, or raises, makes the command exit with status 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from bench._report import Row, format_table, machine_info, resolve_ratios, write_json

# name -> module; a new workload is one more line here.
WORKLOADS: dict[str, str] = {
    "sqlite": "bench.sqlite_ref",
    "steady": "bench.steady",
    "scaleout": "bench.scaleout",
    "fanout": "bench.fanout",
    "reconnect": "bench.reconnect",
    "failover": "bench.failover",
    "history": "bench.history",
    "idle": "bench.idle",
    "media": "bench.media",
    "notify": "bench.notify",
    "calls": "bench.calls",
    "search": "bench.search",
    "consults": "bench.consults",
}

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def load_workloads() -> dict[str, ModuleType]:
    modules: dict[str, ModuleType] = {}
    for name, module_name in WORKLOADS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:  # the workload is there but broken
                raise
            continue
        for attribute in ("NAME", "DESCRIPTION", "run"):
            if not hasattr(module, attribute):
                raise TypeError(f"workload module {module_name} has no {attribute}")
        modules[name] = module
    return modules


def build_parser(workloads: dict[str, ModuleType]) -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:<12} {module.DESCRIPTION}" for name, module in workloads.items())
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run OrderChat benchmarks against a real server process.",
        epilog=f"workloads:\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "workloads",
        nargs="*",
        metavar="WORKLOAD",
        help="workloads to run (default: all of them)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes and a single round: a check that everything works, not a figure",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help="where the JSON results go (default: bench/results)",
    )
    for module in workloads.values():
        add_arguments = getattr(module, "add_arguments", None)
        if add_arguments is not None:
            add_arguments(parser)
    return parser


def run_workload(module: ModuleType, options: argparse.Namespace) -> dict[str, Any]:
    """Run one workload; its result, with the failure among its errors if it raised."""
    started = datetime.now(UTC)
    clock = time.perf_counter()
    try:
        result: dict[str, Any] = dict(module.run(options))
    except Exception:
        result = {"rows": [], "errors": [traceback.format_exc()]}
    rows: list[Row] = resolve_ratios(result.get("rows", []))
    return {
        "workload": module.NAME,
        "description": module.DESCRIPTION,
        "started_utc": started.isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - clock, 3),
        "quick": bool(options.quick),
        "command": ["python", "-m", "bench", *sys.argv[1:]],
        "machine": machine_info(),
        "settings": result.get("settings", {}),
        "rows": rows,
        "checks": result.get("checks", {}),
        "samples": result.get("samples", {}),
        "errors": list(result.get("errors", [])),
    }


def main(argv: Sequence[str] | None = None) -> int:
    workloads = load_workloads()
    parser = build_parser(workloads)
    options = parser.parse_args(argv)
    chosen: list[str] = list(dict.fromkeys(options.workloads)) or list(workloads)
    unknown = [name for name in chosen if name not in workloads]
    if unknown:
        parser.error(f"unknown workload(s): {', '.join(unknown)}; known: {', '.join(workloads)}")

    documents: list[dict[str, Any]] = []
    for name in chosen:
        document = run_workload(workloads[name], options)
        stamped, _latest = write_json(options.out, name, document)
        documents.append(document)
        print(f"{name}: {document['duration_s']:.1f} s, results in {stamped}", file=sys.stderr)
        for error in document["errors"]:
            print(f"{name}: ERROR: {error}", file=sys.stderr)

    print(format_table([(doc["workload"], doc["rows"]) for doc in documents]))
    return 1 if any(doc["errors"] for doc in documents) else 0


if __name__ == "__main__":
    sys.exit(main())
