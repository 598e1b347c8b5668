"""Scale-out: the event position sequence and its horizon (PostgreSQL), leases, member versions

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# See storage/stream.py for why the horizon is read in this order and why it is safe.
_HORIZON_FUNCTION = """
CREATE OR REPLACE FUNCTION orderchat_stream_horizon() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    top bigint;
    lowest_floor bigint;
BEGIN
    SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END INTO top FROM event_pos;
    SELECT min((l.classid::bigint << 32) | l.objid::bigint) INTO lowest_floor
      FROM pg_locks l
     WHERE l.locktype = 'advisory' AND l.objsubid = 1
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database());
    RETURN least(top, lowest_floor);
END $$
"""


def upgrade() -> None:
    # Bumped in every transaction that changes who is in a conversation (or
    # what their roles are), under the conversation's row lock: a node's cached
    # member list is good exactly while the version it was read at is current.
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("members_version", sa.BigInteger(), server_default="0", nullable=False)
        )
    # A scheduled job runs where its lease is held, once per cluster.
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("fence", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    head = bind.execute(sa.text("SELECT value FROM counters WHERE name = 'events'")).scalar_one()
    op.execute(sa.text(f"CREATE SEQUENCE event_pos START WITH {int(head) + 1} MINVALUE 1"))
    op.execute(sa.text(_HORIZON_FUNCTION))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(sa.text("DROP FUNCTION IF EXISTS orderchat_stream_horizon()"))
        op.execute(sa.text("DROP SEQUENCE IF EXISTS event_pos"))
    op.drop_table("leases")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("members_version")
