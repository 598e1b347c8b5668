"""Reading the audit log: administrators only, a page at a time or all of it as CSV.

Entries are written by the actions themselves (see core/audit.py); this is
the reading side. An export is itself on the record.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from orderchat.core.audit import MAX_AUDIT_TEXT, AuditAction, AuditEntry, AuditQuery
from orderchat.core.errors import BadRequest, Forbidden
from orderchat.core.model import User
from orderchat.core.texts import say
from orderchat.services.ports import Clock
from orderchat.storage import audit as audit_store
from orderchat.storage.audit import LoggedEntry
from orderchat.storage.engine import Database

MAX_PAGE = 200
# An export is bounded: an owner answering a question, not a backup (pg_dump is).
MAX_EXPORT_ROWS = 100_000
CSV_COLUMNS = ("id", "time_utc", "ts", "action", "actor", "actor_name", "target", "conv", "details")


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[LoggedEntry]
    next_cursor: int | None


class AuditLog:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    @staticmethod
    def _require_admin(user: User, query: AuditQuery) -> None:
        if not user.is_admin:
            raise Forbidden(say("audit.only_admin"))
        if query.text is not None and len(query.text) > MAX_AUDIT_TEXT:
            raise BadRequest(say("audit.text_too_long", limit=MAX_AUDIT_TEXT))

    async def page(
        self, user: User, query: AuditQuery, before: int | None, limit: int
    ) -> AuditPage:
        self._require_admin(user, query)
        limit = max(1, min(limit, MAX_PAGE))
        async with self._db.read() as conn:
            found = await audit_store.entries(conn, query, before, limit + 1)
        more = len(found) > limit
        return AuditPage(found[:limit], found[limit - 1].id if more else None)

    async def export_csv(self, user: User, query: AuditQuery) -> str:
        """Every matching entry, newest first, as CSV; the export is logged first."""
        self._require_admin(user, query)
        details = {"text": query.text, "actions": sorted(a.value for a in query.actions)}
        entry = AuditEntry(
            AuditAction.AUDIT_EXPORTED, user.id, "audit_log", self._clock.now_ms(), None, details
        )
        async with self._db.write("audit_export") as conn:
            await audit_store.record_txn(conn, entry)
        async with self._db.read() as conn:
            found = await audit_store.entries(conn, query, None, MAX_EXPORT_ROWS)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for logged in found:
            writer.writerow(_csv_row(logged))
        return out.getvalue()


def _csv_row(logged: LoggedEntry) -> list[object]:
    entry = logged.entry
    when = datetime.fromtimestamp(entry.ts / 1000, UTC).isoformat(timespec="seconds")
    return [
        logged.id,
        when,
        entry.ts,
        entry.action.value,
        entry.actor or "",
        logged.actor_name or "",
        entry.target,
        entry.conv or "",
        orjson.dumps(dict(entry.details), option=orjson.OPT_SORT_KEYS).decode(),
    ]


def entry_json(logged: LoggedEntry) -> dict[str, object]:
    entry = logged.entry
    return {
        "id": logged.id,
        "ts": entry.ts,
        "action": entry.action.value,
        "actor": entry.actor,
        "actor_name": logged.actor_name,
        "target": entry.target,
        "conv": entry.conv,
        "details": dict(entry.details),
    }
