"""Leases: a scheduled job runs on one node of the cluster at a time, not on every one.

`hold(name)` says whether this node runs the job `name` now. On PostgreSQL
the lease is a session advisory lock held on a connection of its own: while
the node lives it keeps the lock; when it dies, its connection goes and the
database frees the lock at once, so the next node to ask takes the job over
without waiting for an expiry. With SQLite there is one process, which
always holds every lease.

`claim_once(name)` marks a one-off task (the digest of one day) as taken for
good, in the `leases` table: the first node to claim it does it, every other
skips it.
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
        self._held: set[str] = set()

    async def hold(self, name: str) -> bool:
        """Whether this node holds the lease of `name` (taking it if it is free)."""
        held = await self._db.hold_job_lock(name)
        if held and name not in self._held:
            logger.info("%s runs %s", self.holder, name)
        self._held = {n for n in self._held if n != name} | ({name} if held else set())
        return held

    async def release(self, name: str) -> None:
        """Give the lease up now (a node stopping): the next node takes it at once."""
        await self._db.release_job_lock(name)
        self._held.discard(name)

    async def claim_once(self, name: str) -> bool:
        """Whether this node is the first (and only) one to claim `name`."""
        async with self._db.write("claim") as conn:
            return await store.insert_txn(
                conn, name, self.holder, self._clock.now_ms() + FOREVER_MS
            )
