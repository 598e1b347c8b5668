"""Tidying up after uploads: what a crash left half done, and what expired unfinished.

At start-up, `recover` goes through the partial files on disk: one whose
upload is gone is deleted, one whose upload was recorded as finished but not
yet moved into the blob store is moved now. In the background, `sweep` deletes
unfinished uploads past their expiry, with their bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from orderchat.media.blobstore import BlobStore
from orderchat.media.partials import PartialFiles
from orderchat.services.leases import Leases
from orderchat.services.media.uploads import Uploads
from orderchat.services.ports import Clock
from orderchat.storage import media as media_store
from orderchat.storage.engine import Database

logger = logging.getLogger(__name__)

SWEEP_EVERY_S = 600.0
# Expired uploads deleted per sweep: one round stays short; the next takes the rest.
SWEEP_BATCH = 500


class Sweeper:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        store: BlobStore,
        partials: PartialFiles,
        uploads: Uploads,
        leases: Leases | None = None,
    ) -> None:
        self._leases = leases
        self._db = db
        self._clock = clock
        self._store = store
        self._partials = partials
        self._uploads = uploads
        self._task: asyncio.Task[None] | None = None

    async def recover(self) -> None:
        """Finish what a crash interrupted."""
        for upload_id in self._partials.ids():
            async with self._db.read() as conn:
                row = await media_store.get_upload(conn, upload_id)
            if row is None:  # cancelled or expired while its file was being written
                await self._partials.delete(upload_id)
            elif row.finished and row.sha256 is not None:  # recorded, not yet moved
                await self._store.put(row.sha256, self._partials.path(upload_id))

    def start(self) -> None:
        self._task = asyncio.create_task(self._sweep_forever(), name="media-sweep")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def sweep(self) -> int:
        """Delete unfinished uploads past their expiry; how many went."""
        async with self._db.read() as conn:
            ids = await media_store.expired_uploads(conn, self._clock.now_ms(), SWEEP_BATCH)
        for upload_id in ids:
            await self._uploads.discard_expired(upload_id)
        return len(ids)

    async def _sweep_forever(self) -> None:
        """Sweep now and then, on the one node of a cluster that holds the sweep's lease."""
        while True:
            try:
                if self._leases is None or await self._leases.hold(
                    "upload-expiry", SWEEP_EVERY_S * 3
                ):
                    await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("sweeping expired uploads failed")
            await asyncio.sleep(SWEEP_EVERY_S)
