"""What a benchmark run shows and keeps: a table on stdout, JSON files, a progress bar.

A workload returns its figures as rows, each a dict with `metric`, `value` and
`unit`, and optionally `reference` (the metric of another row of the same
workload that this one is compared with) and `ratio` (`value / reference value`,
filled in here when the workload leaves it out).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

Row = dict[str, Any]

COLUMNS = ("workload", "metric", "value", "unit", "reference", "ratio")


def row(workload: str, metric: str, value: float, unit: str, **extra: Any) -> Row:
    """One table row; a float is kept to three decimals."""
    rounded = round(value, 3) if isinstance(value, float) else value
    return {"workload": workload, "metric": metric, "value": rounded, "unit": unit, **extra}


def machine_info() -> dict[str, Any]:
    """The facts about this machine that figures depend on."""
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _proc_field("/proc/cpuinfo", "model name"),
        "memory_total": _proc_field("/proc/meminfo", "MemTotal"),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


def _proc_field(path: str, key: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                name, sep, value = line.partition(":")
                if sep and name.strip() == key:
                    return value.strip()
    except OSError:
        pass
    return None


def resolve_ratios(rows: Sequence[Row]) -> list[Row]:
    """Rows with every missing `ratio` computed from the row its `reference` names."""
    values = {row["metric"]: row["value"] for row in rows}
    resolved: list[Row] = []
    for row in rows:
        row = {
            "metric": row["metric"],
            "value": row["value"],
            "unit": row.get("unit", ""),
            "reference": row.get("reference"),
            "ratio": row.get("ratio"),
            **row,
        }
        ref_value = values.get(row["reference"]) if row["reference"] else None
        if row["ratio"] is None and isinstance(ref_value, int | float) and ref_value > 0:
            row["ratio"] = row["value"] / ref_value
        resolved.append(row)
    return resolved


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"
    if value is None:
        return "-"
    return str(value)


def format_table(results: Sequence[tuple[str, Sequence[Row]]]) -> str:
    """An aligned plain-text table of the rows of several workloads."""
    lines: list[list[str]] = [list(COLUMNS)]
    for workload, rows in results:
        for row in rows:
            ratio = row.get("ratio")
            lines.append(
                [
                    workload,
                    str(row["metric"]),
                    _format_value(row["value"]),
                    str(row.get("unit") or ""),
                    str(row.get("reference") or ""),
                    f"{ratio:.2f}" if isinstance(ratio, int | float) else "",
                ]
            )
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    numeric = {2, 5}
    out: list[str] = []
    for index, line in enumerate(lines):
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ]
        out.append("  ".join(cells).rstrip())
        if index == 0:
            out.append("  ".join("-" * width for width in widths))
    return "\n".join(out)


def utc_stamp(moment: datetime | None = None) -> str:
    """A UTC time for file names, `20250131T235959Z`."""
    return (moment or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def write_json(out_dir: Path, workload: str, document: dict[str, Any]) -> tuple[Path, Path]:
    """Write `<workload>-<UTC timestamp>.json` and `<workload>-latest.json` in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    stamped = out_dir / f"{workload}-{utc_stamp()}.json"
    latest = out_dir / f"{workload}-latest.json"
    for path in (stamped, latest):
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    return stamped, latest


class Progress:
    """A one-line progress bar on stderr, redrawn in place with `\\r`.

    Redraws at most ten times a second, so that it costs nothing measurable
    inside a timed loop.
    """

    def __init__(
        self, label: str, total: float, stream: TextIO | None = None, width: int = 28
    ) -> None:
        self.label = label
        self.total = max(float(total), 1.0)
        self.done = 0.0
        self.note = ""
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self._last_draw = 0.0
        self._last_len = 0
        self._started = time.monotonic()

    def advance(self, amount: float, note: str | None = None) -> None:
        self.done = min(self.done + amount, self.total)
        if note is not None:
            self.note = note
        self._draw()

    def set_note(self, note: str) -> None:
        self.note = note
        self._draw(force=True)

    def _draw(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        fraction = self.done / self.total
        filled = int(fraction * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = now - self._started
        line = f"{self.label} [{bar}] {fraction * 100:5.1f}% {elapsed:6.1f}s {self.note}"
        padding = " " * max(self._last_len - len(line), 0)
        self._last_len = len(line)
        self.stream.write(f"\r{line}{padding}")
        self.stream.flush()

    def close(self, *, failed: bool = False) -> None:
        if failed:
            self.note = f"{self.note} (failed)"
        else:
            self.done = self.total
        self._draw(force=True)
        self.stream.write("\n")
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self.close(failed=exc_type is not None)
