"""member_settings (pin, mute per person) and urgent_handled (who dealt with an urgent message)

Revision ID: 0008
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Tables of their own rather than columns on members/messages: the writer's
    # hot inserts name every column of those tables, and these are rare writes.
    op.create_table(
        "member_settings",
        sa.Column("conv_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("pinned_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("muted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conv_id"],
            ["conversations.id"],
            name="fk_member_settings_conv_id_conversations",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_member_settings_user_id_users"),
        sa.PrimaryKeyConstraint("conv_id", "user_id", name="pk_member_settings"),
    )
    op.create_index("ix_member_settings_user_id", "member_settings", ["user_id"])
    # The list asks, for every conversation of a person, which urgent messages
    # are still open: a partial index keeps that from reading every message.
    op.create_index(
        "ix_messages_urgent",
        "messages",
        ["conv_id", "seq"],
        sqlite_where=sa.text("urgent IS 1"),
        postgresql_where=sa.text("urgent IS true"),
    )
    op.create_table(
        "urgent_handled",
        sa.Column("conv_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("handled_by", sa.String(32), nullable=False),
        sa.Column("handled_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conv_id"],
            ["conversations.id"],
            name="fk_urgent_handled_conv_id_conversations",
        ),
        sa.PrimaryKeyConstraint("conv_id", "seq", name="pk_urgent_handled"),
    )


def downgrade() -> None:
    op.drop_table("urgent_handled")
    op.drop_index("ix_messages_urgent", table_name="messages")
    op.drop_index("ix_member_settings_user_id", table_name="member_settings")
    op.drop_table("member_settings")
