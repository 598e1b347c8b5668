"""The calls benchmark runs end to end on its quick size, the Chromium part included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import run_bench


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_calls_quick_run(tmp_path: Path) -> None:
    stdout = run_bench(tmp_path, "calls", "--quick", timeout_s=200)
    assert "invite -> ring on both devices p99" in stdout
    document: dict[str, Any] = json.loads((tmp_path / "calls-latest.json").read_text())
    assert document["workload"] == "calls" and document["errors"] == []
    rows = {row["metric"]: row for row in document["rows"]}
    assert rows["invites"]["value"] == 20
    assert len(document["samples"]["ring_ms_per_device"]) == 40, "both devices rang every time"
    for metric in (
        "invite -> ring, each device p99",
        "server CPU per call (whole signalling)",
        "accept -> first remote frame, Chromium p50",
    ):
        assert rows[metric]["value"] > 0, rows[metric]
    assert document["settings"]["relay_only"] is True
