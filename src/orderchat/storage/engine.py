"""Database setup: SQLite (WAL, synchronous=FULL) by default, PostgreSQL for several nodes.

`Database(url)` opens whichever the URL names: a `SqliteDatabase` here, or a
`PostgresDatabase` (storage/postgres.py). Both offer the same two ways in,
`read()` and `write(name)`, and run the same Alembic migrations.

SQLite allows one writer at a time. Write transactions therefore start with
`BEGIN IMMEDIATE`, which takes the write lock up front (waiting up to the busy
timeout) instead of failing half-way when a read turns into a write. Reads use
a separate pool with plain deferred transactions, which in WAL mode never wait
for the writer. Statements run on the event loop (see `LoopConnection`); the
async engine is used by migrations only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import Connection as SyncConnection
from sqlalchemy import Engine, RootTransaction, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

logger = logging.getLogger(__name__)

# What stores take: services pass it along without knowing what is underneath.
Connection = AsyncConnection

SQLITE_BUSY_TIMEOUT_MS = 30_000
READERS = 8
# How often, at most, the WAL is copied back into the database in the background.
CHECKPOINT_EVERY_S = 0.5
_MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling is turned off so that the "begin"
    # hook below decides how each transaction starts.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _hook_sqlite(engine: Engine, begin: str) -> None:
    event.listen(engine, "connect", _sqlite_pragmas)

    def _begin(conn: SyncConnection) -> None:
        conn.exec_driver_sql(begin)

    event.listen(engine, "begin", _begin)


class LoopConnection:
    """SQLite's one writer connection, driven from the event loop.

    Through the async adapter every statement costs several thread handoffs
    (cursor, execute, fetch, close): about half a millisecond of CPU for a
    statement SQLite runs in microseconds, which made a one-message group
    commit cost several milliseconds. The writer's statements run here
    directly instead; only what waits on the disk (COMMIT's fsync, and BEGIN
    IMMEDIATE when another process holds the lock) goes to a thread.
    It offers what is used of an AsyncConnection: `execute`, `exec_driver_sql`,
    `run_sync` and `begin_nested`.
    """

    def __init__(self, sync: SyncConnection) -> None:
        self._sync = sync
        # Statements the commit's thread runs just before COMMIT (see `at_commit`).
        self._at_commit: list[tuple[str, tuple[Any, ...]]] = []

    def at_commit(self, sql: str, parameters: tuple[Any, ...]) -> None:
        """Run `sql` in this transaction, on the commit's thread just before COMMIT.

        For one statement that does much work in C from few parameters (FTS5's
        feed from rows already inserted): the thread holds no GIL while SQLite
        works, so the loop goes on serving meanwhile. Every statement of this
        transaction that must see its effect first calls `run_pending`.
        """
        self._at_commit.append((sql, parameters))

    def run_pending(self) -> None:
        """What `at_commit` holds, now, on the loop."""
        pending, self._at_commit = self._at_commit, []
        for sql, parameters in pending:
            self.driver.execute(sql, parameters)

    @property
    def dialect(self) -> Any:
        return self._sync.dialect

    @property
    def driver(self) -> sqlite3.Connection:
        """The sqlite3 connection itself, inside this same transaction."""
        return _sqlite_driver(self._sync)

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        if parameters is None:
            return self._sync.execute(statement)
        return self._sync.execute(statement, parameters)

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> Any:
        return self._sync.exec_driver_sql(statement, parameters)

    async def run_sync(self, fn: Callable[[SyncConnection], Any]) -> Any:
        return fn(self._sync)

    @asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[None]:
        with self._sync.begin_nested():
            yield


_T = TypeVar("_T")


async def _to_the_end(work: Callable[[], _T]) -> _T:
    """`work` on a thread, awaited to its end even if the caller is cancelled meanwhile.

    A cancelled `to_thread` leaves its thread running. On the writer's connection
    that let the write lock go while the thread still used the connection, and
    `close()` then closed it under that thread: a segfault in the checkpoint's
    PRAGMA, seen on a server stopped the moment it started.
    """
    future = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({future})
        if not future.cancelled():
            future.exception()  # retrieved: the cancellation is what the caller hears
        raise


def loop_connection(conn: object) -> LoopConnection | None:
    """`conn` as the SQLite writer's loop connection, if it is that."""
    return conn if isinstance(conn, LoopConnection) else None


def _commit(conn: LoopConnection, transaction: Any) -> None:
    """On the commit's thread: the statements held for it, then COMMIT."""
    try:
        conn.run_pending()
    except BaseException:
        transaction.rollback()
        raise
    transaction.commit()


def _backend(url: str) -> str | None:
    try:
        return make_url(url).get_backend_name()
    except ArgumentError:  # not a URL at all
        return None


def is_sqlite_url(url: str) -> bool:
    """Whether `url` is a SQLAlchemy URL of a SQLite database."""
    return _backend(url) == "sqlite"


def is_postgres_url(url: str) -> bool:
    """Whether `url` names a PostgreSQL database (`postgresql://` or `postgresql+asyncpg://`)."""
    return _backend(url) == "postgresql"


def is_database_url(url: str) -> bool:
    """Whether `Database` can open this URL."""
    return is_sqlite_url(url) or is_postgres_url(url)


def database_arg(raw: str) -> str:
    """`--database` of every command: a SQLite or PostgreSQL URL, or a clear refusal.

    Raises:
        ValueError: the URL names neither.
    """
    if not is_database_url(raw):
        raise ValueError(
            f"{raw!r} is neither a SQLite URL (sqlite+aiosqlite:///PATH)"
            " nor a PostgreSQL one (postgresql://USER@HOST:PORT/DB)"
        )
    return raw


def shown_url(url: str) -> str:
    """The URL as logs and command lines show it: never with its password."""
    return make_url(url).render_as_string(hide_password=True)


def sqlite_path(url: str) -> Path | None:
    """The absolute path of the file a SQLite URL names; None for an in-memory database."""
    database = make_url(url).database
    if database in (None, "", ":memory:"):
        return None
    return Path(database).resolve()


def _make_engine(url: str, *, begin: str, pool_size: int) -> AsyncEngine:
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=60)
    _hook_sqlite(engine.sync_engine, begin)
    return engine


class Database:
    """The two ways in: `read()` for snapshots, `write(name)` for transactions.

    `Database(url)` gives the implementation the URL names; stores take any.
    """

    url: str
    # Several processes may write (PostgreSQL): stream positions then come from
    # a sequence and are read up to the persisted horizon (storage/stream.py).
    shared: bool = False

    def __new__(cls, url: str) -> Database:
        """Raises ValueError for a URL that is neither SQLite's nor PostgreSQL's."""
        if cls is Database:
            if is_postgres_url(url):
                from orderchat.storage.postgres import PostgresDatabase

                return super().__new__(PostgresDatabase)
            if is_sqlite_url(url):
                return super().__new__(SqliteDatabase)
            raise ValueError(f"not a SQLite or PostgreSQL database URL: {url!r}")
        return super().__new__(cls)

    def write(self, name: str) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        """A write transaction, committed on exit and rolled back on error."""
        raise NotImplementedError

    def read(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        """A read transaction: every query inside sees one snapshot."""
        raise NotImplementedError

    async def migrate(self) -> None:
        """Bring the schema to the newest migration."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def hold_job_lock(self, name: str) -> bool:
        """Whether this process may run the scheduled job `name` now (services/leases.py).

        One process is the only one there is: always yes.
        """
        return True

    async def release_job_lock(self, name: str) -> None:
        return None

    async def horizon(self) -> int | None:
        """The position below which events may be handed out, read on its own; None
        where it is read inside the reader's snapshot instead (one writer: the head)."""
        return None

    async def committed_after(self, after: int) -> tuple[int, list[tuple[int, str]]]:
        """The persisted horizon and the (position, conversation) of each event in (after, it].

        Only a shared database needs it: with one writer, delivery follows commit order.
        """
        raise NotImplementedError


class SqliteDatabase(Database):
    """One file, one writer connection driven from the loop, pooled readers."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self._writer = _make_engine(url, begin="BEGIN IMMEDIATE", pool_size=1)
        sync_url = parsed.set(drivername="sqlite")
        self._loop_writer = create_engine(
            sync_url,
            pool_size=1,
            max_overflow=0,
            connect_args={"check_same_thread": False},
        )
        _hook_sqlite(self._loop_writer, "BEGIN IMMEDIATE")
        # The writer never checkpoints as part of a commit (SQLite's default
        # every 1,000 pages), which made every few hundredth commit wait for
        # the whole WAL to be copied and the database file synced; a
        # background connection checkpoints instead (see _checkpoint). Nor
        # does it wait for a lock on the loop (see _begin_at_once).
        event.listen(self._loop_writer, "connect", _writer_pragmas)
        self._loop_reader = create_engine(
            sync_url,
            pool_size=READERS,
            max_overflow=0,
            connect_args={"check_same_thread": False},
        )
        _hook_sqlite(self._loop_reader, "BEGIN")
        self._write_lock = asyncio.Lock()
        self._checkpointing: asyncio.Task[None] | None = None
        self._last_checkpoint = 0.0
        self._finish_checkpoint = False
        on_disk = parsed.database not in (None, "", ":memory:")
        self._database_path = parsed.database if on_disk else None
        # A free pooled connection for every read let in: taking one never blocks.
        self._read_slots = asyncio.Semaphore(READERS)
        self._loop_conn: SyncConnection | None = None

    @asynccontextmanager
    async def write(self, name: str) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed on exit and rolled back on error."""
        logger.debug("txn %s", name)
        async with self._write_lock:
            if self._loop_conn is None:
                self._loop_conn = await _to_the_end(self._loop_writer.connect)
            sync = self._loop_conn
            if self._finish_checkpoint:
                await self._finish_checkpoint_on(sync)
            transaction = _begin_at_once(sync)
            if transaction is None:
                transaction = await _to_the_end(lambda: _begin_waiting(sync))
            conn = LoopConnection(sync)
            try:
                yield cast(AsyncConnection, conn)
            except BaseException:
                transaction.rollback()
                raise
            await _to_the_end(lambda: _commit(conn, transaction))
        self._maybe_checkpoint()

    def _maybe_checkpoint(self) -> None:
        if self._database_path is None or self._checkpointing is not None:
            return
        now = time.monotonic()
        if now - self._last_checkpoint < CHECKPOINT_EVERY_S:
            return
        self._last_checkpoint = now
        self._checkpointing = asyncio.get_running_loop().create_task(
            self._checkpoint(), name="sqlite-checkpoint"
        )

    async def _checkpoint(self) -> None:
        """Copy committed WAL pages into the database without holding up writers.

        PASSIVE never waits for a lock: it copies what no reader still needs,
        and the next writer then starts the WAL over from its beginning.
        """
        path = self._database_path
        assert path is not None
        try:
            await asyncio.to_thread(_passive_checkpoint, path)
            self._finish_checkpoint = True
        except Exception:
            logger.warning("background checkpoint failed", exc_info=True)
        finally:
            self._checkpointing = None

    async def _finish_checkpoint_on(self, sync: SyncConnection) -> None:
        """Copy the few frames committed while the background checkpoint ran, between commits.

        Under steady load the writer appends while the background copy runs, so
        the copy never reaches the WAL's end and the WAL never starts over: it
        grew by hundreds of MB a minute. Here, under the write lock, nothing is
        appended meanwhile, so the next transaction starts the WAL from its beginning.
        """
        self._finish_checkpoint = False
        driver = _sqlite_driver(sync)
        try:
            await _to_the_end(lambda: driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())
        except Exception:
            logger.warning("checkpoint between commits failed", exc_info=True)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction: every query inside sees one snapshot.

        The statements run on the loop, like the writer's: in WAL mode a
        reader never waits for a lock, and the reads are indexed.
        """
        async with self._read_slots:
            sync = self._loop_reader.connect()
            try:
                with sync.begin():
                    yield cast(AsyncConnection, LoopConnection(sync))
            finally:
                sync.close()

    async def migrate(self) -> None:
        """Bring the schema to the newest migration."""
        async with upgrade_turn(), self._writer.begin() as conn:
            await conn.run_sync(_upgrade)

    async def close(self) -> None:
        if self._checkpointing is not None:
            with contextlib.suppress(Exception):
                await self._checkpointing
        async with self._write_lock:
            if self._loop_conn is not None:
                self._loop_conn.close()
                self._loop_conn = None
            self._loop_writer.dispose()
            self._loop_reader.dispose()
        await self._writer.dispose()


def _writer_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")
    # BEGIN IMMEDIATE is tried on the event loop first, where it must never wait.
    dbapi_connection.execute("PRAGMA busy_timeout=0")


def _begin_at_once(sync: SyncConnection) -> RootTransaction | None:
    """BEGIN IMMEDIATE on the event loop; None if another process holds the write lock.

    While the server runs nobody else takes that lock but, now and then, a
    command-line tool, so BEGIN is a few microseconds. In a thread it cost the
    busy loop about 3 ms per group commit, waiting for the GIL both ways.
    """
    try:
        return sync.begin()
    except OperationalError as exc:
        if getattr(exc.orig, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY:
            return None
        raise


def _begin_waiting(sync: SyncConnection) -> RootTransaction:
    """BEGIN IMMEDIATE that waits out another process's write lock, in a thread."""
    driver = _sqlite_driver(sync)
    driver.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    try:
        return sync.begin()
    finally:
        driver.execute("PRAGMA busy_timeout=0")


def _sqlite_driver(sync: SyncConnection) -> sqlite3.Connection:
    driver = sync.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    return driver


def _passive_checkpoint(path: str) -> None:
    with contextlib.closing(sqlite3.connect(path, timeout=0)) as conn:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()


# Alembic publishes the running migration through module globals
# (`alembic.context`, `alembic.op`) and removes them when it ends, so two
# upgrades at once in one process, on two threads, tear down each other's.
_ONE_UPGRADE_AT_A_TIME = threading.Lock()


@asynccontextmanager
async def upgrade_turn() -> AsyncIterator[None]:
    """This process's one migration slot, waited for without blocking the loop.

    Polled rather than taken in a thread: the migration itself yields to the
    loop at every statement, so a second one on the same loop blocking on
    the lock would stop the first; and a cancelled wait leaves nothing held.
    """
    while not _ONE_UPGRADE_AT_A_TIME.acquire(blocking=False):  # noqa: ASYNC110 (a thread lock)
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        _ONE_UPGRADE_AT_A_TIME.release()


def newest_revision() -> str:
    """The head of the migrations, read from their file names (0001_…, 0002_…):
    each revises the one numbered before it (tests/unit/test_migration_chain.py)."""
    names = (path.name for path in (_MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    return max(name[:4] for name in names)


def _at_head(connection: SyncConnection) -> bool:
    if not inspect(connection).has_table("alembic_version"):
        return False
    stored = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return stored == [newest_revision()]


def _upgrade(connection: SyncConnection) -> None:
    """Migrate to the head; a database already there is told apart without Alembic,
    whose import (with Mako's) was a good part of every start and every command."""
    if _at_head(connection):
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
