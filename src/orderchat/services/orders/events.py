"""Posting order events: into the order's conversation, the role channels, and the
durable `order` event that carries the order's new state.

Every service that changes an order calls these inside its group-commit
transaction, so the order row, the messages and the events commit together and
are delivered only after the commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from orderchat.core.chain import GENESIS
from orderchat.core.ids import ConversationId, UserId
from orderchat.core.model import Conversation, ConversationKind, Message, MessageKind, Role
from orderchat.core.orders import Order, format_address
from orderchat.core.routing import ROLE_CHANNEL_TITLES, ROUTES, in_language, render_texts
from orderchat.core.texts import DEFAULT_LANGUAGE
from orderchat.core.workflows import Workflow
from orderchat.protocol.events import OrderChanged
from orderchat.protocol.server_codec import customer_projection
from orderchat.services.chat.conversations import members_added
from orderchat.services.orders.photos import StepPhotos
from orderchat.services.writer import WriteTxn
from orderchat.storage import accounts as account_store
from orderchat.storage import conversations as conv_store


def order_fields(order: Order, workflow: Workflow) -> dict[str, Any]:
    """The order as clients see it: the same for the customer and for staff."""
    return {
        "id": order.id,
        "number": order.number,
        "customer": order.customer_id,
        "conv": order.conv_id,
        "workflow": order.workflow,
        "status": order.status,
        "status_label": {lang: workflow.label(order.status, lang) for lang in ("zh-CN", "en")},
        "next": workflow.next_states(order.status),
        "payment_status": order.payment_status.value,
        "invoice_status": order.invoice_status.value,
        "currency": order.currency,
        "total_cents": order.total_cents,
        "paid_cents": order.paid_cents,
        "items": [
            {
                "sku": i.sku,
                "name": i.name,
                "quantity": i.quantity,
                "unit_price_cents": i.unit_price_cents,
            }
            for i in order.items
        ],
        "address": order.address,
        "note": order.note,
        "carrier": order.carrier,
        "tracking_no": order.tracking_no,
        "eta_ts": order.eta_ms,
        "sample_round": order.sample_round,
        "ship_approved": order.ship_approved_by is not None,
        "created_ts": order.created_at_ms,
        "updated_ts": order.updated_at_ms,
        "shipped_ts": order.shipped_at_ms,
        "version": order.version,
        "legal_hold": order.legal_hold,
    }


async def emit_order_txn(tx: WriteTxn, order: Order, workflow: Workflow) -> None:
    """The durable `order` event: every member's devices get the order's new state."""
    members = tx.member_cache.get(order.conv_id)
    recipients = frozenset(members.roles) if members else frozenset()
    event = OrderChanged(order.conv_id, order_fields(order, workflow), tx.now_ms)
    await tx.append_event(
        order.conv_id, event, recipients, customers_see=customer_projection(event)
    )


def order_details(order: Order) -> dict[str, object]:
    """Placeholders every order text may use."""
    return {
        "number": order.number,
        "carrier": order.carrier or "",
        "tracking_no": order.tracking_no or "",
        "round": order.sample_round,
        "address": format_address(order.address),
    }


async def post_event_txn(
    tx: WriteTxn,
    order: Order,
    event: str,
    details: Mapping[str, Any],
    by: UserId,
    *,
    language: str,
    roles: Iterable[Role] | None = None,
    customer: bool | None = None,
    texts: Mapping[str, str] | None = None,
    photos: StepPhotos | None = None,
) -> None:
    """Post one order event where it must be seen.

    By default the event routes by `core.routing.ROUTES[event]`; a status change
    passes its transition's roles, customer flag and texts instead. `photos` go
    as the order message's attachments, so whoever sees the message sees them.
    """
    route = ROUTES.get(event)
    notify = frozenset(roles if roles is not None else (route.roles if route else ()))
    visible = customer if customer is not None else bool(route and route.customer)
    template = texts if texts is not None else (route.text if route else {})
    filled = render_texts(template, {**order_details(order), **details})
    mentions = tuple(f"@{r.value}" for r in sorted(notify))
    meta: dict[str, object] = {
        "event": event,
        "order": order.id,
        "number": order.number,
        "by": by,
        # Words among the details (an issue's stage) are kept as the conversation reads them.
        "details": in_language(details, DEFAULT_LANGUAGE),
        "text": filled,
    }
    conv = await tx.conversation(order.conv_id)
    await tx.member_set(conv.id)
    # Staff-only notes read in Chinese; what the customer sees is in their language.
    shown = filled.get(language if visible else "zh-CN") or filled.get("zh-CN") or event
    # Urgent by its route (staff-side: the customer's copy of an event is never urgent).
    urgent = bool(route and route.urgent and roles is None and not visible)
    photos = photos or StepPhotos()
    message = await tx.append_message(
        conv,
        by,
        MessageKind.ORDER_EVENT,
        shown,
        attachments=photos.attachments(),
        mentions=mentions,
        meta=meta,
        internal=not visible,
        urgent=urgent,
    )
    photos.attach(tx, message)
    channel_meta = {**meta, "order_conv": order.conv_id}
    text = f"[{order.number}] {filled.get('zh-CN', event)}"
    await _copy_to_channels_txn(tx, notify, message, text, channel_meta)


async def _copy_to_channels_txn(
    tx: WriteTxn, roles: frozenset[Role], message: Message, text: str, meta: dict[str, object]
) -> None:
    """The event in each told role's channel, with the same photos."""
    for role in sorted(roles):
        channel = await role_channel_txn(tx, role)
        await tx.member_set(channel.id)
        copy = await tx.append_message(
            channel,
            message.sender,
            MessageKind.ORDER_EVENT,
            text,
            attachments=message.attachments,
            mentions=(f"@{role.value}",),
            meta=meta,
            urgent=message.urgent,
        )
        # The role can open the photos where it was told, as readers of a forward can.
        tx.forward_files(message.attachments, copy)


async def role_channel_txn(tx: WriteTxn, role: Role) -> Conversation:
    """The role's channel, made on first use; everyone holding the role is in it."""
    return await kept_channel_txn(tx, role.value, ROLE_CHANNEL_TITLES[role], role)


async def kept_channel_txn(tx: WriteTxn, key: str, title: str, role: Role) -> Conversation:
    """A channel the server keeps under `key` (a role's, #audit), made on first use;
    everyone holding `role` is in it."""
    holders = await account_store.staff_with_roles(tx.conn, [role])
    conv_id = await conv_store.find_role_channel(tx.conn, key)
    if conv_id is None:
        conv = Conversation(
            id=tx.ids.conversation(),
            kind=ConversationKind.CHANNEL,
            title=title,
            created_by=None,
            created_at_ms=tx.now_ms,
            last_seq=0,
            last_activity_ms=tx.now_ms,
            last_hash=GENESIS,
        )
        await conv_store.insert_conversation_txn(tx.conn, conv, None, role_channel=key)
        tx.convs[conv.id] = conv
        await _join_txn(tx, conv.id, holders)
        return conv
    current = await tx.member_set(conv_id)
    await _join_txn(tx, conv_id, [u for u in holders if u not in current.roles])
    return await tx.conversation(conv_id)


async def _join_txn(tx: WriteTxn, conv_id: ConversationId, users: list[UserId]) -> None:
    if not users:
        return
    pos = await tx.next_pos()
    await conv_store.add_members_txn(tx.conn, conv_id, users, pos, tx.now_ms, by_role=True)
    tx.members_changed(conv_id)
    members = await tx.member_set(conv_id)
    conv = await tx.conversation(conv_id)
    event = members_added(tx, conv, users, None, list(members.roles))
    await tx.append_event(conv_id, event, frozenset(members.roles), pos)
