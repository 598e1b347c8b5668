"""The demo's pre-sales consults: visitors who wrote before buying, in different states.

A trekker asking at the counter's QR code whom amy answers with a product card;
a brand's buyer from the widget, waiting for sales; a camper moved from amy to
sam and closed; a customer whose consult became order OD-10050; someone still
waiting for a first answer. Made the way clients make them, through the same
services the API calls.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageDraw

from orderchat.core.consults import Source
from orderchat.core.ids import ConversationId, IdMinter
from orderchat.core.model import MessageKind, User
from orderchat.core.order_requests import parse_order_spec
from orderchat.protocol.frames import PostMessage
from orderchat.services.chat.messaging import Messaging
from orderchat.services.consults.ops import Arrival, NewVisitor
from orderchat.services.consults.service import Consults
from orderchat.services.products import Products

BACKPACK = "BPK-01-GN-M"
TENT = "TNT-02-OR"


@dataclass(frozen=True, slots=True)
class DemoConsultServices:
    consults: Consults
    products: Products
    messaging: Messaging
    ids: IdMinter


def _product_photo(colour: tuple[int, int, int], label: str) -> bytes:
    image = Image.new("RGB", (800, 800), (238, 240, 236))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((250, 140, 550, 700), 60, fill=colour)
    draw.rounded_rectangle((290, 380, 510, 620), 30, fill=tuple(int(c * 0.8) for c in colour))
    draw.text((40, 40), label, fill=(60, 60, 60))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


async def _say(services: DemoConsultServices, user: User, conv: ConversationId, text: str) -> None:
    frame = PostMessage(services.ids.new("demo"), conv, MessageKind.TEXT, text, (), (), None)
    await services.messaging.post(user, frame)


async def _visitor(
    services: DemoConsultServices, name: str, language: str, arrival: Arrival
) -> tuple[User, ConversationId]:
    signed, view = await services.consults.start(
        NewVisitor(name, None, None, language), arrival, "demo", "demo"
    )
    return signed.user, ConversationId(view["id"])


async def seed_consults(services: DemoConsultServices, staff: dict[str, User]) -> None:
    amy, sam, boss = staff["amy"], staff["sam"], staff["boss"]
    options = [{"name": "背长 Torso", "values": ["S", "M", "L"]}]
    await services.products.set_picture(boss, BACKPACK, _product_photo((62, 110, 72), BACKPACK))
    await services.products.set_options(boss, BACKPACK, options)
    await services.products.set_picture(boss, TENT, _product_photo((222, 120, 40), TENT))

    trekker, trek = await _visitor(
        services,
        "王女士",
        "zh-CN",
        Arrival(Source.QR, tag="counter", text="下个月去西藏徒步 10 天，65L 的包够吗？"),
    )
    await _say(services, amy, trek, "您好！10 天重装徒步 65L 正合适，推荐这款，背负系统可调：")
    await services.consults.share_product(amy, trek, BACKPACK, None)
    await _say(services, trekker, trek, "绿色 M 码还有货吗？我身高 165。")

    await _visitor(
        services,
        "Emma Brown",
        "en",
        Arrival(
            Source.WIDGET,
            page_url="https://shop.example/footwear/mid-waterproof-hiking-boot",
            sku="FTW-01-BK-40",
            text="Do these boots run small? I usually wear a 39.",
        ),
    )

    camper, camp = await _visitor(
        services, "李先生", "zh-CN", Arrival(Source.PAGE, text="公司团建要 20 顶帐篷，有批发价吗？")
    )
    await services.consults.transfer(amy, camp, sam.id, None, "团购询价，20 顶双人帐篷")
    await _say(services, sam, camp, "李先生您好，20 顶可以按批发价 85 折，我把报价单发您。")
    await services.consults.share_product(sam, camp, TENT, None)
    await _say(services, camper, camp, "好的，我跟公司确认后再联系您。")
    await services.consults.close(sam, camp)

    buyer, buying = await _visitor(
        services,
        "陈小姐",
        "zh-CN",
        Arrival(Source.WIDGET, sku=TENT, text="这款橙色双人帐篷今天下单什么时候到？"),
    )
    await _say(services, amy, buying, "今天下午 4 点前下单当天发货，杭州一般隔天到。")
    await _say(services, buyer, buying, "那帮我下单一顶，地址：杭州市西湖区文三路 88 号。")
    spec = parse_order_spec(
        {
            "number": "OD-10050",
            "workflow": "retail",
            "customer_id": "-",
            "items": [
                {"sku": TENT, "name": "双人帐篷（橙色）", "quantity": 1, "unit_price_cents": 59900}
            ],
            "address": {"name": "陈小姐", "city": "杭州", "line1": "西湖区文三路 88 号"},
        },
        lambda name: name,
    )
    await services.consults.order(amy, buying, spec)

    await _visitor(services, "赵先生", "zh-CN", Arrival(Source.PAGE, text="冲锋衣可以开发票吗？"))
