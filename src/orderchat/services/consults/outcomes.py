"""Where a consult leads: an order for the visitor, and the product cards on the way."""

from __future__ import annotations

from dataclasses import dataclass, replace

from orderchat.core.consults import ConsultRules
from orderchat.core.errors import Conflict, Forbidden
from orderchat.core.ids import ConversationId
from orderchat.core.model import ConversationKind, MessageKind, User, UserKind
from orderchat.core.order_requests import OrderSpec
from orderchat.core.orders import Order
from orderchat.core.permissions import Action, check
from orderchat.core.texts import say
from orderchat.services.consults.hooks import ConsultHooks
from orderchat.services.consults.notes import post_note_txn
from orderchat.services.consults.ops import load_for_staff_txn
from orderchat.services.orders.orders import CreateOrder
from orderchat.services.orders.workflows import Workflows
from orderchat.services.writer import WriteTxn
from orderchat.storage import consults as consult_store
from orderchat.storage import orders as order_store
from orderchat.storage import products as product_store
from orderchat.storage.products import Product

# Prices in the catalogue are in the shop's currency.
CATALOGUE_CURRENCY = "CNY"


@dataclass(frozen=True, slots=True)
class OrderFromConsult:
    """The visitor becomes the order's customer, with the identity they already have."""

    rules: ConsultRules
    actor: User
    consult: str
    spec: OrderSpec
    workflows: Workflows

    async def apply(self, tx: WriteTxn) -> Order:
        check(self.actor, Action.CREATE_ORDER)
        row = await load_for_staff_txn(tx, self.actor, self.consult)
        if row.order_id is not None:
            number = (await order_store.get_order(tx.conn, row.order_id)).number
            raise Conflict(say("consults.has_order", number=number))
        flags = await consult_store.visitor_flags(tx.conn, row.visitor_id)
        if flags is None or flags.erased:
            raise Conflict(say("consults.not_a_visitor", user=row.visitor_id))
        spec = replace(self.spec, customer_id=row.visitor_id, new_customer=None)
        order = await CreateOrder(self.actor, spec, self.workflows).apply(tx)
        await consult_store.set_verified_txn(tx.conn, row.visitor_id)
        ordered = replace(row, order_id=order.id)
        await consult_store.save_consult_txn(tx.conn, ordered)
        conv = await tx.conversation(row.conv_id)
        await post_note_txn(
            tx,
            conv,
            self.actor.id,
            "consult_ordered",
            say("note.consult_ordered", number=order.number),
            ordered,
            extra={"order_id": order.id, "number": order.number, "order_conv": order.conv_id},
        )
        return order


def product_card(product: Product) -> dict[str, object]:
    """A card as a message carries it and `GET /api/products/{sku}` gives it."""
    sku = product.sku
    return {
        "sku": sku.sku,
        "name": {"zh-CN": sku.name_zh, "en": sku.name_en},
        "category": sku.category,
        "price_cents": sku.unit_price_cents,
        "currency": CATALOGUE_CURRENCY,
        "available": product.available,
        "options": product.options,
        "picture": f"/api/products/{sku.sku}/picture" if product.picture_sha256 else None,
    }


@dataclass(frozen=True, slots=True)
class ShareProduct:
    """A staff member shares a catalogue product into a conversation they are in."""

    actor: User
    conv_id: ConversationId
    sku: str
    ref: str | None = None
    hooks: ConsultHooks | None = None

    async def apply(self, tx: WriteTxn) -> tuple[int, str]:
        if self.actor.kind is not UserKind.STAFF:
            raise Forbidden(say("permissions.only_staff_may_do"))
        conv = await tx.conversation(self.conv_id)
        members = await tx.member_set(conv.id)
        if self.actor.id not in members.roles:
            raise Forbidden(say("conversations.you_are_not_member_conversation"))
        product = await product_store.get_product(tx.conn, self.sku)
        in_consult = self.hooks is not None and conv.kind is ConversationKind.CONSULT
        consult = await consult_store.find_consult(tx.conn, conv.id) if in_consult else None
        card = product_card(product)
        text = f"{product.sku.name_zh} / {product.sku.name_en} ({product.sku.sku})"
        message = await tx.append_message(
            conv,
            self.actor.id,
            MessageKind.PRODUCT,
            text,
            ref=self.ref,
            meta={"product": card},
        )
        if self.hooks is not None and in_consult:
            await self.hooks.after_send(tx, conv, self.actor, message, consult)
        return message.seq, message.id
