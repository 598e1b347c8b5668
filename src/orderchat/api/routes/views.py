"""How core values look in HTTP answers: one place, shared by every route."""

from __future__ import annotations

from typing import Any

from orderchat.core.model import User, UserKind
from orderchat.core.orders import Order, customer_order_view
from orderchat.core.workflows import Workflow
from orderchat.protocol.server_codec import message_fields, user_json, wire_user
from orderchat.services.chat.conversations import ConversationSummary, conversation_fields
from orderchat.services.orders.events import order_fields


def user_view(user: User) -> dict[str, Any]:
    return user_json(wire_user(user))


def for_viewer(viewer: User, order_view: dict[str, Any]) -> dict[str, Any]:
    """An order view as this viewer may see it: a customer gets the customer's projection."""
    return customer_order_view(order_view) if viewer.kind is UserKind.CUSTOMER else order_view


def order_view(viewer: User, order: Order, workflow: Workflow) -> dict[str, Any]:
    """An order as this viewer may see it."""
    return for_viewer(viewer, order_fields(order, workflow))


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
    extras = summary.extras
    if extras is not None:
        view.update(
            pinned=extras.settings.pinned,
            pinned_ts=extras.settings.pinned_at_ms,
            muted=extras.settings.muted,
            urgent_open=extras.urgent_open,
            flags={
                "needs_me": extras.flags.needs_me,
                "exception_open": extras.flags.exception_open,
                "waiting_customer": extras.flags.waiting_customer,
            },
        )
    return view
