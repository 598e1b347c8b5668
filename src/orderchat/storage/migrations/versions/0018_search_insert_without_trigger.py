"""Search: SQLite's index fed by the writer itself, the order index only where there is one

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# A row trigger costs FTS5 a statement of its own per message: the writer's one
# executemany into `search_fts` beside the rows' (storage/search.py) wrote the
# same index for 8 µs a message instead of 21. Edits and deletes are rare and
# keep their triggers.
_INSERT_TRIGGER = """CREATE TRIGGER search_docs_ai AFTER INSERT ON search_docs BEGIN
         INSERT INTO search_fts(rowid, terms) VALUES (new.doc_id, new.terms);
       END"""


_NAME = "ix_search_docs_order_id"


def _order_index(partial: bool) -> None:
    op.drop_index(_NAME, table_name="search_docs")
    if not partial:
        op.create_index(_NAME, "search_docs", ["order_id"])
        return
    where = sa.text("order_id IS NOT NULL")
    op.create_index(_NAME, "search_docs", ["order_id"], sqlite_where=where, postgresql_where=where)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER search_docs_ai")
    # Most messages belong to no order: an index of every row's NULL was a B-tree
    # write per message that no query reads.
    _order_index(partial=True)


def downgrade() -> None:
    _order_index(partial=False)
    if op.get_bind().dialect.name == "sqlite":
        op.execute(_INSERT_TRIGGER)
