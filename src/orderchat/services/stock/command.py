"""`/stock QUERY` (or `/库存`) in the chat: live stock numbers, answered in the conversation.

Staff ask "is the waterproof backpack in stock?" where they are talking, and
the answer comes back as a system message replying to the question.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from orderchat.core.model import MessageKind
from orderchat.core.permissions import Action, can
from orderchat.core.texts import DEFAULT_LANGUAGE, LANGUAGES, Text, render_all, say, worded
from orderchat.services.chat.commands import Command, CommandCall
from orderchat.services.stock.ledger import SkuStock, sku_stock
from orderchat.services.writer import WriteTxn
from orderchat.storage import inventory as store

logger = logging.getLogger(__name__)

# `/stock` answers list this many SKUs: enough to choose from, short enough to read.
STOCK_ANSWER_LIMIT = 10
MAX_QUERY_CHARS = 100


def parse_stock_query(text: str) -> str:
    """The words to look for, spaces collapsed, cut to `MAX_QUERY_CHARS`."""
    return " ".join(text.split())[:MAX_QUERY_CHARS]


async def answer_stock_query_txn(tx: WriteTxn, call: CommandCall, query: str) -> None:
    """Answer `/stock QUERY` typed in a staff conversation with live numbers.

    The answer is a system message replying to the question: its text is in
    Chinese, its `meta.say` lines let each reader's client word it in their
    language, and `meta` carries the numbers for clients.
    In a conversation with a customer in it, it is a staff-only note: stock
    numbers are not for customers. It never raises: the question itself has
    already been accepted in this transaction.
    """
    asker, conv = call.user, call.conv
    if not can(asker, Action.VIEW_STOCK):
        return
    found: list[SkuStock] = []
    total = 0
    if query:
        skus = await store.search_skus(tx.conn, query, limit=STOCK_ANSWER_LIMIT)
        total = len(skus)
        if total == STOCK_ANSWER_LIMIT:
            total = await store.count_skus(tx.conn, query)
        levels = await store.levels_for(tx.conn, [s.sku for s in skus])
        found = [sku_stock(sku, levels[sku.sku]) for sku in skus]
    members = await tx.member_set(conv.id)
    lines = stock_answer_lines(query, found, total)
    tx.append_message(
        await tx.conversation(conv.id),
        asker.id,
        MessageKind.SYSTEM,
        render_all(lines, DEFAULT_LANGUAGE),
        reply_to=call.seq,
        meta={
            "event": "stock_answer",
            "say": [line.to_json() for line in lines],
            "text": worded(lines),
            "query": query,
            "total": total,
            "results": [_result_fields(s) for s in found],
        },
        internal=bool(members.customers),
    )
    logger.info("stock query in %s by %s: %d matches", conv.id, asker.id, total)


def stock_answer_lines(query: str, found: Sequence[SkuStock], total: int) -> list[Text]:
    """The answer as catalogue lines: a heading, then each SKU and its levels."""
    if not query:
        return [say("note.stock_usage")]
    if not found:
        return [say("note.stock_none", query=query)]
    if total > len(found):
        lines = [say("note.stock_found_first", query=query, total=total, shown=len(found))]
    else:
        lines = [say("note.stock_found", query=query, total=total)]
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


def stock_answer_text(query: str, found: Sequence[SkuStock], total: int) -> str:
    """The answer in Chinese, the conversation's language, for clients that show `text`."""
    return render_all(stock_answer_lines(query, found, total), DEFAULT_LANGUAGE)


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
    handle=answer_stock_query_txn,
)
