"""Notifications: push subscriptions, preferences, webhook endpoints, the delivery outbox

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ID = sa.String(32)


def upgrade() -> None:
    _create_people()
    _create_outbox()
    op.create_table(
        "server_keys",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_server_keys")),
    )
    # Planning starts from the stream's present head: an upgrade does not notify
    # anyone of the history that came before it.
    bind = op.get_bind()
    head = bind.execute(sa.text("SELECT coalesce(max(pos), 0) FROM events")).scalar_one()
    op.execute(
        sa.text("INSERT INTO counters (name, value) VALUES ('notify', :head)").bindparams(
            head=int(head)
        )
    )


def _create_people() -> None:
    op.create_table(
        "push_subscriptions",
        sa.Column("id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("session_id", ID, nullable=False),
        sa.Column("endpoint", sa.String(2048), nullable=False),
        sa.Column("p256dh", sa.String(128), nullable=False),
        sa.Column("auth", sa.String(64), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_ok_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_push_subscriptions_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_push_subscriptions_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_subscriptions")),
        sa.UniqueConstraint("endpoint", name=op.f("uq_push_subscriptions_endpoint")),
    )
    op.create_index(op.f("ix_push_subscriptions_user_id"), "push_subscriptions", ["user_id"])
    op.create_index(op.f("ix_push_subscriptions_session_id"), "push_subscriptions", ["session_id"])
    op.create_table(
        "notify_preferences",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("email", sa.String(200), nullable=True),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("off", sa.Text(), nullable=False),
        sa.Column("quiet", sa.Text(), nullable=True),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_notify_preferences_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_notify_preferences")),
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", ID, nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("topics", sa.Text(), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", ID, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )


def _create_outbox() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", ID, nullable=False),
        sa.Column("dedupe", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("occasion", sa.String(32), nullable=False),
        sa.Column("recipient", ID, nullable=True),
        sa.Column("endpoint_id", ID, nullable=True),
        sa.Column("conv_id", ID, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("message_id", ID, nullable=False),
        sa.Column("event_pos", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("first_due_ms", sa.BigInteger(), nullable=False),
        sa.Column("next_try_ms", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_until_ms", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("done_at_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("dedupe", name=op.f("uq_notifications_dedupe")),
    )
    op.create_index(op.f("ix_notifications_message_id"), "notifications", ["message_id"])
    op.create_index(
        op.f("ix_notifications_state_next_try_ms"), "notifications", ["state", "next_try_ms"]
    )
    op.create_index(
        op.f("ix_notifications_endpoint_id_created_at_ms"),
        "notifications",
        ["endpoint_id", "created_at_ms"],
    )
    op.create_index(
        op.f("ix_notifications_recipient_state"), "notifications", ["recipient", "state"]
    )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM counters WHERE name = 'notify'"))
    op.drop_table("server_keys")
    op.drop_table("notifications")
    op.drop_table("webhook_endpoints")
    op.drop_table("notify_preferences")
    op.drop_table("push_subscriptions")
