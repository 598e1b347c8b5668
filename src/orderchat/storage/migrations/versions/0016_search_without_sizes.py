"""Search: the SQLite index without its per-row sizes table

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# FTS5 keeps each row's length in a table of its own, for bm25's length
# normalisation. Without it (`columnsize=0`) every message stored is one B-tree
# write less; bm25 then reads the few rows it ranks (a page's window) instead.
_CREATE = (
    "CREATE VIRTUAL TABLE search_fts USING fts5(terms, content='search_docs', "
    "content_rowid='doc_id', tokenize='unicode61 remove_diacritics 0'{extra})"
)


def _recreate(extra: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TABLE search_fts")
    op.execute(_CREATE.format(extra=extra))
    op.execute("INSERT INTO search_fts(search_fts) VALUES ('rebuild')")


def upgrade() -> None:
    _recreate(", columnsize=0")


def downgrade() -> None:
    _recreate("")
