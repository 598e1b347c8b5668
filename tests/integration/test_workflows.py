"""Every transition of every shipped workflow, driven over HTTP against a real server.

The cases are generated from the workflow TOML files, so a transition added
there is covered here without touching this file. For each transition, from
each of its source states:

- every role the transition names moves an order of its own, and the order's
  row, version and next states follow;
- every staff role it does not name, and the order's customer, get 403 and the
  database is row for row what it was;

and from every state, every target the workflow does not allow gets 409 and
changes nothing. Guards and effects have tests of their own below.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest

from orderchat.core.model import Role
from orderchat.core.workflows import Transition
from tests.order_support import (
    STAFF_ROLES,
    Customer,
    Json,
    OrderPool,
    Shop,
    assert_unchanged,
    case_id,
    expect_error,
    first_role,
    load_workflow,
    parallel,
    path_to,
    transition_cases,
    workflow_names,
)
from tests.support import seed_skus

pytestmark = pytest.mark.timeout(120)

CASES = transition_cases()
STATES = [(name, state) for name in workflow_names() for state in load_workflow(name).states]
TRACKING = {"carrier": "SF Express", "tracking_no": "SF0000000001"}


def _guarded(guard: str) -> list[tuple[str, str, Transition]]:
    return [c for c in CASES if guard in c[2].guards]


def _wants() -> Counter[tuple[str, str]]:
    """Every order the tests below take from the pool, by (workflow, state)."""
    wants: Counter[tuple[str, str]] = Counter()
    for name, source, transition in CASES:
        wants[(name, source)] += len(transition.roles)  # one for each allowed role
    for key in STATES:
        wants[key] += 1  # the refusals, all made on one order per state
    for name, source, _ in _guarded("paid_or_ship_approved"):
        wants[(name, source)] += 2
    for guard in ("has_tracking", "confirmations_approved"):
        for name, source, _ in _guarded(guard):
            wants[(name, source)] += 1
    wants[("oem", "quoting")] += 1
    return wants


@pytest.fixture(scope="module")
def shop(order_shop: Shop) -> Shop:
    return order_shop


@pytest.fixture(scope="module")
def pool(shop: Shop) -> OrderPool:
    return OrderPool(shop, _wants())


def _meet_guards(shop: Shop, order: Json, transition: Transition, who: str = "") -> Json:
    """What a status request needs so that only the actor decides its outcome; the
    photo a step needs is `who`'s own upload (refused actors are turned away first)."""
    extra: Json = {}
    if "paid_or_ship_approved" in transition.guards:
        shop.allow_shipping(order["id"])
    if "has_tracking" in transition.guards:
        extra.update(TRACKING)
    if who and transition.photos_required:
        extra["photos"] = [shop.photo(order, who)]
    return extra


def test_the_server_runs_the_shipped_workflows(shop: Shop) -> None:
    resp = shop.call("warehouse", "GET", "/api/workflows")
    assert resp.status_code == 200, resp.text
    served = {w["name"]: w for w in resp.json()["workflows"]}
    for name in workflow_names():
        workflow = load_workflow(name)
        assert name in served, f"the server does not run the {name} workflow"
        view = served[name]
        assert view["initial"] == workflow.initial
        assert [s["name"] for s in view["states"]] == list(workflow.states)
        assert {s["name"] for s in view["states"] if s["terminal"]} == workflow.terminal
        assert [
            (sorted(t["from"]), t["to"], sorted(t["roles"]), sorted(t["notify"]), t["customer"])
            for t in view["transitions"]
        ] == [
            (
                sorted(t.sources),
                t.target,
                sorted(r.value for r in t.roles),
                sorted(r.value for r in t.notify),
                t.customer,
            )
            for t in workflow.transitions
        ]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_every_allowed_role_makes_the_transition(
    shop: Shop, pool: OrderPool, case: tuple[str, str, Transition]
) -> None:
    name, source, transition = case
    workflow = load_workflow(name)
    allowed = sorted(r.value for r in transition.roles)
    assert allowed, f"{case_id(case)} names no role"
    for role in allowed:
        order = pool.take(name, source)
        extra = _meet_guards(shop, order, transition, role)
        before = shop.order_row(order["id"])
        resp = shop.move(order["id"], transition.target, role, **extra)
        assert resp.status_code == 200, f"{role}: {resp.text}"
        view = resp.json()
        assert view["status"] == transition.target
        assert view["next"] == workflow.next_states(transition.target)
        assert view["status_label"] == {
            lang: workflow.label(transition.target, lang) for lang in ("zh-CN", "en")
        }
        assert view["version"] == before["version"] + 1
        row = shop.order_row(order["id"])
        assert row["status"] == transition.target
        assert row["version"] == before["version"] + 1
        assert shop.get_order(order["id"], role)["status"] == transition.target


@dataclass(frozen=True)
class Attempt:
    what: str
    order_id: str
    target: str
    who: str | Customer
    extra: Json
    status: frozenset[int]
    code: str | None


def test_refused_moves_get_4xx_and_change_nothing(shop: Shop, pool: OrderPool) -> None:
    """Roles a transition does not name, the customer, and targets the workflow does not
    allow: all refused with the contract's error, and the database is as it was."""
    attempts: list[Attempt] = []
    orders = {key: pool.take(*key) for key in STATES}

    def prepare(key: tuple[str, str]) -> tuple[Json, Customer]:
        """Guards met for whatever leaves this state, and the order's customer signed in."""
        name, state = key
        extra: Json = {}
        for transition in load_workflow(name).transitions:
            if state in transition.sources:
                extra.update(_meet_guards(shop, orders[key], transition))
        return extra, shop.customer(orders[key])

    ready = dict(zip(STATES, parallel(prepare, STATES), strict=True))
    forbidden = frozenset({403})
    for case in CASES:
        name, source, transition = case
        order = orders[(name, source)]
        extra, customer = ready[(name, source)]
        refused: list[str | Customer] = [r for r in STAFF_ROLES if Role(r) not in transition.roles]
        for who in [*refused, customer]:
            attempts.append(
                Attempt(
                    f"{case_id(case)} by {who if isinstance(who, str) else 'the customer'}",
                    order["id"],
                    transition.target,
                    who,
                    extra,
                    forbidden,
                    "forbidden",
                )
            )

    for name, state in STATES:
        workflow = load_workflow(name)
        order = orders[(name, state)]
        legal = set(workflow.next_states(state))
        illegal = [s for s in workflow.states if s not in legal]
        assert illegal
        conflict = frozenset({409})
        for target in illegal:
            # The admin may make any transition there is: only legality is in question.
            attempts.append(
                Attempt(
                    f"{name}:{state}->{target} by admin",
                    order["id"],
                    target,
                    "admin",
                    TRACKING,
                    conflict,
                    "conflict",
                )
            )
        # A role that may move the order on still cannot skip ahead.
        movers = [first_role(t) for t in workflow.transitions if state in t.sources]
        if movers:
            attempts.append(
                Attempt(
                    f"{name}:{state}->{illegal[-1]} by {movers[0]}",
                    order["id"],
                    illegal[-1],
                    movers[0],
                    TRACKING,
                    conflict,
                    "conflict",
                )
            )
        attempts.append(
            Attempt(
                f"{name}:{state}->no_such_state",
                order["id"],
                "no_such_state",
                "admin",
                {},
                frozenset({400, 409}),
                None,
            )
        )

    def attempt(a: Attempt) -> str | None:
        resp = shop.move(a.order_id, a.target, a.who, **a.extra)
        if resp.status_code not in a.status:
            return f"{a.what}: expected {sorted(a.status)}, got {resp.status_code} {resp.text}"
        error = expect_error(resp, resp.status_code, a.code)
        if a.code == "conflict" and a.target not in error["message"]:
            return f"{a.what}: the message does not name the target: {error}"
        return None

    before = shop.server.db_snapshot()
    wrong = [w for w in parallel(attempt, attempts) if w]
    after = shop.server.db_snapshot()
    assert not wrong, "\n".join(wrong)
    assert_unchanged(before, after)
    assert len(attempts) > 200


def test_admin_may_make_any_transition(shop: Shop) -> None:
    def run(name: str) -> None:
        workflow = load_workflow(name)
        order = shop.create_order(name)
        for transition in path_to(workflow, sorted(workflow.terminal - {"cancelled"})[0]):
            extra = _meet_guards(shop, order, transition, "admin")
            resp = shop.move(order["id"], transition.target, "admin", **extra)
            assert resp.status_code == 200, resp.text
            order = resp.json()

    parallel(run, workflow_names())


def test_malformed_status_requests_change_nothing(shop: Shop) -> None:
    order = shop.create_order("retail")
    path = f"/api/orders/{order['id']}/status"
    before = shop.server.db_snapshot()
    bad: list[object] = [
        {},
        {"to": ""},
        {"to": 5},
        {"to": None},
        {"to": "confirmed", "colour": "red"},
        {"to": "confirmed", "photos": "not a list"},
        {"to": "confirmed", "photos": [{}] * 21},
        {"to": "confirmed", "carrier": ""},
        {"to": "confirmed", "tracking_no": "x" * 65},
        {"to": "confirmed", "note": 7},
        [],
        "confirmed",
    ]
    for body in bad:
        resp = shop.call("customer_service", "POST", path, body)
        expect_error(resp, 400, "bad_request")
    resp = shop.client("customer_service").post(path, content=b"{not json")
    expect_error(resp, 400, "bad_request")
    resp = shop.move("o_nosuchorder000000000", "confirmed", "customer_service")
    expect_error(resp, 404, "not_found")
    assert_unchanged(before, shop.server.db_snapshot())


# --- guards -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", _guarded("paid_or_ship_approved"), ids=case_id)
def test_an_unpaid_order_does_not_ship(
    shop: Shop, pool: OrderPool, case: tuple[str, str, Transition]
) -> None:
    name, source, transition = case
    role = first_role(transition)

    order = pool.take(name, source)
    # Part paid is still unpaid for shipping.
    resp = shop.call(
        "finance",
        "POST",
        f"/api/orders/{order['id']}/payments",
        {"amount_cents": order["total_cents"] // 2, "method": "wechat", "reference": "half"},
    )
    assert resp.status_code in (200, 201), resp.text
    before = shop.server.db_snapshot()
    resp = shop.move(order["id"], transition.target, role, **TRACKING)
    error = expect_error(resp, 409, "conflict")
    assert error["reason"] == "workflows.order_not_paid_finance_must", error
    assert_unchanged(before, shop.server.db_snapshot())
    shop.record_payment(order["id"])
    resp = shop.move(order["id"], transition.target, role, **TRACKING)
    assert resp.status_code == 200, f"paid in full: {resp.text}"
    assert resp.json()["payment_status"] == "paid"

    # Unpaid, but finance approved shipping it.
    order = pool.take(name, source)
    shop.allow_shipping(order["id"])
    assert shop.get_order(order["id"])["ship_approved"] is True
    resp = shop.move(order["id"], transition.target, role, **TRACKING)
    assert resp.status_code == 200, f"ship approved: {resp.text}"
    assert resp.json()["payment_status"] == "unpaid"


@pytest.mark.parametrize("case", _guarded("has_tracking"), ids=case_id)
def test_shipping_needs_carrier_and_tracking_number(
    shop: Shop, pool: OrderPool, case: tuple[str, str, Transition]
) -> None:
    name, source, transition = case
    role = first_role(transition)
    order = pool.take(name, source)
    shop.allow_shipping(order["id"])
    before = shop.server.db_snapshot()
    for extra in ({}, {"carrier": "SF Express"}, {"tracking_no": "SF1"}):
        resp = shop.move(order["id"], transition.target, role, **extra)
        error = expect_error(resp, 409, "conflict")
        assert error["reason"] == "workflows.record_carrier_tracking_number_first", error
    assert_unchanged(before, shop.server.db_snapshot())

    # Recorded beforehand (logistics may update the order), the move needs no more.
    resp = shop.call("logistics", "PATCH", f"/api/orders/{order['id']}", TRACKING)
    assert resp.status_code == 200, resp.text
    resp = shop.move(order["id"], transition.target, role)
    assert resp.status_code == 200, resp.text
    view = resp.json()
    assert (view["carrier"], view["tracking_no"]) == (TRACKING["carrier"], TRACKING["tracking_no"])
    assert view["shipped_ts"] is not None
    row = shop.order_row(order["id"])
    assert (row["carrier"], row["tracking_no"]) == (TRACKING["carrier"], TRACKING["tracking_no"])
    assert row["shipped_at_ms"] == view["shipped_ts"]


@pytest.mark.parametrize("case", _guarded("confirmations_approved"), ids=case_id)
def test_required_confirmations_must_be_approved(
    shop: Shop, pool: OrderPool, case: tuple[str, str, Transition]
) -> None:
    name, source, transition = case
    role = first_role(transition)
    order = pool.take(name, source)
    required = shop.add_confirmation(order["id"], required=True)
    optional = shop.add_confirmation(order["id"], required=False)
    before = shop.server.db_snapshot()
    resp = shop.move(order["id"], transition.target, role)
    error = expect_error(resp, 409, "conflict")
    assert error["reason"] == "workflows.required_confirmations_open", error
    assert_unchanged(before, shop.server.db_snapshot())

    shop.approve_confirmation(required)
    # The optional item is still open: it does not hold the order up.
    assert shop.server.db_rows("SELECT status FROM confirmation_items WHERE id = ?", optional) != [
        ("approved",)
    ]
    resp = shop.move(order["id"], transition.target, role)
    assert resp.status_code == 200, resp.text


# --- effects ----------------------------------------------------------------------------


def test_each_sample_round_is_counted(shop: Shop, pool: OrderPool) -> None:
    workflow = load_workflow("oem")
    order = pool.take("oem", "quoting")
    assert order["sample_round"] == 0
    start = shop.last_seq(order["conv"])
    to_sampling = workflow.transition("quoting", "sampling")
    again = workflow.transition("sampling", "sampling")
    order = shop.advance(order, to_sampling)
    assert order["sample_round"] == 1
    for expected in (2, 3):
        order = shop.advance(order, again, note=f"round {expected}: softer collar")
        assert order["sample_round"] == expected
        assert shop.order_row(order["id"])["sample_round"] == expected
    texts = [m["text"] for m in shop.order_events(order["conv"], start) if not m["internal"]]
    assert any("sample round 1 has started" in t for t in texts), texts
    assert any("sample round 3 has started" in t and "softer collar" in t for t in texts), texts
    order = shop.advance(order, workflow.transition("sampling", "sample_approved"))
    assert order["sample_round"] == 3


def _stock(shop: Shop, sku: str) -> tuple[int, int]:
    rows = shop.server.db_rows(
        "SELECT on_hand, reserved FROM stock_levels WHERE sku = ? AND location = 'main'", sku
    )
    assert len(rows) == 1, rows
    return int(rows[0][0]), int(rows[0][1])


def _movements(shop: Shop, order_id: str) -> list[tuple[str, str, int]]:
    rows = shop.server.db_rows(
        "SELECT kind, sku, quantity FROM stock_movements WHERE order_id = ? ORDER BY ts, id",
        order_id,
    )
    return [(str(k), str(s), int(q)) for k, s, q in rows]


def test_retail_stock_effects_follow_the_order(shop: Shop) -> None:
    """reserve on confirm, release on cancel, sale_out on ship, return_in on return."""
    sku = "STOCK-EFFECTS"
    seed_skus(shop.server, sku, stock=10)
    workflow = load_workflow("retail")

    cancelled = shop.create_order("retail", sku=sku, quantity=3)
    cancelled = shop.advance(cancelled, workflow.transition("placed", "confirmed"))
    assert _stock(shop, sku) == (10, 3), "confirming reserves the items"
    shop.advance(cancelled, workflow.transition("confirmed", "cancelled"))
    assert _stock(shop, sku) == (10, 0), "cancelling gives the reservation back"

    order = shop.order_at("retail", "shipped", sku=sku, quantity=3)
    assert _stock(shop, sku) == (7, 0), "shipping turns the reservation into a sale"
    assert ("sale_out", sku, 3) in _movements(shop, order["id"])
    for target in ("out_for_delivery", "delivered", "return_requested", "returned"):
        order = shop.advance(order, workflow.transition(order["status"], target))
    assert _stock(shop, sku) == (10, 0), "returned items are back on the shelf"
    assert ("return_in", sku, 3) in _movements(shop, order["id"])
