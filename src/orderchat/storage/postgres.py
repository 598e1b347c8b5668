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
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from orderchat.core.errors import Unavailable
from orderchat.core.texts import say
from orderchat.storage.engine import Database, _upgrade

logger = logging.getLogger(__name__)

POOL_SIZE = 12
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
CONFLICT_STATES = frozenset({"40001", "40P01"})


def asyncpg_url(url: str) -> URL:
    """The URL with the asyncpg driver, whichever PostgreSQL spelling was given."""
    return make_url(url).set(drivername="postgresql+asyncpg")


def _sqlstate(exc: DBAPIError) -> str | None:
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if state is None and exc.orig is not None:
        state = getattr(exc.orig.__cause__, "sqlstate", None)
    return None if state is None else str(state)


def is_transient(exc: BaseException) -> bool:
    """Whether a database error is one a retry can cure (see RETRYABLE_STATES)."""
    if isinstance(exc, PoolTimeout | ConnectionError | OSError | asyncio.TimeoutError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    state = _sqlstate(exc)
    if state in RETRYABLE_STATES:
        return True
    return isinstance(exc, OperationalError) and state is None


def is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and _sqlstate(exc) in CONFLICT_STATES


class PostgresDatabase(Database):
    shared = True

    def __init__(self, url: str, *, application_name: str | None = None) -> None:
        self.url = url
        settings = {
            "application_name": (application_name or f"orderchat-{os.getpid()}")[:63],
            "idle_in_transaction_session_timeout": str(IDLE_IN_TRANSACTION_MS),
            "lock_timeout": str(LOCK_TIMEOUT_MS),
        }
        self._engine = create_async_engine(
            asyncpg_url(url),
            pool_size=POOL_SIZE,
            max_overflow=0,
            pool_timeout=30,
            # A connection the server closed (a restart) is found out on its first
            # use, invalidated, and the request answered "retry"; the next request
            # gets a new one.
            pool_pre_ping=False,
            connect_args={"server_settings": settings, "timeout": 10},
        )
        self._write_lock = asyncio.Lock()

    @asynccontextmanager
    async def write(self, name: str) -> AsyncIterator[AsyncConnection]:
        logger.debug("txn %s", name)
        async with self._write_lock, _transient_as_unavailable(), self._engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with _transient_as_unavailable(), self._engine.connect() as conn:
            await conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            async with conn.begin():
                yield conn

    async def committed_after(self, after: int) -> tuple[int, list[tuple[int, str]]]:
        """The persisted horizon, then the (position, conversation) of each event in (after, it].

        Two statements outside any transaction, so the second one's snapshot is
        taken after the horizon was read: every event at or below it is visible.
        """
        async with _transient_as_unavailable(), self._engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            horizon = int((await auto.execute(_HORIZON)).scalar_one() or 0)
            if horizon <= after:
                return horizon, []
            rows = await auto.execute(_COMMITTED, {"after": after, "upto": horizon})
            return horizon, [(int(r[0]), str(r[1])) for r in rows]

    async def migrate(self) -> None:
        """Migrate under an advisory lock: nodes starting together migrate one after another."""
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:a, :b)"), _lock_params())
            await conn.commit()
            try:
                async with conn.begin():
                    await conn.run_sync(_upgrade)
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:a, :b)"), _lock_params())
                await conn.commit()

    async def close(self) -> None:
        await self._engine.dispose()


_HORIZON = text("SELECT orderchat_stream_horizon()")
_COMMITTED = text(
    "SELECT pos, conv_id FROM events WHERE pos > :after AND pos <= :upto ORDER BY pos"
)


def _lock_params() -> dict[str, int]:
    return {"a": MIGRATION_LOCK[0], "b": MIGRATION_LOCK[1]}


@asynccontextmanager
async def _transient_as_unavailable() -> AsyncIterator[None]:
    try:
        yield
    except Exception as exc:
        if is_conflict(exc):
            raise Unavailable(say("server.unavailable"), conflict=True) from exc
        if is_transient(exc):
            logger.warning("database unavailable: %s", exc.__class__.__name__)
            raise Unavailable(say("server.unavailable")) from exc
        raise
