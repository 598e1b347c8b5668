"""The people outside the shop: customers, the links that sign them in, and the
consults visitors open before they have an order (docs/consults.md).

They belong to `orderchat.storage.schema.metadata` like every other table and
are imported from there.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, String, Table, true

from orderchat.storage.schema_base import ID, metadata

# --- customers and invitations (migration 0002) ----------------------------------------

customers = Table(
    "customers",
    metadata,
    Column("user_id", ID, ForeignKey("users.id"), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("phone", String(40), nullable=True),
    Column("email", String(200), nullable=True),
    Column("company", String(200), nullable=True),
    Column("segment", String(16), nullable=False),  # retail | wholesale | brand
    Column("language", String(8), nullable=False),  # zh-CN | en
    Column("created_at_ms", BigInteger, nullable=False),
    # A visitor who opened a consult is unverified until an order vouches for them
    # (migration 0017): until then they may send pictures and voice only.
    Column("verified", Boolean, nullable=False, server_default=true()),
    # Blocked by staff: their sends are refused and reach nobody.
    Column("blocked_at_ms", BigInteger, nullable=True),
    Column("blocked_by", ID, nullable=True),
    # Their personal data was erased on request; the row stays for the links to it.
    Column("erased_at_ms", BigInteger, nullable=True),
)

invitations = Table(
    "invitations",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("order_id", ID, ForeignKey("orders.id"), nullable=False, index=True),
    Column("customer_id", ID, ForeignKey("users.id"), nullable=False),
    Column("created_by", ID, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
    Column("revoked_at_ms", BigInteger, nullable=True),
)

# --- consults (migration 0017) ----------------------------------------------------------

# One row per consult conversation: its queue, its agent and its clocks.
# `waiting_since_ms` is when the oldest visitor message still unanswered was
# sent (NULL once staff wrote after it): the inbox sorts on it.
consults = Table(
    "consults",
    metadata,
    Column("conv_id", ID, ForeignKey("conversations.id"), primary_key=True),
    Column("visitor_id", ID, ForeignKey("users.id"), nullable=False, index=True),
    Column("status", String(16), nullable=False),  # queued | open | closed
    Column("queue", String(40), nullable=False),
    Column("roles", String(255), nullable=False),  # comma-separated: who serves it
    Column("assignee_id", ID, nullable=True),
    Column("language", String(8), nullable=False),
    Column("source", String(16), nullable=False),  # page | widget | qr
    Column("tag", String(64), nullable=True),
    Column("page_url", String(500), nullable=True),
    Column("sku", String(64), nullable=True),
    Column("created_at_ms", BigInteger, nullable=False),
    # The timer of a first answer restarts when a closed consult opens again.
    Column("opened_at_ms", BigInteger, nullable=False),
    Column("waiting_since_ms", BigInteger, nullable=True),
    Column("first_response_at_ms", BigInteger, nullable=True),
    Column("escalated_at_ms", BigInteger, nullable=True),
    Column("closed_at_ms", BigInteger, nullable=True),
    Column("order_id", ID, ForeignKey("orders.id"), nullable=True, index=True),
    Index(None, "status", "queue", "created_at_ms"),
    Index(None, "assignee_id", "status"),
)

# Who got each queue's last consult: round-robin continues after them.
consult_queues = Table(
    "consult_queues",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("last_given", ID, nullable=True),
)

# One-time links that sign a visitor in on another device ("continue on my phone").
visitor_links = Table(
    "visitor_links",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", ID, ForeignKey("users.id"), nullable=False, index=True),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
    Column("used_at_ms", BigInteger, nullable=True),
)
