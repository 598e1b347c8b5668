"""Leases: a scheduled job runs on one node of the cluster at a time, not on every one.

A lease is a row (name, holder, expiry, fence). A node holds it while it keeps
renewing it before it expires; when its holder dies the lease expires and the
next node to ask takes it over, with the fence number one higher, so that work
stamped with an older fence can be told apart. Taking and renewing are one
short write transaction each, locked on the lease's row, so two nodes asking
at once cannot both win; on SQLite (one process) the node always wins.

`claim_once` marks a one-off task (the digest of one day) as taken for good:
the first node to claim it does it, every other skips it.
"""

from __future__ import annotations

import logging

from orderchat.services.ports import Clock
from orderchat.storage import leases as store
from orderchat.storage.engine import Database

logger = logging.getLogger(__name__)

# A claim_once marker never expires (a century).
FOREVER_MS = 100 * 365 * 24 * 3600 * 1000


class Leases:
    def __init__(self, db: Database, clock: Clock, holder: str) -> None:
        self._db = db
        self._clock = clock
        self.holder = holder

    async def hold(self, name: str, ttl_s: float) -> int | None:
        """Take or renew the lease; its fence number while held, None if another node holds it."""
        now_ms = self._clock.now_ms()
        async with self._db.write("lease") as conn:
            held = await store.hold_txn(conn, name, self.holder, now_ms, now_ms + int(ttl_s * 1000))
        if held is None:
            return None
        fence, taken = held
        if taken:
            logger.info("lease %s taken by %s (fence %d)", name, self.holder, fence)
        return fence

    async def release(self, name: str) -> None:
        """Give the lease up now (a node stopping), so the next node need not wait for expiry."""
        async with self._db.write("lease") as conn:
            await store.expire_txn(conn, name, self.holder)

    async def claim_once(self, name: str) -> bool:
        """Whether this node is the first (and only) one to claim `name`."""
        async with self._db.write("claim") as conn:
            return await store.insert_txn(
                conn, name, self.holder, self._clock.now_ms() + FOREVER_MS
            )
