"""Checking the stored hash chains: one conversation for an admin, or every one for
`orderchat verify`.

Each conversation is read in one snapshot, a batch of messages at a time, so
the walk sees a consistent chain while the server goes on writing and holds
one batch in memory however long the history. The rules are core/proof.py's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from orderchat.core.model import User
from orderchat.core.proof import ChainReport, ChainWalk, Link, edit_link, message_link
from orderchat.services.accounts import Accounts
from orderchat.storage import proof as proof_store
from orderchat.storage.engine import Connection, Database
from orderchat.storage.proof import ChainHead, ChainRow

# Messages read per query: large enough that a round trip is a small part of
# the work, small enough that a batch of long texts stays a few megabytes.
BATCH = 1000
# Conversations listed per query when walking them all.
HEADS_BATCH = 500

Progress = Callable[[int], None]


def _ignore(links: int) -> None:
    return None


async def feed_txn(
    conn: Connection,
    head: ChainHead,
    walk: ChainWalk,
    *,
    on_links: Progress = _ignore,
    on_row: Callable[[ChainRow], None] | None = None,
    batch: int = BATCH,
) -> ChainReport:
    """Walk one conversation's stored links, in the snapshot `conn` reads, to its head."""
    after = 0
    while True:
        rows = await proof_store.chain_rows(conn, head.conv_id, after, batch)
        for row in rows:
            walk.message(*_links(row))
            if on_row is not None:
                on_row(row)
        if rows:
            after = rows[-1].message.message.seq
            on_links(len(rows) + sum(len(r.edits) for r in rows))
        if len(rows) < batch:
            return walk.finish(head.last_seq, head.last_hash)
        await asyncio.sleep(0)  # a long chain must not hold the event loop between batches


def _links(row: ChainRow) -> tuple[Link, list[Link]]:
    """A row's links; a purged message's, and its edits', by their hashes alone."""
    stored = row.message
    message = message_link(stored.message, stored.hash)
    edits = [edit_link(e.edit, e.hash) for e in row.edits]
    if row.purged:
        purged_edits = [Link(e.ref, e.hash, prev=row.edit_prevs.get(e.ref.version)) for e in edits]
        return Link(message.ref, message.hash, prev=row.prev), purged_edits
    return message, edits


@dataclass(frozen=True, slots=True)
class Verified:
    head: ChainHead
    report: ChainReport


class ChainProofs:
    def __init__(self, db: Database, batch: int = BATCH) -> None:
        self._db = db
        self._batch = batch

    async def verify(self, user: User, conv_id: str) -> Verified:
        """One conversation's chain, for an admin.

        Raises:
            Forbidden: not an admin.
            NotFound: no such conversation.
        """
        Accounts.require_admin(user)
        async with self._db.read() as conn:
            head = await proof_store.get_chain_head(conn, conv_id)
            report = await feed_txn(conn, head, ChainWalk(), batch=self._batch)
        return Verified(head, report)

    async def count_links(self) -> int:
        async with self._db.read() as conn:
            return await proof_store.count_links(conn)

    async def verify_all(self, on_links: Progress = _ignore) -> AsyncIterator[Verified]:
        """Every conversation's chain, by id, each in a snapshot of its own."""
        after = ""
        while True:
            async with self._db.read() as conn:
                heads = await proof_store.list_chain_heads(conn, after, HEADS_BATCH)
            for listed in heads:
                async with self._db.read() as conn:
                    # Read again in the walk's own snapshot: the head listed may be older.
                    head = await proof_store.get_chain_head(conn, listed.conv_id)
                    report = await feed_txn(
                        conn, head, ChainWalk(), on_links=on_links, batch=self._batch
                    )
                yield Verified(head, report)
            if len(heads) < HEADS_BATCH:
                return
            after = heads[-1].conv_id
