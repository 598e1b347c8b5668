"""Tables, as SQLAlchemy Core metadata. Alembic migrations are the source of truth
for existing databases; this metadata must match the newest migration (a test checks).

Positions and sequence numbers are BigInteger and assigned by the writer inside
the transaction that stores the row, never by autoincrement, so that several
server processes on one PostgreSQL agree on them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(32)

users = Table(
    "users",
    metadata,
    Column("id", ID, primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(100), nullable=False),
    Column("password_hash", Text, nullable=True),
    Column("roles", String(255), nullable=False),  # comma-separated Role values
    Column("kind", String(16), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("disabled", Boolean, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("users.id"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("device", String(64), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
    Column("revoked_at_ms", BigInteger, nullable=True),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", ID, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("title", String(200), nullable=True),
    Column("created_by", ID, nullable=True),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("last_activity_ms", BigInteger, nullable=False),
    # "a|b" for a direct conversation, so a pair has only one; NULL otherwise.
    Column("direct_key", String(80), nullable=True, unique=True),
    # Head of the conversation's hash chain: each message's hash covers the previous one.
    Column("last_hash", String(64), nullable=False),
)

members = Table(
    "members",
    metadata,
    Column("conv_id", ID, ForeignKey("conversations.id"), primary_key=True),
    Column("user_id", ID, ForeignKey("users.id"), primary_key=True),
    # The member sees the conversation's events with joined_pos <= pos <= left_pos.
    Column("joined_pos", BigInteger, nullable=False),
    Column("left_pos", BigInteger, nullable=True),
    Column("read_seq", BigInteger, nullable=False),
    Column("joined_at_ms", BigInteger, nullable=False),
    Index(None, "user_id", "conv_id"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", ID, primary_key=True),
    Column("conv_id", ID, ForeignKey("conversations.id"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("sender_id", ID, nullable=False),
    Column("ref", String(64), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("attachments", Text, nullable=False),  # JSON list
    Column("mentions", Text, nullable=False),  # JSON list of mention tokens
    Column("reply_to", BigInteger, nullable=True),
    Column("meta", Text, nullable=True),  # JSON object, system messages
    Column("ts", BigInteger, nullable=False),
    Column("recalled_at_ms", BigInteger, nullable=True),
    Column("recalled_by", ID, nullable=True),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("conv_id", "seq"),
    # The idempotency key of sends (G2); system messages have no ref.
    UniqueConstraint("sender_id", "ref"),
)

events = Table(
    "events",
    metadata,
    Column("pos", BigInteger, primary_key=True, autoincrement=False),
    Column("conv_id", ID, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("message_id", ID, nullable=True),
    Column("payload", Text, nullable=True),  # JSON object for non-message events
    Column("ts", BigInteger, nullable=False),
    Index(None, "conv_id", "pos"),
)

counters = Table(
    "counters",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)
