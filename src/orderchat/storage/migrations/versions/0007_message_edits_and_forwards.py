"""message_edits, forwarded_uploads, messages.forwarded_from: edits and forwards

Revision ID: 0007
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN, nullable: no table rebuild, however long the history.
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("forwarded_from", sa.Text(), nullable=True))
    op.create_table(
        "message_edits",
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("conv_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("by_id", sa.String(length=32), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"]),
        sa.PrimaryKeyConstraint("message_id", "version"),
        sa.UniqueConstraint("by_id", "ref"),
    )
    op.create_table(
        "forwarded_uploads",
        sa.Column("upload_id", sa.String(length=32), nullable=False),
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column("conv_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"]),
        sa.PrimaryKeyConstraint("upload_id", "message_id"),
    )


def downgrade() -> None:
    op.drop_table("forwarded_uploads")
    op.drop_table("message_edits")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("forwarded_from")
