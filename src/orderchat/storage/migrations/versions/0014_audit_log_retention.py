"""Audit log of sensitive actions; retention rules, purges and legal hold

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", _SERIAL, nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("actor_id", sa.String(32), nullable=True),
        sa.Column("action", sa.String(48), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("conv_id", sa.String(32), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    for column in ("ts", "actor_id", "action", "target"):
        op.create_index(op.f(f"ix_audit_log_{column}"), "audit_log", [column])
    op.create_table(
        "retention_rules",
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_retention_rules")),
    )
    op.create_table(
        "purges",
        sa.Column("id", _SERIAL, nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("conv_id", sa.String(32), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("cutoff_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purges")),
    )
    op.create_index(op.f("ix_purges_conv_id"), "purges", ["conv_id"])
    # Plain ADD COLUMN on both stores: a batch (copy-and-rename) of these tables on
    # SQLite would trip the foreign keys that point at them.
    op.add_column(
        "orders", sa.Column("legal_hold", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column("messages", sa.Column("purged_at_ms", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("purged_at_ms")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("legal_hold")
    op.drop_index(op.f("ix_purges_conv_id"), table_name="purges")
    op.drop_table("purges")
    op.drop_table("retention_rules")
    for column in ("target", "action", "actor_id", "ts"):
        op.drop_index(op.f(f"ix_audit_log_{column}"), table_name="audit_log")
    op.drop_table("audit_log")
