"""Consults: what the API and the timers call (docs/consults.md).

Writes go through the group-commit writer as ops (`ops.py`, `outcomes.py`);
reads build each consult as its reader may see it (`notes.consult_view`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orderchat.core.consults import ConsultRules, ConsultStatus
from orderchat.core.errors import BadRequest, DomainError, Forbidden, NotFound
from orderchat.core.ids import ConversationId, UserId
from orderchat.core.model import Role, User, UserKind
from orderchat.core.order_requests import OrderSpec
from orderchat.core.orders import Order
from orderchat.core.ratelimit import Rate
from orderchat.core.texts import say
from orderchat.services.accounts import Accounts, SignedIn
from orderchat.services.consults.hooks import ConsultHooks
from orderchat.services.consults.notes import VisitorCard, consult_view
from orderchat.services.consults.ops import (
    Arrival,
    CloseConsult,
    EscalateConsult,
    NewVisitor,
    Opened,
    SetBlocked,
    StartConsult,
    TakeConsult,
    TransferConsult,
)
from orderchat.services.consults.outcomes import OrderFromConsult, ShareProduct
from orderchat.services.leases import Leases
from orderchat.services.limits import ClusterRateLimiter, SharedBuckets
from orderchat.services.orders.workflows import Workflows
from orderchat.services.ports import Clock
from orderchat.services.writer import GroupCommitWriter
from orderchat.storage import consults as consult_store
from orderchat.storage import orders as order_store
from orderchat.storage.consults import ConsultRow, InboxQuery
from orderchat.storage.engine import Database

logger = logging.getLogger(__name__)

# New consults per address: a sale's rush from one shop Wi-Fi passes, a script does not.
STARTS_PER_ADDRESS = Rate(per_s=0.5, burst=20)
TIMERS_LEASE = "consult-timers"
LOOK_EVERY_S = 5.0
INBOX_VIEWS = ("unassigned", "mine", "role", "all")


@dataclass(frozen=True, slots=True)
class ConsultSettings:
    rules: ConsultRules
    visitor_max_upload_bytes: int = 10 * 1024 * 1024
    rate_limits: bool = True


class Consults:
    def __init__(
        self,
        db: Database,
        writer: GroupCommitWriter,
        clock: Clock,
        accounts: Accounts,
        leases: Leases,
        workflows: Workflows,
        settings: ConsultSettings,
        shared_limits: SharedBuckets | None = None,
    ) -> None:
        self._db = db
        self._writer = writer
        self._clock = clock
        self._accounts = accounts
        self._leases = leases
        self._workflows = workflows
        self.rules = settings.rules
        self.hooks = ConsultHooks(settings.rules, settings.visitor_max_upload_bytes)
        self._starts = ClusterRateLimiter(
            "consult-start", STARTS_PER_ADDRESS, enabled=settings.rate_limits, shared=shared_limits
        )

    # --- visitors ------------------------------------------------------------------

    async def start(
        self, new: NewVisitor, arrival: Arrival, address: str, device: str | None
    ) -> tuple[SignedIn, dict[str, Any]]:
        """A new visitor and their first consult, and a session for their device."""
        await self._starts.hit(
            address, self._clock.monotonic_s(), say("ratelimit.consults_from_address")
        )
        session = self._accounts.session_to_open(device or "visitor")
        opened: Opened = await self._writer.submit(
            StartConsult(self.rules, arrival, new_visitor=new, session=session)
        )
        return session.signed_in(opened.visitor), await self.view_of(opened.visitor, opened.row)

    async def open_another(self, user: User, arrival: Arrival) -> tuple[bool, dict[str, Any]]:
        """A returning visitor's consult: the one still open, else a new one."""
        if user.kind is not UserKind.CUSTOMER:
            raise Forbidden(say("consults.visitors_only"))
        opened: Opened = await self._writer.submit(StartConsult(self.rules, arrival, visitor=user))
        return opened.fresh, await self.view_of(user, opened.row)

    async def mine(self, user: User) -> dict[str, Any]:
        """A visitor's or customer's own consults and orders, newest first."""
        if user.kind is not UserKind.CUSTOMER:
            raise Forbidden(say("consults.visitors_only"))
        async with self._db.read() as conn:
            rows = await consult_store.consults_of_visitor(conn, user.id)
            orders = await order_store.list_orders(conn, customer_id=user.id)
            views = await self._views(conn, user, rows)
        return {"consults": views, "orders": [_order_brief(o, self._workflows) for o in orders]}

    # --- staff ---------------------------------------------------------------------

    async def inbox(
        self, user: User, view: str, statuses: Sequence[ConsultStatus], limit: int, offset: int
    ) -> dict[str, Any]:
        _require_staff(user)
        query = self._inbox_query(user, view, tuple(statuses), limit, offset)
        async with self._db.read() as conn:
            rows, total = await consult_store.inbox(conn, query)
            views = await self._views(conn, user, rows)
            counts = await self._counts(conn, user)
        return {"consults": views, "total": total, "counts": counts}

    def _inbox_query(
        self, user: User, view: str, statuses: tuple[ConsultStatus, ...], limit: int, offset: int
    ) -> InboxQuery:
        mine = tuple(r for r in user.roles if r is not Role.ADMIN)
        base = InboxQuery(statuses=statuses, limit=limit, offset=offset)
        if view == "mine":
            return InboxQuery(assignee=user.id, statuses=statuses, limit=limit, offset=offset)
        if view == "all":
            if not user.is_admin:
                raise Forbidden(say("consults.all_for_admins"))
            return base
        roles = None if user.is_admin and view == "unassigned" else mine
        if view == "unassigned":
            return InboxQuery(
                unassigned=True, roles=roles, statuses=statuses, limit=limit, offset=offset
            )
        return InboxQuery(roles=mine, statuses=statuses, limit=limit, offset=offset)

    async def _counts(self, conn: Any, user: User) -> dict[str, int]:
        counts = {}
        for view in INBOX_VIEWS:
            if view == "all" and not user.is_admin:
                continue
            query = self._inbox_query(user, view, (ConsultStatus.QUEUED, ConsultStatus.OPEN), 1, 0)
            counts[view] = (await consult_store.inbox(conn, query))[1]
        return counts

    async def get(self, user: User, consult: str) -> dict[str, Any]:
        async with self._db.read() as conn:
            row = await self._visible(conn, user, consult)
            return (await self._views(conn, user, [row]))[0]

    async def _visible(self, conn: Any, user: User, consult: str) -> ConsultRow:
        """A consult its reader may see; to anyone else it does not exist."""
        row = await consult_store.find_consult(conn, consult)
        if row is None or (user.kind is not UserKind.STAFF and row.visitor_id != user.id):
            raise NotFound(say("consults.no_consult", consult=consult))
        return row

    async def take(self, user: User, consult: str) -> dict[str, Any]:
        await self._writer.submit(TakeConsult(self.rules, user, consult))
        return await self.get(user, consult)

    async def transfer(
        self,
        user: User,
        consult: str,
        to_user: UserId | None,
        to_role: Role | None,
        note: str | None,
    ) -> dict[str, Any]:
        if (to_user is None) == (to_role is None):
            raise BadRequest(say("consults.transfer_one_target"))
        await self._writer.submit(
            TransferConsult(self.rules, user, consult, to_user, to_role, note)
        )
        return await self.get(user, consult)

    async def close(self, user: User, consult: str) -> dict[str, Any]:
        await self._writer.submit(CloseConsult(self.rules, user, consult))
        return await self.get(user, consult)

    async def order(self, user: User, consult: str, spec: OrderSpec) -> Order:
        op = OrderFromConsult(self.rules, user, consult, spec, self._workflows)
        order: Order = await self._writer.submit(op)
        return order

    async def set_blocked(self, user: User, visitor: UserId, blocked: bool) -> None:
        await self._writer.submit(SetBlocked(user, visitor, blocked))

    async def share_product(
        self, user: User, conv: ConversationId, sku: str, ref: str | None
    ) -> tuple[int, str]:
        seq_and_id: tuple[int, str] = await self._writer.submit(
            ShareProduct(user, conv, sku, ref, self.hooks)
        )
        return seq_and_id

    async def history(self, user: User, customer: UserId) -> dict[str, Any]:
        """A customer's consults and orders together, for staff."""
        _require_staff(user)
        async with self._db.read() as conn:
            record = await order_store.get_customer(conn, customer)
            rows = await consult_store.consults_of_visitor(conn, customer)
            orders = await order_store.list_orders(conn, customer_id=customer)
            views = await self._views(conn, user, rows)
            flags = await consult_store.visitor_flags(conn, customer)
        return {
            "customer": {
                "id": record.user_id,
                "name": record.name,
                "phone": record.phone,
                "email": record.email,
                "language": record.language,
                "verified": bool(flags and flags.verified),
                "blocked": bool(flags and flags.blocked),
            },
            "consults": views,
            "orders": [_order_brief(o, self._workflows) for o in orders],
        }

    async def of_order(self, order_id: str) -> list[dict[str, Any]]:
        """The consults an order came from, for whoever may see the order."""
        async with self._db.read() as conn:
            rows = await consult_store.consults_of_order(conn, order_id)
        return [{"id": r.conv_id, "created_ts": r.created_at_ms, "source": r.source} for r in rows]

    # --- views ---------------------------------------------------------------------

    async def view_of(self, user: User, row: ConsultRow) -> dict[str, Any]:
        async with self._db.read() as conn:
            fresh = await consult_store.get_consult(conn, row.conv_id)
            return (await self._views(conn, user, [fresh]))[0]

    async def _views(self, conn: Any, viewer: User, rows: list[ConsultRow]) -> list[dict[str, Any]]:
        """A page of consults as `viewer` may see them, with a few queries for the page."""
        visitors = await consult_store.visitor_records(conn, [r.visitor_id for r in rows])
        names = await consult_store.display_names(
            conn, [r.assignee_id for r in rows if r.assignee_id is not None]
        )
        numbers = await consult_store.order_numbers(
            conn, [r.order_id for r in rows if r.order_id is not None]
        )
        views = []
        for row in rows:
            position = await consult_store.position(conn, row)
            number = numbers.get(row.order_id) if row.order_id else None
            card = _card(visitors[row.visitor_id])
            views.append(consult_view(row, viewer, card, names, position, number))
        return views

    # --- the first-response timer ----------------------------------------------------

    async def tick(self, now_ms: int) -> int:
        """Escalate every consult whose first answer is overdue; how many were."""
        async with self._db.read() as conn:
            due = await consult_store.overdue(conn, now_ms, self.rules.first_response_s * 1000)
        escalated = 0
        for consult in due:
            try:
                escalated += bool(await self._writer.submit(EscalateConsult(self.rules, consult)))
            except DomainError:
                logger.warning("consult %s could not be escalated", consult, exc_info=True)
        return escalated

    async def run_timers(self, stop: asyncio.Event) -> None:
        """On the node holding the lease, look for overdue consults every few seconds."""
        while not stop.is_set():
            try:
                async with asyncio.timeout(LOOK_EVERY_S):
                    await stop.wait()
                return
            except TimeoutError:
                pass
            try:
                if await self._leases.hold(TIMERS_LEASE):
                    await self.tick(self._clock.now_ms())
            except Exception:
                logger.warning("consult timers failed; trying again", exc_info=True)


def _card(record: consult_store.VisitorRecord) -> VisitorCard:
    flags = record.flags
    return VisitorCard(
        user_id=record.user_id,
        display_name=record.name,
        language=record.language,
        phone=record.phone,
        email=record.email,
        verified=flags.verified,
        blocked=flags.blocked,
        erased=flags.erased,
    )


def _order_brief(order: Order, workflows: Workflows) -> dict[str, Any]:
    workflow = workflows.get(order.workflow)
    return {
        "id": order.id,
        "number": order.number,
        "status": order.status,
        "status_label": {lang: workflow.label(order.status, lang) for lang in ("zh-CN", "en")},
        "conv": order.conv_id,
        "created_ts": order.created_at_ms,
    }


def _require_staff(user: User) -> None:
    if user.kind is not UserKind.STAFF:
        raise Forbidden(say("permissions.only_staff_may_do"))
