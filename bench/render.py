"""`python -m bench.render`: put the latest results into docs/benchmarks.md.

The document's "Latest results" section is rewritten from `bench/results/*-latest.json`
between two marker comments, so the figures people read are always those of the
last `make bench`, with the machine they came from.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
ORDER = [
    "steady",
    "scaleout",
    "fanout",
    "reconnect",
    "failover",
    "history",
    "idle",
    "sqlite",
    "media",
    "notify",
    "calls",
    "search",
    "consults",
]
PLOTS = {
    "steady": "steady-latency.png",
    "scaleout": "scaleout-latency.png",
    "idle": "idle-memory.png",
}
STEPPED = ("steady", "scaleout", "notify", "search")  # a row per target, rate and figure


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.1f}"


def _summary_rows(workload: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """W1 has a row per target, rate and figure: the table shows the headline rows,
    and the per-step figures go in a table of their own."""
    if workload not in STEPPED:
        return rows
    return [r for r in rows if " R=" not in str(r.get("metric"))]


def _steps_table(rows: list[dict[str, Any]]) -> list[str]:
    steps: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        metric = str(row.get("metric"))
        if " R=" not in metric:
            continue
        target, _, rest = metric.partition(" R=")
        rate, _, figure = rest.partition(" ")
        steps.setdefault((target, rate), {})[figure] = row.get("value")
    lines = [
        "| target | R msg/s | p50 ms | p95 ms | p99 ms | max ms | deliveries/s | lost | doubled "
        "| server CPU % | RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (target, rate), figures in steps.items():
        cells = [
            _number(figures.get(k, ""))
            for k in (
                "p50",
                "p95",
                "p99",
                "max",
                "delivered",
                "losses",
                "duplicates",
                "server CPU",
                "server RSS",
            )
        ]
        lines.append(f"| {target} | {rate} | " + " | ".join(cells) + " |")
    return lines


def render() -> str:
    parts: list[str] = []
    for workload in ORDER:
        path = RESULTS / f"{workload}-latest.json"
        if not path.exists():
            continue
        document = json.loads(path.read_text())
        machine = document.get("machine", {})
        parts.append(f"### `{workload}`: {document.get('description', '')}")
        parts.append("")
        parts.append(
            f"Run {document.get('started_utc', '?')} UTC, {document.get('duration_s', 0):.0f} s, "
            f"{machine.get('cpu_count', '?')} CPUs, Python {machine.get('python', '?')}"
            + (" (quick)" if document.get("quick") else "")
            + "."
        )
        parts.append("")
        parts.append("| metric | value | unit | reference | ratio |")
        parts.append("|---|---|---|---|---|")
        for row in _summary_rows(workload, document.get("rows", [])):
            ratio = row.get("ratio")
            parts.append(
                f"| {row.get('metric')} | {_number(row.get('value'))} | {row.get('unit', '')} "
                f"| {row.get('reference') or ''} | {'' if ratio is None else f'{ratio:.2f}'} |"
            )
        if workload in STEPPED:
            parts += ["", "Every step:", "", *_steps_table(document.get("rows", []))]
        if workload in PLOTS and (RESULTS / PLOTS[workload]).exists():
            parts += ["", f"![{workload}](../bench/results/{PLOTS[workload]})"]
        errors = document.get("errors") or []
        if errors:
            parts += ["", f"**Errors in this run:** {len(errors)}; see the JSON."]
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def main() -> int:
    text = DOC.read_text()
    if START not in text or END not in text:
        print(f"{DOC} has no {START} … {END} section", file=sys.stderr)
        return 1
    before, _, rest = text.partition(START)
    _, _, after = rest.partition(END)
    DOC.write_text(f"{before}{START}\n{render()}{END}{after}")
    print(f"wrote the latest results into {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
