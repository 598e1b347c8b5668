"""The buttons an app shows for an order follow the same rules the services enforce."""

from __future__ import annotations

from pathlib import Path

import pytest

import orderchat
from orderchat.core.affordances import REPORT_ISSUE, order_affordances
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
