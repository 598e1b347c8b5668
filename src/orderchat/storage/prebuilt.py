"""Hot statements of the group commit, run by the SQLite driver directly.

On PostgreSQL the same statements go through SQLAlchemy as usual (asyncpg
prepares and caches them itself); the SQLite text is never sent there.

Executing a Core statement costs tens of microseconds of Python (building the
expression, its cache key, parameter processing) around a SQLite call of a few
microseconds; a one-message group commit runs ten of them. The writer's hot
statements are built once, with explicit bind parameters only, compiled once
for SQLite with named parameters, and then handed to the sqlite3 connection
under the transaction, past SQLAlchemy's result machinery.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

_SQLITE = SQLiteDialect_pysqlite(paramstyle="named")

Params = Mapping[str, Any] | Sequence[Mapping[str, Any]]


@functools.lru_cache(maxsize=128)
def sqlite_sql(statement: ClauseElement) -> str:
    """The statement as SQLite text with `:name` parameters.

    Raises:
        ValueError: the statement holds a literal value, which the text would lose.
    """
    compiled = statement.compile(dialect=_SQLITE)
    assert isinstance(compiled, SQLCompiler)
    literal = [name for name, bind in compiled.binds.items() if bind.value is not None]
    if literal:
        raise ValueError(f"prebuilt statements take bind parameters only, not {literal}")
    return str(compiled)


def _driver(conn: AsyncConnection) -> sqlite3.Connection | None:
    """The sqlite3 connection under the writer's or a reader's transaction, if it is one."""
    driver = getattr(conn, "driver", None)  # only a LoopConnection has one
    return driver if isinstance(driver, sqlite3.Connection) else None


def _is_sqlite(conn: AsyncConnection) -> bool:
    return bool(conn.dialect.name == "sqlite")


async def execute(conn: AsyncConnection, sql: str, params: Params) -> None:
    """Text with `:name` parameters (or `?` on SQLite); a list of rows runs as executemany."""
    driver = _driver(conn)
    many = isinstance(params, list)
    if driver is not None:
        if many:
            driver.executemany(sql, params)
        else:
            driver.execute(sql, params)
        return
    if _is_sqlite(conn):
        await conn.exec_driver_sql(sql, params)
        return
    await conn.execute(text(sql), params)


async def fetch(conn: AsyncConnection, sql: str, params: Any) -> list[Sequence[Any]]:
    """The rows of a SQLite query, as tuples."""
    driver = _driver(conn)
    if driver is not None:
        rows: list[Sequence[Any]] = driver.execute(sql, params).fetchall()
        return rows
    return list((await conn.exec_driver_sql(sql, params)).all())


async def run(conn: AsyncConnection, statement: Executable, params: Params) -> None:
    """Execute a prebuilt statement by the driver."""
    assert isinstance(statement, ClauseElement)
    rows = list(params) if isinstance(params, Sequence) else params
    if not _is_sqlite(conn):
        await conn.execute(statement, rows)
        return
    await execute(conn, sqlite_sql(statement), rows)


async def scalar(conn: AsyncConnection, statement: Executable, params: Mapping[str, Any]) -> Any:
    """The one value a prebuilt query returns."""
    assert isinstance(statement, ClauseElement)
    if not _is_sqlite(conn):
        return (await conn.execute(statement, params)).scalar_one()
    [row] = await fetch(conn, sqlite_sql(statement), params)
    return row[0]
