"""Giving consults to agents inside a write: the rules' choice, applied and told.

The choice itself is `core.consults.choose_agent`; here are the counts it needs
(read under the same transaction, so two consults of one batch see each
other's assignments), the membership an agent needs to answer, and the notes
that tell the visitor and the agent.
"""

from __future__ import annotations

from dataclasses import replace

from orderchat.core.consults import (
    AgentLoad,
    ConsultRules,
    ConsultStatus,
    Queue,
    Strategy,
    choose_agent,
)
from orderchat.core.ids import ConversationId, UserId
from orderchat.core.model import Role
from orderchat.core.texts import say
from orderchat.services.chat.conversations import members_added
from orderchat.services.consults.notes import post_note_txn
from orderchat.services.writer import WriteTxn
from orderchat.storage import accounts as account_store
from orderchat.storage import consults as consult_store
from orderchat.storage import conversations as conv_store
from orderchat.storage.consults import ConsultRow

# How many queued consults one freed place may pull in one transaction.
DRAIN_LIMIT = 20


def queue_of(rules: ConsultRules, row: ConsultRow) -> Queue:
    """The queue a consult waits in, as the rules say now (a queue renamed since keeps
    the consult's own roles)."""
    named = rules.queue_named(row.queue)
    if named is not None:
        return named
    first = row.roles[0] if row.roles else Role.CUSTOMER_SERVICE
    return replace(rules.queue_of_role(first), name=row.queue, roles=row.roles)


async def pick_agent_txn(
    tx: WriteTxn, rules: ConsultRules, queue: Queue, visitor: UserId
) -> UserId | None:
    agents = await account_store.staff_with_roles(tx.conn, queue.roles)
    counts = await consult_store.open_counts(tx.conn, agents)
    loads = [AgentLoad(a, counts[a]) for a in agents]
    last = await consult_store.last_given(tx.conn, queue.name)
    previous = None
    if queue.strategy is Strategy.LAST_AGENT:
        previous = await consult_store.last_agent_of(tx.conn, visitor)
    return choose_agent(queue, loads, rules.max_open_per_agent, last, previous)


async def ensure_members_txn(tx: WriteTxn, conv_id: ConversationId, users: list[UserId]) -> None:
    """Those who must answer a consult are its members (a colleague from another role)."""
    members = await tx.member_set(conv_id)
    fresh = [u for u in dict.fromkeys(users) if u not in members.roles]
    if not fresh:
        return
    conv = await tx.conversation(conv_id)
    pos = await tx.next_pos()
    await conv_store.add_members_txn(tx.conn, conv_id, fresh, pos, tx.now_ms)
    tx.members_changed(conv_id)
    after = [*members.roles, *fresh]
    event = members_added(tx, conv, fresh, None, after)
    await tx.append_event(conv_id, event, frozenset(after), pos)
    await tx.member_set(conv_id)


async def role_staff_txn(tx: WriteTxn, roles: tuple[Role, ...]) -> list[UserId]:
    """Staff of these roles and the administrators: a consult's standing members."""
    return await account_store.staff_with_roles(tx.conn, [*roles, Role.ADMIN])


async def assign_txn(
    tx: WriteTxn, rules: ConsultRules, row: ConsultRow, agent: UserId, by: UserId
) -> ConsultRow:
    """`agent` owns the consult from now on; the visitor and the agent are told."""
    await ensure_members_txn(tx, row.conv_id, [agent])
    assigned = replace(row, status=ConsultStatus.OPEN, assignee_id=agent)
    await consult_store.save_consult_txn(tx.conn, assigned)
    await consult_store.set_last_given_txn(tx.conn, row.queue, agent)
    name = (await account_store.get_user(tx.conn, agent)).display_name
    conv = await tx.conversation(row.conv_id)
    await post_note_txn(
        tx,
        conv,
        by,
        "consult_assigned",
        say("note.consult_assigned", agent=name),
        assigned,
        assignee_name=name,
        mentions=(agent,),
    )
    return assigned


async def route_txn(tx: WriteTxn, rules: ConsultRules, row: ConsultRow, by: UserId) -> ConsultRow:
    """An agent for a consult without one, if any has room; else it stays queued."""
    agent = await pick_agent_txn(tx, rules, queue_of(rules, row), row.visitor_id)
    if agent is None:
        queued = replace(row, status=ConsultStatus.QUEUED, assignee_id=None)
        await consult_store.save_consult_txn(tx.conn, queued)
        return queued
    return await assign_txn(tx, rules, row, agent, by)


async def drain_txn(tx: WriteTxn, rules: ConsultRules, freed: UserId, by: UserId) -> None:
    """A place came free with `freed`: the oldest queued consults of their queues move on."""
    user = await account_store.get_user(tx.conn, freed)
    queues = [q.name for q in rules.queues if set(q.roles) & set(user.roles)]
    queues += [f"role:{r.value}" for r in user.roles]
    waiting = await consult_store.oldest_queued(tx.conn, queues, DRAIN_LIMIT)
    for conv_id in waiting:
        await tx.conversation(conv_id)
        row = await consult_store.get_consult(tx.conn, conv_id)
        if row.status is not ConsultStatus.QUEUED:
            continue
        routed = await route_txn(tx, rules, row, by)
        if routed.status is ConsultStatus.QUEUED:
            break  # nobody has room: the rest wait too
