"""The throwaway services the suite, the benchmarks and `make cluster` start."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from scripts.services import Nginx, Postgres, Redis, free_port, port_open, wait_until


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A directory under /tmp, which PostgreSQL's unprivileged user can reach."""
    path = Path(tempfile.mkdtemp(prefix="orderchat-services-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _ping(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64)


def test_postgres_creates_queries_and_drops_a_database(scratch: Path) -> None:
    with Postgres(scratch, fast=True) as pg:
        url = pg.create_database("probe")
        with psycopg.connect(url) as con:
            con.execute("CREATE TABLE t (n int)")
            con.execute("INSERT INTO t VALUES (41), (1)")
            assert con.execute("SELECT sum(n) FROM t").fetchone() == (42,)
            settings: dict[str, str] = dict(
                con.execute("SELECT name, setting FROM pg_settings").fetchall()
            )
        assert settings["fsync"] == "off"
        assert settings["listen_addresses"] == "127.0.0.1"
        assert int(settings["max_connections"]) >= 200
        assert settings["server_encoding"] == "UTF8"
        assert pg.cpu_seconds() > 0
        assert pg.pid in pg.pids()
        held = psycopg.connect(url)  # drop_database ends sessions a dead server left behind
        pg.drop_database("probe")
        held.close()
        names = [row[0] for row in pg.admin_sql("SELECT datname FROM pg_database")]
        assert "probe" not in names


def test_postgres_survives_kill_and_restart_on_the_same_port(scratch: Path) -> None:
    with Postgres(scratch) as pg:
        port = pg.port
        url = pg.create_database("kept")
        with psycopg.connect(url) as con:
            con.execute("CREATE TABLE t (n int)")
            con.execute("INSERT INTO t VALUES (7)")
        pg.kill()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=2)
        pg.restart()
        assert pg.port == port
        with psycopg.connect(url) as con:
            assert con.execute("SELECT n FROM t").fetchall() == [(7,)]
            assert con.execute("SHOW fsync").fetchone() == ("on",)


def test_redis_answers_and_restarts_on_the_same_port(scratch: Path) -> None:
    with Redis(scratch) as redis:
        assert redis.url == f"redis://127.0.0.1:{redis.port}/0"
        assert _ping(redis.port).startswith(b"+PONG")
        port = redis.port
        redis.kill()
        assert not port_open(port)
        redis.restart()
        assert redis.port == port
        assert _ping(redis.port).startswith(b"+PONG")
        assert redis.cpu_seconds() >= 0


@pytest.fixture
def upstreams(tmp_path: Path) -> Iterator[list[int]]:
    """Two static HTTP servers, each answering `/who` with its own name."""
    started: list[tuple[int, subprocess.Popen[bytes]]] = []
    try:
        for name in ("a", "b"):
            root = tmp_path / name
            root.mkdir()
            (root / "who").write_text(name)
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                cwd=root,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            started.append((port, proc))
            assert wait_until(lambda p=port: port_open(p), 20, proc)
        yield [port for port, _ in started]
    finally:
        for _, proc in started:
            proc.terminate()
            proc.wait(timeout=10)


def test_nginx_spreads_requests_and_skips_a_dead_upstream(
    scratch: Path, upstreams: list[int]
) -> None:
    dead = free_port()
    with Nginx(scratch, free_port(), [dead, *upstreams]) as nginx:
        conf = nginx.conf_path.read_text()
        assert "proxy_next_upstream error timeout" in conf
        assert "ip_hash" not in conf
        seen = set()
        for _ in range(8):
            resp = httpx.get(f"{nginx.url}/who", timeout=10)
            assert resp.status_code == 200
            seen.add(resp.text)
        assert seen == {"a", "b"}
