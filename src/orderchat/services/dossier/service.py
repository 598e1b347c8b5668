"""Exporting an order's dossier: for someone signed in, or for the server's operator.

Who gets what:
- staff who may see the order (its conversation's members, and admins) get
  everything; admins also the original content of recalled messages, which
  only their audit reads;
- the order's customer gets their own order without anything staff-only:
  staff-only notes and calls, exceptions, staff-only order fields;
- either way the consults the order came from come with it, under the same
  rules: a transfer's staff-only note is withheld from the customer's;
- anyone else is told there is no such order (404), as for every other
  order route a customer may not reach;
- `orderchat export` on the server's machine is the operator: everything.

A link the reader may not see stays in the manifest as its hash, marked
withheld, so the chain still verifies across it and the dossier says that
something was withheld rather than that nothing was there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orderchat.core.audit import AuditAction, AuditEntry
from orderchat.core.errors import NotFound
from orderchat.core.ids import OrderId
from orderchat.core.model import User, UserKind
from orderchat.core.texts import say
from orderchat.media.blobstore import BlobStore
from orderchat.services.dossier.archive import Original, write_zip
from orderchat.services.dossier.document import document, manifest, plan_files
from orderchat.services.dossier.gather import Gathered, History, Viewer, gather_txn
from orderchat.services.orders.workflows import Workflows
from orderchat.services.ports import Clock
from orderchat.storage import audit as audit_store
from orderchat.storage import media as media_store
from orderchat.storage import orders as order_store
from orderchat.storage.engine import Database

# (what is being done, done so far, of how many): links read, then bytes packed.
StageProgress = Callable[[str, int, int], None]
READING = "reading"
PACKING = "packing"


def _quiet(stage: str, done: int, total: int) -> None:
    return None


@dataclass(frozen=True, slots=True)
class ConsultWritten:
    """The chain of a consult the order came from, as the dossier holds it."""

    consult: str
    links: int
    withheld: int
    head: str


@dataclass(frozen=True, slots=True)
class Written:
    """A dossier written to `path`, and what it holds: the order's chain, and its consults'."""

    path: Path
    number: str
    links: int
    withheld: int
    files: int
    head: str
    holds: bool
    consults: tuple[ConsultWritten, ...] = ()


class Dossiers:
    def __init__(
        self, db: Database, clock: Clock, workflows: Workflows, store: BlobStore, work_dir: Path
    ) -> None:
        self._db = db
        self._clock = clock
        self._workflows = workflows
        self._store = store
        self._work_dir = work_dir

    async def export(self, user: User, order_id: OrderId, language: str) -> Written:
        """The order's dossier for `user`, in a temporary file the caller removes.

        Raises:
            NotFound: no such order, or not one `user` may see.
        """
        viewer = await self._viewer(user, order_id, language)
        target = await asyncio.to_thread(self._temporary_zip)
        try:
            written = await self.write(order_id, viewer, target)
            await self._record(user.id, order_id, written)
        except BaseException:
            await asyncio.to_thread(remove_quietly, target)
            raise
        return written

    async def _record(self, actor: str | None, order_id: OrderId, written: Written) -> None:
        """A history leaving the server is on the audit log: who took which order's, and what."""
        details = {
            "number": written.number,
            "links": written.links,
            "withheld": written.withheld,
            "files": written.files,
            "head": written.head,
        }
        if written.consults:
            details["consults"] = len(written.consults)
        entry = AuditEntry(
            AuditAction.ORDER_EXPORTED, actor, order_id, self._clock.now_ms(), None, details
        )
        async with self._db.write("dossier_export") as conn:
            await audit_store.record_txn(conn, entry)

    def _temporary_zip(self) -> Path:
        self._work_dir.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix="dossier-", suffix=".zip", dir=self._work_dir)
        os.close(handle)
        return Path(name)

    async def export_number(
        self, number: str, viewer: Viewer, target: Path, progress: StageProgress = _quiet
    ) -> Written:
        """The dossier of the order numbered `number`, for the operator's `viewer`."""
        async with self._db.read() as conn:
            order_id = await order_store.find_order_id(conn, number=number)
        if order_id is None:
            raise NotFound(say("dossier.no_order_number", number=number))
        written = await self.write(order_id, viewer, target, progress)
        await self._record(None, order_id, written)  # the operator, on the server's machine
        return written

    async def _viewer(self, user: User, order_id: OrderId, language: str) -> Viewer:
        async with self._db.read() as conn:
            order = await order_store.get_order(conn, order_id)
            if user.kind is UserKind.CUSTOMER:
                mine = order.customer_id == user.id
                may = mine
            else:
                member = await media_store.is_current_member(conn, order.conv_id, user.id)
                may = member or user.is_admin
        if not may:
            raise NotFound(say("inventory.no_order", order_id=order_id))
        staff = user.kind is UserKind.STAFF
        return Viewer(
            user.display_name, staff_only=staff, recalled=user.is_admin, language=language
        )

    async def write(
        self,
        order_id: OrderId,
        viewer: Viewer,
        target: Path,
        progress: StageProgress = _quiet,
    ) -> Written:
        """Gather in one snapshot, then lay out and pack on a worker thread."""
        read = 0

        def links_read(count: int) -> None:
            nonlocal read
            read += count
            progress(READING, read, 0)

        async with self._db.read() as conn:
            found = await gather_txn(
                conn, self._workflows, order_id, viewer, self._clock.now_ms(), links_read
            )
        return await asyncio.to_thread(self._pack, found, target, progress)

    def _pack(self, found: Gathered, target: Path, progress: StageProgress) -> Written:
        packed, unavailable = plan_files(found)
        originals = []
        for file in packed:
            source = self._store.local_path(file.sha256)
            if source is None or not source.is_file():
                unavailable.append({"conv": file.conv, "media": file.media, "seq": file.seq})
            else:
                originals.append(Original(file, source))
        kept = [o.packed for o in originals]
        doc = document(found, kept, unavailable)
        # fpdf (and fontTools under it) costs half a second to import: a server that
        # never exports a dossier should not pay it at every start.
        from orderchat.services.dossier.pdf import DossierPdf

        pdf = DossierPdf(doc, self._previews(found)).render()
        write_zip(
            target,
            (pdf, doc),
            originals,
            lambda digests: manifest(found, digests),
            found.exported_at_ms,
            lambda done, total: progress(PACKING, done, total),
        )
        history = found.history
        return Written(
            target,
            found.order.number,
            len(history.links),
            history.withheld,
            len(originals),
            history.head.last_hash,
            all(h.report.holds for h in found.histories()),
            tuple(_consult_written(c.history) for c in found.consults),
        )

    def _previews(self, found: Gathered) -> dict[str, Path]:
        """The preview picture of each file that has one made, by media id."""
        found_previews = {}
        for media, upload in found.uploads.items():
            blob = upload.blob
            name = (blob.preview or {}).get("preview_file") if blob else None
            if blob is None or not isinstance(name, str) or not name.endswith((".jpg", ".png")):
                continue
            path = self._store.preview_path(blob.sha256, name)
            if path is not None and path.is_file():
                found_previews[media] = path
        return found_previews


def _consult_written(history: History) -> ConsultWritten:
    return ConsultWritten(
        history.conv, len(history.links), history.withheld, history.head.last_hash
    )


def remove_quietly(path: Path) -> None:
    """Delete a dossier once it has been sent."""
    with contextlib.suppress(OSError):
        path.unlink()
