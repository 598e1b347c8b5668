"""Consults' writes, each one group-commit operation under the consult's row lock.

An op checks everything before it writes (the writer rolls back the messages
of an op that fails, not its SQL): a refused take, transfer or close changes
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from orderchat.core.audit import AuditAction, AuditEntry
from orderchat.core.consults import ConsultRules, ConsultStatus, Source, away_text
from orderchat.core.errors import Conflict, Forbidden
from orderchat.core.ids import UserId
from orderchat.core.model import ConversationKind, MessageKind, Role, User, UserKind
from orderchat.core.orders import Customer
from orderchat.core.texts import say
from orderchat.services.accounts import NewSession, token_hash
from orderchat.services.chat.conversations import open_conversation_txn
from orderchat.services.consults.notes import post_note_txn, role_mentions, who_to_tell
from orderchat.services.consults.routing import (
    assign_txn,
    drain_txn,
    ensure_members_txn,
    role_staff_txn,
    route_txn,
)
from orderchat.services.writer import WriteTxn
from orderchat.storage import accounts as account_store
from orderchat.storage import audit as audit_store
from orderchat.storage import consults as consult_store
from orderchat.storage import orders as order_store
from orderchat.storage import staff as staff_store
from orderchat.storage.consults import ConsultRow

SERVES = frozenset({Role.CUSTOMER_SERVICE, Role.SALES})


@dataclass(frozen=True, slots=True)
class NewVisitor:
    name: str
    phone: str | None
    email: str | None
    language: str


@dataclass(frozen=True, slots=True)
class Arrival:
    """Where a consult comes from and what the visitor first says."""

    source: Source = Source.PAGE
    tag: str | None = None
    page_url: str | None = None
    sku: str | None = None
    text: str | None = None
    language: str | None = None  # a returning visitor's page may switch it


@dataclass(frozen=True, slots=True)
class Opened:
    row: ConsultRow
    visitor: User
    fresh: bool  # False: the visitor's consult still open, given back


async def _new_visitor_txn(tx: WriteTxn, new: NewVisitor, session: NewSession | None) -> User:
    user = User(
        id=tx.ids.user(), username="", display_name=new.name, roles=(), kind=UserKind.CUSTOMER
    )
    user = replace(user, username=f"visitor-{user.id[2:]}")
    await account_store.insert_user_txn(tx.conn, user, None, tx.now_ms)
    customer = Customer(user.id, new.name, new.phone, new.email, None, "retail", new.language)
    await order_store.insert_customer_txn(tx.conn, customer, tx.now_ms)
    await consult_store.set_verified_txn(tx.conn, user.id, verified=False)
    if session is not None:
        await account_store.insert_session_txn(
            tx.conn,
            session.session_id,
            user.id,
            token_hash(session.token),
            session.device,
            tx.now_ms,
            session.expires_at_ms,
        )
    return user


@dataclass(frozen=True, slots=True)
class StartConsult:
    """A visitor's consult: a new visitor with it, or one who came back."""

    rules: ConsultRules
    arrival: Arrival
    new_visitor: NewVisitor | None = None
    visitor: User | None = None
    # A new visitor's first session, written with them.
    session: NewSession | None = None

    async def apply(self, tx: WriteTxn) -> Opened:
        if self.visitor is not None:
            current = await consult_store.inbox(
                tx.conn, consult_store.InboxQuery(visitor=self.visitor.id, limit=1)
            )
            if current[0]:
                return Opened(current[0][0], self.visitor, fresh=False)
            await _refuse_blocked(tx, self.visitor.id)
            visitor = self.visitor
            customer = await order_store.get_customer(tx.conn, visitor.id)
            language = self.arrival.language or customer.language
        else:
            assert self.new_visitor is not None
            visitor = await _new_visitor_txn(tx, self.new_visitor, self.session)
            language = self.new_visitor.language
        queue = self.rules.queue_for(language)
        staff = await role_staff_txn(tx, queue.roles)
        members = list(dict.fromkeys([visitor.id, *staff]))
        conv = await open_conversation_txn(
            tx, ConversationKind.CONSULT, visitor.display_name, visitor.id, members
        )
        await staff_store.mark_by_role_txn(tx.conn, conv.id, staff)
        arrival = self.arrival
        row = ConsultRow(
            conv_id=conv.id,
            visitor_id=visitor.id,
            status=ConsultStatus.QUEUED,
            queue=queue.name,
            roles=queue.roles,
            assignee_id=None,
            language=language,
            source=arrival.source.value,
            tag=arrival.tag,
            page_url=arrival.page_url,
            sku=arrival.sku,
            created_at_ms=tx.now_ms,
            opened_at_ms=tx.now_ms,
            waiting_since_ms=tx.now_ms,  # a visitor waits for a greeting, question or not
            first_response_at_ms=None,
            escalated_at_ms=None,
            closed_at_ms=None,
            order_id=None,
        )
        await consult_store.insert_consult_txn(tx.conn, row)
        context = {"source": row.source, "tag": row.tag, "page_url": row.page_url, "sku": row.sku}
        said = say("note.consult_opened", name=visitor.display_name)
        await post_note_txn(tx, conv, visitor.id, "consult_opened", said, row, extra=context)
        if arrival.text:
            await tx.append_message(tx.convs[conv.id], visitor.id, MessageKind.TEXT, arrival.text)
        row = await self._route(tx, row, visitor)
        return Opened(row, visitor, fresh=True)

    async def _route(self, tx: WriteTxn, row: ConsultRow, visitor: User) -> ConsultRow:
        routed = await route_txn(tx, self.rules, row, visitor.id)
        conv = await tx.conversation(row.conv_id)
        if routed.status is ConsultStatus.QUEUED:
            position = await consult_store.position(tx.conn, routed)
            said = say("note.consult_queued", position=position or 1)
            mentions = role_mentions(routed)
            await post_note_txn(
                tx, conv, visitor.id, "consult_queued", said, routed, mentions=mentions
            )
        if not self.rules.is_open(tx.now_ms):
            await post_away_txn(tx, self.rules, routed, visitor.id)
        return routed


async def post_away_txn(tx: WriteTxn, rules: ConsultRules, row: ConsultRow, by: UserId) -> None:
    """Outside the hours the visitor learns when the shop opens."""
    opens = datetime.fromtimestamp(rules.next_open_ms(tx.now_ms) / 1000, rules.local(0).tzinfo)
    when = opens.strftime("%m-%d %H:%M")
    own = {lang: away_text(rules, lang, when) for lang in ("zh-CN", "en")}
    if all(own.values()):
        said = say("note.consult_away_own", text={k: v for k, v in own.items() if v})
    else:
        said = say("note.consult_away", next_open=when)
    conv = await tx.conversation(row.conv_id)
    await post_note_txn(tx, conv, by, "consult_away", said, row)


async def _refuse_blocked(tx: WriteTxn, visitor: UserId) -> None:
    flags = await consult_store.visitor_flags(tx.conn, visitor)
    if flags is not None and (flags.blocked or flags.erased):
        raise Forbidden(say("consults.blocked"))


async def load_for_staff_txn(tx: WriteTxn, actor: User, consult: str) -> ConsultRow:
    """The consult, locked, for a staff member who may act on it: its agent, a holder of
    one of its roles, or an admin. Anyone else learns nothing of it."""
    if actor.kind is not UserKind.STAFF:
        raise Forbidden(say("permissions.only_staff_may_do"))
    await tx.conversation(consult)
    row = await consult_store.get_consult(tx.conn, consult)
    may = actor.is_admin or actor.id == row.assignee_id or set(row.roles) & set(actor.roles)
    if not may:
        raise Forbidden(say("consults.not_your_queue"))
    return row


async def _name(tx: WriteTxn, user_id: UserId) -> str:
    return (await account_store.get_user(tx.conn, user_id)).display_name


@dataclass(frozen=True, slots=True)
class TakeConsult:
    rules: ConsultRules
    actor: User
    consult: str

    async def apply(self, tx: WriteTxn) -> ConsultRow:
        row = await load_for_staff_txn(tx, self.actor, self.consult)
        if row.status is ConsultStatus.CLOSED:
            raise Conflict(say("consults.is_closed"))
        if row.assignee_id == self.actor.id:
            return row
        if row.assignee_id is not None:
            raise Conflict(say("consults.already_taken", agent=await _name(tx, row.assignee_id)))
        return await assign_txn(tx, self.rules, row, self.actor.id, self.actor.id)


@dataclass(frozen=True, slots=True)
class TransferConsult:
    rules: ConsultRules
    actor: User
    consult: str
    to_user: UserId | None
    to_role: Role | None
    note: str | None

    async def apply(self, tx: WriteTxn) -> ConsultRow:
        row = await load_for_staff_txn(tx, self.actor, self.consult)
        if row.status is ConsultStatus.CLOSED:
            raise Conflict(say("consults.is_closed"))
        if self.to_user is not None:
            target = await account_store.get_user(tx.conn, self.to_user)
            if target.kind is not UserKind.STAFF or not await _active(tx, target.id):
                raise Conflict(say("consults.transfer_to_staff"))
            if target.id == row.assignee_id:
                raise Conflict(say("consults.already_theirs", agent=target.display_name))
        previous = row.assignee_id
        conv = await tx.conversation(row.conv_id)
        if self.to_user is not None:
            moved = await self._to_user(tx, row, target)
        else:
            assert self.to_role is not None
            moved = await self._to_role(tx, row, self.to_role)
        if self.note:
            said = say("note.consult_transfer_note", by=self.actor.display_name, note=self.note)
            mentions = (self.to_user,) if self.to_user else role_mentions(moved)
            await post_note_txn(
                tx,
                conv,
                self.actor.id,
                "consult_transfer_note",
                said,
                moved,
                mentions=mentions,
                internal=True,
            )
        if previous is not None:
            await drain_txn(tx, self.rules, previous, self.actor.id)
        return await consult_store.get_consult(tx.conn, row.conv_id)

    async def _to_user(self, tx: WriteTxn, row: ConsultRow, target: User) -> ConsultRow:
        await ensure_members_txn(tx, row.conv_id, [target.id])
        moved = replace(row, status=ConsultStatus.OPEN, assignee_id=target.id)
        await consult_store.save_consult_txn(tx.conn, moved)
        conv = await tx.conversation(row.conv_id)
        said = say("note.consult_transferred", agent=target.display_name)
        await post_note_txn(
            tx,
            conv,
            self.actor.id,
            "consult_transferred",
            said,
            moved,
            assignee_name=target.display_name,
            mentions=(target.id,),
        )
        return moved

    async def _to_role(self, tx: WriteTxn, row: ConsultRow, role: Role) -> ConsultRow:
        queue = self.rules.queue_of_role(role)
        staff = await role_staff_txn(tx, (role,))
        await ensure_members_txn(tx, row.conv_id, staff)
        await staff_store.mark_by_role_txn(tx.conn, row.conv_id, staff)
        moved = replace(
            row, status=ConsultStatus.QUEUED, assignee_id=None, queue=queue.name, roles=(role,)
        )
        await consult_store.save_consult_txn(tx.conn, moved)
        conv = await tx.conversation(row.conv_id)
        said = say("note.consult_transferred_colleague")
        await post_note_txn(
            tx,
            conv,
            self.actor.id,
            "consult_transferred",
            said,
            moved,
            mentions=role_mentions(moved),
        )
        return await route_txn(tx, self.rules, moved, self.actor.id)


async def _active(tx: WriteTxn, user_id: UserId) -> bool:
    return await account_store.is_active_staff(tx.conn, user_id)


@dataclass(frozen=True, slots=True)
class CloseConsult:
    rules: ConsultRules
    actor: User
    consult: str

    async def apply(self, tx: WriteTxn) -> ConsultRow:
        row = await load_for_staff_txn(tx, self.actor, self.consult)
        if row.status is ConsultStatus.CLOSED:
            return row
        closed = replace(
            row, status=ConsultStatus.CLOSED, closed_at_ms=tx.now_ms, waiting_since_ms=None
        )
        await consult_store.save_consult_txn(tx.conn, closed)
        conv = await tx.conversation(row.conv_id)
        await post_note_txn(
            tx, conv, self.actor.id, "consult_closed", say("note.consult_closed"), closed
        )
        if row.assignee_id is not None:
            await drain_txn(tx, self.rules, row.assignee_id, self.actor.id)
        return closed


@dataclass(frozen=True, slots=True)
class EscalateConsult:
    """Nobody on staff answered in time: an urgent note climbs the ladder."""

    rules: ConsultRules
    consult: str

    async def apply(self, tx: WriteTxn) -> bool:
        await tx.conversation(self.consult)
        row = await consult_store.get_consult(tx.conn, self.consult)
        due = row.opened_at_ms + self.rules.first_response_s * 1000
        answered = row.first_response_at_ms is not None or row.escalated_at_ms is not None
        if row.status is ConsultStatus.CLOSED or answered or due > tx.now_ms:
            return False
        escalated = replace(row, escalated_at_ms=tx.now_ms)
        await consult_store.save_consult_txn(tx.conn, escalated)
        visitor = await _name(tx, row.visitor_id)
        minutes = max(1, (tx.now_ms - row.opened_at_ms) // 60_000)
        said = say("note.consult_escalated", name=visitor, minutes=minutes)
        conv = await tx.conversation(row.conv_id)
        await post_note_txn(
            tx,
            conv,
            row.visitor_id,
            "consult_escalated",
            said,
            escalated,
            mentions=who_to_tell(escalated),
            internal=True,
            urgent=True,
        )
        return True


@dataclass(frozen=True, slots=True)
class SetBlocked:
    actor: User
    visitor: UserId
    blocked: bool

    async def apply(self, tx: WriteTxn) -> None:
        if self.actor.kind is not UserKind.STAFF:
            raise Forbidden(say("permissions.only_staff_may_do"))
        if not (self.actor.is_admin or SERVES & set(self.actor.roles)):
            raise Forbidden(say("consults.not_your_queue"))
        flags = await consult_store.visitor_flags(tx.conn, self.visitor)
        if flags is None:
            raise Conflict(say("consults.not_a_visitor", user=self.visitor))
        if flags.blocked == self.blocked:
            return
        when = tx.now_ms if self.blocked else None
        await consult_store.set_blocked_txn(
            tx.conn, self.visitor, self.actor.id if self.blocked else None, when
        )
        action = AuditAction.VISITOR_BLOCKED if self.blocked else AuditAction.VISITOR_UNBLOCKED
        await audit_store.record_txn(
            tx.conn, AuditEntry(action, self.actor.id, self.visitor, tx.now_ms)
        )
