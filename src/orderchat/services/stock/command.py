"""`/stock QUERY [PAGE]` (or `/库存`) in the chat: live stock numbers, for the asker alone.

Staff ask "is the waterproof backpack in stock?" where they are talking, and
the answer comes back to them only, as a `command_reply` with every match
in pages of `STOCK_PAGE_SIZE`. The question is a query, not a message: it is
neither stored nor shown to the other members (a customer in an order's
conversation never sees that stock was asked about, nor the numbers).

A trailing number is the page when there are words before it (`/stock 帐篷 2`);
a number alone is a query (SKU codes may be numbers).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from orderchat.core.errors import Forbidden
from orderchat.core.paging import Page, page_of
from orderchat.core.permissions import Action, can
from orderchat.protocol.events import CommandReply
from orderchat.services.chat.commands import Command, QueryCall
from orderchat.services.stock.ledger import SkuStock, sku_stock
from orderchat.storage import inventory as store
from orderchat.storage.engine import Connection

logger = logging.getLogger(__name__)

# Matches per page: enough to choose from, short enough to read on a phone.
STOCK_PAGE_SIZE = 10
MAX_QUERY_CHARS = 100
# A page number past this is a typo, not a page: it is read as part of the query.
MAX_PAGE = 10_000


@dataclass(frozen=True, slots=True)
class StockQuery:
    text: str
    page: int = 1


def parse_stock_query(text: str) -> StockQuery:
    """The words to look for, spaces collapsed and cut to `MAX_QUERY_CHARS`, and the page."""
    words = text.split()
    page = 1
    if len(words) > 1 and words[-1].isascii() and words[-1].isdigit():
        number = int(words[-1])
        if 1 <= number <= MAX_PAGE:
            page = number
            words = words[:-1]
    return StockQuery(" ".join(words)[:MAX_QUERY_CHARS], page)


async def answer_stock_query(conn: Connection, call: QueryCall, query: StockQuery) -> CommandReply:
    """One page of live numbers for `/stock QUERY`, for the asker's eyes only.

    Raises:
        Forbidden: the asker may not view stock.
    """
    if not can(call.user, Action.VIEW_STOCK):
        raise Forbidden("you may not view stock")
    found: list[SkuStock] = []
    total = await store.count_skus(conn, query.text) if query.text else 0
    page = page_of(total, query.page, STOCK_PAGE_SIZE)
    if total:
        skus = await store.search_skus(conn, query.text, limit=STOCK_PAGE_SIZE, offset=page.offset)
        levels = await store.levels_for(conn, [s.sku for s in skus])
        found = [sku_stock(sku, levels[sku.sku]) for sku in skus]
    logger.info("stock query in %s by %s: %d matches", call.conv.id, call.user.id, total)
    return CommandReply(
        conv=call.conv.id,
        ref=call.ref,
        command="stock",
        query=query.text,
        lines=tuple(stock_answer_lines(query.text, found, page)),
        items=tuple(_result_fields(s) for s in found),
        page=page.number,
        pages=page.pages,
        total=total,
        next=f"/stock {query.text} {page.number + 1}" if page.has_next else None,
        prev=f"/stock {query.text} {page.number - 1}" if page.has_prev else None,
    )


def stock_answer_lines(query: str, found: Sequence[SkuStock], page: Page) -> list[str]:
    if not query:
        return [
            "用法：/库存 编号或名称 [页码]，例如「/库存 帐篷 2」。",
            "Usage: /stock SKU-or-name [page]",
        ]
    if not found:
        return [f"库存查询「{query}」：没有找到匹配的商品。", f"No SKU matches “{query}”."]
    lines = [
        f"库存查询「{query}」：找到 {page.total} 个商品，第 {page.number}/{page.pages} 页"
        "（在库/预留/可用）",
        f"Stock for “{query}”: {page.total} SKU(s), page {page.number} of {page.pages}"
        " (on hand/reserved/available)",
    ]
    for stock in found:
        sku = stock.sku
        english = f" / {sku.name_en}" if sku.name_en and sku.name_en != sku.name_zh else ""
        lines.append(f"• {sku.sku} {sku.name('zh-CN')}{english}")
        if not stock.levels:
            lines.append("    无库存记录 no stock recorded")
        for level in stock.levels:
            lines.append(
                f"    {level.location}：在库 {level.on_hand}，预留 {level.reserved}，"
                f"可用 {level.available}"
            )
    return lines


def _result_fields(stock: SkuStock) -> dict[str, object]:
    return {
        "sku": stock.sku.sku,
        "name_zh": stock.sku.name_zh,
        "name_en": stock.sku.name_en,
        "on_hand": stock.on_hand,
        "reserved": stock.reserved,
        "available": stock.available,
        "levels": [
            {
                "location": level.location,
                "on_hand": level.on_hand,
                "reserved": level.reserved,
                "available": level.available,
            }
            for level in stock.levels
        ],
    }


STOCK_COMMAND = Command(
    name="stock",
    glued=("库存",),
    parse=parse_stock_query,
    answer=answer_stock_query,
)
