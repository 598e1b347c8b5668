"""An order's page names each product in every language the catalogue has: the
order's answer carries the catalogue's names of its SKUs, for staff and for the
order's customer alike, and follows the catalogue when a name changes."""

from __future__ import annotations

import pytest

from tests.order_support import SKU, SKU_OTHER, Shop

pytestmark = pytest.mark.timeout(120)


def _catalogue(shop: Shop, *codes: str) -> dict[str, dict[str, str]]:
    rows = shop.server.db_rows(
        f"SELECT sku, name_zh, name_en FROM skus WHERE sku IN ({', '.join('?' * len(codes))})",
        *codes,
    )
    return {sku: {"zh-CN": zh, "en": en} for sku, zh, en in rows}


def test_everyone_who_sees_the_order_sees_both_names(order_shop: Shop) -> None:
    shop = order_shop
    body = shop.order_body("retail")
    body["items"].append(
        {"sku": SKU_OTHER, "name": "双肩包", "quantity": 1, "unit_price_cents": 25900}
    )
    resp = shop.call("customer_service", "POST", "/api/orders", body)
    assert resp.status_code == 201, resp.text
    order = resp.json()
    expected = _catalogue(shop, SKU, SKU_OTHER)
    assert set(expected) == {SKU, SKU_OTHER}

    # Staff of any role, and the order's own customer.
    for who in ("customer_service", "finance", shop.customer(order)):
        seen = shop.get_order(order["id"], who)
        assert seen["item_names"] == expected, who
    # The order's own lines keep the name they were written with.
    assert [i["name"] for i in shop.get_order(order["id"])["items"]][1] == "双肩包"

    renamed = shop.call("admin", "PATCH", f"/api/skus/{SKU_OTHER}", {"name_en": "Day pack"})
    assert renamed.status_code == 200, renamed.text
    names = shop.get_order(order["id"], "customer_service")["item_names"]
    assert names[SKU_OTHER]["en"] == "Day pack"
    assert names[SKU] == expected[SKU]


def test_the_list_and_the_events_stay_as_they_were(order_shop: Shop) -> None:
    order = order_shop.create_order("retail")
    listed = order_shop.call("customer_service", "GET", "/api/orders?limit=500").json()["orders"]
    mine = [o for o in listed if o["id"] == order["id"]]
    assert mine and "item_names" not in mine[0]
