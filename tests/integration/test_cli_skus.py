"""`orderchat skus import FILE [--apply]` and `skus export [FILE]` on a live server's data dir.

The command and the server share the SQLite file: what `--apply` writes, the
server's API shows; what a preview prints, nothing writes.
"""

from __future__ import annotations

import itertools
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.order_support import assert_unchanged
from tests.support import ServerProcess, run_cli

pytestmark = pytest.mark.timeout(120)

HEADER = "sku,name_zh,name_en,category,unit_price_cents,low_stock_threshold,location,on_hand"
TABLES = ("skus", "stock_levels", "stock_movements")

_codes = itertools.count(1)


def _code(prefix: str = "CLI") -> str:
    return f"{prefix}-{next(_codes)}-{time.monotonic_ns() % 100_000}"


def _skus(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    where = ("--data-dir", str(server.data_dir), *server.database_args)
    return run_cli("skus", *args, *where, check=False)


def _snapshot(server: ServerProcess) -> dict[str, list[tuple[Any, ...]]]:
    return {t: server.db_rows(f"SELECT * FROM {t} ORDER BY 1") for t in TABLES}


def _file(tmp_path: Path, text: str, encoding: str = "utf-8-sig") -> Path:
    path = tmp_path / f"{_code('file')}.csv"
    path.write_bytes(text.encode(encoding))
    return path


def _api_sku(server: ServerProcess, code: str) -> Any:
    assert server.admin is not None
    with server.http(server.admin.token) as client:
        return client.get(f"/api/skus/{code}")


# The preview reads the catalogue alike on either store; what writes runs on both below.
@pytest.mark.sqlite_only
def test_import_without_apply_prints_the_preview_and_writes_nothing(
    server: ServerProcess, tmp_path: Path
) -> None:
    code = _code()
    path = _file(tmp_path, f"{HEADER}\n{code},头灯,Headlamp,lights,9900,2,main,5\n")
    before = _snapshot(server)
    done = _skus(server, "import", str(path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"database: {server.db_where}"
    assert lines[1].split("\t")[:3] == ["line 2", "create", code]
    assert "name_zh=头灯" in lines[1] and "on_hand@main: 0 -> 5" in lines[1]
    assert "1 rows: 1 create, 0 update, 0 unchanged, 0 error; 1 stock changes" in lines
    assert lines[-1].startswith("nothing written")
    assert_unchanged(before, _snapshot(server))
    assert _api_sku(server, code).status_code == 404


def test_import_with_apply_writes_what_the_server_then_serves(
    server: ServerProcess, tmp_path: Path
) -> None:
    code = _code()
    path = _file(tmp_path, f"{HEADER}\r\n{code},防水驮包,Duffel,bags,45900,3,main,8\r\n")
    done = _skus(server, "import", str(path), "--apply")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "imported 1 rows: 1 created, 0 updated, 1 stock changes"
    sku = _api_sku(server, code).json()
    assert (sku["name_zh"], sku["on_hand"], sku["unit_price_cents"]) == ("防水驮包", 8, 45900)

    path = _file(tmp_path, f"{HEADER}\n{code},防水驮包,Duffel,bags,47900,3,main,6\n")
    preview = _skus(server, "import", str(path))
    assert "unit_price_cents: 45900 -> 47900; on_hand@main: 8 -> 6" in preview.stdout
    assert _skus(server, "import", str(path), "--apply").returncode == 0
    assert _api_sku(server, code).json()["on_hand"] == 6


def test_error_rows_are_reported_and_nothing_is_written_even_with_apply(
    server: ServerProcess, tmp_path: Path
) -> None:
    good, bad = _code("GOOD"), _code("BAD")
    path = _file(
        tmp_path,
        f"{HEADER}\n{good},灯,Lamp,lights,100,0,main,1\n{bad},灯,Lamp,lights,lots,0,main,1\n",
    )
    before = _snapshot(server)
    for extra in ((), ("--apply",)):
        done = _skus(server, "import", str(path), *extra)
        assert done.returncode == 1
        errors = [line for line in done.stdout.splitlines() if "\terror\t" in line]
        assert errors == [
            f"line 3\terror\t{bad}\tunit_price_cents: unit_price_cents must be a whole "
            "number (got 'lots')"
        ]
        assert "nothing written" in done.stderr
    assert_unchanged(before, _snapshot(server))


@pytest.mark.parametrize(
    ("text", "message"),
    [("sku,name\nA,b\n", "line 1: the columns must be"), ("", "the CSV is empty")],
)
def test_a_malformed_file_is_refused_with_exit_2(
    server: ServerProcess, tmp_path: Path, text: str, message: str
) -> None:
    before = _snapshot(server)
    done = _skus(server, "import", str(_file(tmp_path, text, "utf-8")), "--apply")
    assert done.returncode == 2
    assert message in done.stderr
    assert_unchanged(before, _snapshot(server))


def test_a_missing_file_or_database_is_refused(server: ServerProcess, tmp_path: Path) -> None:
    done = _skus(server, "import", str(tmp_path / "absent.csv"))
    assert done.returncode == 2 and "absent.csv" in done.stderr
    empty = tmp_path / "typo"
    for args in (["import", str(_file(tmp_path, HEADER))], ["export"]):
        refused = run_cli("skus", *args, "--data-dir", str(empty), check=False)
        assert refused.returncode == 2
        assert "no database at" in refused.stderr
    assert not empty.exists()


def test_export_round_trips_through_import_unchanged(server: ServerProcess, tmp_path: Path) -> None:
    code = _code()
    path = _file(tmp_path, f"{HEADER}\n{code},绳,Rope,rope,100,0,main,2\n")
    assert _skus(server, "import", str(path), "--apply").returncode == 0
    target = tmp_path / "export.csv"
    done = _skus(server, "export", str(target))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"database: {server.db_where}"
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf" + HEADER.encode())

    piped = _skus(server, "export")
    assert piped.returncode == 0
    assert piped.stdout.startswith(HEADER)
    assert piped.stderr.startswith("database: ")
    # Text mode reads the CSV's CRLF line ends as "\n".
    assert piped.stdout == raw.decode("utf-8-sig").replace("\r\n", "\n")

    before = _snapshot(server)
    again = _skus(server, "import", str(target), "--apply")
    assert again.returncode == 0, again.stderr
    assert "0 create, 0 update" in again.stdout
    assert_unchanged(before, _snapshot(server))
