"""Consults: visitors' pre-sales conversations, their queues, product card pictures

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

ID = sa.String(32)


def upgrade() -> None:
    # long because: a migration lists every column and index it makes, in one place.
    # Customers made so far came through an order: an order vouches for them.
    op.add_column(
        "customers", sa.Column("verified", sa.Boolean(), nullable=False, server_default=sa.true())
    )
    op.add_column("customers", sa.Column("blocked_at_ms", sa.BigInteger(), nullable=True))
    op.add_column("customers", sa.Column("blocked_by", ID, nullable=True))
    op.add_column("customers", sa.Column("erased_at_ms", sa.BigInteger(), nullable=True))
    op.add_column("skus", sa.Column("picture_sha256", sa.String(64), nullable=True))
    op.add_column("skus", sa.Column("options", sa.Text(), nullable=True))
    op.create_table(
        "consults",
        sa.Column("conv_id", ID, nullable=False),
        sa.Column("visitor_id", ID, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("queue", sa.String(40), nullable=False),
        sa.Column("roles", sa.String(255), nullable=False),
        sa.Column("assignee_id", ID, nullable=True),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("tag", sa.String(64), nullable=True),
        sa.Column("page_url", sa.String(500), nullable=True),
        sa.Column("sku", sa.String(64), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("opened_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("waiting_since_ms", sa.BigInteger(), nullable=True),
        sa.Column("first_response_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("escalated_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("closed_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("order_id", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["conv_id"], ["conversations.id"], name=op.f("fk_consults_conv_id_conversations")
        ),
        sa.ForeignKeyConstraint(
            ["visitor_id"], ["users.id"], name=op.f("fk_consults_visitor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_consults_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("conv_id", name=op.f("pk_consults")),
    )
    op.create_index(op.f("ix_consults_visitor_id"), "consults", ["visitor_id"])
    op.create_index(op.f("ix_consults_order_id"), "consults", ["order_id"])
    op.create_index(
        op.f("ix_consults_status_queue_created_at_ms"),
        "consults",
        ["status", "queue", "created_at_ms"],
    )
    op.create_index(op.f("ix_consults_assignee_id_status"), "consults", ["assignee_id", "status"])
    op.create_table(
        "consult_queues",
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("last_given", ID, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_consult_queues")),
    )
    op.create_table(
        "visitor_links",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("used_at_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_visitor_links_user_id_users")
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_visitor_links")),
    )
    op.create_index(op.f("ix_visitor_links_user_id"), "visitor_links", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_visitor_links_user_id"), table_name="visitor_links")
    op.drop_table("visitor_links")
    op.drop_table("consult_queues")
    op.drop_index(op.f("ix_consults_assignee_id_status"), table_name="consults")
    op.drop_index(op.f("ix_consults_status_queue_created_at_ms"), table_name="consults")
    op.drop_index(op.f("ix_consults_order_id"), table_name="consults")
    op.drop_index(op.f("ix_consults_visitor_id"), table_name="consults")
    op.drop_table("consults")
    with op.batch_alter_table("skus") as batch:
        batch.drop_column("options")
        batch.drop_column("picture_sha256")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("erased_at_ms")
        batch.drop_column("blocked_by")
        batch.drop_column("blocked_at_ms")
        batch.drop_column("verified")
