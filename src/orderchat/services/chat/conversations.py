"""Creating conversations, changing who is in them, and reading them back."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from orderchat.core.audit import AuditAction, AuditEntry
from orderchat.core.chain import GENESIS
from orderchat.core.errors import BadRequest, Conflict, Forbidden, NotFound
from orderchat.core.ids import OrderId, UserId
from orderchat.core.model import (
    Conversation,
    ConversationKind,
    MemberAction,
    Message,
    MessageKind,
    NewConversation,
    User,
    UserKind,
    direct_key,
)
from orderchat.core.permissions import require_staff
from orderchat.core.policy import check_add_members, check_remove_member, check_rename
from orderchat.core.texts import DEFAULT_LANGUAGE, say
from orderchat.protocol import events as wire
from orderchat.protocol.server_codec import conversation_json
from orderchat.services.chat.attention import (
    ChangeSettings,
    ListExtras,
    MarkHandled,
    SettingsChange,
    list_extras,
)
from orderchat.services.orders.workflows import Workflows
from orderchat.services.writer import GroupCommitWriter, WriteTxn
from orderchat.storage import accounts as account_store
from orderchat.storage import audit as audit_store
from orderchat.storage import conversations as conv_store
from orderchat.storage import member_settings as settings_store
from orderchat.storage import messages as msg_store
from orderchat.storage import orders as order_store
from orderchat.storage.engine import Connection, Database


@dataclass(frozen=True, slots=True)
class ConversationView:
    conv: Conversation
    members: list[UserId]
    created: bool = True


def conversation_fields(conv: Conversation, members: list[UserId]) -> dict[str, Any]:
    """A conversation as HTTP answers show it: the same fields as its member events."""
    return conversation_json(wire_conversation(conv, members))


async def _check_users_exist(tx: WriteTxn, ids: list[UserId]) -> None:
    known = await account_store.existing_user_ids(tx.conn, ids)
    unknown = [u for u in ids if u not in known]
    if unknown:
        raise BadRequest(say("conversations.unknown_users", users=", ".join(unknown[:5])))
    # A customer reaches staff through their order's thread, never a team chat.
    customers = await account_store.customer_ids(tx.conn, ids)
    if customers:
        listed = ", ".join(u for u in ids if u in customers)
        raise BadRequest(say("conversations.customers_not_in_internal", users=listed))


def wire_conversation(conv: Conversation, members: list[UserId]) -> wire.Conversation:
    """A conversation as member events show it."""
    return wire.Conversation(
        id=conv.id,
        kind=conv.kind.value,
        title=conv.title,
        members=tuple(members),
        last_seq=conv.last_seq,
        created_by=conv.created_by,
        created_ts=conv.created_at_ms,
    )


def member_event(
    tx: WriteTxn,
    conv: Conversation,
    action: MemberAction,
    users: list[UserId],
    by: UserId | None,
    members_after: list[UserId],
) -> wire.MembersChanged:
    """The `member` event of a change: who, by whom, and the conversation after it."""
    return wire.MembersChanged(
        conv=conv.id,
        action=action.value,
        users=tuple(users),
        by=by,
        ts=tx.now_ms,
        conversation=wire_conversation(conv, members_after),
    )


async def open_conversation_txn(
    tx: WriteTxn,
    kind: ConversationKind,
    title: str | None,
    by: UserId,
    members: list[UserId],
    direct_key: str | None = None,
) -> Conversation:
    """A new conversation with its members, and the `member` event that tells them."""
    conv = Conversation(
        id=tx.ids.conversation(),
        kind=kind,
        title=title,
        created_by=by,
        created_at_ms=tx.now_ms,
        last_seq=0,
        last_activity_ms=tx.now_ms,
        last_hash=GENESIS,
    )
    await conv_store.insert_conversation_txn(tx.conn, conv, direct_key)
    tx.convs[conv.id] = conv
    pos = await tx.next_pos()
    await conv_store.add_members_txn(tx.conn, conv.id, members, pos, tx.now_ms)
    tx.members_changed(conv.id)
    event = members_added(tx, conv, members, by, members)
    await tx.append_event(conv.id, event, frozenset(members), pos)
    return conv


def members_added(
    tx: WriteTxn, conv: Conversation, users: list[UserId], by: UserId | None, after: list[UserId]
) -> wire.MembersChanged:
    return member_event(tx, conv, MemberAction.ADDED, users, by, after)


@dataclass(frozen=True, slots=True)
class CreateConversation:
    user: User
    new: NewConversation

    @property
    def kind(self) -> ConversationKind:
        return self.new.kind

    async def apply(self, tx: WriteTxn) -> ConversationView:
        title = self.new.title
        everyone = list(dict.fromkeys([self.user.id, *self.new.members]))
        await _check_users_exist(tx, everyone)
        key = None
        if self.kind is ConversationKind.DIRECT:
            if len(everyone) != 2:
                raise BadRequest(say("conversations.direct_conversation_has_exactly_two"))
            key = direct_key(everyone[0], everyone[1])
            existing = await conv_store.find_direct(tx.conn, key)
            if existing is not None:
                conv = await tx.conversation(existing)
                members = (await conv_store.member_lists(tx.conn, [conv.id])).get(conv.id, [])
                return ConversationView(conv, members, created=False)
        conv = await open_conversation_txn(tx, self.kind, title, self.user.id, everyone, key)
        return ConversationView(conv, everyone)


@dataclass(frozen=True, slots=True)
class AddMembers:
    user: User
    conv_id: str
    members: tuple[UserId, ...]

    async def apply(self, tx: WriteTxn) -> ConversationView:
        conv = await tx.conversation(self.conv_id)
        current = await tx.member_set(conv.id)
        check_add_members(self.user, conv.kind, self.user.id in current.roles)
        wanted = list(self.members)
        if not wanted:
            raise BadRequest(say("conversations.name_someone_to_add"))
        await _check_users_exist(tx, wanted)
        present = [u for u in wanted if u in current.roles]
        if present:
            raise Conflict(say("conversations.already_members", users=", ".join(present[:5])))
        fresh = wanted
        after = [*current.roles, *fresh]
        pos = await tx.next_pos()
        await conv_store.add_members_txn(tx.conn, conv.id, fresh, pos, tx.now_ms)
        tx.members_changed(conv.id)
        event = members_added(tx, conv, fresh, self.user.id, after)
        await tx.append_event(conv.id, event, frozenset(after), pos)
        await tx.member_set(conv.id)
        added = say("note.members_added")
        meta: dict[str, object] = {
            "event": "members_added",
            "users": list(fresh),
            "by": self.user.id,
            "say": added.to_json(),
        }
        text = added.render(DEFAULT_LANGUAGE)
        await tx.append_message(conv, self.user.id, MessageKind.SYSTEM, text, meta=meta)
        entry = AuditEntry(
            AuditAction.MEMBERS_ADDED, self.user.id, conv.id, tx.now_ms, conv.id, {"users": fresh}
        )
        await audit_store.record_txn(tx.conn, entry)
        return ConversationView(tx.convs[conv.id], after)


@dataclass(frozen=True, slots=True)
class RemoveMember:
    user: User
    conv_id: str
    target: UserId

    async def apply(self, tx: WriteTxn) -> ConversationView:
        conv = await tx.conversation(self.conv_id)
        current = await tx.member_set(conv.id)
        if self.user.id not in current.roles and not self.user.is_admin:
            raise Forbidden(say("conversations.you_are_not_member_conversation"))
        check_remove_member(self.user, conv.kind, conv.created_by, self.target)
        if self.target not in current.roles:
            raise NotFound(say("conversations.user_not_member_conversation"))
        leaving = self.target == self.user.id
        action = MemberAction.LEFT if leaving else MemberAction.REMOVED
        before = list(current.roles)
        after = [u for u in before if u != self.target]
        # The system message comes first, so the member who goes still sees it.
        gone = say(f"note.member_{action.value}")
        meta: dict[str, object] = {
            "event": f"member_{action.value}",
            "users": [self.target],
            "by": self.user.id,
            "say": gone.to_json(),
        }
        await tx.append_message(
            conv, self.user.id, MessageKind.SYSTEM, gone.render(DEFAULT_LANGUAGE), meta=meta
        )
        pos = await tx.next_pos()
        await conv_store.remove_member_txn(tx.conn, conv.id, self.target, pos)
        tx.members_changed(conv.id)
        event = member_event(tx, tx.convs[conv.id], action, [self.target], self.user.id, after)
        await tx.append_event(conv.id, event, frozenset(before), pos)
        if not leaving:  # leaving is one's own business; removing someone is not
            details = {"user": self.target}
            entry = AuditEntry(
                AuditAction.MEMBER_REMOVED, self.user.id, self.target, tx.now_ms, conv.id, details
            )
            await audit_store.record_txn(tx.conn, entry)
        return ConversationView(tx.convs[conv.id], after)


@dataclass(frozen=True, slots=True)
class RenameConversation:
    user: User
    conv_id: str
    title: str

    async def apply(self, tx: WriteTxn) -> ConversationView:
        conv = await tx.conversation(self.conv_id)
        current = await tx.member_set(conv.id)
        check_rename(self.user, conv.kind, self.user.id in current.roles)
        members = list(current.roles)
        if conv.title == self.title:
            return ConversationView(conv, members, created=False)
        await conv_store.rename_txn(tx.conn, conv.id, self.title)
        renamed = replace(conv, title=self.title)
        tx.convs[conv.id] = renamed
        meta: dict[str, object] = {
            "event": "renamed",
            "title": self.title,
            "previous": conv.title,
            "by": self.user.id,
        }
        await tx.append_message(renamed, self.user.id, MessageKind.SYSTEM, "renamed", meta=meta)
        after = tx.convs[conv.id]
        pos = await tx.next_pos()
        event = member_event(tx, after, MemberAction.RENAMED, [], self.user.id, members)
        await tx.append_event(conv.id, event, frozenset(members), pos)
        return ConversationView(after, members)


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    conv: Conversation
    members: list[UserId]
    read_seq: int
    last_message: Message | None
    unread: int
    unread_urgent: int = 0
    order_id: OrderId | None = None  # for an order's thread
    extras: ListExtras | None = None  # the viewer's pin, mute, urgent and filter flags


class Conversations:
    """Reads of conversations; writes go through the group-commit writer."""

    def __init__(
        self, db: Database, writer: GroupCommitWriter, workflows: Workflows | None = None
    ) -> None:
        self._db = db
        self._writer = writer
        self._workflows = workflows

    async def create(self, user: User, new: NewConversation) -> ConversationView:
        require_staff(user)
        view: ConversationView = await self._writer.submit(CreateConversation(user, new))
        return view

    async def add_members(
        self, user: User, conv_id: str, members: tuple[UserId, ...]
    ) -> ConversationView:
        require_staff(user)
        view: ConversationView = await self._writer.submit(AddMembers(user, conv_id, members))
        return view

    async def remove_member(self, user: User, conv_id: str, target: str) -> ConversationView:
        require_staff(user)
        view: ConversationView = await self._writer.submit(
            RemoveMember(user, conv_id, UserId(target))
        )
        return view

    async def rename(self, user: User, conv_id: str, title: str) -> ConversationView:
        require_staff(user)
        view: ConversationView = await self._writer.submit(RenameConversation(user, conv_id, title))
        return view

    async def change_settings(
        self, user: User, conv_id: str, change: SettingsChange
    ) -> wire.SettingsChanged:
        frame: wire.SettingsChanged = await self._writer.submit(
            ChangeSettings(user, conv_id, change)
        )
        return frame

    async def mark_handled(self, user: User, conv_id: str, seq: int) -> wire.UrgentHandled:
        require_staff(user)
        event: wire.UrgentHandled = await self._writer.submit(MarkHandled(user, conv_id, seq))
        return event

    async def urgent(
        self, user: User, conv_id: str, limit: int
    ) -> list[settings_store.UrgentMessage]:
        """The conversation's urgent messages with who handled each, newest first."""
        async with self._db.read() as conn:
            conv = await self._visible(conn, user, conv_id)
            staff = user.kind is UserKind.STAFF
            return await settings_store.list_urgent(conn, conv.id, staff, limit)

    async def list_for(self, user: User) -> list[ConversationSummary]:
        async with self._db.read() as conn:
            listed = await conv_store.list_for_user(conn, user.id)
            rows = [(c.conv, c.members, c.read_seq) for c in listed]
            return await self._summaries(conn, user, rows, self._workflows)

    async def get(self, user: User, conv_id: str) -> tuple[ConversationSummary, dict[UserId, int]]:
        async with self._db.read() as conn:
            conv = await self._visible(conn, user, conv_id)
            reads = await conv_store.list_member_reads(conn, conv.id)
            [summary] = await self._summaries(
                conn, user, [(conv, list(reads), reads[user.id])], self._workflows
            )
        return summary, reads

    @staticmethod
    async def _summaries(
        conn: Connection,
        user: User,
        rows: list[tuple[Conversation, list[UserId], int]],
        workflows: Workflows | None = None,
    ) -> list[ConversationSummary]:
        """Staff see everything; a customer's previews and counts skip staff-only notes."""
        staff = user.kind is UserKind.STAFF
        lasts = await msg_store.last_messages(conn, [c.id for c, _, _ in rows], staff)
        # A preview shows a message as its members see it now: its newest text.
        lasts = {m.conv: m for m in await msg_store.with_edits(conn, list(lasts.values()))}
        unread: dict[str, int]
        if staff:
            unread = {c.id: max(0, c.last_seq - read) for c, _, read in rows}
        else:
            unread = await msg_store.count_public_after(conn, user.id, [c.id for c, _, _ in rows])
        # Only conversations with something unread can hold an unread urgent message.
        behind = [c.id for c, _, _ in rows if unread[c.id]]
        urgent = await msg_store.count_urgent_after(conn, user.id, behind, staff)
        threads = [c.id for c, _, _ in rows if c.kind is ConversationKind.ORDER]
        orders = await order_store.order_ids_by_conversation(conn, threads)
        extras = await list_extras(conn, user, [c for c, _, _ in rows], workflows)
        return [
            ConversationSummary(
                conv,
                members,
                read,
                lasts.get(conv.id),
                unread[conv.id],
                urgent.get(conv.id, 0),
                orders.get(conv.id),
                extras.get(conv.id),
            )
            for conv, members, read in rows
        ]

    async def history(
        self, user: User, conv_id: str, after: int | None, before: int | None, limit: int
    ) -> list[Message]:
        async with self._db.read() as conn:
            conv = await self._visible(conn, user, conv_id)
            found = await msg_store.history(
                conn,
                conv.id,
                after=after,
                before=before,
                limit=limit,
                include_internal=user.kind is UserKind.STAFF,
            )
            return await msg_store.with_edits(conn, found)

    async def audit_message(
        self, user: User, conv_id: str, seq: int
    ) -> tuple[msg_store.StoredMessage, list[msg_store.StoredEdit]]:
        """A message as first stored, and every edit of it, oldest first, with their hashes."""
        if not user.is_admin:
            raise Forbidden(say("conversations.only_admin_may_read_audit"))
        async with self._db.read() as conn:
            await conv_store.get_conversation(conn, conv_id)
            stored = await msg_store.get_stored_message(conn, conv_id, seq)
            return stored, await msg_store.list_edits(conn, stored.message.id)

    @staticmethod
    async def _visible(conn: Connection, user: User, conv_id: str) -> Conversation:
        conv = await conv_store.get_conversation(conn, conv_id)
        membership = await conv_store.find_membership(conn, conv.id, user.id)
        if membership is None or membership.left_pos is not None:
            raise Forbidden(say("conversations.you_are_not_member_conversation"))
        return conv
