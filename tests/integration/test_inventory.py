"""Inventory against a real server: the catalogue, movements, CSV, low stock,
`/stock` in the chat, and what orders do to stock.

Every refusal is checked twice: the contract's error body, and the database
read back unchanged.
"""

from __future__ import annotations

import csv
import io
import itertools
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.order_support import Json, Shop, expect_error
from tests.support import PeerPool, ServerProcess, messages

pytestmark = pytest.mark.timeout(120)

_codes = itertools.count(1)
IMPORT_ROWS = 3000
# Generous for one transaction of a few thousand rows on a slow CI machine;
# row-by-row work would take far longer.
IMPORT_BUDGET_S = 15.0


@pytest.fixture(scope="module")
def shop(server: ServerProcess) -> Iterator[Shop]:
    opened = Shop.open(server)
    yield opened
    opened.close()


def _code(prefix: str = "INV") -> str:
    return f"{prefix}-{next(_codes)}-{time.monotonic_ns() % 100_000}"


def _new_sku(shop: Shop, code: str | None = None, **fields: object) -> Json:
    body: Json = {
        "sku": code or _code(),
        "name_zh": "双人帐篷",
        "name_en": "Two-person Tent",
        "category": "tents",
        "unit_price_cents": 59900,
        "low_stock_threshold": 0,
        **fields,
    }
    resp = shop.call("warehouse", "POST", "/api/skus", body)
    assert resp.status_code == 201, resp.text
    created: Json = resp.json()
    return created


def _move(
    shop: Shop, sku: str, kind: str, quantity: int, who: str = "warehouse", **extra: object
) -> httpx.Response:
    body = {"sku": sku, "kind": kind, "quantity": quantity, "reason": "test", **extra}
    return shop.call(who, "POST", "/api/stock/movements", body)


def _moved(
    shop: Shop, sku: str, kind: str, quantity: int, who: str = "warehouse", **extra: object
) -> Json:
    resp = _move(shop, sku, kind, quantity, who, **extra)
    assert resp.status_code == 201, resp.text
    body: Json = resp.json()
    return body


def _levels(shop: Shop, sku: str) -> dict[str, tuple[int, int]]:
    """(on_hand, reserved) per location, read from the database itself."""
    rows = shop.server.db_rows(
        "SELECT location, on_hand, reserved FROM stock_levels WHERE sku = ?", sku
    )
    return {location: (on_hand, reserved) for location, on_hand, reserved in rows}


def _ledger(shop: Shop, sku: str) -> list[tuple[Any, ...]]:
    return shop.server.db_rows(
        "SELECT kind, from_location, to_location, quantity, order_id, reason, by"
        " FROM stock_movements WHERE sku = ? ORDER BY id",
        sku,
    )


def _low_stock_posts(shop: Shop, sku: str) -> list[Json]:
    channels = shop.role_channels()
    if "purchasing" not in channels:
        return []
    return [
        m
        for m in shop.messages_in(channels["purchasing"][0])
        if m["meta"]
        and m["meta"].get("event") == "low_stock"
        and m["meta"]["details"].get("sku") == sku
    ]


# --- the catalogue -----------------------------------------------------------------


def test_create_sku_returns_201_and_reads_back_without_stock(shop: Shop) -> None:
    created = _new_sku(shop, low_stock_threshold=3)
    assert created["sku"].startswith("INV-")
    assert (created["on_hand"], created["reserved"], created["available"]) == (0, 0, 0)
    resp = shop.call("finance", "GET", f"/api/skus/{created['sku']}")
    assert resp.status_code == 200, resp.text
    assert resp.json() == created
    assert resp.json()["levels"] == []


def test_same_sku_twice_is_409_and_changes_nothing(shop: Shop) -> None:
    created = _new_sku(shop)
    before = shop.server.db_snapshot()
    resp = shop.call("purchasing", "POST", "/api/skus", {**created, "levels": None})
    expect_error(resp, 400, "bad_request")  # unknown key "levels"
    body = {k: created[k] for k in ("sku", "name_zh", "name_en", "unit_price_cents")}
    expect_error(shop.call("purchasing", "POST", "/api/skus", body), 409, "conflict")
    assert shop.server.db_snapshot() == before


@pytest.mark.parametrize(
    "fields",
    [
        {"unit_price_cents": -100},
        {"unit_price_cents": "100"},
        {"low_stock_threshold": -1},
        {"sku": "with space"},
        {"sku": ""},
        {"name_zh": "", "name_en": ""},
        {"colour": "red"},
    ],
    ids=[
        "negative-price",
        "string-price",
        "negative-threshold",
        "space",
        "empty",
        "no-name",
        "extra",
    ],
)
def test_bad_sku_bodies_get_400_and_change_nothing(shop: Shop, fields: Json) -> None:
    body = {"sku": _code(), "name_zh": "绳", "unit_price_cents": 100, **fields}
    before = shop.server.db_snapshot()
    expect_error(shop.call("warehouse", "POST", "/api/skus", body), 400, "bad_request")
    assert shop.server.db_snapshot() == before


def test_update_changes_catalogue_fields_but_never_the_code(shop: Shop) -> None:
    code = _new_sku(shop)["sku"]
    resp = shop.call("purchasing", "PATCH", f"/api/skus/{code}", {"low_stock_threshold": 8})
    assert resp.status_code == 200, resp.text
    assert resp.json()["low_stock_threshold"] == 8
    before = shop.server.db_snapshot()
    expect_error(shop.call("purchasing", "PATCH", f"/api/skus/{code}", {"sku": "X"}), 400)
    expect_error(shop.call("finance", "PATCH", f"/api/skus/{code}", {"category": "x"}), 403)
    expect_error(shop.call("purchasing", "PATCH", "/api/skus/NOPE-0", {"category": "x"}), 404)
    assert shop.server.db_snapshot() == before


def test_search_by_code_or_name_in_either_language_ignores_case(shop: Shop) -> None:
    tag = _code("FIND")
    code = _new_sku(shop, tag, name_zh=f"防水背包{tag}", name_en=f"Waterproof Backpack {tag}")[
        "sku"
    ]
    for query in (tag.lower(), f"防水背包{tag}", f"waterproof {tag.lower()}", f"BACKPACK {tag}"):
        resp = shop.call("sales", "GET", f"/api/skus?q={query}")
        assert resp.status_code == 200, resp.text
        assert [s["sku"] for s in resp.json()["skus"]] == [code], query
    assert shop.call("sales", "GET", "/api/skus?q=100%25_none").json()["skus"] == []


def test_unknown_sku_is_404(shop: Shop) -> None:
    expect_error(shop.call("warehouse", "GET", "/api/skus/NOPE-404"), 404, "not_found")


# --- movements ---------------------------------------------------------------------


def test_movements_change_levels_and_record_who_and_why(shop: Shop) -> None:
    code = _new_sku(shop)["sku"]
    receipt = _moved(shop, code, "purchase_in", 10, reason="supplier delivery 88")
    assert receipt["movement"]["kind"] == "purchase_in"
    assert receipt["movement"]["by"] == shop.staff["warehouse"].id
    assert receipt["levels"] == [
        {"sku": code, "location": "main", "on_hand": 10, "reserved": 0, "available": 10}
    ]
    _moved(shop, code, "sale_out", 3, reason="counter sale")
    _moved(shop, code, "transfer", 2, from_location="main", to_location="shop")
    _moved(shop, code, "return_in", 1, to_location="shop", who="purchasing")
    last = _moved(shop, code, "adjustment", 1, from_location="shop", reason="damaged")
    assert _levels(shop, code) == {"main": (5, 0), "shop": (2, 0)}
    assert last["sku"]["on_hand"] == 7
    warehouse, purchasing = shop.staff["warehouse"].id, shop.staff["purchasing"].id
    assert _ledger(shop, code) == [
        ("purchase_in", None, "main", 10, None, "supplier delivery 88", warehouse),
        ("sale_out", "main", None, 3, None, "counter sale", warehouse),
        ("transfer", "main", "shop", 2, None, "test", warehouse),
        ("return_in", None, "shop", 1, None, "test", purchasing),
        ("adjustment", "shop", None, 1, None, "damaged", warehouse),
    ]
    listed = shop.call("finance", "GET", f"/api/stock/movements?sku={code}").json()["movements"]
    assert [m["kind"] for m in listed] == [
        "adjustment",
        "return_in",
        "transfer",
        "sale_out",
        "purchase_in",
    ]
    levels = shop.call("finance", "GET", f"/api/stock?sku={code}").json()["levels"]
    assert [(lv["location"], lv["on_hand"]) for lv in levels] == [("main", 5), ("shop", 2)]


BAD_MOVEMENTS: list[tuple[str, Json, int]] = [
    ("negative-quantity", {"kind": "purchase_in", "quantity": -5}, 400),
    ("zero-quantity", {"kind": "purchase_in", "quantity": 0}, 400),
    ("negative-adjustment", {"kind": "adjustment", "quantity": -2, "to_location": "main"}, 400),
    ("string-quantity", {"kind": "purchase_in", "quantity": "5"}, 400),
    ("below-zero-sale", {"kind": "sale_out", "quantity": 5}, 409),
    ("below-zero-transfer", {"kind": "transfer", "quantity": 5, "to_location": "b"}, 400),
    (
        "below-zero-transfer-2",
        {"kind": "transfer", "quantity": 5, "from_location": "main", "to_location": "b"},
        409,
    ),
    ("unknown-sku", {"kind": "purchase_in", "quantity": 1, "sku": "NO-SUCH-SKU"}, 400),
    ("reserve-by-hand", {"kind": "reserve", "quantity": 1}, 400),
    ("no-reason", {"kind": "purchase_in", "quantity": 1, "reason": ""}, 400),
    ("unknown-order", {"kind": "sale_out", "quantity": 1, "order_id": "o_nope"}, 400),
    ("unknown-key", {"kind": "purchase_in", "quantity": 1, "note": "x"}, 400),
]


@pytest.mark.parametrize(
    ("name", "fields", "status"), BAD_MOVEMENTS, ids=[c[0] for c in BAD_MOVEMENTS]
)
def test_bad_movements_get_4xx_and_change_nothing(
    shop: Shop, name: str, fields: Json, status: int
) -> None:
    code = _new_sku(shop)["sku"]
    _moved(shop, code, "purchase_in", 3)
    before = shop.server.db_snapshot()
    body = {"sku": code, "reason": "test", **fields}
    error = expect_error(shop.call("warehouse", "POST", "/api/stock/movements", body), status)
    assert error["code"] == ("conflict" if status == 409 else "bad_request")
    assert shop.server.db_snapshot() == before
    assert _levels(shop, code) == {"main": (3, 0)}


def test_below_zero_message_says_what_is_there(shop: Shop) -> None:
    code = _new_sku(shop)["sku"]
    _moved(shop, code, "purchase_in", 2)
    error = expect_error(_move(shop, code, "sale_out", 5), 409)
    assert error["message"] == f"{code} 在 main 只有 2 件可用（在库 2），无法取出 5 件"
    assert error["params"] == {
        "available": 2,
        "sku": code,
        "location": "main",
        "on_hand": 2,
        "held": "",
        "wanted": 5,
    }


def test_adjustment_records_a_stock_count_even_below_zero(shop: Shop) -> None:
    """The one movement allowed to leave a level short: a count is the truth."""
    code = _new_sku(shop)["sku"]
    _moved(shop, code, "purchase_in", 2)
    _moved(shop, code, "adjustment", 3, from_location="main", reason="stocktake")
    assert _levels(shop, code) == {"main": (-1, 0)}


def test_finance_cannot_move_stock_or_edit_the_catalogue(shop: Shop) -> None:
    code = _new_sku(shop)["sku"]
    before = shop.server.db_snapshot()
    for role in ("finance", "customer_service", "sales", "logistics", "qc"):
        expect_error(_move(shop, code, "purchase_in", 5, who=role), 403, "forbidden")
        resp = shop.call(role, "POST", "/api/skus", {"sku": _code(), "unit_price_cents": 1})
        expect_error(resp, 403, "forbidden")
        assert shop.call(role, "GET", f"/api/stock?sku={code}").status_code == 200
    assert shop.server.db_snapshot() == before


def test_without_a_token_nothing_is_visible(shop: Shop) -> None:
    with httpx.Client(base_url=shop.server.base_url, timeout=10) as anonymous:
        expect_error(anonymous.get("/api/skus"), 401, "unauthorized")
        expect_error(anonymous.get("/api/stock"), 401, "unauthorized")


# --- low stock -----------------------------------------------------------------------


def test_low_stock_alerts_purchasing_once_per_crossing(shop: Shop) -> None:
    code = _new_sku(shop, low_stock_threshold=5)["sku"]
    _moved(shop, code, "purchase_in", 10)
    _moved(shop, code, "sale_out", 5)  # 5 left: at the threshold, not below
    assert _low_stock_posts(shop, code) == []
    _moved(shop, code, "sale_out", 1)
    _moved(shop, code, "sale_out", 1)  # still low: no second alert
    posts = _low_stock_posts(shop, code)
    assert len(posts) == 1, posts
    post = posts[0]
    assert post["kind"] == "order_event"
    assert post["mentions"] == ["@purchasing"]
    assert post["text"] == f"低库存：{code} 双人帐篷 仅剩 4（阈值 5）"
    assert (
        post["meta"]["text"]["en"] == f"Low stock: {code} Two-person Tent has 4 left (threshold 5)"
    )
    assert post["meta"]["details"]["available"] == 4
    # The purchasing clerk reads it over HTTP like any channel message.
    channel = shop.role_channels()["purchasing"][0]
    seen = messages(shop.server, shop.staff["purchasing"].token, channel)
    assert any(m.get("meta", {}).get("details", {}).get("sku") == code for m in seen)
    _moved(shop, code, "purchase_in", 10)
    _moved(shop, code, "sale_out", 12)
    assert len(_low_stock_posts(shop, code)) == 2


# --- CSV ----------------------------------------------------------------------------------


def _csv(rows: list[list[object]], stock: bool = True) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    header = ["sku", "name_zh", "name_en", "category", "unit_price_cents", "low_stock_threshold"]
    writer.writerow(header + (["location", "on_hand"] if stock else []))
    writer.writerows(rows)
    return out.getvalue()


def _import(shop: Shop, text: str, who: str = "warehouse") -> httpx.Response:
    return shop.client(who).post(
        "/api/skus/import", content=text.encode(), headers={"Content-Type": "text/csv"}
    )


def test_import_of_thousands_of_rows_is_fast_and_exports_back_the_same(shop: Shop) -> None:
    prefix = _code("BULK")
    rows: list[list[object]] = [
        [
            f"{prefix}-{i:05d}",
            f"登山杖 {i}",
            f"Trekking pole {i}",
            "climbing",
            1000 + i,
            2,
            "main",
            i % 7,
        ]
        for i in range(IMPORT_ROWS)
    ]
    started = time.monotonic()
    resp = _import(shop, _csv(rows))
    elapsed = time.monotonic() - started
    assert resp.status_code == 200, resp.text
    stocked = sum(1 for r in rows if r[-1])
    assert resp.json() == {
        "rows": IMPORT_ROWS,
        "created": IMPORT_ROWS,
        "updated": 0,
        "stock_changes": stocked,
    }
    assert elapsed < IMPORT_BUDGET_S, f"import took {elapsed:.1f}s"
    count = shop.server.db_rows("SELECT COUNT(*) FROM skus WHERE sku LIKE ?", f"{prefix}-%")
    assert count == [(IMPORT_ROWS,)]
    assert _levels(shop, f"{prefix}-00013") == {"main": (6, 0)}
    assert _ledger(shop, f"{prefix}-00013") == [
        ("adjustment", None, "main", 6, None, "CSV import: counted 6", shop.staff["warehouse"].id)
    ]

    exported = shop.client("sales").get("/api/skus/export")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    mine = [r for r in csv.reader(io.StringIO(exported.text)) if r[0].startswith(prefix)]
    assert len(mine) == IMPORT_ROWS
    assert mine[13] == [
        f"{prefix}-00013",
        "登山杖 13",
        "Trekking pole 13",
        "climbing",
        "1013",
        "2",
        "main",
        "6",
    ]

    before = shop.server.db_snapshot()
    again = _import(shop, exported.text)
    assert again.status_code == 200, again.text
    assert again.json()["created"] == again.json()["updated"] == again.json()["stock_changes"] == 0
    assert shop.server.db_snapshot() == before


def test_import_updates_and_counts_stock_as_adjustments(shop: Shop) -> None:
    code = _new_sku(shop)["sku"]
    _moved(shop, code, "purchase_in", 10)
    text = _csv([[code, "四人帐篷", "Four-person tent", "tents", 79900, 4, "main", 7]])
    resp = _import(shop, text, who="purchasing")
    assert resp.json() == {"rows": 1, "created": 0, "updated": 1, "stock_changes": 1}
    sku = shop.call("sales", "GET", f"/api/skus/{code}").json()
    assert (sku["name_zh"], sku["unit_price_cents"], sku["on_hand"]) == ("四人帐篷", 79900, 7)
    assert _ledger(shop, code)[-1][:4] == ("adjustment", "main", None, 3)


def test_bad_csv_line_is_named_and_nothing_is_imported(shop: Shop) -> None:
    prefix = _code("BAD")
    rows: list[list[object]] = [
        [f"{prefix}-{i}", f"头灯 {i}", f"Headlamp {i}", "lights", 5000, 1, "main", 3]
        for i in range(600)
    ]
    rows[497][4] = "12.50"  # line 499: the header is line 1
    before = shop.server.db_snapshot()
    error = expect_error(_import(shop, _csv(rows)), 400, "bad_request")
    assert error["message"].startswith("第 499 行：unit_price_cents 必须是整数")
    for broken, message in (
        ("", "CSV 是空的"),
        ("sku,name\nA,b\n", "第 1 行"),
        (_csv([[f"{prefix}-x", "灯", "Lamp", "lights", 1, 1, "main", "lots"]]), "第 2 行：on_hand"),
    ):
        assert message in expect_error(_import(shop, broken), 400)["message"]
    assert shop.server.db_snapshot() == before


def test_only_stock_roles_may_import(shop: Shop) -> None:
    before = shop.server.db_snapshot()
    text = _csv([[_code(), "灯", "Lamp", "lights", 100, 0]], stock=False)
    expect_error(_import(shop, text, who="finance"), 403, "forbidden")
    assert shop.server.db_snapshot() == before


def test_import_accepts_excel_chinese_encoding(shop: Shop) -> None:
    code = _code("GBK")
    text = _csv([[code, "冲锋衣", "Shell jacket", "clothing", 129900, 0]], stock=False)
    resp = shop.client("warehouse").post(
        "/api/skus/import", content=text.encode("gb18030"), headers={"Content-Type": "text/csv"}
    )
    assert resp.status_code == 200, resp.text
    assert shop.call("sales", "GET", f"/api/skus/{code}").json()["name_zh"] == "冲锋衣"


# --- /stock in the chat ----------------------------------------------------------------------


async def test_stock_command_answers_the_asker_with_live_numbers(shop: Shop) -> None:
    tag = _code("ASK")
    code = _new_sku(shop, tag, name_zh=f"睡袋{tag}", name_en=f"Down Sleeping Bag {tag}")["sku"]
    _moved(shop, code, "purchase_in", 9)
    _moved(shop, code, "transfer", 4, from_location="main", to_location="shop")
    asker, colleague = shop.staff["customer_service"], shop.staff["warehouse"]
    conv = shop.server.conversation(asker, "channel", [colleague], title="询库存")["id"]
    async with PeerPool(shop.server) as pool:
        peer = await pool.record(asker.token)
        for n, text in enumerate((f"/库存睡袋{tag}", f"/stock down sleeping bag {tag.lower()}")):
            ref = f"ask-{tag}-{n}"
            await peer.send({"op": "send", "ref": ref, "conv": conv, "text": text})
            answer = await peer.wait_for(lambda f, r=ref: f.get("ref") == r)  # type: ignore[misc]
            assert answer["op"] == "command_reply", answer
            (result,) = answer["items"]
            assert (result["sku"], result["on_hand"], result["available"]) == (code, 9, 9)
            assert [(lv["location"], lv["on_hand"]) for lv in result["levels"]] == [
                ("main", 5),
                ("shop", 4),
            ]
            text_of = "\n".join(answer["lines"])
            assert f"睡袋{tag}" in text_of
            assert answer["items"][0]["name_en"] == f"Down Sleeping Bag {tag}"
            assert "main：在库 5，预留 0，可用 5" in text_of
        ref = f"ask-{tag}-none"
        await peer.send({"op": "send", "ref": ref, "conv": conv, "text": "/stock no-such-thing"})
        answer = await peer.wait_for(lambda f: f.get("ref") == ref)
        assert "没有找到" in answer["lines"][0] and answer["items"] == [] and answer["total"] == 0


# --- what orders do to stock --------------------------------------------------------------------


def _stocked(shop: Shop, quantity: int) -> str:
    code: str = _new_sku(shop)["sku"]
    if quantity:
        _moved(shop, code, "purchase_in", quantity)
    return code


def test_confirming_reserves_and_cancelling_releases(shop: Shop) -> None:
    code = _stocked(shop, 10)
    order = shop.create_order(sku=code, quantity=4)
    assert _levels(shop, code) == {"main": (10, 0)}
    shop.move(order["id"], "confirmed", "customer_service").raise_for_status()
    assert _levels(shop, code) == {"main": (10, 4)}
    # Held stock cannot be sold at the counter.
    before = shop.server.db_snapshot()
    expect_error(_move(shop, code, "sale_out", 7), 409, "conflict")
    assert shop.server.db_snapshot() == before
    shop.move(order["id"], "cancelled", "customer_service").raise_for_status()
    assert _levels(shop, code) == {"main": (10, 0)}
    assert [row[0] for row in _ledger(shop, code)] == ["purchase_in", "reserve", "release"]
    assert {row[4] for row in _ledger(shop, code)[1:]} == {order["id"]}


def test_too_little_stock_reserves_what_there_is_and_reports_out_of_stock(shop: Shop) -> None:
    code = _stocked(shop, 2)
    order = shop.create_order(sku=code, quantity=5)
    shop.move(order["id"], "confirmed", "customer_service").raise_for_status()
    assert _levels(shop, code) == {"main": (2, 2)}
    events = [
        m["meta"]
        for m in shop.order_events(order["conv"])
        if m["meta"] and m["meta"]["event"] == "out_of_stock"
    ]
    assert len(events) == 1, events
    assert (events[0]["details"]["sku"], events[0]["details"]["needed"]) == (code, 5)
    assert events[0]["details"]["available"] == 2


def test_shipping_turns_the_reservation_into_a_sale_and_returns_come_back(shop: Shop) -> None:
    code = _stocked(shop, 10)
    order = shop.order_at("retail", "shipped", sku=code, quantity=3)
    assert _levels(shop, code) == {"main": (7, 0)}
    sales = [row for row in _ledger(shop, code) if row[0] == "sale_out"]
    assert [(row[3], row[4]) for row in sales] == [(3, order["id"])]
    listed = shop.call("warehouse", "GET", f"/api/stock/movements?order_id={order['id']}")
    assert {m["kind"] for m in listed.json()["movements"]} == {"reserve", "release", "sale_out"}
    _to_returned(shop, order)
    assert _levels(shop, code) == {"main": (10, 0)}
    assert [row[0] for row in _ledger(shop, code)][-1] == "return_in"


def _to_returned(shop: Shop, order: Json) -> Json:
    for state, role in (
        ("out_for_delivery", "logistics"),
        ("delivered", "logistics"),
        ("return_requested", "customer_service"),
        ("returned", "warehouse"),
    ):
        resp = shop.move(order["id"], state, role)
        assert resp.status_code == 200, resp.text
        order = resp.json()
    return order


def test_shipping_without_enough_stock_is_refused_and_changes_nothing(shop: Shop) -> None:
    code = _stocked(shop, 3)
    order = shop.order_at("retail", "packed", sku=code, quantity=3)
    _moved(shop, code, "adjustment", 2, from_location="main", reason="found damaged")
    shop.allow_shipping(order["id"])
    before = shop.server.db_snapshot()
    resp = shop.move(
        order["id"], "shipped", "warehouse", carrier="SF Express", tracking_no="SF0000000001"
    )
    expect_error(resp, 409, "conflict")
    assert shop.server.db_snapshot() == before


def test_reserving_for_an_order_can_send_stock_low(shop: Shop) -> None:
    code = _new_sku(shop, low_stock_threshold=5)["sku"]
    _moved(shop, code, "purchase_in", 8)
    order = shop.create_order(sku=code, quantity=4)
    shop.move(order["id"], "confirmed", "customer_service").raise_for_status()
    (post,) = _low_stock_posts(shop, code)
    assert post["meta"]["details"]["available"] == 4
    assert post["sender"] == shop.staff["customer_service"].id
