"""The writer's retry rules under real conflicts between two nodes' transactions.

Two group-commit writers, each with its own connection pool, stand for two
nodes on one PostgreSQL. Their operations lock the same two conversations in
opposite orders, so PostgreSQL's deadlock detector aborts one transaction; the
writer runs it again and both operations succeed, each conversation's seq
staying gapless.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest

from orderchat.api.wiring import build_runtime
from orderchat.core.ids import ConversationId
from orderchat.core.model import (
    ConversationKind,
    MessageKind,
    NewConversation,
    User,
    parse_new_staff,
)
from orderchat.services.leases import Leases
from orderchat.services.ports import Publication, SystemClock, system_ids
from orderchat.services.writer import GroupCommitWriter, WriteTxn
from orderchat.settings import Settings
from orderchat.storage.engine import Database
from tests.stores import new_database, pg_rows, postgres_unavailable

pytestmark = pytest.mark.slow


class _Published:
    def __init__(self) -> None:
        self.items: list[Publication] = []

    def publish(self, items: list[Publication]) -> None:
        self.items.extend(items)


@dataclass
class _LockTwo:
    """Lock `first`, wait for the other node to lock `second`, then lock `second` too."""

    user: User
    first: ConversationId
    second: ConversationId
    both_locked: asyncio.Barrier
    attempts: int = 0

    async def apply(self, tx: WriteTxn) -> object:
        self.attempts += 1
        conv = await tx.conversation(self.first)
        await tx.member_set(conv.id)
        if self.attempts == 1:  # the retry after the deadlock goes straight on
            await self.both_locked.wait()
        other = await tx.conversation(self.second)
        await tx.member_set(other.id)
        await tx.append_message(conv, self.user.id, MessageKind.TEXT, "first")
        await tx.append_message(other, self.user.id, MessageKind.TEXT, "second")
        return None


async def test_a_deadlock_between_two_nodes_is_retried_and_both_writes_land(
    tmp_path: Path,
) -> None:
    if reason := postgres_unavailable():
        pytest.skip(reason)
    url = new_database()
    runtime = build_runtime(Settings(data_dir=tmp_path, database_url=url))
    await runtime.bus.start()
    runtime.writer.start()
    staff = await runtime.staff.add(
        None, parse_new_staff("lee", "sturdy-passphrase-9", "admin", "Lee")
    )
    a = await runtime.conversations.create(
        staff, NewConversation(ConversationKind.CHANNEL, "a", ())
    )
    b = await runtime.conversations.create(
        staff, NewConversation(ConversationKind.CHANNEL, "b", ())
    )
    other_db = Database(url)
    other = GroupCommitWriter(other_db, _Published(), SystemClock(), system_ids(SystemClock()))
    other.start()
    barrier = asyncio.Barrier(2)
    ops = [
        _LockTwo(staff, a.conv.id, b.conv.id, barrier),
        _LockTwo(staff, b.conv.id, a.conv.id, barrier),
    ]
    try:
        done = await asyncio.wait_for(
            asyncio.gather(
                runtime.writer.submit(ops[0]),
                other.submit(ops[1]),
                return_exceptions=True,
            ),
            30,
        )
    finally:
        await other.stop()
        await other_db.close()
        await runtime.writer.stop()
        await runtime.bus.stop()
        await runtime.db.close()
    assert done == [None, None]
    assert sorted(op.attempts for op in ops) == [1, 2], "one lost the deadlock and ran again"
    for conv in (a.conv.id, b.conv.id):
        rows = pg_rows(
            url, "SELECT seq, text FROM messages WHERE conv_id = ? ORDER BY seq", (conv,)
        )
        assert [r[0] for r in rows] == [1, 2]
        assert sorted(r[1] for r in rows) == ["first", "second"]


async def test_a_job_lease_moves_to_another_node_the_moment_its_holder_is_gone() -> None:
    if reason := postgres_unavailable():
        pytest.skip(reason)
    url = new_database()
    first_db, second_db = Database(url), Database(url)
    first = Leases(first_db, SystemClock(), "node-a")
    second = Leases(second_db, SystemClock(), "node-b")
    try:
        assert await first.hold("nightly")
        assert await first.hold("nightly"), "the holder keeps it"
        assert not await second.hold("nightly")
        assert await second.hold("another job"), "each job has a lease of its own"
        await first_db.close()  # the node dies: its connection goes
        assert await second.hold("nightly")
        assert await second.claim_once("digest:2026-12-05")
        assert not await Leases(second_db, SystemClock(), "node-c").claim_once("digest:2026-12-05")
    finally:
        await second_db.close()


async def test_jobs_asking_for_their_leases_at_once_share_one_lock_connection() -> None:
    """A node starts its scheduled jobs together, and each asks for its lease: the
    locks must all be held by the one connection the node keeps for them, none on a
    connection that was opened meanwhile and dropped (which frees its locks)."""
    if reason := postgres_unavailable():
        pytest.skip(reason)
    url = new_database()
    db = Database(url)
    names = [f"job-{i}" for i in range(6)]
    try:
        held = await asyncio.gather(*(db.hold_job_lock(name) for name in names))
        assert held == [True] * len(names)
        holders = pg_rows(
            url,
            # pg_locks is the whole cluster's: other tests' servers hold job locks too.
            "SELECT count(DISTINCT pid), count(*) FROM pg_locks"
            " WHERE locktype = 'advisory' AND objsubid = 2"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (),
        )
        assert holders == [(1, len(names))]
        sessions = pg_rows(
            url,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()",
            (),
        )
        assert sessions == [(1,)], "a lock connection was opened and left behind"
        assert await asyncio.gather(*(db.hold_job_lock(name) for name in names)) == held
    finally:
        await db.close()
