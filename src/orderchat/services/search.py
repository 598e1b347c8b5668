"""Searching the history: what a person may see, found by what they would type.

The index is written with each message (`WriteTxn.append_message`), so a
message is found the moment its sender has the ack. Visibility is decided in
the query itself: a member finds the conversations they are in now, a customer
never a staff-only note, nobody a recalled message, except an administrator's
audit search, which sees everything and says which results were recalled.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from orderchat.core.audit import AuditAction, AuditEntry
from orderchat.core.errors import Forbidden, NotFound
from orderchat.core.ids import OrderId
from orderchat.core.model import Message, User, UserKind
from orderchat.core.search import (
    MAX_PAGE,
    SearchFilters,
    Snippet,
    SortBy,
    Viewer,
    page_at,
    parse_query,
    search_parts,
    snippet,
)
from orderchat.core.texts import say
from orderchat.services.ports import Clock
from orderchat.storage import accounts as account_store
from orderchat.storage import audit as audit_store
from orderchat.storage import conversations as conv_store
from orderchat.storage import messages as msg_store
from orderchat.storage import orders as order_store
from orderchat.storage import search as search_store
from orderchat.storage.engine import Connection, Database


@dataclass(frozen=True, slots=True)
class SearchHit:
    message: Message  # as members see it now: the latest text of an edited message
    snippet: Snippet
    conv_kind: str
    conv_title: str | None
    sender_name: str | None
    order_id: str | None
    order_number: str | None


@dataclass(frozen=True, slots=True)
class SearchPage:
    hits: list[SearchHit]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class SearchRequest:
    query: str
    filters: SearchFilters
    sort: SortBy = SortBy.TIME
    cursor: str | None = None
    limit: int = 20
    audit: bool = False


class Search:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def find(self, user: User, request: SearchRequest) -> SearchPage:
        query = parse_query(request.query)
        page = page_at(request.sort, request.cursor)
        if request.audit and not user.is_admin:
            raise Forbidden(say("search.only_admin_may_audit"))
        viewer = Viewer(user.id, staff=user.kind is UserKind.STAFF, audit=request.audit)
        limit = max(1, min(request.limit, MAX_PAGE))
        async with self._db.read() as conn:
            filters = await self._checked(conn, user, viewer, request.filters)
            found = await search_store.search(conn, query, viewer, filters, page, limit + 1)
            current = await msg_store.with_edits(conn, [f.message for f in found[:limit]])
        hits = [
            SearchHit(
                message=message,
                snippet=snippet(search_parts(message), query),
                conv_kind=f.conv_kind,
                conv_title=f.conv_title,
                sender_name=f.sender_name,
                order_id=f.order_id,
                order_number=f.order_number,
            )
            for f, message in zip(found, current, strict=False)
        ]
        if request.audit:
            await self._record_audit(user, request, len(hits))
        more = len(found) > limit
        next_cursor = page.cursor_after(found[limit - 1].doc_id, limit) if more else None
        return SearchPage(hits, next_cursor)

    async def _record_audit(self, user: User, request: SearchRequest, count: int) -> None:
        """An audit search reads what members cannot (recalled messages, every
        conversation): who looked for what is itself on the record."""
        filters = request.filters
        details = {"query": request.query, "results": count, "conv": filters.conv}
        now_ms = self._clock.now_ms()
        entry = AuditEntry(
            AuditAction.AUDIT_SEARCHED, user.id, user.id, now_ms, filters.conv, details
        )
        async with self._db.write("audit_search") as conn:
            await audit_store.record_txn(conn, entry)

    @staticmethod
    async def _checked(
        conn: Connection, user: User, viewer: Viewer, filters: SearchFilters
    ) -> SearchFilters:
        """A filter on a conversation or an order the person may not see is refused, not empty."""
        if filters.conv is not None:
            await conv_store.get_conversation(conn, filters.conv)  # 404 when unknown
            membership = await conv_store.find_membership(conn, filters.conv, user.id)
            if not viewer.audit and (membership is None or membership.left_pos is not None):
                raise Forbidden(say("conversations.you_are_not_member_conversation"))
        if filters.order is None:
            return filters
        order = await order_store.get_order(conn, OrderId(filters.order))
        if user.kind is UserKind.CUSTOMER and order.customer_id != user.id:
            # Another customer's order answers as an unknown one does.
            raise NotFound(say("inventory.no_order", order_id=filters.order))
        return replace(filters, order=order.id, order_conv=order.conv_id)

    async def names(
        self, username: str, order_number: str | None, sender: str | None
    ) -> tuple[User, str | None, str | None]:
        """For the command line: the searching staff member, an order by its number and a
        sender by username, as the search takes them (ids)."""
        async with self._db.read() as conn:
            user, _disabled = await account_store.get_staff_by_username(conn, username)
            order_id = None
            if order_number is not None:
                order_id = await order_store.find_order_id(conn, number=order_number)
                if order_id is None:
                    raise NotFound(say("inventory.no_order", order_id=order_number))
            sender_id = None
            if sender is not None:
                sender_id = (await account_store.get_staff_by_username(conn, sender))[0].id
        return user, order_id, sender_id
