"""Who may do what to messages and conversations.

Each rule is a function that returns nothing or raises a DomainError saying
why not; services call it inside the transaction with the rows it read.
"""

from __future__ import annotations

from orderchat.core.errors import Conflict, Forbidden
from orderchat.core.ids import UserId
from orderchat.core.model import ConversationKind, MessageKind, User
from orderchat.core.texts import say

DEFAULT_RECALL_WINDOW_S = 120.0


def check_recall(
    actor: User,
    sender: UserId,
    kind: MessageKind,
    sent_at_ms: int,
    now_ms: int,
    window_s: float,
) -> None:
    """A sender may recall within the window; an admin may recall any time."""
    if actor.is_admin:
        return
    if actor.id != sender:
        raise Forbidden(say("policy.only_sender_admin_may_recall"))
    if kind in (MessageKind.SYSTEM, MessageKind.ORDER_EVENT, MessageKind.CALL):
        raise Forbidden(say("policy.system_order_messages_cannot_recalled"))
    if now_ms - sent_at_ms > window_s * 1000:
        raise Forbidden(say("policy.messages_can_recalled_within_seconds", window_s=window_s))


def check_add_members(actor: User, kind: ConversationKind, is_member: bool) -> None:
    if kind is ConversationKind.DIRECT:
        raise Conflict(say("policy.direct_conversation_always_has_exactly"))
    if not (is_member or actor.is_admin):
        raise Forbidden(say("policy.only_members_admin_may_add"))


def check_remove_member(
    actor: User, kind: ConversationKind, created_by: UserId | None, target: UserId
) -> None:
    if kind is ConversationKind.DIRECT:
        raise Conflict(say("policy.direct_conversation_always_has_exactly"))
    if target == actor.id:
        return  # leaving is always allowed
    if not (actor.is_admin or actor.id == created_by):
        raise Forbidden(say("policy.only_conversation_s_creator_admin"))


def check_rename(actor: User, kind: ConversationKind, is_member: bool) -> None:
    """Any member may rename a group, as in WeCom's default; an admin may too.

    Only groups (channels) have a title of their own: a direct chat is named
    after the other person, an order's thread after its order.
    """
    if kind is not ConversationKind.CHANNEL:
        raise Conflict(say("policy.only_group_can_be_renamed"))
    if not (is_member or actor.is_admin):
        raise Forbidden(say("policy.only_members_admin_may_rename"))
