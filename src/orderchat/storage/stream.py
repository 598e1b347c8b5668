"""Stream positions: how durable events get their place in the one stream clients resume from.

With SQLite there is one writer: a transaction reads the head counter (the
write lock is already held), numbers its events head+1, head+2 … and stores
the new head, so positions commit in order and the head is always complete.

With PostgreSQL every node writes at once. Positions come from the sequence
`event_pos`, so two transactions interleave and commit in any order: position
11 may be visible while 10 is still being written. A reader must therefore
never hand out a position until everything below it is final. Each writing
transaction first takes a shared advisory lock whose key is its *floor*: the
sequence's value before it allocates anything, so all of its positions are
above the floor. The *persisted horizon* is

    min(the sequence's last value, the smallest floor among the locks held)

read in that order by `orderchat_stream_horizon()` (migration 0009). This is
Synapse's "persisted up to" (the minimum over writers of what each has
finished), with the database's lock table standing in for the writers'
reports, so that an idle or frozen node holds nobody back. Why every position
at or below the horizon H is final (committed, or never to be):

- take a position p <= H, allocated by transaction T. p <= the sequence's
  last value S, read first, so T allocated p before that read, and T had
  taken its floor lock (key F < p) before allocating;
- when the lock table was read, after S, either T still held its lock, and
  then H <= F < p, a contradiction, or T had ended: PostgreSQL marks a
  transaction committed (or aborted) before it releases its locks, so a
  snapshot taken after the horizon sees p if p was committed.

A node that dies mid-transaction loses its connection and its transaction
with it; one that freezes between two statements is cut off by the server's
`idle_in_transaction_session_timeout`, which releases its lock and fails
its commit; one that freezes in the middle of a statement (its backend
"active", waiting for the rest) is terminated by the other nodes after the
same time (storage/postgres.py: `_end_stuck_writers`). Either way the
horizon moves on. Gaps (positions allocated and
never used, transactions rolled back) are harmless: cursors only compare.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.storage import messages as msg_store
from orderchat.storage import prebuilt

SEQUENCE = "event_pos"
_TAKE_FLOOR = (
    "SELECT pg_advisory_xact_lock_shared("
    " CASE WHEN is_called THEN last_value ELSE last_value - 1 END) FROM event_pos"
)
_ALLOCATE = "SELECT nextval('event_pos') FROM generate_series(1, $1::int)"


class TxnPositions(Protocol):
    """The positions one write transaction hands out."""

    async def begin(self, conn: AsyncConnection) -> None: ...

    async def next(self, conn: AsyncConnection) -> int: ...

    def mark(self) -> int: ...

    def rollback_to(self, mark: int) -> None: ...

    async def finish(self, conn: AsyncConnection) -> None: ...


class CounterPositions:
    """SQLite: the head counter, read and written under the one write lock."""

    def __init__(self) -> None:
        self.head = 0

    async def begin(self, conn: AsyncConnection) -> None:
        self.head = await msg_store.lock_head_txn(conn)

    async def next(self, conn: AsyncConnection) -> int:
        self.head += 1
        return self.head

    def mark(self) -> int:
        return self.head

    def rollback_to(self, mark: int) -> None:
        self.head = mark

    async def finish(self, conn: AsyncConnection) -> None:
        await msg_store.set_head_txn(conn, self.head)


class SequencePositions:
    """PostgreSQL: positions from the shared sequence, above this transaction's floor.

    They are taken a few at a time (`reserve`), so that a batch of sends costs
    one round trip, not one per message; what is left over becomes a gap.
    """

    def __init__(self, reserve: int) -> None:
        self._reserve = max(1, reserve)
        self._free: deque[int] = deque()

    async def begin(self, conn: AsyncConnection) -> None:
        # Through SQLAlchemy, which begins the transaction with it (prebuilt.asyncpg_of).
        await conn.exec_driver_sql(_TAKE_FLOOR)

    async def next(self, conn: AsyncConnection) -> int:
        if not self._free:
            found = await prebuilt.pg_fetch(conn, _ALLOCATE, self._reserve)
            self._free.extend(sorted(int(row[0]) for row in found))
            self._reserve = min(self._reserve * 2, 4096)
        return self._free.popleft()

    def mark(self) -> int:
        return 0  # a rolled-back operation's positions simply stay unused

    def rollback_to(self, mark: int) -> None:
        return None

    async def finish(self, conn: AsyncConnection) -> None:
        return None
