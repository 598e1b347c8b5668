"""The media benchmark runs end to end against a real server and checks its own bytes.

Correctness only: the figures of a 4 MiB run say nothing about speed, so nothing
here looks at how fast anything was, only that every phase ran and measured
something, and that the server gave back exactly the bytes it was given.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import run_bench

THROUGHPUTS = (
    "copy+fsync",
    "copy (no fsync)",
    "upload tus",
    "download",
    "download range 2 MiB",  # --quick downloads half of the 4 MiB file
)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_media_bench_quick_run(tmp_path: Path) -> None:
    stdout = run_bench(tmp_path, "media", "--quick", "--size-mib", "4", timeout_s=120)
    assert "upload tus best" in stdout  # the table

    stamped = sorted(tmp_path.glob("media-2*.json"))
    assert len(stamped) == 1
    document = json.loads((tmp_path / "media-latest.json").read_text(encoding="utf-8"))
    assert json.loads(stamped[0].read_text(encoding="utf-8")) == document
    assert document["workload"] == "media"
    assert document["errors"] == []
    assert document["machine"]["cpu_count"] >= 1
    assert document["settings"]["size"] == 4 * 2**20
    assert document["settings"]["same_filesystem"] is True

    rows = {row["metric"]: row for row in document["rows"]}
    for label in THROUGHPUTS:
        for stat in ("best", "median"):
            row = rows[f"{label} {stat}"]
            assert row["unit"] == "MiB/s"
            assert row["value"] > 0, row
    for label in ("upload tus", "download"):
        row = rows[f"{label} best"]
        assert row["reference"] == "copy+fsync best"
        assert row["ratio"] > 0
    for metric in ("server RSS idle", "server RSS peak upload", "server RSS peak download"):
        assert rows[metric]["unit"] == "MiB"
        assert rows[metric]["value"] > 0

    checks = document["checks"]
    assert checks["sha256_ok"] is True
    assert len(checks["rounds"]) == 1
    for record in checks["rounds"]:
        assert record["server_sha256"] == record["sha256"]
        assert record["download_sha256"] == record["sha256"]
        assert record["download_bytes"] == 4 * 2**20
        assert record["range_sha256"] == record["range_expected_sha256"]
        assert record["range_content_range"] == "bytes 1048576-3145727/4194304"
