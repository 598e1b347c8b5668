"""How core values look in HTTP answers: one place, shared by every route."""

from __future__ import annotations

from typing import Any

from orderchat.core.model import User
from orderchat.protocol.codec import message_fields
from orderchat.services.chat.conversations import ConversationSummary, conversation_fields


def user_view(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "roles": [r.value for r in user.roles],
        "kind": user.kind.value,
    }


def summary_view(summary: ConversationSummary) -> dict[str, Any]:
    view = conversation_fields(summary.conv, summary.members)
    view.update(
        read_seq=summary.read_seq,
        unread=summary.unread,
        unread_urgent=summary.unread_urgent,
        last_message=None if summary.last_message is None else message_fields(summary.last_message),
        last_activity_ts=summary.conv.last_activity_ms,
    )
    if summary.order_id is not None:
        view["order"] = summary.order_id
    return view
