"""Search: the message index, made by the Python tokenizer for both stores

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

from orderchat.core.ids import ConversationId, MessageId, UserId
from orderchat.core.model import Message, MessageKind
from orderchat.storage.search import doc_row

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_SQLITE_TRIGGERS = (
    """CREATE TRIGGER search_docs_ai AFTER INSERT ON search_docs BEGIN
         INSERT INTO search_fts(rowid, terms) VALUES (new.doc_id, new.terms);
       END""",
    """CREATE TRIGGER search_docs_ad AFTER DELETE ON search_docs BEGIN
         INSERT INTO search_fts(search_fts, rowid, terms) VALUES ('delete', old.doc_id, old.terms);
       END""",
    """CREATE TRIGGER search_docs_au AFTER UPDATE OF terms ON search_docs BEGIN
         INSERT INTO search_fts(search_fts, rowid, terms) VALUES ('delete', old.doc_id, old.terms);
         INSERT INTO search_fts(rowid, terms) VALUES (new.doc_id, new.terms);
       END""",
)
_BATCH = 2000


def upgrade() -> None:
    op.create_table(
        "search_docs",
        sa.Column("doc_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("message_id", sa.String(32), nullable=False),
        sa.Column("conv_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("sender_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("has_file", sa.Boolean(), nullable=False),
        sa.Column("internal", sa.Boolean(), nullable=False),
        sa.Column("recalled", sa.Boolean(), nullable=False),
        sa.Column("order_id", sa.String(32), nullable=True),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("doc_id", name=op.f("pk_search_docs")),
        sa.UniqueConstraint("message_id", name=op.f("uq_search_docs_message_id")),
    )
    op.create_index(op.f("ix_search_docs_order_id"), "search_docs", ["order_id"])
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute(
            "ALTER TABLE search_docs ADD COLUMN tsv tsvector "
            "GENERATED ALWAYS AS (CAST(terms AS tsvector)) STORED"
        )
        op.execute("CREATE INDEX ix_search_docs_tsv ON search_docs USING gin (tsv)")
    else:
        op.execute(
            "CREATE VIRTUAL TABLE search_fts USING fts5(terms, content='search_docs', "
            "content_rowid='doc_id', tokenize='unicode61 remove_diacritics 0')"
        )
        for trigger in _SQLITE_TRIGGERS:
            op.execute(trigger)
    _index_history(postgres)


def _index_history(postgres: bool) -> None:
    """Index what was written before search existed, in batches of stream positions."""
    bind = op.get_bind()
    edits = {
        row.message_id: row.text
        for row in bind.execute(
            sa.text(
                "SELECT e.message_id, e.text FROM message_edits e WHERE e.version = "
                "(SELECT MAX(l.version) FROM message_edits l WHERE l.message_id = e.message_id)"
            )
        )
    }
    after = -1
    while True:
        rows = list(
            bind.execute(
                sa.text(
                    "SELECT ev.pos, m.* FROM events ev JOIN messages m ON m.id = ev.message_id "
                    "WHERE ev.kind = 'message' AND ev.pos > :after ORDER BY ev.pos LIMIT :n"
                ),
                {"after": after, "n": _BATCH},
            )
        )
        if not rows:
            return
        docs = [
            doc_row(_message_at_0012(row), row.pos, postgres=postgres, edited=edits.get(row.id))
            for row in rows
        ]
        bind.execute(
            sa.text(
                "INSERT INTO search_docs (doc_id, message_id, conv_id, seq, sender_id, kind, ts, "
                "has_file, internal, recalled, order_id, terms) VALUES (:doc_id, :message_id, "
                ":conv_id, :seq, :sender_id, :kind, :ts, :has_file, :internal, :recalled, "
                ":order_id, :terms)"
            ),
            docs,
        )
        after = rows[-1].pos


def _message_at_0012(row: Any) -> Message:
    """A message row as this revision knows it (later revisions add columns)."""
    return Message(
        id=MessageId(row.id),
        conv=ConversationId(row.conv_id),
        seq=row.seq,
        ref=row.ref,
        sender=UserId(row.sender_id),
        kind=MessageKind(row.kind),
        text=row.text,
        attachments=tuple(orjson.loads(row.attachments)),
        mentions=(),
        reply_to=None,
        ts=row.ts,
        recalled=row.recalled_at_ms is not None,
        meta=None if row.meta is None else orjson.loads(row.meta),
        internal=bool(row.internal),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("search_docs_au", "search_docs_ad", "search_docs_ai"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS search_fts")
    op.drop_index(op.f("ix_search_docs_order_id"), table_name="search_docs")
    op.drop_table("search_docs")
