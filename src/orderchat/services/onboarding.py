"""What a role brings with it: its channel and the open order threads whose workflow
names it. Gaining a role joins them; losing it leaves the ones the role alone
brought (never a thread someone was added to in person, or whose order they
created).

Everything here runs inside a group-commit transaction, after the user's row
holds the new roles, and tells live clients through the ordinary `member` event.
It posts no messages: a role change is not news in an order's thread.
"""

from __future__ import annotations

from collections.abc import Iterable

from orderchat.core.ids import ConversationId, UserId
from orderchat.core.model import MemberAction, Role
from orderchat.core.routing import channel_role
from orderchat.core.workflows import Workflow
from orderchat.services.chat.conversations import member_event
from orderchat.services.orders.events import role_channel_txn
from orderchat.services.orders.workflows import Workflows
from orderchat.services.writer import WriteTxn
from orderchat.storage import conversations as conv_store
from orderchat.storage import staff as staff_store


def thread_roles(workflow: Workflow) -> frozenset[Role]:
    """The roles whose holders are in an order's thread (as order creation puts them)."""
    return workflow.staff_roles | {Role.ADMIN}


def _workflow(workflows: Workflows, name: str) -> Workflow | None:
    return next((w for w in workflows.all() if w.name == name), None)


def forget_member_roles_txn(tx: WriteTxn, conv_ids: Iterable[ConversationId]) -> None:
    """Cached member sets carry each member's roles (mentions use them): reread them."""
    for conv_id in conv_ids:
        tx.members_changed(conv_id)


async def join_roles_txn(
    tx: WriteTxn, user_id: UserId, roles: Iterable[Role], workflows: Workflows, by: UserId | None
) -> list[ConversationId]:
    """Put the user in each role's channel and in the open order threads naming it."""
    wanted = frozenset(roles)
    if not wanted:
        return []
    joined: list[ConversationId] = []
    for role in sorted(wanted):
        # The channel takes in every holder of the role, this user among them.
        joined.append((await role_channel_txn(tx, role)).id)
    for thread in await staff_store.list_order_threads(tx.conn):
        workflow = _workflow(workflows, thread.workflow)
        if workflow is None or thread.status in workflow.terminal:
            continue
        if not thread_roles(workflow) & wanted:
            continue
        current = await tx.member_set(thread.conv_id)
        if user_id in current.roles:
            continue
        await _add_txn(tx, thread.conv_id, user_id, list(current.roles), by)
        joined.append(thread.conv_id)
    return joined


async def leave_roles_txn(
    tx: WriteTxn,
    user_id: UserId,
    removed: Iterable[Role],
    remaining: Iterable[Role],
    workflows: Workflows,
    by: UserId | None,
) -> list[ConversationId]:
    """Take the user out of what only the removed roles brought them into."""
    gone = frozenset(removed)
    kept = frozenset(remaining)
    if not gone:
        return []
    threads = {t.conv_id: t for t in await staff_store.list_order_threads(tx.conn)}
    left: list[ConversationId] = []
    for joined in await staff_store.current_memberships(tx.conn, user_id):
        if joined.role_channel is not None:
            if channel_role(joined.role_channel) in gone:
                await _remove_txn(tx, joined.conv_id, user_id, by)
                left.append(joined.conv_id)
            continue
        thread = threads.get(joined.conv_id)
        if thread is None or not joined.by_role:
            continue
        if user_id in (thread.created_by, joined.created_by):
            continue
        workflow = _workflow(workflows, thread.workflow)
        if workflow is None or thread_roles(workflow) & kept:
            continue
        await _remove_txn(tx, joined.conv_id, user_id, by)
        left.append(joined.conv_id)
    return left


async def _add_txn(
    tx: WriteTxn, conv_id: ConversationId, user_id: UserId, before: list[UserId], by: UserId | None
) -> None:
    pos = await tx.next_pos()
    await conv_store.add_members_txn(tx.conn, conv_id, [user_id], pos, tx.now_ms, by_role=True)
    tx.members_changed(conv_id)
    after = [*before, user_id]
    conv = await tx.conversation(conv_id)
    event = member_event(tx, conv, MemberAction.ADDED, [user_id], by, after)
    await tx.append_event(conv_id, event, frozenset(after), pos)
    await tx.member_set(conv_id)


async def _remove_txn(
    tx: WriteTxn, conv_id: ConversationId, user_id: UserId, by: UserId | None
) -> None:
    before = list((await tx.member_set(conv_id)).roles)
    after = [u for u in before if u != user_id]
    pos = await tx.next_pos()
    await conv_store.remove_member_txn(tx.conn, conv_id, user_id, pos)
    tx.members_changed(conv_id)
    conv = await tx.conversation(conv_id)
    event = member_event(tx, conv, MemberAction.REMOVED, [user_id], by, after)
    # The one who leaves hears it too, so their devices drop the conversation.
    await tx.append_event(conv_id, event, frozenset(before), pos)
    await tx.member_set(conv_id)
