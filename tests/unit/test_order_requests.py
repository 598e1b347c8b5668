"""Order request bodies parsed into core values, with the messages clients see."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from orderchat.core.errors import BadRequest, NotFound, TooLarge
from orderchat.core.ids import ConversationId, IssueId, UserId
from orderchat.core.order_requests import (
    parse_address_change,
    parse_issue_report,
    parse_order_changes,
    parse_order_spec,
    parse_settlement,
    parse_status_change,
)
from orderchat.core.orders import InvoiceStatus, Order, OrderItem, PaymentStatus
from orderchat.core.stock import Sku, changed_sku, parse_sku_changes
from orderchat.core.texts import say


def _known(name: str) -> str:
    if name not in ("retail", "oem"):
        raise NotFound(say("workflows.no_workflow_known", name=name, known=["oem", "retail"]))
    return name


def _spec(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "number": "OD-1",
        "customer": {"name": "Ann"},
        "items": [{"sku": "TENT", "quantity": 2, "unit_price_cents": 500}],
    }
    body.update(fields)
    return body


def test_an_order_spec_takes_its_defaults() -> None:
    spec = parse_order_spec(_spec(), _known)
    assert spec.workflow == "retail" and spec.currency == "CNY" and spec.eta_ms is None
    assert spec.items == (OrderItem("TENT", "TENT", 2, 500),)
    assert spec.new_customer is not None and spec.new_customer.language == "zh-CN"
    assert spec.customer_id is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"workflow": "bespoke"}, "no workflow 'bespoke'; known: oem, retail"),
        ({"customer_id": "u_1"}, "give either 'customer_id' or a new 'customer', not both"),
        ({"eta_ts": -1}, "eta_ts must be milliseconds since the epoch"),
        ({"colour": "red"}, "unknown order fields colour"),
        ({"items": []}, "an order needs at least one item"),
    ],
)
def test_a_bad_order_spec_says_what_is_wrong(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_order_spec(_spec(**fields), _known)
    assert info.value.message == message


def test_a_status_change_keeps_its_photos_and_tracking() -> None:
    change = parse_status_change({"to": "shipped", "carrier": "SF", "tracking_no": "SF1"})
    assert (change.to, change.carrier, change.tracking_no, change.photos) == (
        "shipped",
        "SF",
        "SF1",
        (),
    )
    with pytest.raises(BadRequest):
        parse_status_change({"to": ""})


def _order() -> Order:
    return Order(
        id="o_1",
        number="OD-1",
        customer_id=UserId("u_1"),
        conv_id=ConversationId("c_1"),
        workflow="retail",
        status="confirmed",
        payment_status=PaymentStatus.UNPAID,
        invoice_status=InvoiceStatus.NONE,
        currency="CNY",
        total_cents=100,
        paid_cents=0,
        address={},
        note="fragile",
        carrier="SF",
        tracking_no=None,
        eta_ms=5,
        sample_round=0,
        ship_approved_by=None,
        created_by=UserId("u_2"),
        created_at_ms=1,
        updated_at_ms=1,
        shipped_at_ms=None,
        version=1,
    )


def test_order_changes_touch_only_the_fields_given() -> None:
    order = _order()
    changed = parse_order_changes({"carrier": None, "tracking_no": "SF9"}).applied_to(order)
    assert changed == replace(order, carrier=None, tracking_no="SF9")
    with pytest.raises(BadRequest):
        parse_order_changes({})
    with pytest.raises(BadRequest):
        parse_order_changes({"eta_ts": True})


def test_an_issue_report_takes_the_fields_of_its_kind() -> None:
    report = parse_issue_report({"kind": "delay_risk", "reason": "storms", "eta": None})
    assert (report.kind, report.details) == ("delay_risk", {"reason": "storms"})
    with pytest.raises(BadRequest) as info:
        parse_issue_report({"kind": "delay_risk"})
    assert info.value.message == "delay_risk needs 'reason'"
    with pytest.raises(BadRequest):
        parse_issue_report({"kind": 3})


def test_an_address_change_needs_an_address_and_names_its_issue() -> None:
    change = parse_address_change({"address": {"city": "杭州"}, "issue": "i_1"})
    assert change.address == {"city": "杭州"} and change.issue_id == IssueId("i_1")
    assert parse_address_change({"address": {"city": "x"}, "issue": 5}).issue_id is None
    with pytest.raises(BadRequest) as info:
        parse_address_change({"address": {}})
    assert info.value.message == "the new address is empty"


def test_a_settlement_leaves_the_outcome_to_the_issue_kind() -> None:
    assert parse_settlement({"outcome": 7}).outcome is None
    assert parse_settlement({"outcome": "refund", "note": " ok "}).note == "ok"
    with pytest.raises(TooLarge):
        parse_settlement({"outcome": "refund", "note": "x" * 2001})


TENT = Sku("TENT", "帐篷", "Tent", "camping", 500, 2)


def test_sku_changes_keep_what_they_do_not_name() -> None:
    assert changed_sku(TENT, parse_sku_changes({})) == TENT
    cleared = changed_sku(TENT, parse_sku_changes({"name_en": None, "active": False}))
    assert cleared == replace(TENT, name_en="", active=False)
    with pytest.raises(BadRequest) as info:
        changed_sku(TENT, parse_sku_changes({"name_zh": None, "name_en": ""}))
    assert info.value.message == "SKU TENT needs a name: give name_zh, name_en or both"
    with pytest.raises(BadRequest):
        parse_sku_changes({"active": "yes"})
