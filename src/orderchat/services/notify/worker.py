"""Draining the outbox: each due delivery is sent, put off, retried, cancelled or given up.

Every node runs a worker; a delivery is claimed before it is tried (see
storage/notify.py), so two nodes never try the same one at once, and a claim
left by a dead node lapses after `CLAIM_MS`: at-least-once, with the delivery
id to deduplicate. Before sending, a personal delivery is dropped if its
message was read (on any device) or recalled meanwhile, so nobody is buzzed
for what they have seen; quiet hours put it off (urgent ones excepted).
A delivery that keeps failing is tried with growing pauses for a day, then
kept as `dead` with the last reason.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orderchat.core.ids import ConversationId, MessageId, UserId
from orderchat.core.model import UserKind
from orderchat.core.notify import (
    NO_PREFERENCES,
    Channel,
    Occasion,
    Policy,
    Preferences,
    merge_key,
    next_try_ms,
    occasions,
    when_to_send,
)
from orderchat.services.notify.channels import Sent, Verdict
from orderchat.services.notify.mails import MailBuilder
from orderchat.services.notify.planner import nap, said_of
from orderchat.services.notify.wiring import Outlets
from orderchat.services.ports import Clock
from orderchat.storage import notify as store
from orderchat.storage import notify_people as people
from orderchat.storage import notify_reads as reads
from orderchat.storage.engine import Database
from orderchat.storage.notify import Delivery

logger = logging.getLogger(__name__)

CLAIM_MS = 120_000
BATCH = 50
IDLE_WAIT_S = 1.0
# People (and endpoints) sent to at once; each one's own deliveries go in order.
SEND_LANES = 8
# A mail lists at most this many of a merged delivery's earlier messages, and counts the rest.
EARLIER_LISTED = 10


@dataclass(frozen=True, slots=True)
class Facts:
    """What the worker read about one batch, in one snapshot."""

    read: dict[tuple[str, str], int]
    recalled: set[str]
    messages: Mapping[MessageId, reads.StreamMessage]
    persons: dict[UserId, store.Person]
    prefs: dict[UserId, Preferences]
    orders: Mapping[ConversationId, dict[str, str]]
    addresses: dict[UserId, str]
    # A merged mail delivery's earlier messages (by delivery id), to list them too.
    earlier: Mapping[str, Sequence[reads.StreamMessage]] = field(default_factory=dict)


# A customer hears of each step of their order in a mail of its own.
ONE_MAIL_EACH = (Occasion.ORDER_STATUS.value, Occasion.CONFIRMATION.value)


def _gathered(delivery: Delivery) -> bool:
    """First-word mails about messages go out gathered, one mail per person."""
    return (
        delivery.channel is Channel.EMAIL
        and delivery.step == 0
        and delivery.occasion not in ONE_MAIL_EACH
    )


async def _earlier_messages(
    conn: Any, deliveries: Sequence[Delivery]
) -> dict[str, list[reads.StreamMessage]]:
    """For each merged mail delivery, the messages before its latest that it stands for.

    The conversation's messages in its range are read again and kept only where
    the person's reason is the delivery's (core/notify.py decides, as when
    planning): a mention merged in a busy channel lists the mentions, not the
    chatter between them, and never a staff-only note to a customer.
    """
    merged = [
        d
        for d in deliveries
        if d.channel is Channel.EMAIL and d.merged > 1 and d.first_seq is not None and d.recipient
    ]
    if not merged:
        return {}
    members = await reads.current_members(conn, {d.conv for d in merged})
    ranges = [(d.conv, d.first_seq or d.seq, d.seq - 1) for d in merged]
    listed = await reads.messages_in_ranges(conn, ranges, EARLIER_LISTED)
    found: dict[str, list[reads.StreamMessage]] = {}
    for delivery, between in zip(merged, listed, strict=True):
        member = next(
            (m for m in members.get(delivery.conv, []) if m.id == delivery.recipient), None
        )
        if member is None:
            continue
        found[delivery.id] = [
            m
            for m in between
            if occasions(said_of(m), [member]).get(member.id) == delivery.occasion
        ]
    return found


class Worker:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        policy: Policy,
        outlets: Outlets,
        mails: MailBuilder,
        rng: random.Random,
    ) -> None:
        self._db = db
        self._clock = clock
        self._policy = policy
        self._outlets = outlets
        self._mails = mails
        self._rng = rng
        self.wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                worked = await self.step()
            except Exception:
                logger.warning("delivering notifications failed; trying again", exc_info=True)
                worked = False
            if not worked:
                await nap(self.wake, IDLE_WAIT_S)

    async def step(self) -> bool:
        """Claim and handle one batch of due deliveries; True if it was full.

        After a batch that was not full, every delivery due then was handled: the
        worker waits for the planner's word (or its tick) rather than claiming
        again at once, which under a steady flow of sends claims a few at a time,
        in write transactions that the sends' commits queue behind.
        """
        now = self._clock.now_ms()
        async with self._db.write("notify-claim") as conn:
            batch = await store.claim_due_txn(conn, now, CLAIM_MS, BATCH)
        if not batch:
            return False
        full = len(batch) >= BATCH
        mails = [d for d in batch if _gathered(d)]
        batch = [d for d in batch if d not in mails] + await self._gather_mail(mails, now)
        facts = await self._facts(batch)
        outcomes: list[tuple[Delivery, Sent | int]] = []
        ready: list[Delivery] = []
        for delivery in batch:
            held = self._held_back(delivery, facts, now)
            if held is None:
                ready.append(delivery)
            else:
                outcomes.append((delivery, held))
        outcomes.extend(await self._send_all(ready, facts, now))
        await self._record(outcomes, now)
        return full

    async def _gather_mail(self, due: Sequence[Delivery], now: int) -> list[Delivery]:
        """A person's first-word mails due soon join the one going now: one mail, not five."""
        upto = now + self._policy.email_batch_s * 1000
        gathered = list(due)
        recipients = sorted({d.recipient for d in due if d.recipient})
        if not recipients:
            return gathered
        # One statement for the batch's people, not a transaction for each: each
        # cost the writer's lock and a sync, and sends waited behind every one.
        async with self._db.write("notify-gather") as conn:
            more = await store.claim_more_mail_txn(
                conn, recipients, upto, now, CLAIM_MS, ONE_MAIL_EACH
            )
        known = {d.id for d in gathered}
        gathered.extend(d for d in more if d.id not in known)
        return gathered

    async def _facts(self, batch: Sequence[Delivery]) -> Facts:
        personal = [d for d in batch if d.recipient]
        recipients = {d.recipient for d in personal if d.recipient}
        async with self._db.read() as conn:
            read, recalled = await store.read_and_recalled(
                conn, {(d.conv, d.recipient or "") for d in personal}, {d.message_id for d in batch}
            )
            messages = await reads.stored_messages(conn, {d.message_id for d in personal})
            senders = {m.sender for m in messages.values()}
            persons = await store.persons(conn, recipients | senders)
            prefs = await people.preferences(conn, recipients)
            orders = await store.orders_of_conversations(conn, {d.conv for d in personal})
            addresses = await people.email_addresses(conn, recipients)
            earlier = await _earlier_messages(conn, personal)
        return Facts(read, recalled, messages, persons, prefs, orders, addresses, earlier)

    def _held_back(self, delivery: Delivery, facts: Facts, now: int) -> Sent | int | None:
        """A cancellation (read, recalled), a later time (quiet hours), or None: send it."""
        reason = None
        if delivery.message_id in facts.recalled:
            reason = "recalled before it went out"
        elif delivery.recipient is not None:
            reason = self._personal_reason(delivery, facts)
        if reason is not None:
            return Sent(Verdict.CANCEL, reason)
        if delivery.recipient is None:
            return None
        prefs = facts.prefs.get(delivery.recipient, NO_PREFERENCES)
        at = when_to_send(delivery.first_due_ms, now, Occasion(delivery.occasion), prefs)
        return at if at > now else None

    def _personal_reason(self, delivery: Delivery, facts: Facts) -> str | None:
        recipient = delivery.recipient or UserId("")
        message = facts.messages.get(delivery.message_id)
        person = facts.persons.get(recipient)
        if message is None or person is None:
            return "the message or the person is gone"
        if facts.read.get((delivery.conv, recipient), delivery.seq) >= delivery.seq:
            return "read before it went out"
        if person.kind is UserKind.CUSTOMER and message.internal:
            return "staff only"  # never reached: the planner does not plan it
        return None

    async def _send_all(
        self, ready: Sequence[Delivery], facts: Facts, now: int
    ) -> list[tuple[Delivery, Sent | int]]:
        """Each person's (and endpoint's) deliveries in order; different ones side by side.

        A send mostly waits for the other side (a push service, the mail server, the
        shop's endpoint) to answer; one after the other, a batch took the sum of those
        waits. Within a lane the order stays, so a person's lock screen ends on their
        latest message.
        """
        lanes: dict[tuple[str, str], list[list[Delivery]]] = {}
        mails: dict[UserId, list[Delivery]] = {}
        for delivery in ready:
            if _gathered(delivery) and delivery.recipient is not None:
                mails.setdefault(delivery.recipient, []).append(delivery)
                continue
            lane = (delivery.channel.value, delivery.recipient or delivery.endpoint_id or "")
            lanes.setdefault(lane, []).append([delivery])
        for recipient, theirs in mails.items():
            lanes.setdefault((Channel.EMAIL.value, recipient), []).append(theirs)
        gate = asyncio.Semaphore(SEND_LANES)

        async def run_lane(groups: list[list[Delivery]]) -> list[tuple[Delivery, Sent | int]]:
            done: list[tuple[Delivery, Sent | int]] = []
            async with gate:
                for group in groups:
                    sent = await self._send_group(group, facts, now)
                    done.extend((delivery, sent) for delivery in group)
            return done

        async with asyncio.TaskGroup() as group:
            running = [group.create_task(run_lane(groups)) for groups in lanes.values()]
        return [outcome for task in running for outcome in task.result()]

    async def _send_group(self, group: Sequence[Delivery], facts: Facts, now: int) -> Sent:
        """One push or webhook, or one mail carrying the group's deliveries."""
        first = group[0]
        if first.channel is Channel.EMAIL and first.recipient is not None:
            return await self._send_mail(first.recipient, group, facts, now)
        return await self._send_one(first, facts, now)

    async def _send_one(self, delivery: Delivery, facts: Facts, now: int) -> Sent:
        if delivery.channel is Channel.WEBHOOK:
            return await self._outlets.webhooks.send(delivery, now)
        recipient = delivery.recipient or UserId("")
        message = facts.messages[delivery.message_id]
        told = self._mails.told(delivery, message, facts, recipient)
        urgent = delivery.occasion == Occasion.URGENT.value
        return await self._outlets.push.send(
            recipient, told, urgent=urgent, ts_ms=message.ts, now_ms=now
        )

    async def _send_mail(
        self, recipient: UserId, deliveries: Sequence[Delivery], facts: Facts, now: int
    ) -> Sent:
        if self._outlets.mail is None:
            return Sent(Verdict.CANCEL, "e-mail is not set up")
        address = facts.addresses.get(recipient)
        if not address:
            return Sent(Verdict.CANCEL, "no e-mail address")
        message = await self._mails.compose(recipient, address, deliveries, facts, now)
        return await self._outlets.mail.send(message)

    async def _record(self, outcomes: Sequence[tuple[Delivery, Sent | int]], now: int) -> None:
        """Every outcome of the batch in one transaction; the final ones in one statement."""
        if not outcomes:
            return
        finished: list[store.Finished] = []
        async with self._db.write("notify-record") as conn:
            for delivery, outcome in outcomes:
                if isinstance(outcome, int):
                    key = merge_key(
                        delivery.recipient or "",
                        delivery.conv,
                        delivery.channel,
                        delivery.occasion,
                        delivery.step,
                    )
                    await store.postpone_txn(conn, delivery.id, outcome, key)
                    continue
                sent = self._settled(delivery, outcome, now)
                if isinstance(sent, int):
                    await store.retry_txn(
                        conn, delivery.id, delivery.attempts + 1, sent, outcome.outcome
                    )
                else:
                    tried = delivery.attempts + (0 if sent.verdict is Verdict.CANCEL else 1)
                    finished.append(
                        store.Finished(delivery.id, sent.verdict.value, sent.outcome, tried, now)
                    )
            await store.finish_many_txn(conn, finished)

    def _settled(self, delivery: Delivery, sent: Sent, now: int) -> Sent | int:
        """A retry's time, or the final word: a day of failures is given up."""
        if sent.verdict is not Verdict.RETRY:
            return sent
        attempts = delivery.attempts + 1
        at = next_try_ms(
            attempts, delivery.first_due_ms, now, self._rng.random(), self._policy.retry
        )
        if at is None:
            logger.warning("notification %s given up: %s", delivery.dedupe, sent.outcome)
            return Sent(Verdict.GIVE_UP, f"gave up: {sent.outcome}")
        if sent.retry_after_s is not None:
            at = max(at, now + int(sent.retry_after_s * 1000))
        return at
