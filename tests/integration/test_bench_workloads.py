"""The fan-out, reconnect and history benchmarks run end to end on small sizes.

Correctness only: nothing here looks at how fast anything was, only that every
workload ran, measured something, and that no message was lost, doubled or
out of order, and every history page held the messages it names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import run_bench


def _document(out: Path, workload: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (out / f"{workload}-latest.json").read_text(encoding="utf-8")
    )
    assert document["workload"] == workload
    assert document["quick"] is True
    assert document["errors"] == [], document["errors"]
    return document


def _rows(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["metric"]: row for row in document["rows"]}


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_fanout_reconnect_history_quick_run(tmp_path: Path) -> None:
    stdout = run_bench(tmp_path, "fanout", "reconnect", "history", "--quick", timeout_s=120)
    assert "last member p50" in stdout  # the table

    fanout = _document(tmp_path, "fanout")
    rows = _rows(fanout)
    assert rows["last member max"]["unit"] == "ms"
    assert rows["last member max"]["value"] > 0
    checks = fanout["checks"]
    assert checks["each_once"] is True
    assert checks["missing"] == checks["duplicates"] == checks["unexpected"] == 0
    assert fanout["settings"]["receivers"] == 50
    rounds = fanout["samples"]["rounds"]
    assert len(rounds) == 2
    assert all(r["received"] == 50 and r["missing"] == 0 for r in rounds)

    reconnect = _document(tmp_path, "reconnect")
    rows = _rows(reconnect)
    assert rows["all synced max"]["value"] > 0
    assert rows["lost"]["value"] == 0
    assert rows["duplicated"]["value"] == 0
    assert rows["messages replayed"]["value"] == 50 * 10
    checks = reconnect["checks"]
    assert checks["nothing_lost_or_doubled"] is True
    for key in ("failed", "lost", "duplicated", "out_of_order", "extra", "after_synced"):
        assert checks[key] == 0, key
    [storm] = reconnect["samples"]["rounds"]
    assert storm["clients_synced"] == 50
    assert storm["away_acked"] == storm["away_sent"] == 500

    history = _document(tmp_path, "history")
    rows = _rows(history)
    for page in ("newest", "middle", "random", "oldest"):
        assert rows[f"{page} page p99"]["unit"] == "ms"
        assert rows[f"{page} page p99"]["value"] > 0
        assert len(history["samples"][page]) == 50
    assert history["checks"]["pages_ok"] is True
    assert history["settings"]["messages"] == 10_000
    assert rows["database size"]["value"] > 0
