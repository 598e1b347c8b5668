"""Search: on SQLite, a row of the index is stored under its position, not beside it

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

# SQLite makes a column the table's own key (its rowid) only when it is declared
# INTEGER; `doc_id` was BIGINT, so every row went into the table under a hidden
# rowid and into a second B-tree of positions, and FTS5, which finds its rows by
# position when it is fed, rebuilt or asked for a snippet, looked each one up
# twice. The table is copied into one keyed by `doc_id`; the positions do not
# change, so the FTS5 index over them stays valid as it is. PostgreSQL keeps its
# BIGINT key.
_COLUMNS = (
    "doc_id, message_id, conv_id, seq, sender_id, kind, ts, has_file, internal, "
    "recalled, order_id, terms"
)


def _retype_doc_id(old: str, new: str) -> None:
    """Copy search_docs into a table whose `doc_id` is declared `new`, with its
    indexes and triggers as they were (their text is taken from the schema)."""
    bind = op.get_bind()
    table_sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'search_docs'"
    ).scalar_one()
    companions = [
        sql
        for (sql,) in bind.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'search_docs' "
            "AND type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY type, name"
        )
    ]
    declared = f"doc_id {old} NOT NULL"
    assert declared in table_sql, table_sql
    op.execute(
        table_sql.replace("search_docs", "search_docs_copy", 1).replace(
            declared, f"doc_id {new} NOT NULL", 1
        )
    )
    op.execute(
        f"INSERT INTO search_docs_copy ({_COLUMNS}) "
        f"SELECT {_COLUMNS} FROM search_docs ORDER BY doc_id"
    )
    op.execute("DROP TABLE search_docs")  # its indexes and triggers with it
    op.execute("ALTER TABLE search_docs_copy RENAME TO search_docs")
    for sql in companions:
        op.execute(sql)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _retype_doc_id("BIGINT", "INTEGER")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _retype_doc_id("INTEGER", "BIGINT")
