"""staff links (invitations, password resets), members.by_role, one role channel per role

Revision ID: 0005
Revises: 0004

Role channels made twice (the demo used to make plain channels with the same
titles as the routed role channels) are merged here. The rule never rewrites a
message or a hash chain: for each role, the oldest of its channels (the role
channel and the plain channels titled like it) becomes the role channel; every
other one keeps its history, gets `merged_into` pointing at the kept one and
an "(archived)" title, and its current members are also made members of the
kept one. A lone plain channel with the role channel's title becomes the role
channel, so routed events land where the shop already talks.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Frozen copy of core.routing.ROLE_CHANNEL_TITLES as it was at this revision: a
# migration must give the same result whatever the code says later.
ROLE_CHANNEL_TITLES = {
    "admin": "管理 #admin",
    "customer_service": "客服 #customer_service",
    "sales": "销售 #sales",
    "purchasing": "采购 #purchasing",
    "warehouse": "仓库 #warehouse",
    "logistics": "物流 #logistics",
    "finance": "财务 #finance",
    "production": "生产 #production",
    "qc": "质检 #qc",
}
ARCHIVED_SUFFIX = " (archived)"


def upgrade() -> None:
    op.create_table(
        "staff_links",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=True),
        sa.Column("roles", sa.String(255), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=True),
        sa.Column("created_by", sa.String(32), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("used_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_staff_links"),
        sa.UniqueConstraint("token_hash", name="uq_staff_links_token_hash"),
    )
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("by_role", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("merged_into", sa.String(32), nullable=True))
    _mark_role_memberships()
    _merge_role_channels()


def _mark_role_memberships() -> None:
    """Say which memberships came with a role, for the ones made before this column.

    An order's thread got its staff at creation, all in one position: those
    members, apart from whoever created the order, were there for their role.
    Everyone in a role channel is there for the role.
    """
    bind = op.get_bind()
    bind.execute(
        sa.text(
            "UPDATE members SET by_role = true WHERE conv_id IN "
            "(SELECT id FROM conversations WHERE role_channel IS NOT NULL)"
        )
    )
    bind.execute(
        sa.text(
            "UPDATE members SET by_role = true WHERE EXISTS ("
            " SELECT 1 FROM conversations c JOIN users u ON u.id = members.user_id"
            " WHERE c.id = members.conv_id AND c.kind = 'order'"
            " AND u.kind = 'staff' AND (c.created_by IS NULL OR c.created_by != members.user_id)"
            " AND members.joined_pos = (SELECT MIN(m2.joined_pos) FROM members m2"
            "  WHERE m2.conv_id = members.conv_id))"
        )
    )


def _merge_role_channels() -> None:
    bind = op.get_bind()
    for role, title in ROLE_CHANNEL_TITLES.items():
        rows = bind.execute(
            sa.text(
                "SELECT id, role_channel FROM conversations WHERE kind = 'channel'"
                " AND merged_into IS NULL AND (role_channel = :role OR title = :title)"
                " ORDER BY created_at_ms, id"
            ),
            {"role": role, "title": title},
        ).all()
        if not rows:
            continue
        keep = rows[0].id
        others = [r.id for r in rows[1:]]
        # The unique role_channel moves to the kept channel: clear it first.
        for other in others:
            bind.execute(
                sa.text(
                    "UPDATE conversations SET role_channel = NULL, merged_into = :keep,"
                    " title = :archived WHERE id = :id"
                ),
                {"keep": keep, "archived": title + ARCHIVED_SUFFIX, "id": other},
            )
        bind.execute(
            sa.text("UPDATE conversations SET role_channel = :role WHERE id = :id"),
            {"role": role, "id": keep},
        )
        _move_members(bind, keep, others)


def _move_members(bind: sa.Connection, keep: str, others: list[str]) -> None:
    """Current members of the merged channels become members of the kept one.

    They join at the stream's current head, so the kept channel's older
    events are not replayed to them as new; its history reads over HTTP.
    """
    head = (
        bind.execute(
            sa.text("SELECT value FROM counters WHERE name = 'events'")
        ).scalar_one_or_none()
        or 0
    )
    keep_row = bind.execute(
        sa.text("SELECT last_seq FROM conversations WHERE id = :id"), {"id": keep}
    ).one()
    for other in others:
        bind.execute(
            sa.text(
                "INSERT INTO members (conv_id, user_id, joined_pos, left_pos, read_seq,"
                " joined_at_ms, by_role)"
                " SELECT :keep, m.user_id, :head, NULL, :seq, m.joined_at_ms, m.by_role"
                " FROM members m WHERE m.conv_id = :other AND m.left_pos IS NULL"
                " AND NOT EXISTS (SELECT 1 FROM members k WHERE k.conv_id = :keep"
                "  AND k.user_id = m.user_id)"
            ),
            {"keep": keep, "head": head, "seq": keep_row.last_seq, "other": other},
        )
        bind.execute(
            sa.text(
                "UPDATE members SET left_pos = NULL, joined_pos = :head WHERE conv_id = :keep"
                " AND left_pos IS NOT NULL AND user_id IN (SELECT user_id FROM members"
                "  WHERE conv_id = :other AND left_pos IS NULL)"
            ),
            {"keep": keep, "head": head, "other": other},
        )


def downgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("merged_into")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("by_role")
    op.drop_table("staff_links")
