"""Sending, reading and recalling messages: the writes that happen most.

Sends are applied as a group (`SendMessage.apply_many`): one look-up of prior
idempotency keys, one load of the conversations and members the batch touches,
then every message in memory, written by the writer's flush in a few
multi-row statements.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from orderchat.core.audit import AuditAction, AuditEntry
from orderchat.core.edits import MessageEdit, check_edit
from orderchat.core.errors import (
    BadRequest,
    Conflict,
    CursorExpired,
    DomainError,
    Forbidden,
    NotFound,
    RateLimited,
)
from orderchat.core.forwarding import check_forward
from orderchat.core.ids import ConnectionId, ConversationId, MessageId, UploadId, UserId
from orderchat.core.media import check_attachment_kind
from orderchat.core.mentions import resolve_mentions
from orderchat.core.model import (
    Conversation,
    ConversationKind,
    Message,
    MessageKind,
    User,
    UserKind,
)
from orderchat.core.policy import check_recall
from orderchat.core.ratelimit import Rate, RateLimiter
from orderchat.core.texts import say
from orderchat.protocol.events import (
    DurableEvent,
    MessageEdited,
    MessageRecalled,
    MessageReceived,
    ReadMarked,
    UserTyping,
)
from orderchat.protocol.frames import EditMessage, ForwardOf, MarkRead, PostMessage, RecallMessage
from orderchat.protocol.server_codec import (
    customer_projection,
    decode_event,
    encode_event,
    encode_server_frame,
    wire_message,
)
from orderchat.services.chat.commands import CommandCall, Commands, Invocation, QueryCall
from orderchat.services.media.views import upload_descriptor
from orderchat.services.ports import Clock, Delivery, Publisher
from orderchat.services.writer import GroupCommitWriter, WriteTxn
from orderchat.storage import accounts as account_store
from orderchat.storage import audit as audit_store
from orderchat.storage import conversations as conv_store
from orderchat.storage import media as media_store
from orderchat.storage import messages as msg_store
from orderchat.storage.engine import Database
from orderchat.storage.media import UploadRow

if TYPE_CHECKING:
    from orderchat.services.consults.hooks import ConsultHooks


@dataclass(frozen=True, slots=True)
class Ack:
    conv: ConversationId
    seq: int
    id: MessageId
    ts: int


@dataclass(frozen=True, slots=True)
class SendMessage:
    user: User
    frame: PostMessage
    commands: Commands
    consults: ConsultHooks | None = None

    async def apply(self, tx: WriteTxn) -> Ack | DomainError:
        return (await SendMessage.apply_many(tx, [self]))[0]

    @staticmethod
    async def apply_many(tx: WriteTxn, ops: Sequence[SendMessage]) -> list[Ack | DomainError]:
        keys = [(op.user.id, op.frame.ref) for op in ops]
        prior = await msg_store.find_prior_acks(tx.conn, keys)
        acked: dict[tuple[UserId, str], Ack] = {
            key: Ack(p.conv, p.seq, p.id, p.ts) for key, p in prior.items()
        }
        conv_ids = sorted(
            {op.frame.conv for op, key in zip(ops, keys, strict=True) if key not in acked}
        )
        await tx.conversations(conv_ids)
        await tx.members([c for c in map(ConversationId, conv_ids) if c in tx.convs])
        upload_ids = [
            i
            for op, key in zip(ops, keys, strict=True)
            if key not in acked
            for i in op.frame.attachments
        ]
        uploads = await media_store.get_uploads(tx.conn, upload_ids)
        sources = await _forward_sources(
            tx,
            [
                op.frame.forward
                for op, key in zip(ops, keys, strict=True)
                if key not in acked and op.frame.forward is not None
            ],
        )
        outcomes: list[Ack | DomainError] = []
        invoked: list[tuple[SendMessage, Ack, Invocation]] = []
        for op, key in zip(ops, keys, strict=True):
            if key in acked:  # G2: the same ref again gets the first answer
                outcomes.append(acked[key])
                continue
            try:
                ack = await op._append(tx, uploads, sources)
            except DomainError as exc:
                outcomes.append(exc)
                continue
            acked[key] = ack
            outcomes.append(ack)
            invocation = op.commands.find(op.user, op.frame.text)
            if invocation is not None:
                invoked.append((op, ack, invocation))
        # Handlers may query the database; they run once the whole batch is appended in memory.
        for op, ack, invocation in invoked:
            await invocation.run(tx, CommandCall(op.user, tx.convs[ack.conv], ack.seq))
        return outcomes

    async def _append(
        self, tx: WriteTxn, uploads: dict[str, UploadRow], sources: dict[ForwardOf, _Source]
    ) -> Ack:
        frame = self.frame
        conv = tx.convs.get(ConversationId(frame.conv))
        if conv is None:
            raise _no_conversation(frame.conv)
        members = tx.member_cache[conv.id]
        if self.user.id not in members.roles:
            raise Forbidden(say("conversations.you_are_not_member_conversation"))
        if frame.internal and self.user.id in members.customers:
            raise Forbidden(say("messaging.customers_cannot_write_staff_only"))
        consult = self.consults if conv.kind is ConversationKind.CONSULT else None
        if frame.forward is not None:
            if consult is not None:
                await consult.before_send(tx, conv, self.user, ())
            return await self._forward(tx, conv, sources[frame.forward], bool(members.customers))
        if frame.reply_to is not None and frame.reply_to > conv.last_seq:
            raise BadRequest(say("messaging.reply_names_no_message_in", reply_to=frame.reply_to))
        files = [
            self._sendable(tx, uploads.get(i), UploadId(i), conv.id) for i in frame.attachments
        ]
        mentions = resolve_mentions(frame.text, frame.mentions, members.roles, members.usernames)
        consult_row = None
        if consult is not None:
            consult_row, named = await consult.before_send(tx, conv, self.user, files)
            mentions = tuple(dict.fromkeys([*mentions, *named]))
        message = await tx.append_message(
            conv,
            self.user.id,
            frame.kind,
            frame.text,
            ref=frame.ref,
            attachments=tuple(upload_descriptor(f) for f in files),
            mentions=mentions,
            reply_to=frame.reply_to,
            internal=frame.internal,
            urgent=frame.urgent,
        )
        for upload in files:
            tx.attach(upload.id, message)
        if consult is not None:
            await consult.after_send(tx, conv, self.user, message, consult_row)
        return Ack(conv.id, message.seq, message.id, message.ts)

    async def _forward(
        self, tx: WriteTxn, conv: Conversation, source: _Source, target_has_customers: bool
    ) -> Ack:
        """A copy of the source in `conv`: its files referenced, a link back to it."""
        original = check_forward(
            self.user,
            source.message,
            source.sees(self.user),
            self.frame.internal,
            target_has_customers,
        )
        link: dict[str, object] = {
            "conv": original.conv,
            "seq": original.seq,
            "sender": original.sender,
            "sender_name": source.sender_name,
            "sent_at": original.ts,
        }
        # Where customers read along, the title of a conversation they cannot
        # open (a supplier chat, a staff channel) is not theirs to learn.
        if not target_has_customers and source.title:
            link["title"] = source.title
        message = await tx.append_message(
            conv,
            self.user.id,
            original.kind,
            original.text,
            ref=self.frame.ref,
            attachments=original.attachments,
            internal=self.frame.internal,
            forwarded_from=link,
        )
        tx.forward_files(original.attachments, message)
        return Ack(conv.id, message.seq, message.id, message.ts)

    def _sendable(
        self, tx: WriteTxn, upload: UploadRow | None, upload_id: UploadId, conv_id: ConversationId
    ) -> UploadRow:
        """An upload this message may carry: the sender's own, finished, for here, unsent."""
        if upload is None:
            raise NotFound(say("messaging.no_upload", upload_id=upload_id))
        if upload.owner_id != self.user.id:
            raise Forbidden(say("messaging.upload_not_yours_send", upload_id=upload_id))
        if not upload.finished:
            raise Conflict(say("messaging.upload_not_finished", upload_id=upload_id))
        if upload.conv_id != conv_id:
            raise BadRequest(say("messaging.upload_was_made_for_another", upload_id=upload_id))
        if upload.message_id is not None or tx.attached_here(upload.id):
            raise Conflict(say("messaging.upload_was_already_sent", upload_id=upload_id))
        check_attachment_kind(self.frame.kind, upload.type)
        return upload


def _no_conversation(conv_id: str) -> DomainError:
    return NotFound(say("messaging.no_conversation", conv_id=conv_id))


@dataclass(frozen=True, slots=True)
class _Source:
    """A message a send forwards, as it is now, with who may see it."""

    message: Message | None
    members: frozenset[UserId]
    sender_name: str
    title: str | None

    def sees(self, user: User) -> bool:
        return user.id in self.members


_NO_SOURCE = _Source(None, frozenset(), "", None)


async def _forward_sources(tx: WriteTxn, wanted: list[ForwardOf]) -> dict[ForwardOf, _Source]:
    """The messages these forwards name, read once per batch; forwards are rare."""
    found: dict[ForwardOf, _Source] = {}
    for source in wanted:
        if source in found:
            continue
        try:
            conv = await conv_store.get_conversation(tx.conn, source.conv)
            stored = await msg_store.get_stored_message(tx.conn, conv.id, source.seq)
            sender = await account_store.get_user(tx.conn, stored.message.sender)
        except NotFound:
            found[source] = _NO_SOURCE
            continue
        (message,) = await msg_store.with_edits(tx.conn, [stored.message])
        members = await tx.member_set(conv.id)
        found[source] = _Source(message, frozenset(members.roles), sender.display_name, conv.title)
    return found


@dataclass(frozen=True, slots=True)
class MarkReadOp:
    """Move a read mark forward; a mark that does not advance changes nothing."""

    user: User
    frame: MarkRead

    async def apply(self, tx: WriteTxn) -> int | None:
        conv = await tx.conversation(self.frame.conv)
        membership = await conv_store.find_membership(tx.conn, conv.id, self.user.id)
        if membership is None or membership.left_pos is not None:
            raise Forbidden(say("conversations.you_are_not_member_conversation"))
        if self.frame.seq > conv.last_seq:
            raise BadRequest(
                say("messaging.seq_beyond_last_message", seq=self.frame.seq, last_seq=conv.last_seq)
            )
        if self.frame.seq <= tx.read_mark(conv.id, self.user.id, membership.read_seq):
            return None
        tx.advance_read(conv.id, self.user.id, self.frame.seq)
        members = await tx.member_set(conv.id)
        event = ReadMarked(conv.id, self.user.id, self.frame.seq, tx.now_ms)
        return await tx.append_event(conv.id, event, frozenset(members.roles))


@dataclass(frozen=True, slots=True)
class RecallOp:
    user: User
    frame: RecallMessage
    window_s: float

    async def apply(self, tx: WriteTxn) -> Ack:
        conv = await tx.conversation(self.frame.conv)
        members = await tx.member_set(conv.id)
        if self.user.id not in members.roles and not self.user.is_admin:
            raise Forbidden(say("conversations.you_are_not_member_conversation"))
        stored = await msg_store.get_stored_message(tx.conn, conv.id, self.frame.seq)
        message = stored.message
        if stored.recalled_at_ms is not None:  # recalling twice answers like the first time
            return Ack(conv.id, message.seq, message.id, stored.recalled_at_ms)
        check_recall(self.user, message.sender, message.kind, message.ts, tx.now_ms, self.window_s)
        await msg_store.mark_recalled_txn(tx.conn, message.id, self.user.id, tx.now_ms)
        details = {"seq": message.seq, "sender": message.sender, "kind": message.kind.value}
        await audit_store.record_txn(
            tx.conn,
            AuditEntry(
                AuditAction.MESSAGE_RECALLED, self.user.id, message.id, tx.now_ms, conv.id, details
            ),
        )
        event = MessageRecalled(conv.id, message.seq, self.user.id, tx.now_ms)
        audience = members.staff if message.internal else frozenset(members.roles)
        await tx.append_event(conv.id, event, audience, about=message.id)
        return Ack(conv.id, message.seq, message.id, tx.now_ms)


@dataclass(frozen=True, slots=True)
class EditOp:
    """A new version of the text of one's own message: stored beside the original, never over it."""

    user: User
    frame: EditMessage
    window_s: float

    async def apply(self, tx: WriteTxn) -> Ack:
        frame = self.frame
        again = await self._answered(tx)
        if again is not None:  # the same ref again answers like the first time
            return again
        conv = await tx.conversation(frame.conv)
        members = await tx.member_set(conv.id)
        if self.user.id not in members.roles:
            raise Forbidden(say("conversations.you_are_not_member_conversation"))
        stored = await msg_store.get_stored_message(tx.conn, conv.id, frame.seq)
        message = stored.message
        if message.internal and self.user.id in members.customers:
            raise NotFound(say("messages.no_message_in_conversation", seq=frame.seq))
        # Versions of this message stored before, then those of this same batch.
        texts = [e.edit.text for e in await msg_store.list_edits(tx.conn, message.id)]
        texts += [r["text"] for r in tx.edit_rows if r["message_id"] == message.id]
        current = texts[-1] if texts else message.text
        check_edit(self.user, message, frame.text, tx.now_ms, self.window_s, current)
        version = len(texts) + 1
        edit = MessageEdit(
            message.id,
            conv.id,
            message.seq,
            version,
            self.user.id,
            frame.text,
            tx.now_ms,
            frame.ref,
        )
        tx.append_edit(conv, edit, message)
        event = MessageEdited(conv.id, message.seq, edit.text, edit.version, edit.by, edit.ts)
        audience = members.staff if message.internal else frozenset(members.roles)
        await tx.append_event(conv.id, event, audience, about=message.id)
        return Ack(conv.id, message.seq, message.id, edit.ts)

    async def _answered(self, tx: WriteTxn) -> Ack | None:
        """The ack of an earlier edit with this ref, stored or earlier in this batch."""
        frame = self.frame
        pending = [r for r in tx.edit_rows if (r["by_id"], r["ref"]) == (self.user.id, frame.ref)]
        if pending:
            row = pending[0]
            done = (row["conv_id"], row["seq"], MessageId(row["message_id"]), row["ts"])
        else:
            prior = await msg_store.find_edit_by_ref(tx.conn, self.user.id, frame.ref)
            if prior is None:
                return None
            e = prior.edit
            done = (e.conv, e.seq, e.message_id, e.ts)
        if (done[0], done[1]) != (frame.conv, frame.seq):
            raise Conflict(say("edits.ref_used_for_another_edit", ref=frame.ref))
        return Ack(ConversationId(done[0]), done[1], done[2], done[3])


# Per user: bursts of 100 sends, 30 a second sustained, far above any person
# and low enough that one runaway script cannot starve a shop's server.
SEND_RATE = Rate(burst=100, per_s=30)
# Typing notices are advisory; more than a few a second per user is noise.
TYPING_RATE = Rate(burst=5, per_s=2)


@dataclass(frozen=True, slots=True)
class Backlog:
    events: list[tuple[int, str]]  # (stream position, encoded frame)
    last_pos: int
    complete: bool


class Messaging:
    """The real-time use cases a connection calls."""

    def __init__(
        self,
        db: Database,
        writer: GroupCommitWriter,
        publisher: Publisher,
        clock: Clock,
        *,
        commands: Commands,
        recall_window_s: float,
        rate_limits: bool,
        consults: ConsultHooks | None = None,
    ) -> None:
        self._db = db
        self._consults = consults
        self._commands = commands
        self._writer = writer
        self._publisher = publisher
        self._clock = clock
        self._recall_window_s = recall_window_s
        self._send_limiter = RateLimiter(SEND_RATE, enabled=rate_limits)
        self._typing_limiter = RateLimiter(TYPING_RATE, enabled=True)

    def post(self, user: User, frame: PostMessage) -> asyncio.Future[Ack]:
        """Queue a send; the future resolves with the ack after commit.

        Raises:
            RateLimited: the user is sending too fast; nothing was queued.
        """
        self._send_limiter.hit(user.id, self._clock.monotonic_s(), say("ratelimit.messages"))
        return self._writer.submit_nowait(SendMessage(user, frame, self._commands, self._consults))

    def mark_read(self, user: User, frame: MarkRead) -> asyncio.Future[int | None]:
        return self._writer.submit_nowait(MarkReadOp(user, frame))

    def recall(self, user: User, frame: RecallMessage) -> asyncio.Future[Ack]:
        return self._writer.submit_nowait(RecallOp(user, frame, self._recall_window_s))

    def edit(self, user: User, frame: EditMessage) -> asyncio.Future[Ack]:
        """Queue an edit; the same window as a recall applies."""
        self._send_limiter.hit(user.id, self._clock.monotonic_s(), say("ratelimit.messages"))
        return self._writer.submit_nowait(EditOp(user, frame, self._recall_window_s))

    def query_of(self, user: User, frame: PostMessage) -> Invocation | None:
        """The private query a send carries (e.g. `/stock`), or None for a message to store."""
        if frame.forward is not None or frame.kind is not MessageKind.TEXT:
            return None
        invocation = self._commands.find(user, frame.text)
        return invocation if invocation is not None and invocation.command.private else None

    async def ask(
        self, user: User, frame: PostMessage, invocation: Invocation, language: str
    ) -> None:
        """Answer a private query to the asker's connections alone; nothing is stored.

        Raises:
            RateLimited: asked too fast (queries count as sends).
            NotFound, Forbidden: no such conversation, or not a member of it.
        """
        self._send_limiter.hit(user.id, self._clock.monotonic_s(), say("ratelimit.messages"))
        async with self._db.read() as conn:
            conv = await conv_store.get_conversation(conn, frame.conv)
            membership = await conv_store.find_membership(conn, conv.id, user.id)
            if membership is None or membership.left_pos is not None:
                raise Forbidden(say("conversations.you_are_not_member_conversation"))
            reply = await invocation.ask(conn, QueryCall(user, conv, frame.ref, language))
        data = encode_server_frame(reply)
        self._publisher.publish([Delivery(0, frozenset({user.id}), data)])

    async def typing(self, user: User, conv_id: str, connection_id: ConnectionId) -> None:
        """Tell the other members someone is typing; dropped quietly when too frequent.

        Only notices that may be relayed count against the limit: one for a
        conversation the user is not in gets its error, however many came before.
        """
        async with self._db.read() as conn:
            await conv_store.get_conversation(conn, conv_id)
            members = await conv_store.list_member_reads(conn, conv_id)
        if user.id not in members:
            raise Forbidden(say("conversations.you_are_not_member_conversation"))
        try:
            self._typing_limiter.hit(
                user.id, self._clock.monotonic_s(), say("ratelimit.typing_notices")
            )
        except RateLimited:
            return
        data = encode_server_frame(UserTyping(ConversationId(conv_id), user.id))
        self._publisher.publish([Delivery(0, frozenset(members), data, connection_id)])

    async def head(self) -> int:
        horizon = await self._db.horizon()
        if horizon is not None:
            return horizon
        async with self._db.read() as conn:
            return await msg_store.read_head(conn)

    async def backlog(self, user: User, after: int, page: int, upto: int | None = None) -> Backlog:
        """The next page of durable events in (after, upto] that the user may see.

        `upto` defaults to the head. The head is read before the snapshot the
        events are read in, so every event at or below it is visible there:
        with one writer, positions are handed out under a lock held until
        commit; with several, the head is the persisted horizon (storage/stream.py).

        Raises:
            CursorExpired: `after` is past the head: the cursor is from another
                database (or one restored from an older backup).
        """
        head = await self.head()
        if after > head:
            raise CursorExpired(say("messaging.cursor_ahead_server_reload_reconnect"))
        last_wanted = head if upto is None else min(upto, head)
        async with self._db.read() as conn:
            rows = await msg_store.events_for_user(
                conn,
                user.id,
                after,
                last_wanted,
                page,
                include_internal=user.kind is UserKind.STAFF,
            )
        customer = user.kind is UserKind.CUSTOMER
        frames = [(r.pos, encode_event(_stored_event(r, customer), r.pos)) for r in rows]
        complete = len(rows) < page
        last = last_wanted if complete else rows[-1].pos
        return Backlog(frames, last, complete)


def _stored_event(row: msg_store.EventRow, customer: bool) -> DurableEvent:
    """A message event shows the message as it is now; any other event, as stored,
    through the customer's projection when a customer asks."""
    if row.payload is None:
        assert row.message is not None, f"event {row.pos} has neither message nor payload"
        return MessageReceived(wire_message(row.message))
    event = decode_event(row.kind, row.payload, None)
    if isinstance(event, MessageEdited) and row.message is not None and row.message.recalled:
        event = replace(event, text="")  # a recall hides every version, not just the first
    return customer_projection(event) if customer else event
