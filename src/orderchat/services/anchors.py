"""Anchoring the chains once a day (core/anchor.py), and the day's evidence jobs.

The key is made by whichever node starts first and kept in the database with
the other shared keys; only its public half ever leaves the server. Each
anchor is stored (with the heads it covers) and posted to #audit as a system
message, which the outbound webhooks subscribed to `audit.anchor` also carry
out of the shop's reach.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import date

from orderchat.core import anchor as rules
from orderchat.core.errors import Forbidden
from orderchat.core.model import MessageKind, Role, User
from orderchat.core.routing import AUDIT_CHANNEL, AUDIT_CHANNEL_TITLE
from orderchat.core.texts import DEFAULT_LANGUAGE, say
from orderchat.services.leases import Leases
from orderchat.services.money.digest import local_day, next_run_ms, parse_hhmm, stopped_within
from orderchat.services.money.finance import SYSTEM_SENDER
from orderchat.services.orders.events import kept_channel_txn
from orderchat.services.ports import Clock
from orderchat.services.retention import Retention
from orderchat.services.writer import GroupCommitWriter, WriteTxn
from orderchat.storage import anchors as store
from orderchat.storage import notify_people as keys_store
from orderchat.storage.engine import Database

logger = logging.getLogger(__name__)

# When the day's evidence jobs run (local time): a quiet hour in a shop.
EVIDENCE_TIME = "03:30"
MAX_NAP_S = 60.0


@dataclass(frozen=True, slots=True)
class AnchorKey:
    public: str
    key_id: str


class Anchors:
    def __init__(self, db: Database, writer: GroupCommitWriter, clock: Clock) -> None:
        self._db = db
        self._writer = writer
        self._clock = clock
        self._private: str | None = None

    async def _key(self) -> str:
        if self._private is None:
            async with self._db.write("anchor-key") as conn:
                self._private = await keys_store.offer_server_key_txn(
                    conn, rules.KEY_NAME, rules.new_private_key(), self._clock.now_ms()
                )
        return self._private

    async def key(self) -> AnchorKey:
        public = rules.public_key(await self._key())
        return AnchorKey(public, rules.key_id(public))

    async def recent(
        self, user: User, limit: int = 30
    ) -> tuple[AnchorKey, list[rules.SignedAnchor]]:
        if not user.is_admin:
            raise Forbidden(say("anchors.only_admin"))
        async with self._db.read() as conn:
            found = await store.recent(conn, limit)
        return await self.key(), found

    async def anchor(self, by: User | None = None) -> rules.SignedAnchor:
        """Sign every conversation's head now, keep it, and post it to #audit."""
        if by is not None and not by.is_admin:
            raise Forbidden(say("anchors.only_admin"))
        private = await self._key()
        public = rules.public_key(private)
        async with self._db.read() as conn:
            heads = await store.heads(conn)
        ts = self._clock.now_ms()
        digest = rules.digest(heads)
        signature = rules.sign(private, rules.statement(ts, digest, len(heads)))
        made = rules.SignedAnchor(0, ts, digest, len(heads), heads, rules.key_id(public), signature)
        anchor_id: int = await self._writer.submit(_PostAnchor(made, public))
        logger.info("anchored %d conversations: %s", len(heads), digest)
        return replace(made, id=anchor_id)


@dataclass(frozen=True, slots=True)
class _PostAnchor:
    made: rules.SignedAnchor
    public: str

    async def apply(self, tx: WriteTxn) -> int:
        made = self.made
        anchor_id = await store.insert_txn(
            tx.conn, made.ts, made.digest, made.heads, made.key_id, made.signature
        )
        channel = await kept_channel_txn(tx, AUDIT_CHANNEL, AUDIT_CHANNEL_TITLE, Role.ADMIN)
        await tx.member_set(channel.id)
        said = say(
            "anchors.posted",
            conversations=made.conversations,
            digest=made.digest,
            signature=made.signature,
            key_id=made.key_id,
        )
        meta: dict[str, object] = {
            "event": "chain_anchor",
            "say": said.to_json(),
            "anchor": {
                "id": anchor_id,
                "ts": made.ts,
                "digest": made.digest,
                "conversations": made.conversations,
                "key_id": made.key_id,
                "public_key": self.public,
                "signature": made.signature,
            },
        }
        text = said.render(DEFAULT_LANGUAGE)
        await tx.append_message(channel, SYSTEM_SENDER, MessageKind.SYSTEM, text, meta=meta)
        return anchor_id


async def run_daily(
    stop: asyncio.Event,
    clock: Clock,
    leases: Leases,
    anchors: Anchors,
    retention: Retention,
    at_hhmm: str = EVIDENCE_TIME,
) -> None:
    """Every day at local HH:MM, one node purges what retention says and anchors the chains.

    Retention runs first, so the day's anchor covers the chains as they then stand.
    """
    hour, minute = parse_hhmm(at_hhmm)
    while not stop.is_set():
        due_ms = next_run_ms(clock.now_ms(), hour, minute)
        while (wait_s := (due_ms - clock.now_ms()) / 1000) > 0:
            if await stopped_within(stop, min(wait_s, MAX_NAP_S)):
                return
        await _day_jobs(local_day(due_ms), leases, anchors, retention)


async def _day_jobs(today: date, leases: Leases, anchors: Anchors, retention: Retention) -> None:
    try:
        if await leases.claim_once(f"retention:{today}"):
            await retention.run()
        if await leases.claim_once(f"anchor:{today}"):
            await anchors.anchor()
    except Exception:  # the next day tries again; a failure is logged, not fatal
        logger.exception("the evidence jobs of %s failed", today)
