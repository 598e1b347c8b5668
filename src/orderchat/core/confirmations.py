"""Confirmation items of factory orders and their versions, as values, and the
requests that add an item, propose a version and decide on one.

A version is never rewritten once decided: the decision fields are the record
of who approved or rejected what, and when.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from orderchat.core.errors import BadRequest, TooLarge
from orderchat.core.ids import ConfirmationItemId, OrderId, UserId
from orderchat.core.model import text_field
from orderchat.core.texts import say

KINDS = frozenset(
    {
        "material",
        "colour",
        "size",
        "logo_process",
        "packaging",
        "lead_time",
        "shipping_method",
        "custom",
    }
)
MAX_TITLE_CHARS = 200
# The version text is also the chat message the customer reads, which must
# stay under the message limit together with the surrounding sentence.
MAX_VERSION_TEXT_CHARS = 5000
MAX_COMMENT_CHARS = 2000
# Attachments are references (blob ids, names, sizes) for now, not the files.
MAX_ATTACHMENTS = 20
MAX_ATTACHMENTS_BYTES = 32 * 1024


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

    item_id: ConfirmationItemId
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

    id: ConfirmationItemId
    order_id: OrderId
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


# --- requests -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewItem:
    """An item to add to an order: what must be confirmed, and whether production waits."""

    kind: str
    title: str
    required: bool


def parse_new_item(kind: object, title: object, required: object) -> NewItem:
    if kind not in KINDS:
        raise BadRequest(say("confirmations.kind_must_one", kinds=sorted(KINDS)))
    if not isinstance(required, bool):
        raise BadRequest(say("confirmations.required_must_true_false"))
    assert isinstance(kind, str)
    return NewItem(kind, text_field(title, "title", MAX_TITLE_CHARS), required)


@dataclass(frozen=True, slots=True)
class VersionProposal:
    """A version of an item: its text (also the message the customer reads) and files."""

    text: str
    attachments: tuple[dict[str, Any], ...]


def parse_version_proposal(text: object, attachments: object) -> VersionProposal:
    return VersionProposal(
        text_field(text, "text", MAX_VERSION_TEXT_CHARS), tuple(parse_attachments(attachments))
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """The customer's decision on one version; a rejection says what should change."""

    decision: Decision
    comment: str


def parse_attachments(raw: object) -> list[dict[str, Any]]:
    """Attachments are opaque JSON objects; only their number and size are bounded."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(a, dict) for a in raw):
        raise BadRequest(say("confirmations.attachments_must_list_objects"))
    if len(raw) > MAX_ATTACHMENTS:
        raise TooLarge(
            say("confirmations.at_most_attachments_per_version", max_attachments=MAX_ATTACHMENTS)
        )
    try:
        encoded = orjson.dumps(raw)
    except orjson.JSONEncodeError:
        # Lone surrogates and integers past 64 bits parse, but cannot be stored as JSON.
        raise BadRequest(say("confirmations.attachments_must_hold_utf_8")) from None
    if len(encoded) > MAX_ATTACHMENTS_BYTES:
        raise TooLarge(
            say(
                "confirmations.attachments_take_more_than_bytes",
                max_attachments_bytes=MAX_ATTACHMENTS_BYTES,
            )
        )
    return list(raw)


def parse_verdict(decision: object, comment: object) -> Verdict:
    if decision not in (Decision.APPROVED.value, Decision.REJECTED.value):
        raise BadRequest(say("confirmations.decision_must_approved_rejected"))
    parsed = Decision(str(decision))
    text = text_field(comment, "comment", MAX_COMMENT_CHARS, required=False)
    if parsed is Decision.REJECTED and not text:
        raise BadRequest(say("confirmations.say_in_comment_what_should"))
    return Verdict(parsed, text)
