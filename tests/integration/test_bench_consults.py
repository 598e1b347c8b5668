"""The consults benchmark runs end to end on a tiny size.

Correctness only: nothing here looks at how fast anything went. 40 visitors
over 2 s against 10 agents with room for 3 each: 30 consults must have gone to
an agent and 10 must wait; every agent must have heard every consult open, and
each assigned agent their own assignment; and the inbox read back afterwards
must hold every consult once, in a state that keeps the rules, with no
violation of any kind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import run_bench


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_consults_tiny_run(tmp_path: Path) -> None:
    stdout = run_bench(
        tmp_path, "consults", "--visitors", "40", "--seconds", "2", "--consults-max-open", "3",
        timeout_s=120,
    )  # fmt: skip
    assert "first staff notification p99" in stdout  # the table

    document: dict[str, Any] = json.loads((tmp_path / "consults-latest.json").read_text())
    assert document["workload"] == "consults"
    assert document["errors"] == [], document["errors"]
    settings = document["settings"]
    assert settings["visitors"] == 40 and settings["agents"] == 10
    assert settings["max_open_per_agent"] == 3
    rows = {row["metric"]: row for row in document["rows"]}
    assert rows["consults started"]["value"] == 40
    assert rows["consults assigned"]["value"] == 30
    assert rows["consults queued"]["value"] == 10
    first = rows["first staff notification p99"]
    assert first["unit"] == "ms" and first["value"] > 0
    assert rows["first staff notification max"]["value"] >= first["value"]
    assert rows["assigned agent's note (30 assigned) p99"]["value"] > 0
    assert rows["inbox violations (expected 0)"]["value"] == 0
    assert rows["notifications missing or doubled (expected 0)"]["value"] == 0
    assert rows["starts/s achieved"]["value"] > 0

    checks = document["checks"]
    assert checks["failed_starts"] == 0
    assert checks["inbox_violations_total"] == 0, checks["inbox_violations"]
    assert checks["notifications_total"] == 0, checks["notifications"]
    assert checks["agents_open"] == [3] * 10
    assert checks["inbox_total"] == 40
    assert checks["inbox_counts"]["all"] == 40 and checks["inbox_counts"]["unassigned"] == 10

    consults = document["samples"]["consults"]
    assert len(consults) == 40 and len({c["id"] for c in consults}) == 40
    assert sorted(c["position"] for c in consults if c["status"] == "queued") == list(range(1, 11))
    assert all(c["first_ms"] is not None for c in consults)
    assert all(c["assigned_ms"] is not None for c in consults if c["status"] == "open")
    assert all(c["queued_ms"] is not None for c in consults if c["status"] == "queued")
