"""What a consult tells its members, and how a consult looks to each reader.

Every change of a consult is a `system` message in its conversation: the
record of who took it, moved it and closed it is part of the history, and
clients keep their inbox current from those messages (docs/consults.md §3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orderchat.core.ids import UserId
from orderchat.core.model import Conversation, MessageKind, User
from orderchat.core.texts import DEFAULT_LANGUAGE, Text
from orderchat.services.writer import WriteTxn
from orderchat.storage.consults import ConsultRow


def brief(row: ConsultRow, assignee_name: str | None) -> dict[str, object]:
    """The consult as a note's `meta.consult` carries it: what every member may read."""
    return {
        "id": row.conv_id,
        "status": row.status.value,
        "assignee": row.assignee_id,
        "assignee_name": assignee_name,
        "order": row.order_id,
    }


async def post_note_txn(
    tx: WriteTxn,
    conv: Conversation,
    by: UserId,
    event: str,
    said: Text,
    row: ConsultRow,
    *,
    assignee_name: str | None = None,
    mentions: tuple[str, ...] = (),
    internal: bool = False,
    urgent: bool = False,
    extra: Mapping[str, object] | None = None,
) -> None:
    await tx.member_set(conv.id)
    meta: dict[str, object] = {
        "event": event,
        "consult": brief(row, assignee_name),
        "by": by,
        "say": said.to_json(),
        **(extra or {}),
    }
    await tx.append_message(
        tx.convs.get(conv.id, conv),
        by,
        MessageKind.SYSTEM,
        said.render(DEFAULT_LANGUAGE),
        mentions=mentions,
        meta=meta,
        internal=internal,
        urgent=urgent,
    )


def role_mentions(row: ConsultRow) -> tuple[str, ...]:
    return tuple(f"@{r.value}" for r in row.roles)


def who_to_tell(row: ConsultRow) -> tuple[str, ...]:
    """Its agent, or while it has none the roles of its queue."""
    return (row.assignee_id,) if row.assignee_id else role_mentions(row)


@dataclass(frozen=True, slots=True)
class VisitorCard:
    """The visitor as the consult shows them."""

    user_id: UserId
    display_name: str
    language: str
    phone: str | None
    email: str | None
    verified: bool
    blocked: bool
    erased: bool


def consult_view(
    row: ConsultRow,
    viewer: User,
    visitor: VisitorCard,
    names: Mapping[UserId, str],
    position: int | None,
    order_number: str | None = None,
) -> dict[str, Any]:
    """The consult as `viewer` may see it: a visitor's own view leaves routing out."""
    assignee = (
        None
        if row.assignee_id is None
        else {"id": row.assignee_id, "display_name": names.get(row.assignee_id, "")}
    )
    view: dict[str, Any] = {
        "id": row.conv_id,
        "status": row.status.value,
        "assignee": assignee,
        "position": position,
        "source": row.source,
        "tag": row.tag,
        "page_url": row.page_url,
        "sku": row.sku,
        "order": None if row.order_id is None else {"id": row.order_id, "number": order_number},
        "created_ts": row.created_at_ms,
        "waiting_since_ts": row.waiting_since_ms,
        "first_response_ts": row.first_response_at_ms,
        "closed_ts": row.closed_at_ms,
        "visitor": {
            "id": visitor.user_id,
            "display_name": visitor.display_name,
            "language": visitor.language,
        },
    }
    if viewer.is_staff:
        view.update(
            queue=row.queue,
            roles=[r.value for r in row.roles],
            escalated_ts=row.escalated_at_ms,
        )
        view["visitor"].update(
            phone=visitor.phone,
            email=visitor.email,
            verified=visitor.verified,
            blocked=visitor.blocked,
            erased=visitor.erased,
        )
    return view
