"""From the event stream to the outbox: which deliveries each new message calls for.

The outbox is filled from the stream, not by the transaction that writes a
message, and is exactly as durable: the event is committed with the message,
and the planner's cursor moves past it only in the transaction that inserts
its deliveries. A node killed after a commit leaves the event beyond the
cursor; the next planner plans it then. An event planned twice (a crash
between insert and cursor, a lease changing hands) inserts nothing new: every
delivery has a `dedupe` key made of the event's position, the recipient or
endpoint, the channel and the ladder step. Sending a message therefore costs
nothing extra in its own transaction, which keeps the group commit's rate.

One node plans at a time (the `notify-planner` lease). With several writers
it reads only up to the persisted horizon (storage/stream.py), so no event
is skipped because a lower position committed late.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from orderchat.core.ids import IdMinter, UserId
from orderchat.core.model import MessageKind
from orderchat.core.notify import (
    Channel,
    Occasion,
    Planned,
    Policy,
    Said,
    Topic,
    merge_key,
    occasions,
    plan,
    topics,
)
from orderchat.services.leases import Leases
from orderchat.services.notify.events import Links, webhook_event
from orderchat.services.ports import Clock
from orderchat.storage import notify as store
from orderchat.storage import notify_people as people
from orderchat.storage import notify_reads as reads
from orderchat.storage.engine import Database

logger = logging.getLogger(__name__)


async def nap(wake: asyncio.Event, seconds: float) -> None:
    """Wait until woken or `seconds` pass; the event is cleared for the next nap."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), seconds)
    wake.clear()


PLANNER_LEASE = "notify-planner"
BATCH = 500
IDLE_WAIT_S = 0.25
# With nothing planned the cursor is kept in memory and stored this often:
# planning an event again after a restart inserts nothing twice.
CURSOR_SAVE_EVERY_S = 5.0


class Planner:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        ids: IdMinter,
        policy: Policy,
        leases: Leases,
        links: Links,
        *,
        mail_on: bool,
        planned: asyncio.Event,
    ) -> None:
        self._db = db
        self._clock = clock
        self._ids = ids
        self.policy = policy
        self._leases = leases
        self._links = links
        # Without an SMTP server nobody is reachable by mail: nothing is planned for it.
        self._channels = frozenset(Channel) if mail_on else frozenset(Channel) - {Channel.EMAIL}
        self._cursor: int | None = None
        self._saved = 0
        self._saved_at = 0.0
        # Set when deliveries were added: this node's worker looks at once.
        self._planned = planned
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Something was committed here: look now rather than at the next tick."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                busy = await self._leases.hold(PLANNER_LEASE) and await self.step()
            except Exception:
                logger.warning("planning notifications failed; trying again", exc_info=True)
                self._cursor = None  # read it again: another node may have moved it
                busy = False
            if not busy:
                await nap(self._wake, IDLE_WAIT_S)

    async def step(self) -> bool:
        """Plan one batch; True if it was full, so that there may be more right away.

        A batch that was not full caught up with the stream: the next one waits
        for the next tick. Looking again at once, under a steady flow of sends,
        plans a handful of events each time, each in a transaction of its own
        that the sends' commits queue behind.
        """
        upto = await self._db.horizon()
        async with self._db.read() as conn:
            if self._cursor is None:
                self._cursor = self._saved = await store.cursor(conn)
            after = self._cursor
            last, said = await reads.new_events(conn, after, upto, BATCH)
            if last == after:
                return False
            rows = await self._rows(conn, said) if said else []
        rows, merges = _merged(rows)
        if rows or self._clock.monotonic_s() - self._saved_at > CURSOR_SAVE_EVERY_S:
            async with self._db.write("notify-plan") as conn:
                added = await store.insert_deliveries_txn(conn, rows, merges)
                await store.set_cursor_txn(conn, last)
            self._saved, self._saved_at = last, self._clock.monotonic_s()
            if added:
                self._planned.set()
        self._cursor = last
        # Positions are distinct and rising: a full batch spans at least BATCH of them.
        return last - after >= BATCH

    async def save_cursor(self) -> None:
        """Store the cursor kept in memory (a node stopping)."""
        if self._cursor is not None and self._cursor > self._saved:
            async with self._db.write("notify-cursor") as conn:
                await store.set_cursor_txn(conn, self._cursor)
            self._saved = self._cursor

    async def _rows(self, conn: Any, said: Sequence[reads.StreamEvent]) -> list[dict[str, Any]]:
        # Only who can be told at all is weighed: `plan` gives nobody else anything.
        # A message is read whole only if someone in its conversation can be told,
        # or an endpoint may hear of it.
        can_tell = await reads.reachable_members(conn, {e.conv for e in said}, self._channels)
        hooks = await people.endpoints(conn, only_enabled=True)
        wanted = said if hooks else [e for e in said if e.conv in can_tell]
        found = await reads.stream_messages(conn, wanted)
        concerned = {
            m.pos: occasions(said_of(m), [r.member for r in can_tell[m.conv]])
            for m in found
            if m.conv in can_tell
        }
        reachable = {r.member.id: r.channels for each in can_tell.values() for r in each}
        people_ids = {user for per in concerned.values() for user in per}
        prefs = await people.preferences(conn, people_ids)
        heard = {m.pos: _topics_for(m) for m in found} if hooks else {}
        names = await people.display_names(conn, {m.sender for m in found if heard.get(m.pos)})
        rows: list[dict[str, Any]] = []
        now = self._clock.now_ms()
        told: set[tuple[object, UserId]] = set()
        for message in found:
            once = _told_once(message, concerned.get(message.pos, {}), told)
            planned = plan(once, reachable, prefs, self.policy, message.ts)
            rows.extend(self._personal_row(message, p, now) for p in planned)
            for topic in heard.get(message.pos, []):
                event = webhook_event(message, topic, names.get(message.sender), self._links)
                for hook in hooks:
                    if topic.value in hook.topics:
                        rows.append(self._webhook_row(message, hook.id, topic, event, now))
        return rows

    def _personal_row(self, message: reads.StreamMessage, p: Planned, now: int) -> dict[str, Any]:
        return self._row(
            message,
            dedupe=f"{message.pos}:{p.recipient}:{p.channel.value}:{p.step}",
            channel=p.channel,
            occasion=p.occasion.value,
            recipient=p.recipient,
            due_ms=p.due_ms,
            step=p.step,
            now=now,
        )

    def _webhook_row(
        self,
        message: reads.StreamMessage,
        endpoint_id: str,
        topic: Topic,
        event: dict[str, Any],
        now: int,
    ) -> dict[str, Any]:
        escalate = topic is Topic.MESSAGE_URGENT
        due = message.ts + (self.policy.ladder.escalate_after_s * 1000 if escalate else 0)
        row = self._row(
            message,
            dedupe=f"{message.pos}:{endpoint_id}:{topic.value}",
            channel=Channel.WEBHOOK,
            occasion=topic.value,
            recipient=None,
            due_ms=due,
            step=0,
            now=now,
        )
        row["endpoint_id"] = endpoint_id
        row["payload"] = orjson.dumps({**event, "id": row["dedupe"]}).decode()
        return row

    def _row(
        self,
        message: reads.StreamMessage,
        *,
        dedupe: str,
        channel: Channel,
        occasion: str,
        recipient: UserId | None,
        due_ms: int,
        step: int,
        now: int,
    ) -> dict[str, Any]:
        return {
            "id": self._ids.new("nt"),
            "dedupe": dedupe,
            "channel": channel.value,
            "occasion": occasion,
            "recipient": recipient,
            "endpoint_id": None,
            "conv_id": message.conv,
            "seq": message.seq,
            "message_id": message.id,
            "event_pos": message.pos,
            "step": step,
            "payload": None,
            "state": "pending",
            "first_due_ms": due_ms,
            "next_try_ms": due_ms,
            "attempts": 0,
            "claimed_until_ms": 0,
            "outcome": None,
            "created_at_ms": now,
            "done_at_ms": None,
            "merge_key": merge_key(recipient or "", message.conv, channel, occasion, step),
            "merged": 1,
            "first_seq": None,
        }


def _merged(rows: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[store.Merge]]:
    """A batch's chat for the same waiting delivery joined into one row, and the merges
    into waiting rows that make for it (storage/notify.py: the merge runs first).

    Under a flood of messages to someone away, the outbox grows by a row per
    person and conversation, not per message, and the worker sends that many.
    """
    kept: list[dict[str, Any]] = []
    first: dict[str, dict[str, Any]] = {}
    first_pos: dict[str, int] = {}
    for row in rows:
        key = row["merge_key"]
        if key is None:
            kept.append(row)
            continue
        held = first.get(key)
        if held is None:
            first[key] = row
            first_pos[key] = row["event_pos"]
            row["first_seq"] = row["seq"]
            kept.append(row)
            continue
        held.update(
            seq=row["seq"],
            message_id=row["message_id"],
            event_pos=row["event_pos"],
            merged=held["merged"] + 1,
        )
    merges = [
        store.Merge(key, first_pos[key], r["seq"], r["message_id"], r["event_pos"], r["merged"])
        for key, r in first.items()
    ]
    return kept, merges


# The server's own notes that webhooks hear of: the day's anchor, a new consult.
SYSTEM_TOPICS = frozenset({"chain_anchor", "consult_opened"})


def said_of(message: reads.StreamMessage) -> Said:
    meta: Mapping[str, Any] = message.meta or {}
    # An order event's name; of the server's own notes only the anchor's, which webhooks carry.
    event = meta.get("event") if message.kind is MessageKind.ORDER_EVENT else None
    if message.kind is MessageKind.SYSTEM and meta.get("event") in SYSTEM_TOPICS:
        event = meta.get("event")
    return Said(
        conv_kind=message.conv_kind,
        sender=message.sender,
        kind=message.kind,
        mentions=message.mentions,
        internal=message.internal,
        urgent=message.urgent,
        event=event if isinstance(event, str) else None,
    )


def _told_once(
    message: reads.StreamMessage,
    concerned: Mapping[UserId, Occasion],
    told: set[tuple[object, UserId]],
) -> dict[UserId, Occasion]:
    """An order event is posted in the order's thread and in each role's channel, in one
    transaction: a person in both hears of it once, from the first (the order's)."""
    meta = message.meta or {}
    if "event" not in meta or "order" not in meta:
        return dict(concerned)
    event = (meta["order"], meta["event"], orjson.dumps(meta.get("details")))
    fresh = {user: why for user, why in concerned.items() if (event, user) not in told}
    told.update((event, user) for user in fresh)
    return fresh


def _topics_for(message: reads.StreamMessage) -> list[Topic]:
    """The topics of a message; an order event is heard once, in its order's conversation."""
    if message.meta and "order_conv" in message.meta:
        return []  # the copy posted in a role's channel
    return topics(said_of(message))
