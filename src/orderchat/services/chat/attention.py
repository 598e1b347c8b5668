"""The conversation list's per-person extras: pin and mute, urgent handling, and
the flags its filters use (core/attention.py has the rules).

Pin and mute belong to one person: a change reaches that person's own
connections (every device) as a `settings` frame and nobody else. Marking an
urgent message handled is a durable `handled` event every member sees.
"""

from __future__ import annotations

from dataclasses import dataclass

from orderchat.core.attention import Attention, Facts, attention
from orderchat.core.errors import BadRequest, Conflict, Forbidden, NotFound
from orderchat.core.ids import ConversationId
from orderchat.core.model import Conversation, ConversationKind, User, UserKind
from orderchat.core.permissions import require_staff
from orderchat.core.texts import say
from orderchat.protocol.events import SettingsChanged, UrgentHandled
from orderchat.protocol.server_codec import encode_server_frame
from orderchat.services.orders.workflows import Workflows
from orderchat.services.ports import Delivery
from orderchat.services.writer import WriteTxn
from orderchat.storage import attention as attention_store
from orderchat.storage import member_settings as settings_store
from orderchat.storage import messages as msg_store
from orderchat.storage.engine import Connection
from orderchat.storage.member_settings import MemberSettings


@dataclass(frozen=True, slots=True)
class ListExtras:
    """One viewer's extras of one conversation in the list."""

    settings: MemberSettings
    urgent_open: int
    flags: Attention


async def list_extras(
    conn: Connection,
    user: User,
    convs: list[Conversation],
    workflows: Workflows | None,
) -> dict[ConversationId, ListExtras]:
    """Settings, open urgent messages and filter flags of the user's conversations."""
    ids = [c.id for c in convs]
    staff = user.kind is UserKind.STAFF
    settings = await settings_store.settings_for_user(conn, user.id, ids)
    urgent = await settings_store.open_urgent(conn, ids, staff)
    if not staff:
        return {
            c.id: ListExtras(
                settings.get(c.id, settings_store.NO_SETTINGS),
                len(urgent.get(c.id, [])),
                Attention(),
            )
            for c in convs
        }
    mentions = await attention_store.unread_mentions(conn, user.id, ids, staff)
    threads = [c.id for c in convs if c.kind is ConversationKind.ORDER]
    issues = await attention_store.open_issue_kinds(conn, threads)
    states = await attention_store.order_states(conn, threads)
    words = await attention_store.last_public_words(conn, threads)
    pending = await attention_store.awaiting_decision(conn, threads)
    found: dict[ConversationId, ListExtras] = {}
    for c in convs:
        word = words.get(c.id)
        facts = Facts(
            unread_mentions=tuple(mentions.get(c.id, [])),
            open_urgent_senders=tuple(s for _, s in urgent.get(c.id, [])),
            open_issue_kinds=tuple(issues.get(c.id, [])),
            order_open=_order_open(states.get(c.id), workflows),
            last_word_by_staff=None if word is None else word.by_staff,
            decision_pending=c.id in pending,
        )
        found[c.id] = ListExtras(
            settings.get(c.id, settings_store.NO_SETTINGS),
            len(urgent.get(c.id, [])),
            attention(facts, user.id, user.roles),
        )
    return found


def _order_open(state: tuple[str, str] | None, workflows: Workflows | None) -> bool:
    if state is None:
        return False
    name, status = state
    if workflows is None:
        return True
    try:
        return status not in workflows.get(name).terminal
    except NotFound:
        return True


async def _require_member(tx: WriteTxn, user: User, conv_id: str) -> Conversation:
    conv = await tx.conversation(conv_id)
    members = await tx.member_set(conv.id)
    if user.id not in members.roles:
        raise Forbidden(say("conversations.you_are_not_member_conversation"))
    return conv


@dataclass(frozen=True, slots=True)
class SettingsChange:
    """What a person asks to change; a field left None stays as it is."""

    pinned: bool | None = None
    muted: bool | None = None


def parse_settings_change(raw: object) -> SettingsChange:
    if not isinstance(raw, dict):
        raise BadRequest(say("attention.settings_must_be_object"))
    unknown = sorted(set(raw) - {"pinned", "muted"})
    if unknown:
        raise BadRequest(say("attention.unknown_settings", names=", ".join(unknown)))
    for name in ("pinned", "muted"):
        if name in raw and not isinstance(raw[name], bool):
            raise BadRequest(say("attention.setting_must_be_bool", name=name))
    if not raw:
        raise BadRequest(say("attention.settings_empty"))
    return SettingsChange(raw.get("pinned"), raw.get("muted"))


@dataclass(frozen=True, slots=True)
class ChangeSettings:
    user: User
    conv_id: str
    change: SettingsChange

    async def apply(self, tx: WriteTxn) -> SettingsChanged:
        conv = await _require_member(tx, self.user, self.conv_id)
        before = await settings_store.find_settings(tx.conn, conv.id, self.user.id)
        pinned_at = before.pinned_at_ms
        if self.change.pinned is True and pinned_at is None:
            pinned_at = tx.now_ms
        elif self.change.pinned is False:
            pinned_at = None
        muted = before.muted if self.change.muted is None else self.change.muted
        after = MemberSettings(pinned_at, muted)
        frame = SettingsChanged(conv.id, after.pinned, after.muted, after.pinned_at_ms)
        if after != before:
            await settings_store.save_settings_txn(tx.conn, conv.id, self.user.id, after)
            # Ephemeral (position 0): to this user's connections, after the commit.
            data = encode_server_frame(frame)
            tx.deliveries.append(Delivery(0, frozenset({self.user.id}), data))
        return frame


@dataclass(frozen=True, slots=True)
class MarkHandled:
    user: User
    conv_id: str
    seq: int

    async def apply(self, tx: WriteTxn) -> UrgentHandled:
        require_staff(self.user)
        conv = await _require_member(tx, self.user, self.conv_id)
        if self.seq < 1 or self.seq > conv.last_seq:
            raise NotFound(say("messages.no_message_in_conversation", seq=self.seq))
        stored = await msg_store.get_stored_message(tx.conn, conv.id, self.seq)
        message = stored.message
        if not message.urgent:
            raise Conflict(say("attention.not_urgent"))
        if message.recalled:
            raise Conflict(say("attention.message_recalled"))
        prior = await settings_store.find_handled(tx.conn, conv.id, self.seq)
        if prior is not None:
            raise Conflict(say("attention.urgent_handled_already"))
        await settings_store.insert_handled_txn(tx.conn, conv.id, self.seq, self.user.id, tx.now_ms)
        event = UrgentHandled(conv.id, self.seq, self.user.id, tx.now_ms)
        members = await tx.member_set(conv.id)
        audience = members.staff if message.internal else frozenset(members.roles)
        await tx.append_event(conv.id, event, audience, about=message.id)
        return event


def handled_by(
    urgent: list[settings_store.UrgentMessage],
) -> list[dict[str, object]]:
    """Urgent messages as HTTP shows them."""
    return [
        {
            "seq": u.seq,
            "sender": u.sender,
            "ts": u.ts,
            "handled": u.handled_by is not None,
            "handled_by": u.handled_by,
            "handled_ts": u.handled_at_ms,
        }
        for u in urgent
    ]
