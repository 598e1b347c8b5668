"""The notification machinery of one node: keys, channels, the planner and the worker.

Built with the rest of the runtime, started once the store is migrated (the
keys live in it), stopped before the store closes. Every node runs a worker;
the planner runs where its lease is held.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from pathlib import Path

from orderchat.core.ids import IdMinter
from orderchat.notify.mail import Mailer, SmtpSettings
from orderchat.notify.push import PushSender
from orderchat.notify.webhook_sender import WebhookSender
from orderchat.services.leases import Leases
from orderchat.services.notify.channels import (
    MailChannel,
    PushChannel,
    WebhookChannel,
    spare_failed_sniffio_imports,
)
from orderchat.services.notify.events import Links
from orderchat.services.notify.mails import MailBuilder
from orderchat.services.notify.planner import Planner
from orderchat.services.notify.pruner import Pruner
from orderchat.services.notify.ringing import CallRinger
from orderchat.services.notify.service import Notifications
from orderchat.services.notify.wiring import Outlets, load_policy, shared_keys
from orderchat.services.notify.worker import Worker
from orderchat.services.ports import Clock
from orderchat.storage.engine import Database

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    public_url: str  # what people open OrderChat at: links in pushes and mails
    shop_name: str
    policy_dir: Path | None
    smtp: SmtpSettings | None
    # Loopback and private addresses as webhook and push targets (tests, an intranet).
    allow_private_targets: bool = False
    push_subject: str = "mailto:admin@localhost"


class NotifySystem:
    def __init__(
        self, db: Database, clock: Clock, ids: IdMinter, leases: Leases, config: NotifyConfig
    ) -> None:
        self._db = db
        self._clock = clock
        self._ids = ids
        self._leases = leases
        self.config = config
        self.policy = load_policy(config.policy_dir)
        self.links = Links(config.public_url)
        self._service: Notifications | None = None
        self._outlets: Outlets | None = None
        self.planner: Planner | None = None
        self.worker: Worker | None = None
        self.ringer: CallRinger | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def service(self) -> Notifications:
        if self._service is None:
            raise RuntimeError("notifications are not started")
        return self._service

    async def start(self) -> None:
        spare_failed_sniffio_imports()
        keys, secret = await shared_keys(self._db, self._clock)
        allow = self.config.allow_private_targets
        self._service = Notifications(
            self._db, self._clock, self._ids, keys, secret, allow_private=allow
        )
        smtp = self.config.smtp
        self._outlets = Outlets(
            push=PushChannel(
                self._db, PushSender(keys, self.config.push_subject, allow_private=allow)
            ),
            mail=MailChannel(Mailer(smtp)) if smtp is not None else None,
            webhooks=WebhookChannel(self._db, WebhookSender(allow_private=allow)),
        )
        self.ringer = CallRinger(self._db, self._clock, self.links, self._outlets.push)
        mails = MailBuilder(
            self._db,
            self._clock,
            self.links,
            self.config.shop_name,
            smtp.sender if smtp is not None else "",
            secret,
        )
        self.worker = Worker(
            self._db, self._clock, self.policy, self._outlets, mails, random.Random()
        )
        self.planner = Planner(
            self._db,
            self._clock,
            self._ids,
            self.policy,
            self._leases,
            self.links,
            mail_on=smtp is not None,
            planned=self.worker.wake,
        )
        pruner = Pruner(self._db, self._clock, self._leases, self.policy.keep_days)
        self._tasks = [
            asyncio.create_task(self.planner.run(self._stop), name="notify-planner"),
            asyncio.create_task(self.worker.run(self._stop), name="notify-worker"),
            asyncio.create_task(pruner.run(self._stop), name="notify-prune"),
        ]

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.planner is not None:
            with contextlib.suppress(Exception):
                await self.planner.save_cursor()
        if self._outlets is not None:
            await self._outlets.aclose()
