"""Database setup: SQLite by default (WAL, synchronous=FULL), PostgreSQL by URL.

SQLite allows one writer at a time. Write transactions therefore start with
`BEGIN IMMEDIATE`, which takes the write lock up front (waiting up to the busy
timeout) instead of failing half-way when a read turns into a write. Reads use
a separate pool with plain deferred transactions, which in WAL mode never wait
for the writer. On PostgreSQL both are the same engine.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection as SyncConnection
from sqlalchemy import event, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

logger = logging.getLogger(__name__)

# What stores take: services pass it along without knowing what is underneath.
Connection = AsyncConnection

SQLITE_BUSY_TIMEOUT_MS = 30_000
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


def _make_engine(url: str, *, begin: str | None, pool_size: int) -> AsyncEngine:
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=60)
    if begin is not None:
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)

        def _begin(conn: SyncConnection) -> None:
            conn.exec_driver_sql(begin)

        event.listen(engine.sync_engine, "begin", _begin)
    return engine


class Database:
    """The two ways in: `read()` for snapshots, `write(name)` for transactions."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            if parsed.database:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self._writer = _make_engine(url, begin="BEGIN IMMEDIATE", pool_size=1)
            self._reader = _make_engine(url, begin="BEGIN", pool_size=8)
        else:
            self._writer = _make_engine(url, begin=None, pool_size=10)
            self._reader = self._writer

    @asynccontextmanager
    async def write(self, name: str) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed on exit and rolled back on error."""
        logger.debug("txn %s", name)
        async with self._writer.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction: every query inside sees one snapshot."""
        async with self._reader.connect() as conn, conn.begin():
            yield conn

    async def migrate(self) -> None:
        """Bring the schema to the newest migration."""
        async with self._writer.begin() as conn:
            await conn.run_sync(_upgrade)

    async def close(self) -> None:
        await self._writer.dispose()
        if self._reader is not self._writer:
            await self._reader.dispose()


def _upgrade(connection: SyncConnection) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
