"""Deleting deliveries that are done, once the policy's `keep_days` have passed.

The outbox keeps every delivery, sent or not, for the delivery log and the
reminders panel; without this it would only grow. One node prunes at a time
(the `notify-prune` lease), once an hour by the server's clock, in small
transactions so that sends never wait long behind it.
"""

from __future__ import annotations

import asyncio
import logging

from orderchat.services.leases import Leases
from orderchat.services.ports import Clock
from orderchat.storage import notify as store
from orderchat.storage.engine import Database

logger = logging.getLogger(__name__)

PRUNER_LEASE = "notify-prune"
EVERY_MS = 3600 * 1000
# Looking costs nothing until a prune is due: the clock is read this often.
LOOK_EVERY_S = 5.0
BATCH = 2000
DAY_MS = 24 * 3600 * 1000


class Pruner:
    def __init__(self, db: Database, clock: Clock, leases: Leases, keep_days: int) -> None:
        self._db = db
        self._clock = clock
        self._leases = leases
        self._keep_ms = keep_days * DAY_MS
        self._last_ms: int | None = None

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            # Not at the instant of start: a server stopped as soon as it started would
            # cut a prune off in the middle of its transaction.
            await asyncio.sleep(LOOK_EVERY_S)
            now = self._clock.now_ms()
            if self._last_ms is None or now - self._last_ms >= EVERY_MS:
                try:
                    if await self._leases.hold(PRUNER_LEASE):
                        await self.prune(now)
                    self._last_ms = now
                except Exception:
                    logger.warning("pruning old notifications failed; trying again", exc_info=True)

    async def prune(self, now_ms: int) -> int:
        """Delete what was done more than `keep_days` ago, a batch per transaction."""
        before = now_ms - self._keep_ms
        gone = 0
        while True:
            async with self._db.write("notify-prune") as conn:
                deleted = await store.prune_done_txn(conn, before, BATCH)
            gone += deleted
            if deleted < BATCH:
                break
            await asyncio.sleep(0)  # let the sends waiting behind it go first
        if gone:
            logger.info("deleted %d notifications done before %d", gone, before)
        return gone
