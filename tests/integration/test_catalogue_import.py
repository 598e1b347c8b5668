"""The catalogue import in two steps against a real server: preview, then apply.

A preview writes nothing, proved by reading the database before and after. An
apply writes exactly what the preview showed, and is refused (409) when the
catalogue or its stock changed in between. Bad files, bad rows, oversize
bodies and roles that may not import are refused with a clear error, and
change nothing. Also: the SKU list's pages, and GET /api/rules.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.order_support import Json, Shop, assert_unchanged, expect_error
from tests.support import ServerProcess

pytestmark = pytest.mark.timeout(120)

HEADER = "sku,name_zh,name_en,category,unit_price_cents,low_stock_threshold,location,on_hand"
CATALOGUE_TABLES = ("skus", "stock_levels", "stock_movements", "messages")
MAX_IMPORT_BYTES = 20 * 1024 * 1024

_codes = itertools.count(1)


@pytest.fixture(scope="module")
def shop(server: ServerProcess) -> Iterator[Shop]:
    opened = Shop.open(server)
    yield opened
    opened.close()


def _code(prefix: str = "IMP") -> str:
    return f"{prefix}-{next(_codes)}-{time.monotonic_ns() % 100_000}"


def _snapshot(shop: Shop) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: shop.server.db_rows(f"SELECT * FROM {table} ORDER BY 1")
        for table in CATALOGUE_TABLES
    }


def _post(
    shop: Shop, path: str, body: bytes | str, who: str = "warehouse", **params: str
) -> httpx.Response:
    content = body.encode() if isinstance(body, str) else body
    return shop.client(who).post(
        path,
        content=content,
        params=params,
        headers={"Content-Type": "text/csv", "Accept-Language": "en"},
    )


def _preview(shop: Shop, text: str | bytes, who: str = "warehouse") -> Json:
    resp = _post(shop, "/api/skus/import/preview", text, who)
    assert resp.status_code == 200, resp.text
    body: Json = resp.json()
    return body


def _apply(shop: Shop, text: str | bytes, token: str, who: str = "warehouse") -> httpx.Response:
    return _post(shop, "/api/skus/import", text, who, token=token)


def _existing(shop: Shop, on_hand: int = 10) -> str:
    code = _code("OLD")
    text = f"{HEADER}\n{code},帐篷,Tent,tents,50000,2,main,{on_hand}\n"
    resp = _post(shop, "/api/skus/import", text)
    assert resp.status_code == 200, resp.text
    return code


def test_a_preview_writes_nothing_and_names_every_outcome(shop: Shop) -> None:
    old, same, new = _existing(shop), _existing(shop), _code("NEW")
    text = (
        f"{HEADER}\n"
        f"{old},帐篷,Tent 2P,tents,52000,2,main,4\n"
        f"{same},帐篷,Tent,tents,50000,2,main,10\n"
        f"{new},头灯,Headlamp,lights,9900,1,main,6\n"
        f"{_code('BAD')},,,lights,12.5,x,main,-\n"
    )
    before = _snapshot(shop)
    preview = _preview(shop, text)
    assert_unchanged(before, _snapshot(shop))
    assert not preview["valid"]
    assert preview["summary"] == {
        "rows": 4,
        "create": 1,
        "update": 1,
        "unchanged": 1,
        "error": 1,
        "stock_changes": 2,
    }
    rows = {row["line"]: row for row in preview["rows"]}
    assert [rows[n]["action"] for n in (2, 3, 4, 5)] == ["update", "unchanged", "create", "error"]
    assert rows[2]["changes"] == [
        {"field": "name_en", "old": "Tent", "new": "Tent 2P", "location": None},
        {"field": "unit_price_cents", "old": 50000, "new": 52000, "location": None},
        {"field": "on_hand", "old": 10, "new": 4, "location": "main"},
    ]
    assert {(e["column"], e["line"]) for e in rows[5]["errors"]} == {
        ("name_zh", 5),
        ("unit_price_cents", 5),
        ("low_stock_threshold", 5),
        ("on_hand", 5),
    }
    assert preview["errors"] == rows[5]["errors"]


def test_applying_a_preview_writes_exactly_what_it_showed(shop: Shop) -> None:
    old, new = _existing(shop), _code("NEW")
    text = f"{HEADER}\n{old},帐篷,Tent,tents,55000,2,main,3\n{new},头灯,Headlamp,lights,9900,1,,\n"
    preview = _preview(shop, text)
    assert preview["valid"]
    done = _apply(shop, text, preview["token"])
    assert done.status_code == 200, done.text
    assert done.json() == {"rows": 2, "created": 1, "updated": 1, "stock_changes": 1}
    assert shop.server.db_rows("SELECT unit_price_cents FROM skus WHERE sku = ?", old) == [(55000,)]
    assert shop.server.db_rows("SELECT on_hand FROM stock_levels WHERE sku = ?", old) == [(3,)]
    assert shop.server.db_rows(
        "SELECT kind, from_location, quantity FROM stock_movements WHERE sku = ? "
        "ORDER BY id DESC LIMIT 1",
        old,
    ) == [("adjustment", "main", 7)]
    assert shop.server.db_rows("SELECT name_en FROM skus WHERE sku = ?", new) == [("Headlamp",)]
    again = _preview(shop, text)
    assert again["summary"]["unchanged"] == 2


@pytest.mark.parametrize("change", ["movement", "edit"])
def test_a_preview_gone_stale_is_refused_with_409(shop: Shop, change: str) -> None:
    old = _existing(shop)
    text = f"{HEADER}\n{old},帐篷,Tent,tents,50000,2,main,20\n"
    token = _preview(shop, text)["token"]
    if change == "movement":
        body: Json = {"sku": old, "kind": "purchase_in", "quantity": 5, "reason": "delivery"}
        assert shop.call("warehouse", "POST", "/api/stock/movements", body).status_code == 201
    else:
        edit = {"name_en": "Renamed tent"}
        assert shop.call("warehouse", "PATCH", f"/api/skus/{old}", edit).status_code == 200
    before = _snapshot(shop)
    error = expect_error(_apply(shop, text, token), 409, "conflict")
    assert "preview it again" in error["message"]
    assert_unchanged(before, _snapshot(shop))
    fresh = _preview(shop, text)["token"]
    assert fresh != token
    assert _apply(shop, text, fresh).status_code == 200


def test_a_made_up_token_is_refused_and_changes_nothing(shop: Shop) -> None:
    text = f"{HEADER}\n{_code()},灯,Lamp,lights,100,0,,\n"
    before = _snapshot(shop)
    expect_error(_apply(shop, text, "0" * 32), 409, "conflict")
    expect_error(_post(shop, "/api/skus/import", text, token=""), 400)
    assert_unchanged(before, _snapshot(shop))


def test_a_file_with_an_error_row_is_not_applied_even_with_its_token(shop: Shop) -> None:
    good, bad = _code("GOOD"), _code("BAD")
    text = f"{HEADER}\n{good},灯,Lamp,lights,100,0,main,1\n{bad},灯,Lamp,lights,cheap,0,main,1\n"
    token = _preview(shop, text)["token"]
    before = _snapshot(shop)
    error = expect_error(_apply(shop, text, token), 400, "bad_request")
    assert error["message"].startswith("line 3: unit_price_cents must be a whole number")
    expect_error(_post(shop, "/api/skus/import", text), 400, "bad_request")
    assert_unchanged(before, _snapshot(shop))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "the CSV is empty"),
        (b"sku,name\nA,b\n", "line 1"),
        (f"{HEADER}\n".encode(), "no rows"),
        (f'{HEADER}\nA1,"open,x,y,1,1,,\n'.encode(), "unexpected end of data"),
        (b"\xff\xfe\x00s\x00k\x00u\x00\xd8", "UTF-8"),
    ],
)
def test_a_malformed_file_is_refused_whole_and_changes_nothing(
    shop: Shop, body: bytes, message: str
) -> None:
    before = _snapshot(shop)
    for path in ("/api/skus/import/preview", "/api/skus/import"):
        error = expect_error(_post(shop, path, body), 400, "bad_request")
        assert message in error["message"]
    assert_unchanged(before, _snapshot(shop))


def test_an_oversize_file_is_refused_with_413(shop: Shop) -> None:
    row = f"{_code('BIG')},灯,Lamp,lights,100,0,,\n".encode()
    body = f"{HEADER}\n".encode() + row * (MAX_IMPORT_BYTES // len(row) + 1)
    before = _snapshot(shop)
    for path in ("/api/skus/import/preview", "/api/skus/import"):
        expect_error(_post(shop, path, body), 413, "too_large")
    assert_unchanged(before, _snapshot(shop))


def test_roles_that_may_not_import_are_refused_and_nothing_changes(shop: Shop) -> None:
    text = f"{HEADER}\n{_code()},灯,Lamp,lights,100,0,main,3\n"
    before = _snapshot(shop)
    for who in ("sales", "customer_service", "finance"):
        expect_error(_post(shop, "/api/skus/import/preview", text, who), 403, "forbidden")
        expect_error(_post(shop, "/api/skus/import", text, who), 403, "forbidden")
    expect_error(shop.client(None).post("/api/skus/import/preview", content=text), 401)
    assert_unchanged(before, _snapshot(shop))


def test_excel_files_keep_their_chinese_names(shop: Shop) -> None:
    bom, gbk = _code("BOM"), _code("GBK")
    for raw in (
        f"{HEADER}\r\n{bom},防水背包,Dry bag,bags,15900,2,main,4\r\n".encode("utf-8-sig"),
        f"{HEADER}\r\n{gbk},登山杖,Pole,poles,9900,2,main,4\r\n".encode("gb18030"),
    ):
        preview = _preview(shop, raw)
        assert preview["rows"][0]["action"] == "create"
        assert _apply(shop, raw, preview["token"]).status_code == 200
    names = shop.server.db_rows("SELECT sku, name_zh FROM skus WHERE sku IN (?, ?)", bom, gbk)
    assert sorted(names) == sorted([(bom, "防水背包"), (gbk, "登山杖")])


def test_the_sku_list_pages_with_offset_and_total(shop: Shop) -> None:
    prefix = _code("PAGE")
    rows = "".join(f"{prefix}-{i:02d},绳 {i},Rope {i},rope,100,0,,\n" for i in range(7))
    assert _post(shop, "/api/skus/import", f"{HEADER}\n{rows}").status_code == 200
    seen: list[str] = []
    for offset in (0, 3, 6):
        page = shop.call("sales", "GET", f"/api/skus?q={prefix}&limit=3&offset={offset}").json()
        assert page["total"] == 7
        seen += [s["sku"] for s in page["skus"]]
    assert seen == [f"{prefix}-{i:02d}" for i in range(7)]


def test_rules_name_each_file_and_whether_it_is_valid_now(shop: Shop) -> None:
    rules = shop.call("sales", "GET", "/api/rules").json()
    by_name = {f["workflow"]["name"]: f for f in rules["workflows"] if f["workflow"]}
    for name in ("retail", "oem"):
        found = by_name[name]
        assert found["source"]["origin"] == "built_in"
        assert found["source"]["path"].endswith(f"/workflows/{name}.toml")
        assert (found["valid"], found["errors"], found["running"]) == (True, [], True)
    assert rules["routing"]["valid"] and rules["routing"]["source"]["path"].endswith("routing.py")
    assert {r["event"] for r in rules["routing"]["routes"]} >= {"out_of_stock", "low_stock"}
    notify = rules["notifications"]
    assert notify["source"]["origin"] == "built_in" and notify["valid"]
    assert notify["source"]["path"].endswith("/workflows/notify.toml")
    by_occasion = {o["occasion"]: o for o in notify["occasions"]}
    assert by_occasion["order_status"]["push_after_s"] == 0
    assert notify["ladder"]["reminders"] >= 1
    consult = rules["consult"]
    assert consult["configured"] and consult["valid"] and consult["source"]["origin"] == "built_in"
    assert consult["source"]["path"].endswith("/workflows/consults.toml")
    assert [q["name"] for q in consult["queues"]] == ["english", "shop"]

    # A file the shop adds after start-up is read, not run, and its errors are named.
    shop_dir = Path(rules["shop_dir"])
    shop_dir.mkdir(parents=True, exist_ok=True)
    broken = shop_dir / "broken.toml"
    broken.write_text('name = "broken"\ninitial = "nowhere"\n', "utf-8")
    try:
        again = shop.call("sales", "GET", "/api/rules").json()
    finally:
        broken.unlink()
    shop_file = next(f for f in again["workflows"] if f["source"]["origin"] == "shop")
    assert shop_file["source"]["path"] == str(broken.resolve())
    assert shop_file["valid"] is False and shop_file["running"] is False
    assert shop_file["workflow"] is None
    assert "states" in shop_file["errors"][0]
    expect_error(shop.call(None, "GET", "/api/rules"), 401)
