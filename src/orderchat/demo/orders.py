"""Demo orders: the outdoor-gear store's retail orders in every state, and the handbag
factory's OEM orders in sampling and production with their confirmation items.

Everything goes through the same services the API uses, so the demo's
conversations, role channels, stock and money are exactly what real use makes.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from orderchat.core.confirmations import (
    ConfirmationItem,
    parse_new_item,
    parse_verdict,
    parse_version_proposal,
)
from orderchat.core.ids import ConfirmationItemId, OrderId, UserId
from orderchat.core.model import User
from orderchat.core.order_requests import parse_issue_report, parse_order_spec, parse_status_change
from orderchat.core.orders import Issue, Order
from orderchat.core.payments import PaymentKind, parse_money
from orderchat.demo import files as demo_files
from orderchat.demo.catalogue import DemoSku, demo_catalogue
from orderchat.demo.media import upload_file
from orderchat.services.media.media import Media
from orderchat.services.money.finance import Finance
from orderchat.services.orders.confirmations import Confirmations
from orderchat.services.orders.orders import Orders
from orderchat.services.stock.inventory import Inventory
from orderchat.storage import accounts as account_store
from orderchat.storage.engine import Database

# Made-to-order handbags: the factory keeps no stock of them.
HANDBAGS = [
    DemoSku("HB-TOTE-01", "真皮托特包", "leather tote bag", "handbags", 68000, 0, 0),
    DemoSku("HB-CROSS-02", "斜挎小方包", "crossbody bag", "handbags", 42000, 0, 0),
    DemoSku("HB-CLUTCH-03", "手拿晚宴包", "evening clutch", "handbags", 36000, 0, 0),
]

RETAIL_PATHS: dict[str, list[str]] = {
    "placed": [],
    "confirmed": ["confirmed"],
    "picking": ["confirmed", "picking"],
    "packed": ["confirmed", "picking", "packed"],
    "shipped": ["confirmed", "picking", "packed", "shipped"],
    "in_transit": ["confirmed", "picking", "packed", "shipped", "in_transit"],
    "out_for_delivery": [
        "confirmed",
        "picking",
        "packed",
        "shipped",
        "in_transit",
        "out_for_delivery",
    ],
    "delivered": [
        "confirmed",
        "picking",
        "packed",
        "shipped",
        "in_transit",
        "out_for_delivery",
        "delivered",
    ],
    "cancelled": ["confirmed", "cancelled"],
    "return_requested": [
        "confirmed",
        "picking",
        "packed",
        "shipped",
        "out_for_delivery",
        "delivered",
        "return_requested",
    ],
    "returned": [
        "confirmed",
        "picking",
        "packed",
        "shipped",
        "out_for_delivery",
        "delivered",
        "return_requested",
        "returned",
    ],
    "refunded": [
        "confirmed",
        "picking",
        "packed",
        "shipped",
        "out_for_delivery",
        "delivered",
        "return_requested",
        "returned",
        "refunded",
    ],
}

# Who moves a retail order into each state.
RETAIL_ACTOR = {
    "confirmed": "amy",
    "picking": "wes",
    "packed": "wes",
    "shipped": "leo",
    "in_transit": "leo",
    "out_for_delivery": "leo",
    "delivered": "leo",
    "cancelled": "amy",
    "return_requested": "amy",
    "returned": "wes",
    "refunded": "fay",
}

CUSTOMERS = [
    (
        "张先生",
        "13800138001",
        "zh-CN",
        {"region": "西藏", "city": "拉萨", "line1": "北京中路 12 号"},
    ),
    (
        "李女士",
        "13900139002",
        "zh-CN",
        {"region": "四川", "city": "成都", "line1": "武侯区科华北路 8 号"},
    ),
    (
        "Tom Baker",
        "+44 7700 900123",
        "en",
        {"country": "UK", "city": "London", "line1": "1 Camden Rd"},
    ),
    ("王芳", "13700137003", "zh-CN", {"region": "云南", "city": "昆明", "line1": "翠湖南路 3 号"}),
]


@dataclass(frozen=True, slots=True)
class DemoServices:
    db: Database
    orders: Orders
    inventory: Inventory
    finance: Finance
    confirmations: Confirmations
    media: Media

    # The demo writes its orders as a client would send them, parsed the same way.

    async def create_order(self, user: User, raw: dict[str, Any]) -> Order:
        return await self.orders.create(user, parse_order_spec(raw, self.orders.workflows.get))

    async def advance(self, user: User, order_id: OrderId, raw: dict[str, Any]) -> Order:
        return await self.orders.advance(user, order_id, parse_status_change(raw))

    async def packing_photo(self, user: User, order: Order) -> list[str]:
        """The parcel's photo, uploaded as the warehouse's phone would: packing needs one."""
        name = f"{order.number}-打包.jpg"
        data = demo_files.parcel_photo(f"{order.number}  SF")
        return [await upload_file(self.media, user, order.conv_id, name, "image/jpeg", data)]

    async def raise_issue(self, user: User, order_id: OrderId, raw: dict[str, Any]) -> Issue:
        return await self.orders.raise_issue(user, order_id, parse_issue_report(raw))

    async def add_item(
        self, user: User, order_id: OrderId, kind: str, title: str, required: bool
    ) -> ConfirmationItem:
        new = parse_new_item(kind, title, required)
        return await self.confirmations.add_item(user, order_id, new)

    async def propose(self, user: User, item_id: ConfirmationItemId, text: str) -> None:
        await self.confirmations.propose(user, item_id, parse_version_proposal(text, []))

    async def decide(
        self, user: User, item_id: ConfirmationItemId, decision: str, comment: str
    ) -> None:
        await self.confirmations.decide(user, item_id, 1, parse_verdict(decision, comment))


def _catalogue_csv(skus: list[DemoSku]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "sku",
            "name_zh",
            "name_en",
            "category",
            "unit_price_cents",
            "low_stock_threshold",
            "location",
            "on_hand",
        ]
    )
    for s in skus:
        writer.writerow(
            [
                s.sku,
                s.name_zh,
                s.name_en,
                s.category,
                s.unit_price_cents,
                s.low_stock_threshold,
                "main",
                s.on_hand,
            ]
        )
    return out.getvalue()


def _item(sku: DemoSku, quantity: int) -> dict[str, Any]:
    return {
        "sku": sku.sku,
        "name": sku.name_zh,
        "quantity": quantity,
        "unit_price_cents": sku.unit_price_cents,
    }


async def seed_orders(services: DemoServices, staff: dict[str, User]) -> None:
    catalogue = demo_catalogue()
    await services.inventory.import_csv(staff["pat"], _catalogue_csv([*catalogue, *HANDBAGS]))
    in_stock = [s for s in catalogue if s.on_hand >= 30]
    await _seed_retail(services, staff, in_stock, [s for s in catalogue if s.on_hand == 0])
    await _seed_factory(services, staff)


async def _seed_retail(
    services: DemoServices, staff: dict[str, User], in_stock: list[DemoSku], empty: list[DemoSku]
) -> None:
    for n, path in enumerate(RETAIL_PATHS.values(), start=1):
        name, phone, language, address = CUSTOMERS[n % len(CUSTOMERS)]
        items = [
            _item(in_stock[n * 7 % len(in_stock)], 1 + n % 2),
            _item(in_stock[n * 13 % len(in_stock)], 1),
        ]
        note = "去西藏，请检查防水性能" if n == 3 else ""
        order = await services.create_order(
            staff["amy"],
            {
                "number": f"OD-{10020 + n}",
                "workflow": "retail",
                "customer": {"name": name, "phone": phone, "language": language},
                "items": items,
                "address": {"name": name, "phone": phone, **address},
                "note": note,
            },
        )
        for state in path:
            if state == "shipped":
                paid = parse_money(
                    PaymentKind.PAYMENT, order.total_cents, "wechat_pay", f"WX{order.number}"
                )
                await services.finance.record_money(staff["fay"], order.id, paid)
            change: dict[str, Any] = {"to": state}
            if state == "shipped":
                change.update(carrier="顺丰速运", tracking_no=f"SF{1400000000 + n}")
            if state == "packed":
                change["photos"] = await services.packing_photo(staff["wes"], order)
            if state == "in_transit":
                change["note"] = "已到达成都转运中心"
            if state == "refunded":
                back = parse_money(
                    PaymentKind.REFUND, order.total_cents, "wechat_pay", f"RF{order.number}"
                )
                await services.finance.record_money(staff["fay"], order.id, back)
            order = await services.advance(staff[RETAIL_ACTOR[state]], order.id, change)
    await _seed_retail_exceptions(services, staff, in_stock, empty)


async def _seed_retail_exceptions(
    services: DemoServices, staff: dict[str, User], in_stock: list[DemoSku], empty: list[DemoSku]
) -> None:
    """Exceptions the shop deals with every day: a shortage, a move, a delay."""
    short = await services.create_order(
        staff["amy"],
        {
            "number": "OD-10040",
            "workflow": "retail",
            "customer": {"name": "赵先生", "phone": "13600136004"},
            "items": [_item(empty[0], 2)],
            "address": {"city": "西宁", "line1": "城中区 5 号"},
        },
    )
    await services.advance(staff["amy"], short.id, {"to": "confirmed"})
    moving = await services.create_order(
        staff["sam"],
        {
            "number": "OD-10041",
            "workflow": "retail",
            "customer": {"name": "陈女士", "phone": "13500135005"},
            "items": [_item(in_stock[3], 1)],
            "address": {"city": "杭州", "line1": "西湖区文三路 9 号"},
        },
    )
    await services.advance(staff["amy"], moving.id, {"to": "confirmed"})
    await services.raise_issue(
        staff["amy"],
        moving.id,
        {
            "kind": "address_change_requested",
            "address": {"city": "杭州", "line1": "滨江区江南大道 100 号"},
            "note": "客户搬家了",
        },
    )
    await services.raise_issue(
        staff["wes"],
        moving.id,
        {
            "kind": "delay_risk",
            "reason": "暴雨导致物流停运",
            "eta": "2026-11-28",
        },
    )


async def _seed_factory(services: DemoServices, staff: dict[str, User]) -> None:
    tote, cross, clutch = HANDBAGS
    await _seed_sampling(services, staff, tote)
    await _seed_in_production(services, staff, cross, clutch)
    await services.create_order(
        staff["lily"],
        {
            "number": "PO-2026-035",
            "workflow": "oem",
            "customer": {"name": "Northwind Goods", "segment": "brand", "language": "en"},
            "items": [_item(tote, 1000)],
            "currency": "USD",
            "address": {"country": "USA", "city": "Portland", "line1": "400 SW 6th Ave"},
        },
    )


async def _seed_sampling(services: DemoServices, staff: dict[str, User], tote: DemoSku) -> None:
    """A brand abroad in its second sample round: one colour was rejected."""
    lune = await services.create_order(
        staff["lily"],
        {
            "number": "PO-2026-031",
            "workflow": "oem",
            "customer": {
                "name": "Maison Lune",
                "company": "Maison Lune SARL",
                "segment": "brand",
                "language": "en",
                "email": "buying@maisonlune.example",
            },
            "items": [_item(tote, 500)],
            "currency": "EUR",
            "address": {"country": "France", "city": "Paris", "line1": "12 rue du Bac"},
            "note": "Sample must show the grain of the leather.",
        },
    )
    for state in ("quoting", "sampling"):
        lune = await services.advance(staff["lily"], lune.id, {"to": state})
    items = {}
    for kind, title in [
        ("material", "Leather: pebbled cowhide"),
        ("colour", "Colour"),
        ("logo_process", "Logo process"),
        ("packaging", "Packaging"),
    ]:
        items[kind] = await services.add_item(
            staff["lily"], lune.id, kind, title, kind != "packaging"
        )
    customer = await _customer(services, lune.customer_id)
    for kind, text in [
        ("material", "1.2 mm top-grain cowhide, pebbled"),
        ("colour", "Caramel (Pantone 16-1439)"),
        ("logo_process", "Gold hot-stamp, 18 mm"),
    ]:
        await services.propose(staff["pete"], items[kind].id, text)
    await services.decide(customer, items["material"].id, "approved", "Perfect.")
    await services.decide(customer, items["colour"].id, "rejected", "A little darker, please.")
    await services.propose(staff["pete"], items["colour"].id, "Dark caramel (Pantone 18-1142)")
    lune = await services.advance(
        staff["pete"], lune.id, {"to": "sampling", "note": "Darker caramel, as asked"}
    )


async def _seed_in_production(
    services: DemoServices, staff: dict[str, User], cross: DemoSku, clutch: DemoSku
) -> None:
    """A brand at home whose samples were approved, now being sewn."""
    atelier = await services.create_order(
        staff["lily"],
        {
            "number": "PO-2026-027",
            "workflow": "oem",
            "customer": {"name": "北京拾光皮具", "company": "拾光品牌", "segment": "brand"},
            "items": [_item(cross, 300), _item(clutch, 200)],
            "address": {"region": "北京", "city": "北京", "line1": "朝阳区三里屯路 19 号"},
        },
    )
    for state in ("quoting", "sampling"):
        atelier = await services.advance(staff["lily"], atelier.id, {"to": state})
    owner = await _customer(services, atelier.customer_id)
    for kind, title, text in [
        ("material", "面料", "超纤皮"),
        ("size", "尺寸", "20×15×7 cm"),
        ("lead_time", "交期", "45 天"),
    ]:
        item = await services.add_item(staff["lily"], atelier.id, kind, title, True)
        await services.propose(staff["lily"], item.id, text)
        await services.decide(owner, item.id, "approved", "确认")
    for state, who in (
        ("sample_approved", "lily"),
        ("material_arrived", "pat"),
        ("cutting", "pete"),
        ("sewing", "pete"),
    ):
        atelier = await services.advance(staff[who], atelier.id, {"to": state})


async def _customer(services: DemoServices, user_id: str) -> User:
    async with services.db.read() as conn:
        return await account_store.get_user(conn, UserId(user_id))
