"""The admin audit log: who did something sensitive to whom, and when.

Sensitive is what an owner asks about after a dispute or a leak: a message
taken back, a history exported, someone given or stripped of a role, added to
or removed from a conversation, invited in, a webhook pointed elsewhere,
someone else signed out, an audit search run. Each entry is written in the
transaction of the action it records, so an action and its entry stand or
fall together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from orderchat.core.errors import BadRequest
from orderchat.core.texts import say


class AuditAction(StrEnum):
    MESSAGE_RECALLED = "message.recalled"
    ORDER_EXPORTED = "order.exported"
    AUDIT_SEARCHED = "search.audit"
    AUDIT_EXPORTED = "audit.exported"
    ROLES_CHANGED = "staff.roles_changed"
    STAFF_ADDED = "staff.added"
    STAFF_DISABLED = "staff.disabled"
    STAFF_ENABLED = "staff.enabled"
    STAFF_SIGNED_OUT = "staff.signed_out"
    STAFF_INVITED = "staff.invited"
    PASSWORD_RESET_ISSUED = "staff.password_reset_issued"
    MEMBERS_ADDED = "conversation.members_added"
    MEMBER_REMOVED = "conversation.member_removed"
    CUSTOMER_INVITED = "order.customer_invited"
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_CHANGED = "webhook.changed"
    WEBHOOK_DELETED = "webhook.deleted"
    RETENTION_CHANGED = "retention.changed"
    LEGAL_HOLD_CHANGED = "order.legal_hold_changed"
    HISTORY_PURGED = "retention.purged"
    VISITOR_BLOCKED = "visitor.blocked"
    VISITOR_UNBLOCKED = "visitor.unblocked"
    VISITOR_EXPORTED = "visitor.exported"
    VISITOR_ERASED = "visitor.erased"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One action. `actor` is None for the server itself (a scheduled purge, the CLI)."""

    action: AuditAction
    actor: str | None
    target: str  # what it was done to: a user, conversation, order or endpoint id
    ts: int
    conv: str | None = None
    details: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditQuery:
    text: str | None = None  # any part of the target, a detail or the actor's id
    actions: frozenset[AuditAction] = frozenset()
    actor: str | None = None
    target: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None


MAX_AUDIT_TEXT = 100


def parse_actions(raw: list[str]) -> frozenset[AuditAction]:
    """`action` repeated or comma-separated; a name may end in `.*` (all of `staff.*`)."""
    names = {n.strip() for item in raw for n in item.split(",") if n.strip()}
    chosen: set[AuditAction] = set()
    for name in names:
        if name.endswith(".*"):
            found = {a for a in AuditAction if a.value.startswith(name[:-1])}
        else:
            found = {a for a in AuditAction if a.value == name}
        if not found:
            raise BadRequest(say("audit.unknown_action", action=name))
        chosen |= found
    return frozenset(chosen)
