"""Which conversations need a person, as the conversation list's filters see them.

Pure rules over what storage read; `docs/conversations.md` defines each flag:

- needs_me: an unread message of someone else mentions me, one of my roles or
  everyone; or an urgent message of someone else is still unhandled; or an
  open order exception is routed to one of my roles.
- exception_open: the conversation's order has an exception not yet settled.
- waiting_customer: an open (not terminal) order whose last customer-visible
  message written by a person came from staff, or that has a confirmation
  version proposed and not yet decided: the customer owes the next step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from orderchat.core.ids import UserId
from orderchat.core.mentions import ALL
from orderchat.core.model import Role
from orderchat.core.routing import ROUTES


@dataclass(frozen=True, slots=True)
class Attention:
    needs_me: bool = False
    exception_open: bool = False
    waiting_customer: bool = False


NOTHING = Attention()


def mentions_me(tokens: Iterable[str], user: UserId, roles: Iterable[Role]) -> bool:
    """Whether a message's mention tokens call on this user (by id, role or @all)."""
    mine = {user, ALL, *(f"@{r.value}" for r in roles)}
    return any(t in mine for t in tokens)


def routed_to_me(issue_kinds: Iterable[str], roles: Iterable[Role]) -> bool:
    """Whether any of these open exceptions is routed to one of the roles."""
    held = set(roles)
    return any(kind in ROUTES and ROUTES[kind].roles & held for kind in issue_kinds)


@dataclass(frozen=True, slots=True)
class Facts:
    """What storage found about one conversation, for one viewer."""

    unread_mentions: tuple[tuple[str, ...], ...] = ()
    open_urgent_senders: tuple[UserId, ...] = ()
    open_issue_kinds: tuple[str, ...] = ()
    order_open: bool = False
    last_word_by_staff: bool | None = None  # None: no person has written yet
    decision_pending: bool = False  # a proposed confirmation version awaits a decision


def attention(facts: Facts, user: UserId, roles: tuple[Role, ...]) -> Attention:
    needs_me = (
        any(mentions_me(tokens, user, roles) for tokens in facts.unread_mentions)
        or any(sender != user for sender in facts.open_urgent_senders)
        or routed_to_me(facts.open_issue_kinds, roles)
    )
    return Attention(
        needs_me=needs_me,
        exception_open=bool(facts.open_issue_kinds),
        waiting_customer=facts.order_open
        and (facts.last_word_by_staff is True or facts.decision_pending),
    )
