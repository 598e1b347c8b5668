"""Notifications about a conversation's chat merge while they wait

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # `merge_key` is set while a delivery about chat waits and nobody has claimed
    # it: the next message for the same person, conversation, channel and reason
    # joins it instead of adding a delivery of its own. NULLs never collide.
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("merge_key", sa.String(200), nullable=True))
        merged = sa.Column("merged", sa.Integer(), nullable=False, server_default=sa.text("1"))
        batch.add_column(merged)
        batch.add_column(sa.Column("first_seq", sa.BigInteger(), nullable=True))
        batch.create_unique_constraint(batch.f("uq_notifications_merge_key"), ["merge_key"])


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_constraint(batch.f("uq_notifications_merge_key"), type_="unique")
        batch.drop_column("first_seq")
        batch.drop_column("merged")
        batch.drop_column("merge_key")
