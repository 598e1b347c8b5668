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
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

# Re-exported: every table is imported from here, wherever it is declared.
from orderchat.storage.schema_base import ID as ID
from orderchat.storage.schema_base import metadata as metadata
from orderchat.storage.schema_evidence import anchors as anchors
from orderchat.storage.schema_evidence import audit_log as audit_log
from orderchat.storage.schema_evidence import declared as declared
from orderchat.storage.schema_evidence import purges as purges
from orderchat.storage.schema_evidence import retention_rules as retention_rules
from orderchat.storage.schema_evidence import search_docs as search_docs
from orderchat.storage.schema_people import consult_queues as consult_queues
from orderchat.storage.schema_people import consults as consults
from orderchat.storage.schema_people import customers as customers
from orderchat.storage.schema_people import invitations as invitations
from orderchat.storage.schema_people import visitor_links as visitor_links

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
    # The role whose channel this is (#warehouse …): routed events land here.
    Column("role_channel", String(32), nullable=True, unique=True),
    # A duplicate role channel merged into this one (migration 0005); its history stays.
    Column("merged_into", ID, nullable=True),
    # Bumped with every change of members or their roles (migration 0009).
    Column("members_version", BigInteger, nullable=False, server_default=text("0")),
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
    # Joined because of a role (its channel, or an order thread its workflow names
    # that role in): losing the role takes the member out again.
    Column("by_role", Boolean, nullable=False, server_default=false()),
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
    # Staff-only: never delivered to, listed for or replayed to a customer.
    Column("internal", Boolean, nullable=False, server_default=false()),
    # Marked urgent by its sender: counted apart until read.
    Column("urgent", Boolean, nullable=False, server_default=false()),
    # A forward's link to its original, JSON (migration 0007); NULL for the rest.
    Column("forwarded_from", Text, nullable=True),
    # When retention removed the content (migration 0014); the hash stays, so the chain
    # still links through the message though its content can no longer be checked.
    Column("purged_at_ms", BigInteger, nullable=True),
    # The hash of the link before it, kept when it was purged (migration 0015).
    Column("purged_prev", String(64), nullable=True),
    UniqueConstraint("conv_id", "seq"),
    # The idempotency key of sends (G2); system messages have no ref.
    UniqueConstraint("sender_id", "ref"),
)

# Every edit of a message's text, oldest first (migration 0007). The message row
# keeps the original: nothing stored is ever rewritten, and each edit is a link
# of the conversation's hash chain of its own.
message_edits = Table(
    "message_edits",
    metadata,
    Column("message_id", ID, ForeignKey("messages.id"), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("conv_id", ID, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("by_id", ID, nullable=False),
    Column("ref", String(64), nullable=True),
    Column("text", Text, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("purged_prev", String(64), nullable=True),  # as messages.purged_prev
    # The idempotency key of edits: the same ref again answers like the first time.
    UniqueConstraint("by_id", "ref"),
)

# Files a forward carries: the upload stays where it was sent, and whoever may
# see the forward may open it (migration 0007).
forwarded_uploads = Table(
    "forwarded_uploads",
    metadata,
    Column("upload_id", ID, primary_key=True),
    Column("message_id", ID, ForeignKey("messages.id"), primary_key=True),
    Column("conv_id", ID, nullable=False),
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

# Who runs a scheduled job now (migration 0009); see services/leases.py.
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("fence", BigInteger, nullable=False),
)


# --- orders (migration 0002) ----------------------------------------------------

orders = Table(
    "orders",
    metadata,
    Column("id", ID, primary_key=True),
    Column("number", String(64), nullable=False, unique=True),
    Column("customer_id", ID, ForeignKey("users.id"), nullable=False, index=True),
    Column("conv_id", ID, ForeignKey("conversations.id"), nullable=False, unique=True),
    Column("workflow", String(64), nullable=False),
    Column("status", String(64), nullable=False),
    Column("payment_status", String(16), nullable=False),
    Column("invoice_status", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total_cents", BigInteger, nullable=False),
    Column("paid_cents", BigInteger, nullable=False),
    Column("address", Text, nullable=False),  # JSON object
    Column("note", Text, nullable=False),
    Column("carrier", String(64), nullable=True),
    Column("tracking_no", String(64), nullable=True),
    Column("eta_ms", BigInteger, nullable=True),
    Column("sample_round", BigInteger, nullable=False),
    Column("ship_approved_by", ID, nullable=True),
    Column("created_by", ID, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
    Column("shipped_at_ms", BigInteger, nullable=True),
    Column("version", BigInteger, nullable=False),
    # Under legal hold, retention never purges the order's conversation (migration 0014).
    Column("legal_hold", Boolean, nullable=False, server_default=false()),
)

order_items = Table(
    "order_items",
    metadata,
    Column("order_id", ID, ForeignKey("orders.id"), primary_key=True),
    Column("line", BigInteger, primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("unit_price_cents", BigInteger, nullable=False),
)

# Open order exceptions (address change, defect …) and how each was settled.
order_issues = Table(
    "order_issues",
    metadata,
    Column("id", ID, primary_key=True),
    Column("order_id", ID, ForeignKey("orders.id"), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("detail", Text, nullable=False),  # JSON object
    Column("raised_by", ID, nullable=False),
    Column("raised_at_ms", BigInteger, nullable=False),
    Column("outcome", String(32), nullable=True),
    Column("outcome_detail", Text, nullable=True),  # JSON object
    Column("settled_by", ID, nullable=True),
    Column("settled_at_ms", BigInteger, nullable=True),
)

skus = Table(
    "skus",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("name_zh", String(200), nullable=False),
    Column("name_en", String(200), nullable=False),
    Column("category", String(64), nullable=False),
    Column("unit_price_cents", BigInteger, nullable=False),
    Column("low_stock_threshold", BigInteger, nullable=False),
    Column("active", Boolean, nullable=False),
    # A product card's picture (a blob's SHA-256) and its options as JSON (migration 0017).
    Column("picture_sha256", String(64), nullable=True),
    Column("options", Text, nullable=True),
)

stock_levels = Table(
    "stock_levels",
    metadata,
    Column("sku", String(64), ForeignKey("skus.sku"), primary_key=True),
    Column("location", String(64), primary_key=True),
    Column("on_hand", BigInteger, nullable=False),
    Column("reserved", BigInteger, nullable=False),
)

stock_movements = Table(
    "stock_movements",
    metadata,
    Column("id", ID, primary_key=True),
    Column("sku", String(64), ForeignKey("skus.sku"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("from_location", String(64), nullable=True),
    Column("to_location", String(64), nullable=True),
    Column("quantity", BigInteger, nullable=False),
    Column("order_id", ID, nullable=True, index=True),
    Column("reason", Text, nullable=False),
    Column("by", ID, nullable=False),
    Column("ts", BigInteger, nullable=False),
)

payments = Table(
    "payments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("order_id", ID, ForeignKey("orders.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # payment | refund
    Column("amount_cents", BigInteger, nullable=False),
    Column("method", String(32), nullable=False),
    Column("reference", String(128), nullable=False),
    Column("by", ID, nullable=False),
    Column("ts", BigInteger, nullable=False, index=True),
)

invoices = Table(
    "invoices",
    metadata,
    Column("order_id", ID, ForeignKey("orders.id"), primary_key=True),
    Column("status", String(16), nullable=False),  # requested | issued
    Column("title", String(200), nullable=False),
    Column("tax_id", String(64), nullable=True),
    Column("number", String(64), nullable=True),
    Column("requested_by", ID, nullable=False),
    Column("requested_at_ms", BigInteger, nullable=False),
    Column("issued_by", ID, nullable=True),
    Column("issued_at_ms", BigInteger, nullable=True),
)

confirmation_items = Table(
    "confirmation_items",
    metadata,
    Column("id", ID, primary_key=True),
    Column("order_id", ID, ForeignKey("orders.id"), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("title", String(200), nullable=False),
    Column("required", Boolean, nullable=False),
    Column("status", String(16), nullable=False),  # open | proposed | approved | rejected
    Column("approved_version", BigInteger, nullable=True),
    Column("created_by", ID, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
)

confirmation_versions = Table(
    "confirmation_versions",
    metadata,
    Column("item_id", ID, ForeignKey("confirmation_items.id"), primary_key=True),
    Column("number", BigInteger, primary_key=True),
    Column("text", Text, nullable=False),
    Column("attachments", Text, nullable=False),  # JSON list
    Column("proposed_by", ID, nullable=False),
    Column("proposed_at_ms", BigInteger, nullable=False),
    Column("decision", String(16), nullable=True),  # approved | rejected
    Column("comment", Text, nullable=True),
    Column("decided_by", ID, nullable=True),
    Column("decided_at_ms", BigInteger, nullable=True),
)

# Answers to creating calls, kept so that a retried request gets the same answer.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("user_id", ID, primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status", BigInteger, nullable=False),
    Column("response", Text, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
)

# Inbound webhook deliveries already accepted: a replay is refused.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("signature", String(64), primary_key=True),
    Column("received_at_ms", BigInteger, nullable=False),
)


# --- media (migration 0003) -----------------------------------------------------

# One row per distinct content: the same bytes sent any number of times are one
# blob. Previews belong to the content, so they are made once too.
blobs = Table(
    "blobs",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("type", String(200), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("preview_status", String(16), nullable=False),  # PreviewStatus
    Column("preview_error", Text, nullable=True),
    Column("preview", Text, nullable=True),  # JSON: sizes, duration, peaks, file names
)

# An upload is one user's file for one conversation: receiving until its last
# byte arrives, then finished (sha256 set), then sent in one message (which may
# carry several uploads).
uploads = Table(
    "uploads",
    metadata,
    Column("id", ID, primary_key=True),
    Column("owner_id", ID, ForeignKey("users.id"), nullable=False, index=True),
    Column("conv_id", ID, ForeignKey("conversations.id"), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("type", String(200), nullable=False),
    Column("length", BigInteger, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
    Column("finished_at_ms", BigInteger, nullable=True),
    Column("sha256", String(64), nullable=True, index=True),
    Column("message_id", ID, nullable=True, index=True),
    Column("seq", BigInteger, nullable=True),
    Index(None, "conv_id", "seq"),
)


# --- per-person conversation settings, urgent handling (migration 0008) -----------

# One person's own settings of one conversation: pinned (and since when, which
# orders pinned conversations among themselves) and muted. No row means neither.
member_settings = Table(
    "member_settings",
    metadata,
    Column("conv_id", ID, ForeignKey("conversations.id"), primary_key=True),
    Column("user_id", ID, ForeignKey("users.id"), primary_key=True, index=True),
    Column("pinned_at_ms", BigInteger, nullable=True),
    Column("muted", Boolean, nullable=False, server_default=false()),
)

# Which urgent messages a list must look at, without reading every message.
Index(
    "ix_messages_urgent",
    messages.c.conv_id,
    messages.c.seq,
    sqlite_where=text("urgent IS 1"),
    postgresql_where=text("urgent IS true"),
)

# An urgent message stays urgent until a staff member says it has been dealt with.
urgent_handled = Table(
    "urgent_handled",
    metadata,
    Column("conv_id", ID, ForeignKey("conversations.id"), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("handled_by", ID, nullable=False),
    Column("handled_at_ms", BigInteger, nullable=False),
)


# --- staff links (migration 0005) ------------------------------------------------

# A one-time link an admin hands to a person: `invite` creates their account,
# `reset` sets a new password for an existing one. Only the token's hash is kept.
staff_links = Table(
    "staff_links",
    metadata,
    Column("id", ID, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("username", String(64), nullable=False),
    Column("display_name", String(100), nullable=True),
    Column("roles", String(255), nullable=False),  # comma-separated Role values
    Column("user_id", ID, nullable=True),  # the account made, or the one reset
    Column("created_by", ID, nullable=True),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
    Column("used_at_ms", BigInteger, nullable=True),
    Column("revoked_at_ms", BigInteger, nullable=True),
)


# --- notifications (migration 0010) -----------------------------------------------------

# A device's web push subscription, tied to the session that made it: signing
# that device out removes it.
push_subscriptions = Table(
    "push_subscriptions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("users.id"), nullable=False, index=True),
    Column("session_id", ID, ForeignKey("sessions.id"), nullable=False, index=True),
    Column("endpoint", String(2048), nullable=False, unique=True),
    Column("p256dh", String(128), nullable=False),
    Column("auth", String(64), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("last_ok_ms", BigInteger, nullable=True),
)

# A person's own choices: an e-mail address (staff; a customer's is on their
# customer row), channels switched off per occasion, quiet hours.
notify_preferences = Table(
    "notify_preferences",
    metadata,
    Column("user_id", ID, ForeignKey("users.id"), primary_key=True),
    Column("email", String(200), nullable=True),
    Column("language", String(8), nullable=True),  # of mails and pushes; zh-CN when unset
    Column("off", Text, nullable=False),  # JSON {occasion: [channel, …]}
    Column("quiet", Text, nullable=True),  # JSON {start, end, utc_offset_min}
    Column("updated_at_ms", BigInteger, nullable=False),
)

# The shop's own tools that hear of orders, exceptions, urgent messages …
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", ID, primary_key=True),
    Column("url", String(2048), nullable=False),
    Column("secret", String(128), nullable=False),
    Column("topics", Text, nullable=False),  # JSON list of Topic values
    Column("format", String(16), nullable=False),  # orderchat | wecom | dingtalk
    Column("language", String(8), nullable=False),  # a robot's message: zh-CN | en
    Column("description", String(200), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_by", ID, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
)

# The outbox: one row per delivery to make, planned from the event stream in the
# transaction that moves the planner's cursor past the event. `dedupe` makes a
# re-planned event a no-op, and is the delivery id receivers deduplicate with.
notifications = Table(
    "notifications",
    metadata,
    Column("id", ID, primary_key=True),
    Column("dedupe", String(200), nullable=False, unique=True),
    Column("channel", String(16), nullable=False),
    Column("occasion", String(32), nullable=False),  # an Occasion, or a Topic for webhooks
    Column("recipient", ID, nullable=True),
    Column("endpoint_id", ID, nullable=True),
    Column("conv_id", ID, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("message_id", ID, nullable=False, index=True),
    Column("event_pos", BigInteger, nullable=False),
    Column("step", Integer, nullable=False),
    Column("payload", Text, nullable=True),  # JSON, webhooks: fixed when planned
    Column("state", String(12), nullable=False),  # pending | sent | cancelled | dead
    Column("first_due_ms", BigInteger, nullable=False),
    Column("next_try_ms", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("claimed_until_ms", BigInteger, nullable=False),
    Column("outcome", Text, nullable=True),  # what the last try said
    Column("created_at_ms", BigInteger, nullable=False),
    Column("done_at_ms", BigInteger, nullable=True),
    # Chat deliveries merge while they wait (services/notify/planner.py): the key
    # is cleared when one is claimed, so a message after that starts a new one.
    Column("merge_key", String(200), nullable=True, unique=True),
    Column("merged", Integer, nullable=False, server_default=text("1")),  # messages it tells of
    Column("first_seq", BigInteger, nullable=True),  # the earliest of them, when merged
    Index(None, "state", "next_try_ms"),
    Index(None, "endpoint_id", "created_at_ms"),
    Index(None, "recipient", "state"),
)

# Keys every node must share: the VAPID key pair browsers subscribed with, and
# the secret that signs unsubscribe links. Made by whichever node starts first.
server_keys = Table(
    "server_keys",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
)


# --- calls (migration 0012) ----------------------------------------------------------

# A call's live state (core/calls.py). `parties` is JSON: a call has a handful,
# always read and written whole under the conversation's lock. `next_check_ms`
# is when its timers may change it (the sweeper's index); NULL once ended.
calls = Table(
    "calls",
    metadata,
    Column("id", ID, primary_key=True),
    Column("conv_id", ID, ForeignKey("conversations.id"), nullable=False, index=True),
    Column("caller", ID, nullable=False),
    Column("media", String(8), nullable=False),
    Column("internal", Boolean, nullable=False, server_default=false()),
    Column("phase", String(12), nullable=False),
    Column("outcome", String(12), nullable=True),
    Column("started_at_ms", BigInteger, nullable=False),
    Column("ring_until_ms", BigInteger, nullable=False),
    Column("answered_at_ms", BigInteger, nullable=True),
    Column("ended_at_ms", BigInteger, nullable=True),
    Column("next_check_ms", BigInteger, nullable=True),
    Column("parties", Text, nullable=False),
    Index(None, "phase", "next_check_ms"),
)
