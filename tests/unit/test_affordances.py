"""The buttons an app shows for an order follow the same rules the services enforce."""

from __future__ import annotations

from pathlib import Path

import pytest

import orderchat
from orderchat.core.affordances import REPORT_ISSUE, order_affordances
from orderchat.core.errors import BadRequest
from orderchat.core.ids import UserId
from orderchat.core.model import Role, User, UserKind
from orderchat.core.workflows import Workflow, parse_workflow

RETAIL = parse_workflow(
    (Path(orderchat.__file__).parent / "workflows" / "retail.toml").read_text("utf-8")
)


def _staff(*roles: Role) -> User:
    return User(UserId("u_x"), "x", "X", roles)


def _moves(workflow: Workflow, status: str, user: User) -> list[str]:
    return [m["to"] for m in order_affordances(user, workflow, status)["transitions"]]


@pytest.mark.parametrize("status", RETAIL.states)
def test_an_admin_is_offered_every_way_out(status: str) -> None:
    assert _moves(RETAIL, status, _staff(Role.ADMIN)) == RETAIL.next_states(status)


@pytest.mark.parametrize("status", RETAIL.states)
@pytest.mark.parametrize("role", [r for r in Role if r is not Role.ADMIN])
def test_staff_are_offered_only_their_roles_moves(status: str, role: Role) -> None:
    expected = [t.target for t in RETAIL.transitions if status in t.sources and role in t.roles]
    assert _moves(RETAIL, status, _staff(role)) == expected


def test_a_customer_gets_no_staff_work() -> None:
    customer = User(UserId("u_c"), "c", "C", (), UserKind.CUSTOMER)
    offered = order_affordances(customer, RETAIL, RETAIL.initial)
    assert offered["transitions"] == [] and offered["issue_kinds"] == []
    assert REPORT_ISSUE not in offered["actions"]
    assert set(offered["actions"]) == {"decide_version", "choose_defect_remedy", "request_invoice"}


def test_exceptions_are_offered_to_their_reporters_on_open_orders_only() -> None:
    qc = _staff(Role.QC)
    open_order = order_affordances(qc, RETAIL, RETAIL.initial)
    assert open_order["issue_kinds"] == ["defect_found"]
    assert REPORT_ISSUE in open_order["actions"]
    finance = order_affordances(_staff(Role.FINANCE), RETAIL, RETAIL.initial)
    assert finance["issue_kinds"] == [] and REPORT_ISSUE not in finance["actions"]
    for done in RETAIL.terminal:
        closed = order_affordances(qc, RETAIL, done)
        assert closed["issue_kinds"] == [] and REPORT_ISSUE not in closed["actions"]


def test_a_step_that_repeats_or_goes_back_names_its_action() -> None:
    oem = parse_workflow(
        (Path(orderchat.__file__).parent / "workflows" / "oem.toml").read_text("utf-8")
    )
    sales = _staff(Role.SALES)
    again = order_affordances(sales, oem, "sampling")["transitions"]
    actions = {m["to"]: m["action"] for m in again}
    assert actions["sampling"]["zh-CN"] == "开始第 {round} 轮打样"
    assert actions["sampling"]["en"] == "Start sample round {round}"
    assert actions["sample_approved"] == {}, "a step forward is named by its state"
    back = order_affordances(_staff(Role.QC), oem, "qc")["transitions"]
    assert {m["to"]: bool(m["action"]) for m in back} == {"sewing": True, "packing": False}


@pytest.mark.parametrize("action", ["开始打样", ["a"], {"en": 3}])
def test_an_action_must_be_a_table_of_texts(action: object) -> None:
    text = """
name = "w"
initial = "a"
[states]
a = { label = { zh-CN = "甲", en = "A" } }
[[transitions]]
from = "a"
to = "a"
roles = ["sales"]
"""
    value = {"开始打样": '"开始打样"', "['a']": '["a"]', "{'en': 3}": "{ en = 3 }"}[str(action)]
    with pytest.raises(BadRequest, match=r"transitions\[0\]\.action"):
        parse_workflow(text + f"action = {value}\n")
    assert parse_workflow(text).transitions[0].action == {}
