"""Money on orders: payments, refunds, shipping approvals, invoices, the daily digest."""

from __future__ import annotations

from orderchat.services.ports import Clock
from orderchat.services.workflows import Workflows
from orderchat.services.writer import GroupCommitWriter
from orderchat.storage.engine import Database


class Finance:
    def __init__(
        self, db: Database, writer: GroupCommitWriter, clock: Clock, workflows: Workflows
    ) -> None:
        self._db = db
        self._writer = writer
        self._clock = clock
        self._workflows = workflows
