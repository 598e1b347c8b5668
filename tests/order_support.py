"""Orders against a real server: one staff user per role, SKUs, customers, and
helpers that drive an order through its workflow over HTTP.

The workflows come from the TOML files the server ships, so whatever a test
derives from them (paths, allowed roles, notified roles) follows the data.

Guards are met through the APIs that record their facts: finance's payments
and shipping approvals, and the customer's approval of confirmation items.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson

import orderchat
from orderchat.core.model import Role
from orderchat.core.routing import render
from orderchat.core.workflows import Transition, Workflow, parse_workflow
from orderchat.services.orders.workflows import NOT_WORKFLOWS
from tests.media_samples import jpeg
from tests.media_support import raw_upload, settle_previews
from tests.support import Account, ServerProcess, seed_skus

WORKFLOWS_DIR = Path(orderchat.__file__).parent / "workflows"
STAFF_ROLES: tuple[str, ...] = tuple(r.value for r in Role if r is not Role.ADMIN)
SKU = "TEE-01"
SKU_OTHER = "BAG-02"

_numbers = itertools.count(1)
Json = dict[str, Any]
T = TypeVar("T")
R = TypeVar("R")
# Concurrent requests let the server's group commit batch them: setting up many
# orders in parallel is several times faster than one after another.
WORKERS = 16


def parallel(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """`fn` over `items` on a thread pool, results in the order of `items`."""
    work = list(items)
    if len(work) <= 1:
        return [fn(item) for item in work]
    with ThreadPoolExecutor(min(WORKERS, len(work))) as pool:
        return list(pool.map(fn, work))


def workflow_names() -> list[str]:
    """Every workflow the server ships, by its TOML file."""
    return sorted(p.stem for p in WORKFLOWS_DIR.glob("*.toml") if p.name not in NOT_WORKFLOWS)


def load_workflow(name: str) -> Workflow:
    return parse_workflow((WORKFLOWS_DIR / f"{name}.toml").read_text("utf-8"))


def transition_cases() -> list[tuple[str, str, Transition]]:
    """(workflow, source, transition) for every source of every transition."""
    cases = []
    for name in workflow_names():
        for transition in load_workflow(name).transitions:
            for source in sorted(transition.sources):
                cases.append((name, source, transition))
    return cases


def case_id(case: tuple[str, str, Transition]) -> str:
    name, source, transition = case
    return f"{name}:{source}->{transition.target}"


def path_to(workflow: Workflow, target: str) -> list[Transition]:
    """The shortest run of transitions from the initial state to `target`."""
    previous: dict[str, tuple[str, Transition] | None] = {workflow.initial: None}
    queue = deque([workflow.initial])
    while queue:
        state = queue.popleft()
        if state == target:
            break
        for transition in workflow.transitions:
            if state in transition.sources and transition.target not in previous:
                previous[transition.target] = (state, transition)
                queue.append(transition.target)
    if target not in previous:
        raise AssertionError(f"{workflow.name}: no path to {target!r}")
    steps: list[Transition] = []
    state = target
    while (step := previous[state]) is not None:
        state, transition = step
        steps.append(transition)
    return steps[::-1]


def first_role(transition: Transition) -> str:
    return sorted(r.value for r in transition.roles)[0]


def expected_text(transition: Transition, order: Json, language: str, note: str = "") -> str:
    """The message a status change posts in the order's conversation, after the move.

    The customer reads it in their language when the transition tells them;
    otherwise it is a staff-only note, in Chinese.
    """
    details = {
        "number": order["number"],
        "carrier": order["carrier"] or "",
        "tracking_no": order["tracking_no"] or "",
        "round": order["sample_round"],
        "note": note,
    }
    template = transition.text["zh-CN"]
    if transition.customer:
        template = transition.text.get(language, template)
    return render(template, details)


def error_of(resp: httpx.Response) -> Json:
    """The contract's error body: {"error": {"code", "message", "reason", "params"}}.

    The message is for people to read; the reason is the catalogue key it was
    worded from, and params the values it names.
    """
    body = resp.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "reason", "params"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    assert isinstance(body["error"]["reason"], str) and isinstance(body["error"]["params"], dict)
    error: Json = body["error"]
    return error


def expect_error(resp: httpx.Response, status: int | set[int], code: str | None = None) -> Json:
    statuses = {status} if isinstance(status, int) else status
    assert resp.status_code in statuses, f"{resp.request.method} {resp.request.url}: {resp.text}"
    error = error_of(resp)
    if code is not None:
        assert error["code"] == code, error
    return error


Snapshot = dict[str, list[tuple[Any, ...]]]


def assert_unchanged(before: Snapshot, after: Snapshot) -> None:
    """The database is as it was: name the first rows that differ, table by table."""
    for table, rows in before.items():
        now = after[table]
        if now == rows:
            continue
        added = list((Counter(now) - Counter(rows)).elements())
        removed = list((Counter(rows) - Counter(now)).elements())
        raise AssertionError(f"{table}: added {added[:3]}, removed {removed[:3]}")


@dataclass
class Customer:
    id: str
    token: str
    order_id: str


@dataclass
class Shop:
    """A real server with one staff user for every role and a small catalogue."""

    server: ServerProcess
    staff: dict[str, Account]
    _clients: dict[str, httpx.Client] = field(default_factory=dict)

    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, server: ServerProcess) -> Shop:
        accounts = parallel(
            lambda role: server.user(role, name=f"{role}{next(_numbers)}"), STAFF_ROLES
        )
        staff = dict(zip(STAFF_ROLES, accounts, strict=True))
        assert server.admin is not None
        staff["admin"] = server.admin
        seed_skus(server, SKU, SKU_OTHER, unit_price_cents=9900, stock=100_000)
        return cls(server, staff)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    # --- HTTP ------------------------------------------------------------------

    def client(self, who: str | Account | Customer | None) -> httpx.Client:
        """A kept-open HTTP client for that user (None: signed out); safe across threads."""
        token = self.token(who)
        with self._lock:
            found = self._clients.get(token)
            if found is None:
                found = self._clients[token] = self.server.http(token or None)
            return found

    def token(self, who: str | Account | Customer | None) -> str:
        if who is None:
            return ""
        if isinstance(who, str):
            return self.staff[who].token
        return who.token

    def call(
        self, who: str | Account | Customer | None, method: str, path: str, body: object = None
    ) -> httpx.Response:
        if body is None and method in ("GET", "DELETE"):
            return self.client(who).request(method, path)
        return self.client(who).request(method, path, json=body if body is not None else {})

    def get_order(self, order_id: str, who: str | Account | Customer = "admin") -> Json:
        resp = self.call(who, "GET", f"/api/orders/{order_id}")
        assert resp.status_code == 200, resp.text
        order: Json = resp.json()
        return order

    # --- orders -------------------------------------------------------------------

    def new_number(self, prefix: str = "T") -> str:
        return f"{prefix}-{next(_numbers)}-{time.monotonic_ns() % 1_000_000}"

    def order_body(
        self,
        workflow: str = "retail",
        *,
        language: str = "en",
        note: str = "",
        quantity: int = 2,
        sku: str = SKU,
        customer_id: str | None = None,
        number: str | None = None,
    ) -> Json:
        body: Json = {
            "number": number or self.new_number(workflow[:1].upper()),
            "workflow": workflow,
            "items": [
                {"sku": sku, "name": f"Item {sku}", "quantity": quantity, "unit_price_cents": 9900}
            ],
            "address": {
                "name": "Lin Mei",
                "phone": "13800000000",
                "country": "CN",
                "region": "Zhejiang",
                "city": "Hangzhou",
                "district": "Xihu",
                "line1": "1 Wensan Road",
                "postcode": "310000",
            },
            "currency": "CNY",
        }
        if note:
            body["note"] = note
        if customer_id is None:
            body["customer"] = {
                "name": f"Customer {next(_numbers)}",
                "phone": "13900000000",
                "segment": "brand" if workflow == "oem" else "retail",
                "language": language,
            }
        else:
            body["customer_id"] = customer_id
        return body

    def create_order(
        self, workflow: str = "retail", *, by: str | None = None, **options: Any
    ) -> Json:
        creator = by or ("sales" if workflow == "oem" else "customer_service")
        resp = self.call(creator, "POST", "/api/orders", self.order_body(workflow, **options))
        assert resp.status_code == 201, resp.text
        order: Json = resp.json()
        return order

    def move(
        self, order_id: str, to: str, who: str | Account | Customer, **extra: object
    ) -> httpx.Response:
        return self.call(who, "POST", f"/api/orders/{order_id}/status", {"to": to, **extra})

    def advance(
        self,
        order: Json,
        transition: Transition,
        *,
        role: str | None = None,
        note: str = "",
    ) -> Json:
        """Move the order along `transition`, meeting its guards first."""
        extra: Json = {}
        if note:
            extra["note"] = note
        if "paid_or_ship_approved" in transition.guards and not (
            order["payment_status"] == "paid" or order["ship_approved"]
        ):
            self.allow_shipping(order["id"])
        if "has_tracking" in transition.guards and not (order["carrier"] and order["tracking_no"]):
            extra["carrier"] = "SF Express"
            extra["tracking_no"] = f"SF{next(_numbers):010d}"
        who = role or first_role(transition)
        if transition.photos_required:
            extra["photos"] = [self.photo(order, who)]
        resp = self.move(order["id"], transition.target, who, **extra)
        assert resp.status_code == 200, f"{order['status']} -> {transition.target}: {resp.text}"
        moved: Json = resp.json()
        return moved

    def photo(
        self,
        order: Json,
        who: str | Account | Customer,
        data: bytes | None = None,
        filetype: str = "image/jpeg",
    ) -> str:
        """A finished upload by `who` into the order's conversation: a step's photo to give.

        Its preview is made before it goes out, so no preview event of it lands later,
        in the middle of another test's "changes nothing" check.
        """
        body = jpeg() if data is None else data
        with self.server.http(self.token(who)) as client:  # a fresh connection: uploads POST
            upload_id = raw_upload(client, order["conv"], body, "step.jpg", filetype)
        settle_previews(self.server)
        return upload_id

    def drive(self, order: Json, state: str) -> Json:
        """Move a fresh order along the shortest path to `state`."""
        workflow = load_workflow(order["workflow"])
        for transition in path_to(workflow, state):
            order = self.advance(order, transition)
        assert order["status"] == state
        return order

    def order_at(self, workflow: str, state: str, **options: Any) -> Json:
        return self.drive(self.create_order(workflow, **options), state)

    # --- facts recorded by finance and confirmations ----------------------------------

    def allow_shipping(self, order_id: str) -> None:
        """Make an unpaid order pass `paid_or_ship_approved`: finance approves shipping it."""
        resp = self.call(
            "finance", "POST", f"/api/orders/{order_id}/ship-approval", {"note": "trusted"}
        )
        assert resp.status_code in (200, 201), resp.text

    def record_payment(self, order_id: str) -> None:
        """Finance records a payment of whatever the order still owes."""
        order = self.get_order(order_id)
        amount = order["total_cents"] - order["paid_cents"]
        resp = self.call(
            "finance",
            "POST",
            f"/api/orders/{order_id}/payments",
            {"amount_cents": amount, "method": "bank_transfer", "reference": "TX-1"},
        )
        assert resp.status_code in (200, 201), resp.text

    def add_confirmation(self, order_id: str, *, required: bool = True) -> str:
        """A confirmation item on the order, not approved yet; returns its id."""
        resp = self.call(
            "sales",
            "POST",
            f"/api/orders/{order_id}/confirmations",
            {"kind": "material", "title": "Main fabric", "required": required},
        )
        assert resp.status_code == 201, resp.text
        item_id: str = resp.json()["id"]
        return item_id

    def approve_confirmation(self, item_id: str, decider: str | Customer = "admin") -> None:
        """Sales proposes a version of the item; the customer (or an admin) approves it."""
        resp = self.call(
            "sales", "POST", f"/api/confirmations/{item_id}/versions", {"text": "Cotton 220g"}
        )
        assert resp.status_code == 201, resp.text
        number = resp.json()["version"]["number"]
        resp = self.call(
            decider,
            "POST",
            f"/api/confirmations/{item_id}/versions/{number}/decision",
            {"decision": "approved", "comment": "ok"},
        )
        assert resp.status_code == 200, resp.text

    # --- customers ------------------------------------------------------------------

    def invite(self, order: Json, by: str = "customer_service") -> str:
        resp = self.call(by, "POST", f"/api/orders/{order['id']}/invitations")
        assert resp.status_code == 201, resp.text
        token: str = resp.json()["token"]
        return token

    def customer(self, order: Json) -> Customer:
        """The order's customer, signed in through an invitation link."""
        token = self.invite(order)
        resp = self.call(None, "POST", "/api/auth/invitation", {"token": token, "device": "phone"})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["user"]["id"] == order["customer"], body
        assert body["order"] == order["id"], body
        return Customer(body["user"]["id"], body["token"], order["id"])

    # --- the database, read back ---------------------------------------------------------

    def order_row(self, order_id: str) -> dict[str, Any]:
        rows = self.server.db_rows(
            "SELECT status, version, sample_round, payment_status, carrier, tracking_no,"
            " shipped_at_ms, address, note FROM orders WHERE id = ?",
            order_id,
        )
        assert len(rows) == 1, rows
        keys = (
            "status",
            "version",
            "sample_round",
            "payment_status",
            "carrier",
            "tracking_no",
            "shipped_at_ms",
            "address",
            "note",
        )
        return dict(zip(keys, rows[0], strict=True))

    def messages_in(self, conv_id: str, after_seq: int = 0) -> list[Json]:
        """Messages of a conversation as stored, ascending seq, with parsed JSON columns."""
        rows = self.server.db_rows(
            "SELECT seq, kind, text, mentions, internal, meta, sender_id FROM messages"
            " WHERE conv_id = ? AND seq > ? ORDER BY seq",
            conv_id,
            after_seq,
        )
        return [
            {
                "seq": seq,
                "kind": kind,
                "text": text,
                "mentions": json.loads(mentions),
                "internal": bool(internal),
                "meta": json.loads(meta) if meta else None,
                "sender": sender,
            }
            for seq, kind, text, mentions, internal, meta, sender in rows
        ]

    def last_seq(self, conv_id: str) -> int:
        rows = self.server.db_rows("SELECT last_seq FROM conversations WHERE id = ?", conv_id)
        return int(rows[0][0])

    def role_channels(self) -> dict[str, tuple[str, str]]:
        """role -> (conversation id, title) of every role channel made so far."""
        rows = self.server.db_rows(
            "SELECT role_channel, id, title FROM conversations WHERE role_channel IS NOT NULL"
        )
        return {role: (conv, title) for role, conv, title in rows}

    def channel_posts(self, order_id: str) -> dict[str, list[Json]]:
        """role -> the messages about `order_id` posted in that role's channel."""
        found: dict[str, list[Json]] = {}
        for role, (conv, _) in self.role_channels().items():
            posts = [
                m
                for m in self.messages_in(conv)
                if m["meta"] and m["meta"].get("order") == order_id
            ]
            if posts:
                found[role] = posts
        return found

    def order_events(self, conv_id: str, after_seq: int = 0) -> Iterator[Json]:
        for message in self.messages_in(conv_id, after_seq):
            if message["kind"] == "order_event":
                yield message


class OrderPool:
    """Orders made ahead, in parallel, in the states tests ask for; each is taken once."""

    def __init__(self, shop: Shop, wants: Counter[tuple[str, str]]) -> None:
        plan = [key for key, count in sorted(wants.items()) for _ in range(count)]
        made = parallel(lambda key: shop.order_at(*key), plan)
        self._orders: dict[tuple[str, str], list[Json]] = {}
        for key, order in zip(plan, made, strict=True):
            self._orders.setdefault(key, []).append(order)

    def take(self, workflow: str, state: str) -> Json:
        found = self._orders.get((workflow, state))
        assert found, f"no {workflow} order at {state} was made ahead"
        return found.pop()


# --- plain HTTP calls, for tests that do not need a Shop ---------------------------


def call(
    server: ServerProcess, token: str, method: str, path: str, body: object = None
) -> httpx.Response:
    with server.http(token) as client:
        if body is None:
            return client.request(method, path)
        return client.request(
            method, path, content=orjson.dumps(body), headers={"Content-Type": "application/json"}
        )


def step_photo(server: ServerProcess, token: str, conv: str) -> str:
    """A finished JPEG upload into `conv` by the token's user, for a step that needs one."""
    with server.http(token) as client:
        upload_id = raw_upload(client, conv, jpeg(), "step.jpg", "image/jpeg")
    settle_previews(server)  # see Shop.photo
    return upload_id


def ok(resp: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    return body


def stock_sku(server: ServerProcess, sku: str, unit_price_cents: int) -> None:
    """Put the SKU in the catalogue with plenty on the shelf, as purchasing would."""
    buyer = server.user("purchasing")
    body = {"sku": sku, "name_zh": sku, "name_en": sku, "unit_price_cents": unit_price_cents}
    ok(call(server, buyer.token, "POST", "/api/skus", body), 201)
    receipt = {
        "sku": sku,
        "kind": "purchase_in",
        "to_location": "main",
        "quantity": 100_000,
        "reason": "opening stock",
    }
    ok(call(server, buyer.token, "POST", "/api/stock/movements", receipt), 201)
