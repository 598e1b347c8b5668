"""Retention: the administrators' rules, legal holds, and the purge (core/retention.py).

A purge works in small transactions of one conversation's oldest messages
each, so a shop's first purge of years of history never holds the write lock
for long; a run stops after `MAX_BATCHES_PER_RUN` and the next day's goes on.
Every run that removed anything, and every change of a rule or a hold, is on
the audit log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from orderchat.core.audit import AuditAction, AuditEntry
from orderchat.core.errors import Forbidden
from orderchat.core.ids import OrderId
from orderchat.core.model import User
from orderchat.core.retention import PURGE_BATCH, PurgeReport, check_rule, cutoff_ms
from orderchat.core.texts import say
from orderchat.media.blobstore import BlobStore
from orderchat.services.ports import Clock
from orderchat.storage import audit as audit_store
from orderchat.storage import media as media_store
from orderchat.storage import orders as order_store
from orderchat.storage import retention as store
from orderchat.storage.engine import Database

logger = logging.getLogger(__name__)

MAX_BATCHES_PER_RUN = 2_000


class Retention:
    def __init__(self, db: Database, clock: Clock, blobs: BlobStore) -> None:
        self._db = db
        self._clock = clock
        self._blobs = blobs

    @staticmethod
    def _require_admin(user: User) -> None:
        if not user.is_admin:
            raise Forbidden(say("retention.only_admin"))

    async def overview(self, user: User) -> dict[str, Any]:
        self._require_admin(user)
        async with self._db.read() as conn:
            rules = await store.rules(conn)
            held = await store.held_orders(conn)
            purges = await store.recent_purges(conn)
        return {
            "rules": {kind.value: days for kind, days in rules.items()},
            "held": [{"id": order_id, "number": number} for order_id, number in held],
            "purges": purges,
        }

    async def set_rule(self, user: User, kind: str, days: object) -> dict[str, Any]:
        self._require_admin(user)
        rule = check_rule(kind, days)
        now_ms = self._clock.now_ms()
        async with self._db.write("retention-rule") as conn:
            before = (await store.rules(conn))[rule.kind]
            await store.set_rule_txn(conn, rule, user.id, now_ms)
            details = {"kind": rule.kind.value, "before": before, "after": rule.days}
            entry = AuditEntry(AuditAction.RETENTION_CHANGED, user.id, rule.kind.value, now_ms)
            await audit_store.record_txn(conn, _with(entry, details))
        return await self.overview(user)

    async def set_hold(self, user: User, order_id: OrderId, hold: bool) -> None:
        """Put an order under legal hold (never purged) or release it."""
        self._require_admin(user)
        now_ms = self._clock.now_ms()
        async with self._db.write("legal-hold") as conn:
            order = await order_store.get_order(conn, order_id)
            await store.set_legal_hold_txn(conn, order.id, hold)
            details = {"number": order.number, "hold": hold}
            entry = AuditEntry(AuditAction.LEGAL_HOLD_CHANGED, user.id, order.id, now_ms)
            await audit_store.record_txn(conn, _with(entry, details, order.conv_id))

    async def run(self, user: User | None = None) -> PurgeReport:
        """Purge everything past its rule now (an admin's button, or the day's job)."""
        if user is not None:
            self._require_admin(user)
        now_ms = self._clock.now_ms()
        async with self._db.read() as conn:
            rules = await store.rules(conn)
        report, conversations = PurgeReport(), set()
        for kind, days in rules.items():
            if days is None:
                continue
            cutoff = cutoff_ms(now_ms, days)
            for _ in range(MAX_BATCHES_PER_RUN):
                async with self._db.read() as conn:
                    due = await store.due(conn, kind, cutoff, PURGE_BATCH)
                if not due:
                    break
                for batch in due:
                    files = await self._purge(batch, cutoff, now_ms)
                    conversations.add(batch.conv_id)
                    report += PurgeReport(0, len(batch.message_ids), files)
        report = PurgeReport(len(conversations), report.messages, report.files)
        if report.messages:
            await self._record_run(user, report, now_ms)
            logger.info("retention purged %s", report)
        return report

    async def _purge(self, batch: store.Due, cutoff: int, now_ms: int) -> int:
        async with self._db.write("retention-purge") as conn:
            files = await store.purge_txn(conn, batch, cutoff, now_ms)
            orphans = [
                sha
                for sha in {sha for _, sha in files if sha is not None}
                if await media_store.blob_unused(conn, sha)
            ]
            for sha in orphans:
                await media_store.delete_blob_txn(conn, sha)
        for sha in orphans:  # after the commit: a failed delete leaves a file, never a hole
            await self._blobs.delete(sha)
        return len(files)

    async def _record_run(self, user: User | None, report: PurgeReport, now_ms: int) -> None:
        details = {
            "conversations": report.conversations,
            "messages": report.messages,
            "files": report.files,
        }
        actor = None if user is None else user.id
        entry = AuditEntry(AuditAction.HISTORY_PURGED, actor, "retention", now_ms)
        async with self._db.write("retention-record") as conn:
            await audit_store.record_txn(conn, _with(entry, details))


def _with(entry: AuditEntry, details: Mapping[str, object], conv: str | None = None) -> AuditEntry:
    return AuditEntry(entry.action, entry.actor, entry.target, entry.ts, conv, details)
