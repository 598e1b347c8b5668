"""Hot statements of the group commit, run by the SQLite driver directly.

Executing a Core statement costs tens of microseconds of Python (building the
expression, its cache key, parameter processing) around a SQLite call of a few
microseconds; a one-message group commit runs ten of them. The writer's hot
statements are built once, with explicit bind parameters only, compiled once
for SQLite with named parameters, and then handed to the driver as they are.
PostgreSQL executes the same statements through SQLAlchemy as usual.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

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


async def run(conn: AsyncConnection, statement: Executable, params: Params) -> Any:
    """Execute a prebuilt statement: on SQLite by the driver, elsewhere by SQLAlchemy."""
    if conn.dialect.name == "sqlite":
        assert isinstance(statement, ClauseElement)
        rows = list(params) if isinstance(params, Sequence) else params
        return await conn.exec_driver_sql(sqlite_sql(statement), rows)
    return await conn.execute(statement, params)
