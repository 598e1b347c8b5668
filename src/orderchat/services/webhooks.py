"""Inbound order webhooks: an order platform creates and advances orders.

A delivery is trusted only when its HMAC signature and timestamp verify
(`core/signatures.py`), and done only once: its digest is recorded in the same
group-commit transaction as the order it created or moved, and a digest seen
before is refused as a replay. A delivery that fails any check changes nothing.

The platform acts as a staff account of its own, `platform-webhook`, made on
the first verified delivery with the least that can create orders and confirm
or cancel them: the `customer_service` role. Its password is random and never
shown, so nobody signs in as it. An admin who wants platforms to push more
(shipping updates, say) creates the account beforehand with more roles, and
that account is used as it is. Details and examples: docs/orders.md.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import orjson

from orderchat.core.errors import BadRequest, Conflict, Forbidden, NotFound, TooLarge
from orderchat.core.model import NewStaff, Role, User, UserKind
from orderchat.core.order_requests import (
    OrderSpec,
    StatusChange,
    parse_order_spec,
    parse_status_change,
)
from orderchat.core.orders import Order, order_number
from orderchat.core.signatures import SignatureRejected, verify
from orderchat.core.texts import say
from orderchat.core.workflows import Workflow
from orderchat.services.accounts import Accounts
from orderchat.services.orders.orders import AdvanceOrder, CreateOrder
from orderchat.services.orders.workflows import Workflows
from orderchat.services.ports import Clock
from orderchat.services.writer import GroupCommitWriter, WriteTxn
from orderchat.storage import accounts as account_store
from orderchat.storage import orders as order_store
from orderchat.storage import webhooks as delivery_store
from orderchat.storage.engine import Database

logger = logging.getLogger(__name__)

ACTOR_USERNAME = "platform-webhook"
ACTOR_NAME = "订单平台 Order platform"
ACTOR_ROLES = (Role.CUSTOMER_SERVICE,)
# An order with the most items a platform sends is a few hundred KB of JSON.
MAX_BODY_BYTES = 1024 * 1024
# Deliveries are remembered a day; the timestamp window refuses older ones anyway.
DELIVERY_TTL_MS = 24 * 3600 * 1000

ORDER_CREATED = "order.created"
ORDER_STATUS = "order.status"
_STATUS_FIELDS = frozenset({"event", "number", "to", "note", "photos", "carrier", "tracking_no"})


@dataclass(frozen=True, slots=True)
class OrderCreated:
    spec: OrderSpec


@dataclass(frozen=True, slots=True)
class OrderStatusChanged:
    number: str
    change: StatusChange


WebhookEvent = OrderCreated | OrderStatusChanged


def parse_delivery(body: bytes, workflows: Workflows) -> WebhookEvent:
    """The event a delivery's JSON body describes.

    Raises:
        BadRequest: not a JSON object, an unknown event, or invalid fields.
        NotFound: an order names a workflow this server does not run.
    """
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(say("webhooks.body_must_json_object")) from exc
    if not isinstance(raw, dict):
        raise BadRequest(say("webhooks.body_must_json_object"))
    event = raw.get("event")
    if event == ORDER_CREATED:
        unknown = sorted(set(raw) - {"event", "order"})
        if unknown:
            raise BadRequest(
                say("webhooks.unknown_created_fields", order_created=ORDER_CREATED, unknown=unknown)
            )
        order = raw.get("order")
        if not isinstance(order, dict):
            raise BadRequest(
                say("webhooks.needs_order_same_object_post", order_created=ORDER_CREATED)
            )
        return OrderCreated(parse_order_spec(order, workflows.get))
    if event == ORDER_STATUS:
        unknown = sorted(set(raw) - _STATUS_FIELDS)
        if unknown:
            raise BadRequest(
                say("webhooks.unknown_status_fields", order_status=ORDER_STATUS, unknown=unknown)
            )
        change: dict[str, Any] = {k: v for k, v in raw.items() if k not in ("event", "number")}
        return OrderStatusChanged(order_number(raw.get("number")), parse_status_change(change))
    raise BadRequest(
        say("webhooks.event_must", order_created=ORDER_CREATED, order_status=ORDER_STATUS)
    )


@dataclass(frozen=True, slots=True)
class DeliverWebhook:
    """Do what one verified delivery asks, and remember it, in one transaction."""

    digest: str
    actor: User
    event: WebhookEvent
    workflows: Workflows

    async def apply(self, tx: WriteTxn) -> Order:
        if await delivery_store.is_delivery_seen(tx.conn, self.digest):
            raise Conflict(say("webhooks.delivery_was_received_already_replay"))
        if isinstance(self.event, OrderCreated):
            order = await CreateOrder(self.actor, self.event.spec, self.workflows).apply(tx)
        else:
            order_id = await order_store.find_order_id(tx.conn, number=self.event.number)
            if order_id is None:
                raise NotFound(say("webhooks.no_order_numbered", number=self.event.number))
            order = await AdvanceOrder(
                self.actor, order_id, self.event.change, self.workflows
            ).apply(tx)
        # Only after the order's own checks passed: a refused delivery leaves no trace.
        await delivery_store.insert_delivery_txn(tx.conn, self.digest, tx.now_ms)
        await delivery_store.prune_deliveries_txn(tx.conn, tx.now_ms - DELIVERY_TTL_MS)
        return order


@dataclass(frozen=True, slots=True)
class Received:
    event: str
    order: Order
    workflow: Workflow


class Webhooks:
    def __init__(
        self,
        db: Database,
        writer: GroupCommitWriter,
        clock: Clock,
        accounts: Accounts,
        workflows: Workflows,
        secret: str | None,
    ) -> None:
        self._db = db
        self._writer = writer
        self._clock = clock
        self._accounts = accounts
        self._workflows = workflows
        self._secret = secret
        self._actor_lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self._secret)

    async def receive(self, timestamp: str | None, signature: str | None, body: bytes) -> Received:
        """Verify a delivery and do what it asks.

        Raises:
            NotFound: webhooks are off (no secret set), or the order is unknown.
            SignatureRejected: missing, malformed, stale or wrong signature.
            TooLarge: the body is over MAX_BODY_BYTES.
            Conflict: a replay, or the order's state does not allow the change.
            BadRequest, Forbidden: as for the same call over the HTTP API.
        """
        if not self._secret:
            raise NotFound(say("webhooks.order_webhooks_are_not_enabled"))
        if len(body) > MAX_BODY_BYTES:
            raise TooLarge(
                say("webhooks.delivery_may_carry_at_most", max_body_bytes=MAX_BODY_BYTES)
            )
        try:
            verified = verify(self._secret, timestamp, signature, body, self._clock.now_ms() / 1000)
        except SignatureRejected as exc:
            logger.warning("webhook delivery refused: %s", exc.reason.value)
            raise
        event = parse_delivery(body, self._workflows)
        actor = await self._actor()
        order: Order = await self._writer.submit(
            DeliverWebhook(verified.digest, actor, event, self._workflows)
        )
        name = ORDER_CREATED if isinstance(event, OrderCreated) else ORDER_STATUS
        logger.info("webhook %s done order=%s status=%s", name, order.id, order.status)
        return Received(name, order, self._workflows.get(order.workflow))

    async def _actor(self) -> User:
        """The platform's staff account, made on first use."""
        async with self._actor_lock:
            found = await self._find_actor()
            if found is None:
                try:
                    actor = NewStaff(
                        ACTOR_USERNAME, secrets.token_urlsafe(32), ACTOR_ROLES, ACTOR_NAME
                    )
                    found = await self._accounts.create_user(actor)
                    logger.info("created the %s account id=%s", ACTOR_USERNAME, found.id)
                except Conflict:
                    # Another server process made it first, or an admin disabled it.
                    found = await self._find_actor()
        if found is None:
            raise Forbidden(say("webhooks.account_disabled", actor_username=ACTOR_USERNAME))
        if found.kind is not UserKind.STAFF:
            raise Forbidden(say("webhooks.not_staff_account", actor_username=ACTOR_USERNAME))
        return found

    async def _find_actor(self) -> User | None:
        async with self._db.read() as conn:
            found = await account_store.find_login(conn, ACTOR_USERNAME)
        return None if found is None else found[0]
