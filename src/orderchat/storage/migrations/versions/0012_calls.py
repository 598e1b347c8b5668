"""Calls: the live state of voice and video calls

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("conv_id", sa.String(32), nullable=False),
        sa.Column("caller", sa.String(32), nullable=False),
        sa.Column("media", sa.String(8), nullable=False),
        sa.Column("internal", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("phase", sa.String(12), nullable=False),
        sa.Column("outcome", sa.String(12), nullable=True),
        sa.Column("started_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("ring_until_ms", sa.BigInteger(), nullable=False),
        sa.Column("answered_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("ended_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("next_check_ms", sa.BigInteger(), nullable=True),
        sa.Column("parties", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conv_id"], ["conversations.id"], name=op.f("fk_calls_conv_id_conversations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
    )
    op.create_index(op.f("ix_calls_conv_id"), "calls", ["conv_id"])
    op.create_index(op.f("ix_calls_phase_next_check_ms"), "calls", ["phase", "next_check_ms"])


def downgrade() -> None:
    op.drop_index(op.f("ix_calls_phase_next_check_ms"), table_name="calls")
    op.drop_index(op.f("ix_calls_conv_id"), table_name="calls")
    op.drop_table("calls")
