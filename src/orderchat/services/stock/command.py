"""`/stock QUERY` (or `/库存`) in the chat: live stock numbers, answered in the conversation.

Staff ask "is the waterproof backpack in stock?" where they are talking, and
the answer comes back as a system message replying to the question.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from orderchat.core.model import MessageKind
from orderchat.core.permissions import Action, can
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

    The answer is a system message replying to the question, in Chinese with
    the English names beside, and carries the numbers in `meta` for clients.
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
    tx.append_message(
        await tx.conversation(conv.id),
        asker.id,
        MessageKind.SYSTEM,
        stock_answer_text(query, found, total),
        reply_to=call.seq,
        meta={
            "event": "stock_answer",
            "query": query,
            "total": total,
            "results": [_result_fields(s) for s in found],
        },
        internal=bool(members.customers),
    )
    logger.info("stock query in %s by %s: %d matches", conv.id, asker.id, total)


def stock_answer_text(query: str, found: Sequence[SkuStock], total: int) -> str:
    if not query:
        return "用法：/库存 编号或名称，例如「/库存 帐篷」。Usage: /stock SKU or name"
    if not found:
        return f"库存查询「{query}」：没有找到匹配的商品。No SKU matches “{query}”."
    more = f"，显示前 {len(found)} 个" if total > len(found) else ""
    more_en = f", first {len(found)} shown" if total > len(found) else ""
    lines = [
        f"库存查询「{query}」：找到 {total} 个商品{more}（在库/预留/可用）"
        f" Stock for “{query}”: {total} SKU(s){more_en} (on hand/reserved/available)"
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
    return "\n".join(lines)


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
