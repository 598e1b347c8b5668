"""The two stores every storage test runs on: SQLite files, and one PostgreSQL cluster.

One run of the suite starts ONE throwaway PostgreSQL (fsync off) and ONE Redis in the
process that owns the run (the xdist controller, or pytest itself without xdist), and
exports their URLs before the workers start:

- `ORDERCHAT_TEST_PG_ADMIN`: the cluster's superuser URL;
- `ORDERCHAT_TEST_REDIS`: the Redis URL;
- `ORDERCHAT_TEST_PG_UNAVAILABLE`: set instead of the first when the PostgreSQL leg
  cannot run, with the reason its tests are skipped for.

A template database, migrated once, makes a fresh database per server a file copy
(`CREATE DATABASE … TEMPLATE`) rather than a migration run. `ORDERCHAT_TEST_STORES=sqlite`
leaves PostgreSQL out of a run altogether.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from scripts.services import Postgres, Redis

STORES = ("sqlite", "postgres")
PG_ADMIN_ENV = "ORDERCHAT_TEST_PG_ADMIN"
REDIS_ENV = "ORDERCHAT_TEST_REDIS"
PG_UNAVAILABLE_ENV = "ORDERCHAT_TEST_PG_UNAVAILABLE"
STORES_ENV = "ORDERCHAT_TEST_STORES"
TEMPLATE = "orderchat_template"
T = TypeVar("T")
_databases = itertools.count(1)


class RunServices:
    """What the run started, to stop it at the end."""

    def __init__(self) -> None:
        self.base_dir = Path(tempfile.mkdtemp(prefix="orderchat-test-services-"))
        self.base_dir.chmod(0o755)  # PostgreSQL runs as nobody when the tests run as root
        self.postgres: Postgres | None = None
        self.redis: Redis | None = None

    def start(self) -> None:
        """Start both services and export their URLs; a failure of either skips its leg."""
        try:
            self.redis = Redis(self.base_dir / "redis")
            self.redis.start()
            os.environ[REDIS_ENV] = self.redis.url
        except Exception as exc:
            self.redis = None
            os.environ.pop(REDIS_ENV, None)
            print(f"orderchat tests: no Redis for this run: {exc}")
        if os.environ.get(STORES_ENV, "sqlite,postgres").split(",") == ["sqlite"]:
            os.environ[PG_UNAVAILABLE_ENV] = f"{STORES_ENV}=sqlite"
            return
        try:
            self.postgres = Postgres(self.base_dir / "postgres", fast=True)
            self.postgres.start()
            _make_template(self.postgres)
        except Exception as exc:
            os.environ[PG_UNAVAILABLE_ENV] = f"PostgreSQL leg unavailable: {exc}"
            return
        os.environ.pop(PG_UNAVAILABLE_ENV, None)
        os.environ[PG_ADMIN_ENV] = self.postgres.admin_url

    def stop(self) -> None:
        for service in (self.postgres, self.redis):
            if service is not None:
                service.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)


def _make_template(pg: Postgres) -> None:
    """Create and migrate the template every test database is copied from.

    Raises:
        ValueError: the server's store does not take PostgreSQL URLs (yet).
    """
    url = pg.create_database(TEMPLATE)
    asyncio.run(migrate(url))  # a URL the store cannot serve is refused before connecting
    # Nobody may stay connected to a template while it is copied.
    pg.admin_sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid()",
        TEMPLATE,
    )


def postgres_unavailable() -> str | None:
    """Why the PostgreSQL leg cannot run here, or None when it can."""
    if os.environ.get(PG_ADMIN_ENV):
        return None
    return os.environ.get(PG_UNAVAILABLE_ENV, "no PostgreSQL for this run")


def admin_url() -> str:
    url = os.environ.get(PG_ADMIN_ENV)
    if not url:
        raise RuntimeError(postgres_unavailable())
    return url


def _url_for(dbname: str) -> str:
    return admin_url().rsplit("/", 1)[0] + "/" + dbname


def new_database(prefix: str = "oc", template: str | None = TEMPLATE) -> str:
    """A fresh database of its own, migrated (a copy of the template) unless `template`
    is None (then empty); its URL.

    Names carry the worker's pid, so the two xdist workers never collide.
    """
    name = f"{prefix}_{os.getpid()}_{next(_databases)}"
    sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    for attempt in range(20):
        try:
            with psycopg.connect(admin_url(), autocommit=True, connect_timeout=10) as con:
                con.execute(sql.encode())
            return _url_for(name)
        except psycopg.errors.ObjectInUse:
            # Another session is on the template for a moment (a copy being checked).
            time.sleep(0.05 * (attempt + 1))
    raise RuntimeError(f"template {TEMPLATE} stayed busy")


def _pg_sql(sql: str) -> bytes:
    """SQLite's `?` placeholders in psycopg's `%s` style (a literal % doubled first)."""
    return sql.replace("%", "%%").replace("?", "%s").encode()


def pg_rows(url: str, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, connect_timeout=10) as con:
        return con.execute(_pg_sql(sql), params or None).fetchall()


def pg_execute(url: str, sql: str, params: tuple[object, ...]) -> int:
    with psycopg.connect(url, connect_timeout=10) as con:
        return con.execute(_pg_sql(sql), params or None).rowcount


def pg_rows_many(url: str, queries: list[str]) -> list[list[tuple[Any, ...]]]:
    """The rows of each query, read over one connection in one read-only transaction."""
    with psycopg.connect(url, connect_timeout=10) as con:
        con.read_only = True
        return [con.execute(_pg_sql(sql)).fetchall() for sql in queries]


# Rows the server writes in the background, whatever a request did: the notification
# outbox and its planner's cursor follow the event stream. "Changes nothing" checks
# leave them out.
BACKGROUND_TABLES = ("notifications",)


def snapshot_query(table: str) -> str:
    """What a "changes nothing" check reads of `table`: all of it, but background rows."""
    if table == "counters":
        return "SELECT * FROM counters WHERE name <> 'notify'"
    return f'SELECT * FROM "{table}"'


def pg_snapshot(url: str, exclude: tuple[str, ...] = ()) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but `exclude` and the background ones, sorted, in one
    read-only transaction."""
    with psycopg.connect(url, connect_timeout=10) as con:
        con.read_only = True
        names = [
            row[0]
            for row in con.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
            if row[0] not in exclude and row[0] not in BACKGROUND_TABLES
        ]
        return {
            name: sorted(con.execute(snapshot_query(name).encode()).fetchall(), key=repr)
            for name in sorted(names)
        }


async def migrate(url: str) -> None:
    """Bring the database at `url` to the newest migration, as a server's start does."""
    from orderchat.storage.engine import Database

    database = Database(url)
    try:
        await database.migrate()
    finally:
        await database.close()


def run_on_own_thread(
    work: Callable[[], Coroutine[Any, Any, T]], timeout_s: float | None = None
) -> T:
    """`work()` run to its end in an event loop of its own, on a thread of its own:
    the caller may be inside an event loop. Its exception is raised here."""
    found: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            found.append(asyncio.run(work()))
        except BaseException as exc:  # handed to the caller's thread
            failed.append(exc)

    worker = threading.Thread(target=run, name="orderchat-own-loop")
    worker.start()
    worker.join(timeout_s)
    if failed:
        raise failed[0]
    assert found, f"did not finish in {timeout_s} s"
    return found[0]


_sqlite_template: Path | None = None


def copy_sqlite_template(to: Path) -> None:
    """Give a server's fresh data dir a database already migrated, as PostgreSQL's
    template does: a file copy instead of a migration run at every start. The
    template is migrated once per test process."""
    global _sqlite_template
    if _sqlite_template is None:
        made = Path(tempfile.mkdtemp(prefix="orderchat-sqlite-template-")) / "orderchat.db"
        run_on_own_thread(lambda: migrate(f"sqlite+aiosqlite:///{made}"))
        assert not made.with_name("orderchat.db-wal").exists(), "the template kept a WAL"
        _sqlite_template = made
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_sqlite_template, to)
