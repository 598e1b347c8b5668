"""Media: the jobs around files in conversations, wired together and started once.

Each job has its own module: `uploads.py` (tus uploads, from creation to the
finished blob), `serving.py` (who may see a file, which file answers a
download), `library.py` (the files of a conversation), `previews.py` (made in
the background after an upload finishes) and `sweeping.py` (recovery after a
crash, expiry of unfinished uploads). This class builds them from the shared
dependencies and owns the background work; callers use the jobs directly
(`media.uploads.append(...)`).

An upload's life: created for one conversation (quota and size checked), its
bytes appended by as many requests as the network needs, finished when the
last byte arrives, then sent in exactly one message. Previews are made in a
child process after that, and a `media` event tells the conversation when one
is ready after its message went out.
"""

from __future__ import annotations

from pathlib import Path

from orderchat.media.blobstore import BlobStore
from orderchat.media.partials import PartialFiles
from orderchat.services.leases import Leases
from orderchat.services.limits import SharedBuckets
from orderchat.services.media.library import Library
from orderchat.services.media.limits import MediaLimits
from orderchat.services.media.previews import Previews
from orderchat.services.media.serving import Downloads
from orderchat.services.media.sweeping import Sweeper
from orderchat.services.media.uploads import Uploads
from orderchat.services.ports import Clock
from orderchat.services.writer import GroupCommitWriter
from orderchat.storage.engine import Database


class Media:
    def __init__(
        self,
        db: Database,
        writer: GroupCommitWriter,
        clock: Clock,
        store: BlobStore,
        partials: PartialFiles,
        work_dir: Path,
        limits: MediaLimits,
        *,
        rate_limits: bool,
        leases: Leases | None = None,
        shared_limits: SharedBuckets | None = None,
    ) -> None:
        self.limits = limits
        self.previews = Previews(db, writer, store, work_dir, limits.preview)
        self.uploads = Uploads(
            db,
            clock,
            writer.ids,
            store,
            partials,
            self.previews,
            limits,
            rate_limits=rate_limits,
            shared_limits=shared_limits,
        )
        self.downloads = Downloads(db, store)
        self.library = Library(db)
        self.sweeper = Sweeper(db, clock, store, partials, self.uploads, leases)

    async def start(self) -> None:
        """Finish what a crash interrupted, then make previews and sweep in the background."""
        await self.sweeper.recover()
        await self.previews.start()
        self.sweeper.start()

    async def stop(self) -> None:
        await self.previews.stop()
        await self.sweeper.stop()
