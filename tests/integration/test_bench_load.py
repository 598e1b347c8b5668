"""The steady and idle benchmarks run end to end against a real server and the relays.

Correctness only: a few seconds of load say nothing about speed, so nothing here
looks at latencies or memory figures, only that every target was measured, that
every message reached every other member of its conversation exactly once, and
that the plots were drawn.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench._cluster import Store
from bench.steady import best_rate

from tests.support import run_bench


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_steady_and_idle_quick_run(tmp_path: Path) -> None:
    run_bench(tmp_path, "steady", "idle", "--quick", "--steady-step-s", "1", timeout_s=200)

    steady = json.loads((tmp_path / "steady-latest.json").read_text(encoding="utf-8"))
    assert steady["errors"] == []
    steps = steady["samples"]["steps"]
    targets = {"orderchat", "relay", "durable relay"}
    assert {step["target"] for step in steps} == targets
    for step in steps:
        assert step["sent"] > 0, step
        assert step["unique"] == step["expected"] > 0, step
        assert step["losses"] == 0, step
        assert step["duplicates"] == 0, step
        assert step["closed"] == 0, step
    rows = {row["metric"]: row for row in steady["rows"]}
    for target in targets:
        assert f"{target} best R (p99<200 ms, no loss)" in rows
        assert rows[f"{target} R=50 losses"]["value"] == 0
        assert rows[f"{target} R=50 duplicates"]["value"] == 0
    assert rows["orderchat p99 at 200 msg/s"]["reference"] == "durable relay p99 at 200 msg/s"
    assert rows["load generator processes"]["value"] >= 2

    idle = json.loads((tmp_path / "idle-latest.json").read_text(encoding="utf-8"))
    assert idle["errors"] == []
    assert {step["target"] for step in idle["samples"]["steps"]} == {"orderchat", "relay"}
    assert idle["checks"]["orderchat"]["connections"] == 200
    assert idle["checks"]["relay"]["connections"] == 200
    idle_rows = {row["metric"]: row for row in idle["rows"]}
    assert (
        idle_rows["orderchat KiB per idle connection at 200"]["reference"]
        == "relay KiB per idle connection at 200"
    )

    for picture in ("steady-latency.png", "idle-memory.png"):
        data = (tmp_path / picture).read_bytes()
        assert data.startswith(b"\x89PNG"), picture


def test_a_rate_holds_only_when_every_lower_rate_held_too() -> None:
    def step(rate: int, p99_ms: float, losses: int = 0) -> dict[str, float]:
        return {"rate": rate, "p99_ms": p99_ms, "losses": losses, "duplicates": 0}

    # A stall at 500 msg/s is what its users meet on the way to 1,000.
    assert best_rate([step(50, 5), step(200, 6), step(500, 220), step(1000, 19)]) == 200
    assert best_rate([step(1000, 9), step(50, 5), step(200, 6, losses=1)]) == 50
    assert best_rate([step(50, 250), step(200, 6)]) == 0
    assert best_rate([step(50, 5), step(200, 6)]) == 200
    assert best_rate([]) == 0


def test_stores_name_a_storage_and_a_node_count() -> None:
    assert Store.parse("postgres:2") == Store("postgres", 2)
    assert Store.parse("sqlite") == Store("sqlite", 1)
    assert Store("postgres", 2).label == "postgres:2"
    for wrong in ("sqlite:2", "mysql:1", "postgres:0", "postgres:two"):
        with pytest.raises(ValueError, match=r"store|node"):
            Store.parse(wrong)
