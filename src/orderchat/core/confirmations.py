"""Confirmation items of factory orders and their versions, as values.

A version is never rewritten once decided: the decision fields are the record
of who approved or rejected what, and when.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from orderchat.core.ids import UserId


class ItemStatus(StrEnum):
    OPEN = "open"  # no version proposed yet
    PROPOSED = "proposed"  # the newest version awaits the customer
    APPROVED = "approved"
    REJECTED = "rejected"


class Decision(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class ConfirmationVersion:
    """One proposal of an item (text and files), and the customer's decision on it."""

    item_id: str
    number: int
    text: str
    attachments: list[Any]
    proposed_by: UserId
    proposed_at_ms: int
    decision: Decision | None
    comment: str | None
    decided_by: UserId | None
    decided_at_ms: int | None


@dataclass(frozen=True, slots=True)
class ConfirmationItem:
    """A point the customer must approve (material, colour, logo …), with its versions."""

    id: str
    order_id: str
    kind: str
    title: str
    required: bool
    status: ItemStatus
    approved_version: int | None
    created_by: UserId
    created_at_ms: int
    versions: tuple[ConfirmationVersion, ...] = field(default=())

    @property
    def latest_version(self) -> int:
        return max((v.number for v in self.versions), default=0)
