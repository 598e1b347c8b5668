"""The tables that make the history evidence: the search index, the audit log of
sensitive actions, and retention's rules and records of what it purged.

They belong to `orderchat.storage.schema.metadata` like every other table and
are imported from there; they are kept here so each module stays one concept.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table, Text, text

from orderchat.storage.schema_base import ID, metadata

# --- search (migration 0013) ---------------------------------------------------------

# One row per message that can be found (core/search.py). `doc_id` is the
# message's stream position, so newest-first is the index's own order. `terms`
# are the tokenizer's output: space-separated for SQLite, whose FTS5 table
# `search_fts` indexes this column (fed by the writer, kept in step on
# edit and delete by triggers); a tsvector literal on
# PostgreSQL, whose generated `tsv` column carries a GIN index. Neither store
# parses text itself, so both find the same messages.
_IN_ORDER = text("order_id IS NOT NULL")
search_docs = Table(
    "search_docs",
    metadata,
    # INTEGER on SQLite: the table's own key, not a second B-tree (migration 0020).
    Column(
        "doc_id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("message_id", ID, nullable=False, unique=True),
    Column("conv_id", ID, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("sender_id", ID, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("has_file", Boolean, nullable=False),
    Column("internal", Boolean, nullable=False),
    Column("recalled", Boolean, nullable=False),
    Column("order_id", ID, nullable=True),
    Column("terms", Text, nullable=False),
    # A date's rows (migration 0015). A conversation's are found on PostgreSQL by
    # an index of (conv_id, doc_id), on SQLite by FTS5's column of facets (0019).
    Index(None, "ts"),
    # Only the rows of an order's events: most messages have none (migration 0018).
    Index(None, "order_id", sqlite_where=_IN_ORDER, postgresql_where=_IN_ORDER),
)

# What the search index keeps beside the declared tables, per store: the FTS5
# table and its shadow tables and the facets column it reads (SQLite); the tsvector
# column and its index, and the conversation's index (PostgreSQL).
_UNDECLARED = ("search_fts", "tsv", "ix_search_docs_tsv")
_ONE_STORE = {("column", "facets"), ("index", "ix_search_docs_conv_id_doc_id")}


def declared(name: str | None, type_: str, parent_names: object) -> bool:
    """For schema comparisons: leave out what only one store has, by design."""
    if name is None:
        return True
    return not name.startswith(_UNDECLARED) and (type_, name) not in _ONE_STORE


# --- audit log, retention (migration 0014) -------------------------------------------

# Sensitive actions (core/audit.py), each written in its action's transaction.
# `details` is JSON; the log is read newest first, filtered by action, actor,
# target and time, and searched by text.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("ts", BigInteger, nullable=False, index=True),
    Column("actor_id", ID, nullable=True, index=True),
    Column("action", String(48), nullable=False, index=True),
    Column("target", String(64), nullable=False, index=True),
    Column("conv_id", ID, nullable=True),
    Column("details", Text, nullable=False),
)

# How long each kind of conversation keeps its messages' content; no row: forever.
retention_rules = Table(
    "retention_rules",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("days", Integer, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
    Column("updated_by", ID, nullable=True),
)

# What each purge removed: a conversation's messages up to a seq, by the rule of its kind.
purges = Table(
    "purges",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("ts", BigInteger, nullable=False),
    Column("conv_id", ID, nullable=False, index=True),
    Column("first_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("messages", Integer, nullable=False),
    Column("files", Integer, nullable=False),
    Column("cutoff_ms", BigInteger, nullable=False),
)

# Each day's signed digest of every conversation's chain head (core/anchor.py).
# `heads` is the JSON list that was signed, so any later database can be checked
# against what was published that day.
anchors = Table(
    "anchors",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("ts", BigInteger, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("conversations", Integer, nullable=False),
    Column("heads", Text, nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("signature", String(128), nullable=False),
)
