"""Anchors: the daily signed digest of every conversation's chain head; purged links' predecessors

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "anchors",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("conversations", sa.Integer(), nullable=False),
        sa.Column("heads", sa.Text(), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anchors")),
    )
    # The hash before a purged link, kept when its content goes: the chain still
    # proves the order of purged links, only not what they said.
    op.add_column("messages", sa.Column("purged_prev", sa.String(64), nullable=True))
    op.add_column("message_edits", sa.Column("purged_prev", sa.String(64), nullable=True))
    # A search within one conversation walks its rows; one within dates finds its bounds.
    op.create_index(op.f("ix_search_docs_conv_id_doc_id"), "search_docs", ["conv_id", "doc_id"])
    op.create_index(op.f("ix_search_docs_ts"), "search_docs", ["ts"])


def downgrade() -> None:
    op.drop_index(op.f("ix_search_docs_ts"), table_name="search_docs")
    op.drop_index(op.f("ix_search_docs_conv_id_doc_id"), table_name="search_docs")
    op.drop_column("message_edits", "purged_prev")
    op.drop_column("messages", "purged_prev")
    op.drop_table("anchors")
