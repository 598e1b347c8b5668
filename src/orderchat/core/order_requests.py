"""Requests to create and change orders, parsed from their JSON into values.

The API parses a request body here before any use case runs, so services
receive these values and never a dict; the messages say what was wrong in the
words of the order. Nothing here reads the store: rules that need an order's
state (which transitions its workflow allows, whether it shipped) stay in the
services.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from orderchat.core.errors import BadRequest, NotFound
from orderchat.core.ids import IssueId, UploadId, UserId
from orderchat.core.orders import (
    Order,
    OrderItem,
    order_number,
    parse_address,
    parse_currency,
    parse_items,
    parse_note,
)
from orderchat.core.texts import say


@dataclass(frozen=True, slots=True)
class NewCustomer:
    """A customer the shop does not know yet, given with their first order."""

    name: str
    phone: str | None
    email: str | None
    company: str | None
    segment: str
    language: str


SEGMENTS = frozenset({"retail", "wholesale", "brand"})
# A moment as milliseconds since the epoch: JavaScript's safe integers, which every
# store's BIGINT holds (a bigger one overflowed SQLite's and failed the write).
MAX_MS = 2**53


def _is_ms(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_MS


LANGUAGES = frozenset({"zh-CN", "en"})


def parse_new_customer(raw: object) -> NewCustomer:
    if not isinstance(raw, dict):
        raise BadRequest(say("order_requests.customer_must_object_with_at"))
    unknown = sorted(set(raw) - {"name", "phone", "email", "company", "segment", "language"})
    if unknown:
        raise BadRequest(say("order_requests.unknown_customer_fields", unknown=unknown))
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise BadRequest(say("order_requests.customer_name_must_1_100"))
    segment = raw.get("segment", "retail")
    language = raw.get("language", "zh-CN")
    if not isinstance(segment, str) or segment not in SEGMENTS:
        raise BadRequest(say("order_requests.customer_segment_must_one", segments=sorted(SEGMENTS)))
    if not isinstance(language, str) or language not in LANGUAGES:
        raise BadRequest(
            say("order_requests.customer_language_must_one", languages=sorted(LANGUAGES))
        )
    optional: dict[str, str | None] = {}
    for key in ("phone", "email", "company"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > 200):
            raise BadRequest(say("order_requests.customer_must_string_at_most", key=key))
        optional[key] = value or None
    return NewCustomer(
        name.strip(), optional["phone"], optional["email"], optional["company"], segment, language
    )


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """An order to create: checked for shape, not yet against the store."""

    number: str
    workflow: str
    customer_id: UserId | None
    new_customer: NewCustomer | None
    items: tuple[OrderItem, ...]
    address: dict[str, str]
    note: str
    currency: str
    eta_ms: int | None


def parse_order_spec(raw: Mapping[str, Any], find_workflow: Callable[[str], object]) -> OrderSpec:
    """An order to create, from its JSON; `find_workflow` raises NotFound for an unknown name."""
    known = {
        "number",
        "workflow",
        "customer",
        "customer_id",
        "items",
        "address",
        "note",
        "currency",
        "eta_ts",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise BadRequest(say("order_requests.unknown_order_fields", unknown=unknown))
    workflow = raw.get("workflow", "retail")
    if not isinstance(workflow, str):
        raise BadRequest(say("order_requests.workflow_must_string"))
    try:
        find_workflow(workflow)
    except NotFound as exc:
        raise BadRequest(exc.text) from None
    customer_id = raw.get("customer_id")
    if (customer_id is None) == (raw.get("customer") is None):
        raise BadRequest(say("order_requests.give_either_customer_id_new"))
    if customer_id is not None and not isinstance(customer_id, str):
        raise BadRequest(say("order_requests.customer_id_must_string"))
    eta = raw.get("eta_ts")
    if eta is not None and not _is_ms(eta):
        raise BadRequest(say("order_requests.eta_ts_must_milliseconds_since"))
    return OrderSpec(
        number=order_number(raw.get("number")),
        workflow=workflow,
        customer_id=None if customer_id is None else UserId(customer_id),
        new_customer=None if raw.get("customer") is None else parse_new_customer(raw["customer"]),
        items=parse_items(raw.get("items")),
        address=parse_address(raw.get("address")),
        note=parse_note(raw.get("note")),
        currency=parse_currency(raw.get("currency", "CNY")),
        eta_ms=eta,
    )


# As many as one message carries (protocol/codec.py MAX_ATTACHMENTS).
MAX_STEP_PHOTOS = 20


def parse_photos(raw: object) -> tuple[UploadId, ...]:
    """The uploads a step or a report names as its photos, as the web sends them
    (`{"id": …}`) or bare ids; one named twice counts once (a file goes with one
    message once). Whether each may be sent is the service's to check."""
    if not isinstance(raw, list) or len(raw) > MAX_STEP_PHOTOS:
        raise BadRequest(say("order_requests.photos_must_list_at_most"))
    ids: list[UploadId] = []
    for index, item in enumerate(raw):
        upload_id = item.get("id") if isinstance(item, dict) and set(item) == {"id"} else item
        if not isinstance(upload_id, str) or not 1 <= len(upload_id) <= 64:
            raise BadRequest(say("order_requests.photo_must_upload_id", index=index))
        ids.append(UploadId(upload_id))
    return tuple(dict.fromkeys(ids))


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A move to the next status the workflow allows, with what the step records."""

    to: str
    note: str
    photos: tuple[UploadId, ...]
    carrier: str | None
    tracking_no: str | None


def parse_status_change(raw: Mapping[str, Any]) -> StatusChange:
    unknown = sorted(set(raw) - {"to", "note", "photos", "carrier", "tracking_no"})
    if unknown:
        raise BadRequest(say("order_requests.unknown_fields", unknown=unknown))
    to = raw.get("to")
    if not isinstance(to, str) or not to:
        raise BadRequest(say("order_requests.must_name_next_status"))
    photos = parse_photos(raw.get("photos", []))
    carrier, tracking = raw.get("carrier"), raw.get("tracking_no")
    for name, value in (("carrier", carrier), ("tracking_no", tracking)):
        if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= 64):
            raise BadRequest(say("order_requests.must_1_64_characters", name=name))
    return StatusChange(to, parse_note(raw.get("note")), photos, carrier, tracking)


ISSUE_FIELDS: dict[str, tuple[str, ...]] = {
    "out_of_stock": ("sku", "needed", "available", "note"),
    "address_change_requested": ("address", "note"),
    "delay_risk": ("reason", "eta"),
    "delay_notice": ("reason", "eta"),
    "defect_found": ("description", "photos"),
}
REMEDIES = frozenset({"exchange", "refund"})
INTERCEPTION_OUTCOMES = frozenset({"intercepted", "not_intercepted"})


def issue_details(kind: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The details a report of `kind` takes, checked; the fields of another kind are refused."""
    allowed = ISSUE_FIELDS.get(kind)
    if allowed is None:
        raise BadRequest(
            say(
                "order_requests.unknown_exception_kind_known", kind=kind, kinds=sorted(ISSUE_FIELDS)
            )
        )
    unknown = sorted(set(raw) - set(allowed) - {"kind"})
    if unknown:
        raise BadRequest(say("order_requests.unknown_issue_fields", kind=kind, unknown=unknown))
    details: dict[str, Any] = {}
    for key in allowed:
        value = raw.get(key)
        if value is None:
            continue
        if key == "address":
            details[key] = parse_address(value)
        elif key in ("needed", "available"):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise BadRequest(say("order_requests.must_whole_number_0", key=key))
            details[key] = value
        elif key == "photos":
            details[key] = list(parse_photos(value))
        else:
            details[key] = parse_note(value)
    required = {
        "address_change_requested": "address",
        "delay_risk": "reason",
        "delay_notice": "reason",
        "defect_found": "description",
        "out_of_stock": "sku",
    }
    if required[kind] not in details:
        raise BadRequest(say("order_requests.issue_needs_field", kind=kind, field=required[kind]))
    return details


@dataclass(frozen=True, slots=True)
class OrderChanges:
    """Carrier, tracking number, ETA and note: facts that are not a status change.

    Only the fields in `given` change; the others keep the order's values.
    """

    given: frozenset[str]
    carrier: str | None = None
    tracking_no: str | None = None
    eta_ms: int | None = None
    note: str = ""

    def applied_to(self, order: Order) -> Order:
        """`order` with the given fields changed."""
        given = self.given
        return replace(
            order,
            carrier=self.carrier if "carrier" in given else order.carrier,
            tracking_no=self.tracking_no if "tracking_no" in given else order.tracking_no,
            eta_ms=self.eta_ms if "eta_ms" in given else order.eta_ms,
            note=self.note if "note" in given else order.note,
        )


def parse_order_changes(raw: Mapping[str, Any]) -> OrderChanges:
    unknown = sorted(set(raw) - {"carrier", "tracking_no", "eta_ts", "note"})
    if unknown or not raw:
        raise BadRequest(say("order_requests.give_carrier_tracking_no_eta", unknown=unknown))
    changes: dict[str, Any] = {}
    for key in ("carrier", "tracking_no"):
        if key in raw:
            value = raw[key]
            if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= 64):
                raise BadRequest(say("order_requests.must_1_64_characters_null", key=key))
            changes[key] = value
    if "eta_ts" in raw:
        eta = raw["eta_ts"]
        if eta is not None and not _is_ms(eta):
            raise BadRequest(say("order_requests.eta_ts_must_milliseconds_or_null"))
        changes["eta_ms"] = eta
    if "note" in raw:
        changes["note"] = parse_note(raw["note"])
    return OrderChanges(frozenset(changes), **changes)


@dataclass(frozen=True, slots=True)
class IssueReport:
    """An exception raised on an order: its kind and the details that kind takes."""

    kind: str
    details: dict[str, Any]


def issue_kind(raw: Mapping[str, Any]) -> str:
    kind = raw.get("kind")
    if not isinstance(kind, str):
        raise BadRequest(say("order_requests.kind_names_exception"))
    return kind


def parse_issue_report(raw: Mapping[str, Any]) -> IssueReport:
    kind = issue_kind(raw)
    return IssueReport(kind, issue_details(kind, raw))


@dataclass(frozen=True, slots=True)
class AddressChange:
    """A new address for an order, settling its open address-change issue if named."""

    address: dict[str, str]
    issue_id: IssueId | None


def parse_address_change(raw: Mapping[str, Any]) -> AddressChange:
    issue_id = raw.get("issue")
    address = parse_address(raw.get("address"))
    if not address:
        raise BadRequest(say("order_requests.new_address_empty"))
    return AddressChange(address, IssueId(issue_id) if isinstance(issue_id, str) else None)


@dataclass(frozen=True, slots=True)
class Settlement:
    """How an exception ended. Which outcomes count depends on the issue's kind,
    so `outcome` is checked by the use case; None when the body gave no string."""

    outcome: str | None
    note: str


def parse_settlement(raw: Mapping[str, Any]) -> Settlement:
    outcome = raw.get("outcome")
    return Settlement(outcome if isinstance(outcome, str) else None, parse_note(raw.get("note")))
