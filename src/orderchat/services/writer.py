"""The group-commit writer: every write that makes a durable event passes here.

Operations queue up while a transaction is being committed; the writer then
takes all that are waiting (up to `max_batch`) and applies them in one
transaction, so one fsync serves the whole batch. Only after the commit are the
operations' futures resolved (so an ack is never sent for something that could
still be lost) and their events published, in stream order.

Rules for an operation's `apply`:
- Raise a DomainError only before its first write. Buffered writes (messages,
  events, heads, reads) are undone by the writer on such an error; direct
  writes are not.
- Never await anything but the transaction's connection.

If a batch's transaction fails for a reason that is not the operations' fault
(a constraint race with another server process, a lost connection), the batch
is retried one operation per transaction, so one bad operation cannot sink the
others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from orderchat.core.chain import chain_hash, edit_hash
from orderchat.core.edits import MessageEdit
from orderchat.core.errors import DomainError, NotFound, Unavailable
from orderchat.core.ids import ConversationId, IdMinter, MessageId, UploadId, UserId
from orderchat.core.model import Conversation, Message, MessageKind
from orderchat.core.texts import say
from orderchat.protocol.events import OP_OF, DurableEvent, MessageReceived
from orderchat.protocol.server_codec import encode_event, event_payload, wire_message
from orderchat.services.ports import Clock, Delivery, Publisher
from orderchat.storage import conversations as conv_store
from orderchat.storage import media as media_store
from orderchat.storage import messages as msg_store
from orderchat.storage import search as search_store
from orderchat.storage.conversations import MemberSet
from orderchat.storage.engine import Connection, Database
from orderchat.storage.stream import CounterPositions, SequencePositions, TxnPositions

logger = logging.getLogger(__name__)


class Op(Protocol):
    """One write. Consecutive ops of a class with `apply_many` are applied together."""

    async def apply(self, tx: WriteTxn) -> object: ...


@dataclass
class _Pending:
    op: Op
    future: asyncio.Future[Any]


@dataclass
class _Checkpoint:
    positions: int
    messages: int
    edits: int
    events: int
    deliveries: int
    links: int
    forwards: int
    convs: dict[ConversationId, Conversation]
    reads: dict[tuple[ConversationId, UserId], int]


@dataclass
class WriteTxn:
    """The state of one group-commit transaction, shared by the ops in it."""

    conn: Connection
    now_ms: int
    ids: IdMinter
    positions: TxnPositions
    member_cache: dict[ConversationId, MemberSet]
    # The members_version each cached member set was read at (see `conversations`).
    member_versions: dict[ConversationId, int] = field(default_factory=dict)
    convs: dict[ConversationId, Conversation] = field(default_factory=dict)
    message_rows: list[dict[str, Any]] = field(default_factory=list)
    edit_rows: list[dict[str, Any]] = field(default_factory=list)
    # The search index's rows, one per message row; its re-indexings, one per edit row.
    search_rows: list[dict[str, Any]] = field(default_factory=list)
    reindexings: list[tuple[Message, str]] = field(default_factory=list)
    index_search: bool = True
    event_rows: list[dict[str, Any]] = field(default_factory=list)
    reads: dict[tuple[ConversationId, UserId], int] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    dirty_members: set[ConversationId] = field(default_factory=set)
    # (upload id, message id, seq) of the files sent in this transaction.
    attachment_links: list[tuple[str, MessageId, int]] = field(default_factory=list)
    # (upload id, message id, conversation id) of the files forwarded in this transaction.
    forward_links: list[tuple[str, MessageId, ConversationId]] = field(default_factory=list)

    async def next_pos(self) -> int:
        return await self.positions.next(self.conn)

    async def conversations(self, ids: Sequence[str]) -> None:
        """Load and lock the conversations not yet in this transaction.

        A cached member set read at an older members_version than the locked
        row's is dropped: another node changed the members since. Under the
        row lock nobody can change them again before this transaction ends.
        """
        missing = [i for i in ids if i not in self.convs]
        if not missing:
            return
        locked = await conv_store.lock_conversations_txn(self.conn, missing)
        for conv_id, (conv, version) in locked.items():
            self.convs[conv_id] = conv
            if self.member_versions.get(conv_id) != version:
                self.member_cache.pop(conv_id, None)
                self.member_versions[conv_id] = version

    async def conversation(self, conv_id: str) -> Conversation:
        await self.conversations([conv_id])
        conv = self.convs.get(ConversationId(conv_id))
        if conv is None:
            raise NotFound(say("messaging.no_conversation", conv_id=conv_id))
        return conv

    async def members(self, ids: Sequence[ConversationId]) -> None:
        await self.conversations(ids)
        missing = [i for i in ids if i not in self.member_cache]
        if missing:
            found = await conv_store.member_sets(self.conn, missing)
            for conv_id in missing:
                self.member_cache[conv_id] = found.get(conv_id, MemberSet({}, {}))

    async def member_set(self, conv_id: ConversationId) -> MemberSet:
        await self.members([conv_id])
        return self.member_cache[conv_id]

    def members_changed(self, conv_id: ConversationId) -> None:
        """Forget the cached members: the next look-up reads this transaction's writes."""
        self.member_cache.pop(conv_id, None)
        self.dirty_members.add(conv_id)

    def read_mark(self, conv_id: ConversationId, user_id: UserId, stored: int) -> int:
        return max(stored, self.reads.get((conv_id, user_id), 0))

    def advance_read(self, conv_id: ConversationId, user_id: UserId, seq: int) -> None:
        key = (conv_id, user_id)
        if seq > self.reads.get(key, 0):
            self.reads[key] = seq

    async def append_message(
        self,
        conv: Conversation,
        sender: UserId,
        kind: MessageKind,
        text: str,
        *,
        ref: str | None = None,
        attachments: tuple[object, ...] = (),
        mentions: tuple[str, ...] = (),
        reply_to: int | None = None,
        meta: dict[str, object] | None = None,
        internal: bool = False,
        urgent: bool = False,
        forwarded_from: dict[str, object] | None = None,
    ) -> Message:
        """Give a message the conversation's next seq and the stream's next position."""
        message = Message(
            id=self.ids.message(self.now_ms),
            conv=conv.id,
            seq=conv.last_seq + 1,
            ref=ref,
            sender=sender,
            kind=kind,
            text=text,
            attachments=attachments,
            mentions=mentions,
            reply_to=reply_to,
            ts=self.now_ms,
            recalled=False,
            meta=meta,
            internal=internal,
            urgent=urgent,
            forwarded_from=forwarded_from,
        )
        hash_ = chain_hash(conv.last_hash, message)
        self._chain(conv, message.seq, hash_)
        pos = await self.next_pos()
        self.message_rows.append(msg_store.message_row(message, hash_))
        if self.index_search:
            postgres = self.conn.dialect.name == "postgresql"
            self.search_rows.append(search_store.doc_row(message, pos, postgres=postgres))
        self.event_rows.append(
            msg_store.event_row(pos, conv.id, "message", self.now_ms, message_id=message.id)
        )
        self.advance_read(conv.id, sender, message.seq)
        members = self.member_cache[conv.id]
        recipients = members.staff if internal else frozenset(members.roles)
        event = MessageReceived(wire_message(message))
        self.deliveries.append(Delivery(pos, recipients, encode_event(event, pos)))
        return message

    def _chain(self, conv: Conversation, last_seq: int, hash_: str) -> None:
        self.convs[conv.id] = Conversation(
            id=conv.id,
            kind=conv.kind,
            title=conv.title,
            created_by=conv.created_by,
            created_at_ms=conv.created_at_ms,
            last_seq=last_seq,
            last_activity_ms=self.now_ms,
            last_hash=hash_,
        )

    def append_edit(self, conv: Conversation, edit: MessageEdit, message: Message) -> None:
        """Store an edit as the conversation's next link of the hash chain.

        Its event is the caller's to append (it knows the audience).
        """
        hash_ = edit_hash(conv.last_hash, edit)
        self._chain(conv, conv.last_seq, hash_)
        self.edit_rows.append(msg_store.edit_row(edit, hash_))
        if self.index_search:
            self.reindexings.append((message, edit.text))

    def attach(self, upload_id: UploadId, message: Message) -> None:
        self.attachment_links.append((upload_id, message.id, message.seq))

    def forward_files(self, attachments: tuple[object, ...], message: Message) -> None:
        """Let whoever sees `message` open these files, sent first elsewhere."""
        for item in attachments:
            upload_id = item.get("id") if isinstance(item, dict) else None
            if isinstance(upload_id, str):
                self.forward_links.append((upload_id, message.id, message.conv))

    def attached_here(self, upload_id: UploadId) -> bool:
        """Whether an earlier send of this transaction already carries the upload."""
        return any(link[0] == upload_id for link in self.attachment_links)

    async def append_event(
        self,
        conv_id: ConversationId,
        event: DurableEvent,
        recipients: frozenset[UserId],
        pos: int | None = None,
        about: MessageId | None = None,
        customers_see: DurableEvent | None = None,
    ) -> int:
        """Store and deliver a non-message durable event (read, recalled, member …).

        `about` names the message an event concerns (a recall), so that resume
        shows the event only to those who may see that message. `customers_see`
        is what the customers among the recipients get instead of `event` (their
        projection of it); resume applies the same projection.
        """
        pos = await self.next_pos() if pos is None else pos
        kind = OP_OF[type(event)].value
        self.event_rows.append(
            msg_store.event_row(
                pos, conv_id, kind, self.now_ms, message_id=about, payload=event_payload(event)
            )
        )
        if customers_see is None:
            self.deliveries.append(Delivery(pos, recipients, encode_event(event, pos)))
            return pos
        customers = recipients & self.member_cache[conv_id].customers
        self.deliveries.append(Delivery(pos, recipients - customers, encode_event(event, pos)))
        if customers:
            self.deliveries.append(Delivery(pos, customers, encode_event(customers_see, pos)))
        return pos

    def checkpoint(self) -> _Checkpoint:
        return _Checkpoint(
            self.positions.mark(),
            len(self.message_rows),
            len(self.edit_rows),
            len(self.event_rows),
            len(self.deliveries),
            len(self.attachment_links),
            len(self.forward_links),
            dict(self.convs),
            dict(self.reads),
        )

    def rollback_to(self, mark: _Checkpoint) -> None:
        self.positions.rollback_to(mark.positions)
        del self.message_rows[mark.messages :]
        del self.search_rows[mark.messages :]
        del self.edit_rows[mark.edits :]
        del self.reindexings[mark.edits :]
        del self.event_rows[mark.events :]
        del self.deliveries[mark.deliveries :]
        del self.attachment_links[mark.links :]
        del self.forward_links[mark.forwards :]
        self.convs = mark.convs
        self.reads = mark.reads

    async def flush(self, touched: set[ConversationId]) -> None:
        await msg_store.insert_messages_txn(self.conn, self.message_rows)
        await search_store.insert_docs_txn(self.conn, self.search_rows)
        if self.edit_rows:
            await msg_store.insert_edits_txn(self.conn, self.edit_rows)
        for message, edited in self.reindexings:
            await search_store.reindex_txn(self.conn, message, edited)
        await msg_store.insert_events_txn(self.conn, self.event_rows)
        await media_store.attach_txn(self.conn, self.attachment_links)
        if self.forward_links:
            await media_store.insert_forwarded_txn(self.conn, self.forward_links)
        await conv_store.set_heads_txn(self.conn, [self.convs[c] for c in touched])
        await conv_store.advance_reads_txn(
            self.conn, [(c, u, s) for (c, u), s in self.reads.items()]
        )
        if self.dirty_members:
            await conv_store.bump_members_version_txn(self.conn, sorted(self.dirty_members))
        await self.positions.finish(self.conn)


# Under load, a group commit first waits a moment for more operations. Much of
# a transaction's cost is the same whatever its size (BEGIN, the look-ups, the
# commit's round trip to a thread, and above all one write per connection for
# what it publishes), so fewer, larger transactions leave the loop more time;
# at 4,000 msg/s this cut the tail latency. A quiet server, whose transactions
# carry a send or two, never waits.
LINGER_S = 0.003
# A transaction that lost a deadlock or serialization race is run again this often.
CONFLICT_RETRIES = 3
CONFLICT_BACKOFF_S = 0.01
LINGER_AFTER_BATCH = 8


class GroupCommitWriter:
    def __init__(
        self,
        db: Database,
        publisher: Publisher,
        clock: Clock,
        ids: IdMinter,
        max_batch: int = 1000,
        *,
        index_search: bool = True,
    ) -> None:
        self._db = db
        self._publisher = publisher
        self._clock = clock
        self.ids = ids
        self._max_batch = max_batch
        self._index_search = index_search
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        # Members per conversation, kept across batches, with the version of
        # the conversation row they were read at: a transaction that locks the
        # row finds out whether another node changed them (WriteTxn.conversations).
        self._member_cache: dict[ConversationId, MemberSet] = {}
        self._member_versions: dict[ConversationId, int] = {}
        self.batches = 0
        self.ops = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group-commit-writer")

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    def submit_nowait(self, op: Op) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(op, future))
        return future

    async def submit(self, op: Op) -> Any:
        return await self.submit_nowait(op)

    async def _run(self) -> None:
        last_batch = 0
        while True:
            batch = [await self._queue.get()]
            if last_batch >= LINGER_AFTER_BATCH:
                await asyncio.sleep(LINGER_S)
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            except DomainError as exc:  # the database is unavailable: the client retries
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
            except Exception:  # a bug: fail the batch, keep serving
                logger.exception("group commit failed for %d ops", len(batch))
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(RuntimeError("write failed"))
            finally:
                last_batch = len(batch)
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            outcomes, deliveries = await self._transaction_retrying(batch)
        except Exception:
            if len(batch) == 1:
                raise
            logger.warning("batch of %d failed; retrying one by one", len(batch), exc_info=True)
            for pending in batch:
                await self._commit([pending])
            return
        self.batches += 1
        self.ops += len(batch)
        for pending, outcome in zip(batch, outcomes, strict=True):
            if pending.future.done():  # the submitter went away
                continue
            if isinstance(outcome, DomainError):
                pending.future.set_exception(outcome)
            else:
                pending.future.set_result(outcome)
        if deliveries:
            self._publisher.publish(deliveries)

    async def _transaction_retrying(
        self, batch: list[_Pending]
    ) -> tuple[list[object], list[Delivery]]:
        """The transaction, run again when it lost a race with another node's.

        A deadlock or serialization failure rolled everything back; the same
        operations, applied again, read the other node's committed writes.
        """
        for attempt in range(CONFLICT_RETRIES):
            try:
                return await self._transaction(batch)
            except Unavailable as exc:
                if not exc.conflict or attempt == CONFLICT_RETRIES - 1:
                    raise
                logger.info("write conflict with another node; trying again")
                self._member_cache.clear()
                await asyncio.sleep(CONFLICT_BACKOFF_S * (attempt + 1))
        raise AssertionError("unreachable")

    async def _transaction(self, batch: list[_Pending]) -> tuple[list[object], list[Delivery]]:
        async with self._db.write("group_commit") as conn:
            positions = _positions(self._db, len(batch))
            await positions.begin(conn)
            tx = WriteTxn(
                conn,
                self._clock.now_ms(),
                self.ids,
                positions,
                self._member_cache,
                self._member_versions,
                index_search=self._index_search,
            )
            try:
                outcomes = await _apply_all(tx, [p.op for p in batch])
                touched = {ConversationId(r["conv_id"]) for r in (*tx.message_rows, *tx.edit_rows)}
                await tx.flush(touched)
            finally:
                for conv_id in tx.dirty_members:
                    self._member_cache.pop(conv_id, None)
        return outcomes, tx.deliveries


def _positions(db: Database, batch_size: int) -> TxnPositions:
    if db.shared:
        return SequencePositions(reserve=2 * batch_size + 2)
    return CounterPositions()


async def _apply_all(tx: WriteTxn, ops: list[Op]) -> list[object]:
    outcomes: list[object] = []
    i = 0
    while i < len(ops):
        apply_many = getattr(type(ops[i]), "apply_many", None)
        if apply_many is None:
            mark = tx.checkpoint()
            try:
                outcomes.append(await ops[i].apply(tx))
            except DomainError as exc:
                tx.rollback_to(mark)
                outcomes.append(exc)
            i += 1
            continue
        j = i
        while j < len(ops) and type(ops[j]) is type(ops[i]):
            j += 1
        outcomes.extend(await apply_many(tx, ops[i:j]))
        i = j
    return outcomes
