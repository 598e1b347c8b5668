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
from orderchat.core.texts import LANGUAGES, Text, say
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
        raise Forbidden(say("stock.you_may_not_view_stock"))
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
        lines=tuple(
            line.render(call.language) for line in stock_answer_lines(query.text, found, page)
        ),
        items=tuple(_result_fields(s) for s in found),
        page=page.number,
        pages=page.pages,
        total=total,
        next=f"/stock {query.text} {page.number + 1}" if page.has_next else None,
        prev=f"/stock {query.text} {page.number - 1}" if page.has_prev else None,
    )


def stock_answer_lines(query: str, found: Sequence[SkuStock], page: Page) -> list[Text]:
    """The answer as catalogue lines, worded in the asker's language: a heading, then each SKU."""
    if not query:
        return [say("note.stock_usage")]
    if not found:
        return [say("note.stock_none", query=query)]
    lines = [
        say(
            "note.stock_found_page",
            query=query,
            total=page.total,
            page=page.number,
            pages=page.pages,
        )
    ]
    for stock in found:
        sku = stock.sku
        names = {language: sku.name(language) for language in LANGUAGES}
        lines.append(say("note.stock_sku", sku=sku.sku, name=names))
        if not stock.levels:
            lines.append(say("note.stock_no_levels"))
        for level in stock.levels:
            lines.append(
                say(
                    "note.stock_level",
                    location=level.location,
                    on_hand=level.on_hand,
                    reserved=level.reserved,
                    available=level.available,
                )
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
