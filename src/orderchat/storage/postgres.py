"""PostgreSQL, for several OrderChat processes ("nodes") sharing one database.

Writes within one node are still taken one at a time, as on SQLite: the code
above was written for one writer, and keeping that inside a node leaves only
what crosses nodes to the database's own locks (the conversation row, stock
rows, unique keys). Reads run in REPEATABLE READ, READ ONLY transactions, so
every query of one read sees one snapshot, as SQLite's WAL readers do.

A lost connection, a database that is restarting or refusing connections, and
a transaction the server cancelled all surface as `Unavailable`: the request is
answered "retry", nothing of it was stored, and the pool opens new connections
once the database is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy import make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from orderchat.core.errors import BadRequest, Unavailable
from orderchat.core.texts import say
from orderchat.storage.engine import Database, _upgrade, upgrade_turn

logger = logging.getLogger(__name__)

POOL_SIZE = 12
WRITERS = 3
RAW_POOL_SIZE = 4
# A node frozen in the middle of a transaction holds back every node's
# deliveries (its stream positions may still commit); the database ends such a
# transaction after this long, which also fences the node: its commit fails.
IDLE_IN_TRANSACTION_MS = 5_000
# Nothing the server runs should wait on a lock this long; a deadlock between
# two nodes is found within the server's deadlock_timeout and retried.
LOCK_TIMEOUT_MS = 10_000
# The key of the advisory lock that lets one node migrate at a time.
MIGRATION_LOCK = (0x4F43, 1)
# SQLSTATEs that mean "try again": serialization failure, deadlock, the
# server shutting down or not yet accepting connections, too many clients.
RETRYABLE_STATES = frozenset({"40001", "40P01", "57P01", "57P02", "57P03", "53300", "08006"})
# Lost a race with a concurrent transaction: serialization failure, deadlock, and a
# unique key another node inserted first (the same `ref`, say): run again, the
# winner's row is there to be found.
CONFLICT_STATES = frozenset({"40001", "40P01", "23505"})
# Text PostgreSQL cannot store: character_not_in_repertoire, untranslatable_character.
UNSTORABLE_TEXT = frozenset({"22021", "22P05"})


def asyncpg_url(url: str) -> URL:
    """The URL with the asyncpg driver, whichever PostgreSQL spelling was given."""
    return make_url(url).set(drivername="postgresql+asyncpg")


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of an error from SQLAlchemy or straight from asyncpg (prebuilt statements)."""
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc.sqlstate)
    if not isinstance(exc, DBAPIError):
        return None
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if state is None and exc.orig is not None:
        state = getattr(exc.orig.__cause__, "sqlstate", None)
    return None if state is None else str(state)


def is_transient(exc: BaseException) -> bool:
    """Whether a database error is one a retry can cure (see RETRYABLE_STATES)."""
    if isinstance(exc, PoolTimeout | ConnectionError | OSError | asyncio.TimeoutError):
        return True
    if isinstance(exc, asyncpg.InterfaceError):  # the connection is gone
        return True
    if isinstance(exc, asyncpg.PostgresError):
        return _sqlstate(exc) in RETRYABLE_STATES or str(_sqlstate(exc)).startswith("08")
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    state = _sqlstate(exc)
    if state in RETRYABLE_STATES:
        return True
    return isinstance(exc, OperationalError) and state is None


def is_conflict(exc: BaseException) -> bool:
    return _sqlstate(exc) in CONFLICT_STATES


class PostgresDatabase(Database):
    shared = True

    def __init__(self, url: str, *, application_name: str | None = None) -> None:
        self.url = url
        settings = {
            "application_name": (application_name or f"orderchat-{os.getpid()}")[:63],
            "idle_in_transaction_session_timeout": str(IDLE_IN_TRANSACTION_MS),
            "lock_timeout": str(LOCK_TIMEOUT_MS),
        }
        self._settings = settings
        self._dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        # Plain asyncpg connections for the horizon, read on every delivery tick
        # and every resume: a few cheap statements, called very often.
        self._raw_pool: asyncpg.Pool | None = None
        self._stuck_checked_at = 0.0
        self._raw_pool_lock = asyncio.Lock()
        # A connection the server closed (a restart) is found out on its first
        # use, invalidated, and the request answered "retry"; the next request
        # gets a new one. Writes are taken one at a time per node: a small pool.
        common = {
            "max_overflow": 0,
            "pool_timeout": 30,
            "pool_pre_ping": False,
            "connect_args": {"server_settings": settings, "timeout": 10},
        }
        self._engine = create_async_engine(asyncpg_url(url), pool_size=WRITERS, **common)
        # Reads: REPEATABLE READ, READ ONLY, set once for the pool's connections
        # rather than on every checkout.
        self._reader = create_async_engine(
            asyncpg_url(url),
            pool_size=POOL_SIZE,
            isolation_level="REPEATABLE READ",
            execution_options={"postgresql_readonly": True},
            **common,
        )
        self._write_lock = asyncio.Lock()
        # One connection per node holds its jobs' advisory locks: when the node
        # dies, the connection goes and the database frees them at once.
        self._job_conn: AsyncConnection | None = None
        self._jobs_held: set[str] = set()
        # Jobs ask for their locks at once when the node starts: one at a time,
        # or each would open the lock connection, and all but the last be dropped
        # with whatever locks were taken on them, each holding a writer's slot.
        self._job_lock_turn = asyncio.Lock()

    @asynccontextmanager
    async def write(self, name: str) -> AsyncIterator[AsyncConnection]:
        logger.debug("txn %s", name)
        async with self._write_lock, _transient_as_unavailable(), self._engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with _transient_as_unavailable(), self._reader.begin() as conn:
            yield conn

    async def _raw(self) -> asyncpg.Pool:
        if self._raw_pool is None:
            async with self._raw_pool_lock:
                if self._raw_pool is None:
                    self._raw_pool = await asyncpg.create_pool(
                        self._dsn,
                        min_size=1,
                        max_size=RAW_POOL_SIZE,
                        timeout=10,
                        server_settings=self._settings,
                    )
        return self._raw_pool

    async def horizon(self) -> int:
        """The persisted horizon (storage/stream.py), outside any transaction."""
        try:
            pool = await self._raw()
            return int(await pool.fetchval(_HORIZON) or 0)
        except (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise Unavailable(say("server.unavailable")) from exc

    async def committed_after(self, after: int) -> tuple[int, list[tuple[int, str]]]:
        """The persisted horizon, then the (position, conversation) of each event in (after, it].

        Two statements outside any transaction, so the second one's snapshot is
        taken after the horizon was read: every event at or below it is visible.
        They run on a plain asyncpg connection: every node reads them on every
        delivery tick.
        """
        try:
            pool = await self._raw()
            async with pool.acquire() as conn:
                horizon = int(await conn.fetchval(_HORIZON) or 0)
                if horizon <= after:
                    await self._end_stuck_writers(conn)
                    return horizon, []
                rows = await conn.fetch(_COMMITTED, after, horizon)
        except (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise Unavailable(say("server.unavailable")) from exc
        return horizon, [(int(r[0]), str(r[1])) for r in rows]

    async def _end_stuck_writers(self, conn: asyncpg.Connection) -> None:
        """End a write transaction whose client stopped in the middle of a statement.

        The server ends a transaction whose client is frozen between statements
        (`idle_in_transaction_session_timeout`), but not one frozen in the middle of
        one: its backend waits for the rest of the statement, "active", for ever,
        holding its floor lock, and no node's horizon moves past it. Such a backend
        is terminated here, so its transaction can never commit and the horizon may
        pass its positions (storage/stream.py). Looked for at most once a second,
        and only while nothing new is visible.
        """
        now = asyncio.get_running_loop().time()
        if now - self._stuck_checked_at < STUCK_CHECK_EVERY_S:
            return
        self._stuck_checked_at = now
        try:
            ended = await conn.fetch(_END_STUCK_WRITERS, IDLE_IN_TRANSACTION_MS / 1000)
        except asyncpg.PostgresError as exc:  # another role's session: not ours to end
            logger.warning("a stuck write transaction could not be ended: %s", exc)
            return
        for row in ended:
            logger.warning(
                "ended a write transaction stuck for %s in the middle of a statement"
                " (session %s, %s): its node stopped answering",
                row["held"],
                row["pid"],
                row["application_name"],
            )

    async def hold_job_lock(self, name: str) -> bool:
        """Whether this node holds (or now takes) the lock of the scheduled job `name`."""
        async with self._job_lock_turn:
            return await self._hold_job_lock(name)

    async def _hold_job_lock(self, name: str) -> bool:
        try:
            if self._job_conn is None:
                self._job_conn = await self._engine.connect()
                await self._job_conn.execution_options(isolation_level="AUTOCOMMIT")
                self._jobs_held.clear()
            found = await self._job_conn.execute(_HOLDING, _job_key(name))
            if found.scalar_one():
                self._jobs_held.add(name)
                return True
            taken = (await self._job_conn.execute(_TRY_JOB_LOCK, _job_key(name))).scalar_one()
        except Exception as exc:
            if self._job_conn is not None:
                with contextlib.suppress(Exception):
                    await self._job_conn.invalidate()
                    await self._job_conn.close()
            self._job_conn = None
            self._jobs_held.clear()
            if is_transient(exc):
                raise Unavailable(say("server.unavailable")) from exc
            raise
        if taken:
            self._jobs_held.add(name)
        return bool(taken)

    async def release_job_lock(self, name: str) -> None:
        async with self._job_lock_turn:
            if self._job_conn is not None and name in self._jobs_held:
                with contextlib.suppress(Exception):
                    await self._job_conn.execute(_UNLOCK_JOB, _job_key(name))
                self._jobs_held.discard(name)

    async def migrate(self) -> None:
        """Migrate under an advisory lock: nodes starting together migrate one after another."""
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:a, :b)"), _lock_params())
            await conn.commit()
            try:
                async with upgrade_turn(), conn.begin():
                    await conn.run_sync(_upgrade)
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:a, :b)"), _lock_params())
                await conn.commit()

    async def close(self) -> None:
        if self._raw_pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._raw_pool.close(), 2)
            self._raw_pool = None
        if self._job_conn is not None:
            with contextlib.suppress(Exception):
                await self._job_conn.close()
            self._job_conn = None
        await self._engine.dispose()
        await self._reader.dispose()


_HORIZON = "SELECT orderchat_stream_horizon()"
_COMMITTED = "SELECT pos, conv_id FROM events WHERE pos > $1 AND pos <= $2 ORDER BY pos"


# A backend in the middle of a statement waits for its client's next message
# ("active", ClientRead); a transaction holding a floor lock (one-key advisory
# locks, objsubid 1) so for longer than the idle cut-off has a frozen client.
_END_STUCK_WRITERS = """
SELECT a.pid, a.application_name, now() - a.xact_start AS held,
       pg_terminate_backend(a.pid) AS ended
FROM pg_stat_activity a
WHERE a.datname = current_database()
  AND a.pid <> pg_backend_pid()
  AND a.state = 'active' AND a.wait_event = 'ClientRead'
  AND a.xact_start < now() - make_interval(secs => $1::float8)
  AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory'
              AND l.objsubid = 1 AND l.granted)
"""
STUCK_CHECK_EVERY_S = 1.0

_JOB_LOCKS = 0x4F44
_TRY_JOB_LOCK = text("SELECT pg_try_advisory_lock(:a, :b)")
_UNLOCK_JOB = text("SELECT pg_advisory_unlock(:a, :b)")
_HOLDING = text(
    "SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    " AND classid = :a AND objid = (:b)::oid AND objsubid = 2"
)


def _job_key(name: str) -> dict[str, int]:
    """The two-integer advisory lock key of a job (objsubid 2 in pg_locks, unlike floors)."""
    return {"a": _JOB_LOCKS, "b": zlib.crc32(name.encode()) & 0x7FFFFFFF}


def _lock_params() -> dict[str, int]:
    return {"a": MIGRATION_LOCK[0], "b": MIGRATION_LOCK[1]}


@asynccontextmanager
async def _transient_as_unavailable() -> AsyncIterator[None]:
    try:
        yield
    except Exception as exc:
        if is_conflict(exc):
            raise Unavailable(say("server.unavailable"), conflict=True) from exc
        if _sqlstate(exc) in UNSTORABLE_TEXT:  # U+0000 in a field no rule checked
            raise BadRequest(say("model.text_has_nul")) from exc
        if is_transient(exc):
            logger.warning("database unavailable: %s", exc.__class__.__name__)
            raise Unavailable(say("server.unavailable")) from exc
        raise
