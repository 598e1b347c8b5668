"""The `search` workload's shop: its words, its conversations, its messages and its queries.

Everything is drawn from one seeded random generator, so every run writes the
same history and asks the same questions. The words follow a Zipf-like
curve: a few (帐篷, 面料, 发货 ...) are in a large share of the messages, the
rare ones (霉斑, 铆钉, mildew ...) in a few hundred of a million. The history is
written before the server starts with the server's own write path, as in
`bench/history.py`, so every message is in the search index exactly as a live
send would put it there.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bench._report import Progress
from bench._seed import SeededUser
from orderchat.core.ids import ConversationId, UserId
from orderchat.core.media import PreviewStatus, media_descriptor
from orderchat.core.model import ConversationKind, MessageKind, NewConversation
from orderchat.services.chat.conversations import CreateConversation
from orderchat.services.ports import SystemClock, system_ids
from orderchat.services.writer import WriteTxn
from orderchat.settings import Settings
from orderchat.storage import accounts as account_store
from orderchat.storage.engine import Database
from orderchat.storage.stream import CounterPositions

SEED = 20260301
BATCH = 20_000  # messages per transaction while seeding
SPAN_DAYS = 365  # the history covers the year before the run
DAY_MS = 24 * 3600 * 1000
ORDER_SHARE = 0.4  # of the conversations: an order's (titled by its number)

# Ranked by how often they are said: weight 1 / rank. The first ones are "common".
ZH_WORDS = (
    "帐篷", "面料", "发货", "尺码", "样品", "颜色", "拉链", "防水", "皮料", "色号",
    "退款", "包装", "价格", "库存", "工厂", "快递", "数量", "质检", "交期", "报价",
    "纸箱", "标签", "吊牌", "地垫", "睡袋", "背包", "帆布", "尼龙", "涤纶", "牛皮",
    "缝线", "涂层", "织带", "绑带",
)  # fmt: skip
ZH_COMMON = ZH_WORDS[:8]
# Drawn instead of a ranked word once in RARE_SHARE draws, evenly: each rare word is
# in about 0.05 % of the messages, some 500 of a million.
ZH_RARE = (
    "刺绣",
    "撕裂",
    "霉斑",
    "褪色",
    "返工",
    "索赔",
    "铆钉",
    "压胶",
    "抽绳",
    "气眼",
    "内衬",
    "魔术贴",
)
RARE_SHARE = 0.003
ZH_FILLER = (
    "我们", "已经", "明天", "今天", "请", "确认", "一下", "这批", "没有", "可以",
    "问题", "需要", "安排", "的", "了", "吗", "好的", "客人说", "老板", "马上",
)  # fmt: skip
EN_WORDS = (
    "tent", "fabric", "shipment", "sample", "zipper", "waterproof", "colour", "size",
    "refund", "invoice", "carton", "leather", "pallet", "stitching", "delay", "customs",
    "coating", "label", "canvas", "nylon",
)  # fmt: skip
EN_RARE = ("mildew", "embroidery", "grommet", "rivet")
EN_QUERY = ("tent", "fabric", "shipment", "sample", "invoice", "leather", "customs", "mildew")
EN_FILLER = (
    "the", "for", "please", "check", "we", "will", "ship", "today", "and", "is",
    "ready", "on", "with", "tomorrow", "still", "need", "a", "new", "second", "round",
)  # fmt: skip
SKU_PREFIXES = ("BAG", "JKT", "TRP", "MAT", "PCK", "SLP")
# (Chinese, English, the word a search for it types)
EVENTS = (
    ("已发货", "shipped", "发货"),
    ("已付款", "paid", "付款"),
    ("生产中", "in production", "生产"),
    ("质检通过", "passed QC", "质检"),
    ("已确认", "confirmed", "确认"),
    ("已打包", "packed", "打包"),
)
FILES = (
    ("照片", "jpg", "image/jpeg", MessageKind.IMAGE),
    ("色卡", "jpg", "image/jpeg", MessageKind.IMAGE),
    ("报价单", "pdf", "application/pdf", MessageKind.FILE),
    ("packing-list", "xlsx", "application/vnd.ms-excel", MessageKind.FILE),
)
# Query kinds, and how many of every 100 queries are of each.
QUERY_MIX = (
    ("zh common", 22),
    ("zh rare", 14),
    ("mixed", 14),
    ("english", 12),
    ("order number", 12),
    ("filter conv", 6),
    ("filter kind", 5),
    ("filter since/until", 5),
    ("filter has_file", 5),
    ("sort relevance", 5),
)


def skus() -> list[str]:
    """The catalogue's codes, the best sellers first: TNT-2P, TNT-3P ..., BAG-0142 ..."""
    codes = [f"TNT-{n}P" for n in (2, 3, 4, 1, 6)]
    for number in range(30):
        codes += [f"{prefix}-{142 + number * 7:04d}" for prefix in SKU_PREFIXES]
    return codes


def order_number(index: int) -> str:
    return f"PO-2026-{index + 1:03d}"


@dataclass(frozen=True)
class Conv:
    index: int
    members: tuple[int, ...]  # staff indices; 0, the searching user, is in all of them
    order: str | None  # the order number an order conversation is about

    @property
    def title(self) -> str:
        if self.order is not None:
            return f"{self.order} 订单"
        return f"频道 {self.index} · channel"


@dataclass
class Plan:
    """The shop: how many messages, its conversations, its staff, its time span."""

    messages: int
    conversations: int
    staff: int
    start_ms: int
    rng: random.Random = field(default_factory=lambda: random.Random(SEED))

    def __post_init__(self) -> None:
        self.convs = self._make_convs()
        self.orders = [c.order for c in self.convs if c.order is not None]
        self.skus = skus()
        self._zh_weights = _zipf(len(ZH_WORDS))
        self._en_weights = _zipf(len(EN_WORDS))
        self._sku_weights = _zipf(len(self.skus))
        # Some conversations are busier than others, as in a shop.
        self._conv_weights = _zipf(len(self.convs), 0.6)

    @property
    def end_ms(self) -> int:
        return self.start_ms + SPAN_DAYS * DAY_MS

    def ts_of(self, number: int) -> int:
        """Message `number` (0-based) is sent at an even share of the span: time follows seq."""
        return self.start_ms + (SPAN_DAYS * DAY_MS * number) // max(self.messages, 1)

    def _make_convs(self) -> list[Conv]:
        convs: list[Conv] = []
        orders = 0
        for index in range(self.conversations):
            others = self.rng.sample(
                range(1, self.staff), self.rng.randint(1, min(3, self.staff - 1))
            )
            order = None
            if self.rng.random() < ORDER_SHARE:
                order = order_number(orders)
                orders += 1
            convs.append(Conv(index, (0, *sorted(others)), order))
        return convs

    # --- text ---------------------------------------------------------------------

    def zh_word(self) -> str:
        if self.rng.random() < RARE_SHARE:
            return self.rng.choice(ZH_RARE)
        return self.rng.choices(ZH_WORDS, cum_weights=self._zh_weights)[0]

    def en_word(self) -> str:
        if self.rng.random() < RARE_SHARE:
            return self.rng.choice(EN_RARE)
        return self.rng.choices(EN_WORDS, cum_weights=self._en_weights)[0]

    def sku(self) -> str:
        return self.rng.choices(self.skus, cum_weights=self._sku_weights)[0]

    def _zh_sentence(self) -> str:
        rng = self.rng
        parts = [self.zh_word() for _ in range(rng.randint(2, 4))]
        parts += rng.sample(ZH_FILLER, rng.randint(2, 4))
        rng.shuffle(parts)
        cut = rng.randint(1, len(parts) - 1)
        return "".join(parts[:cut]) + "，" + "".join(parts[cut:]) + rng.choice("。！？")

    def _en_sentence(self) -> str:
        rng = self.rng
        words = [self.en_word() for _ in range(rng.randint(2, 4))]
        words += rng.sample(EN_FILLER, rng.randint(3, 6))
        rng.shuffle(words)
        return (" ".join(words) + ".").capitalize()

    def text(self, conv: Conv) -> str:
        """A message: Chinese, English, or both, with a code or an order number at times."""
        rng = self.rng
        draw = rng.random()
        if draw < 0.55:
            parts = [self._zh_sentence()]
        elif draw < 0.75:
            parts = [self._en_sentence()]
        else:
            parts = [self._zh_sentence(), self._en_sentence()]
        if rng.random() < 0.25:
            parts.insert(rng.randint(0, len(parts)), self.sku())
        if conv.order is not None and rng.random() < 0.15:
            parts.insert(0, conv.order)
        elif rng.random() < 0.02 and self.orders:
            parts.append(rng.choice(self.orders))
        if rng.random() < 0.2:
            parts.append(f"{rng.randint(2, 60) * 50} 顶")
        return " ".join(parts)

    def message(self, number: int) -> Draft:
        """Message `number`: its conversation, sender, kind, text, files and meta."""
        rng = self.rng
        conv = rng.choices(self.convs, cum_weights=self._conv_weights)[0]
        sender = rng.choice(conv.members)
        draw = rng.random()
        if conv.order is not None and draw < 0.08:
            zh, en, _ = rng.choice(EVENTS)
            texts = {"zh-CN": f"[{conv.order}] 订单{zh}", "en": f"[{conv.order}] order {en}"}
            meta: dict[str, object] = {"event": "status", "text": texts}
            return Draft(conv, sender, MessageKind.ORDER_EVENT, texts["zh-CN"], (), meta)
        if draw > 0.96:
            stem, ext, mime, kind = rng.choice(FILES)
            name = f"{stem}-{self.sku()}-{number % 97}.{ext}"
            file = media_descriptor(
                f"benchfile{number:08d}",
                name,
                mime,
                rng.randint(20_000, 900_000),
                None,
                PreviewStatus.NONE,
                None,
                None,
            )
            caption = self._zh_sentence() if rng.random() < 0.5 else ""
            return Draft(conv, sender, kind, caption, (file,), None)
        return Draft(conv, sender, MessageKind.TEXT, self.text(conv), (), None)

    # --- queries ------------------------------------------------------------------

    def queries(self, count: int, rng: random.Random) -> list[Query]:
        """`count` queries in the proportions of QUERY_MIX, shuffled."""
        planned = [kind for kind, share in QUERY_MIX for _ in range(count * share // 100)]
        planned += [kind for kind, _ in QUERY_MIX][: count - len(planned)]
        rng.shuffle(planned)
        return [self.query(kind, rng) for kind in planned]

    def query(self, kind: str, rng: random.Random) -> Query:
        common = rng.choice(ZH_COMMON)
        if kind == "zh common":
            return Query(kind, {"q": common})
        if kind == "zh rare":
            return Query(kind, {"q": rng.choice([w for w in ZH_RARE if len(w) == 2])})
        if kind == "mixed":
            sku = rng.choice(self.skus[:5])
            return Query(kind, {"q": f"{sku} {rng.choice(ZH_WORDS[:12])}"})
        if kind == "english":
            return Query(kind, {"q": rng.choice(EN_QUERY)})
        if kind == "order number":
            return Query(kind, {"q": rng.choice(self.orders)})
        if kind == "filter conv":
            conv = rng.choices(self.convs, cum_weights=self._conv_weights)[0]
            return Query(kind, {"q": rng.choice(ZH_WORDS[:12])}, conv=conv.index)
        if kind == "filter kind":
            word = rng.choice(EVENTS)[2]
            return Query(kind, {"q": word, "kind": MessageKind.ORDER_EVENT.value})
        if kind == "filter since/until":
            since = rng.randint(self.start_ms, self.end_ms - 30 * DAY_MS)
            params = {"q": common, "since": since, "until": since + 30 * DAY_MS}
            return Query(kind, params)
        if kind == "filter has_file":
            word = rng.choice(("照片", "色卡", "报价单", rng.choice(self.skus[:5])))
            return Query(kind, {"q": word, "has_file": "true"})
        if kind == "sort relevance":
            q = common if rng.random() < 0.5 else f"{rng.choice(self.skus[:5])} {common}"
            return Query(kind, {"q": q, "sort": "relevance"})
        raise ValueError(f"unknown query kind {kind!r}")


@dataclass(frozen=True)
class Draft:
    conv: Conv
    sender: int
    kind: MessageKind
    text: str
    attachments: tuple[dict[str, object], ...]
    meta: dict[str, object] | None


@dataclass(frozen=True)
class Query:
    kind: str
    params: dict[str, Any]
    conv: int | None = None  # filtered to this conversation (its index; the id is added later)


def _zipf(n: int, exponent: float = 1.0) -> list[float]:
    """Cumulative weights 1 / rank ** exponent, for `random.choices(cum_weights=...)`."""
    return list(itertools.accumulate(1 / (rank + 1) ** exponent for rank in range(n)))


# --- seeding ---------------------------------------------------------------------------

_IDS = system_ids(SystemClock())


async def _positions(conn: AsyncConnection) -> CounterPositions:
    positions = CounterPositions()
    await positions.begin(conn)
    return positions


async def seed_shop(
    data_dir: Path,
    staff: Sequence[SeededUser],
    plan: Plan,
    progress: Progress | None = None,
    *,
    index: bool = True,
) -> list[str]:
    """Write the plan's conversations and messages as the server would; the conversation ids.

    Every conversation is made by staff member 0 (the searching user) with the
    others it names, by the server's `CreateConversation`; then the messages are
    appended with `WriteTxn.append_message` and stored by `WriteTxn.flush`,
    `BATCH` per transaction, each with the time `plan.ts_of` gives it; with
    `index` off, as a server started with `--search-index off` writes them.
    """
    db = Database(Settings(data_dir=data_dir).resolved_database_url)
    ids = [UserId(s.id) for s in staff]
    conv_ids: list[ConversationId] = []
    try:
        async with db.write("bench_search_conversations") as conn:
            creator = await account_store.get_user(conn, ids[0])
            tx = WriteTxn(conn, plan.start_ms - DAY_MS, _IDS, await _positions(conn), {})
            for conv in plan.convs:
                new = NewConversation(
                    ConversationKind.CHANNEL, conv.title, tuple(ids[m] for m in conv.members[1:])
                )
                view = await CreateConversation(creator, new).apply(tx)
                conv_ids.append(ConversationId(view.conv.id))
            tx.deliveries.clear()
            await tx.flush(set(conv_ids))
        done = 0
        while done < plan.messages:
            size = min(BATCH, plan.messages - done)
            async with db.write("bench_search_messages") as conn:
                tx = WriteTxn(
                    conn, plan.ts_of(done), _IDS, await _positions(conn), {}, index_search=index
                )
                await tx.members(conv_ids)
                touched: set[ConversationId] = set()
                for number in range(done, done + size):
                    draft = plan.message(number)
                    conv_id = conv_ids[draft.conv.index]
                    tx.now_ms = plan.ts_of(number)
                    await tx.append_message(
                        tx.convs[conv_id],
                        ids[draft.sender],
                        draft.kind,
                        draft.text,
                        ref=f"search-{number:09d}",
                        attachments=draft.attachments,
                        meta=draft.meta,
                    )
                    touched.add(conv_id)
                tx.deliveries.clear()  # nobody is connected: nothing to deliver
                await tx.flush(touched)
            done += size
            if progress is not None:
                progress.advance(size, f"seeding {done:,}/{plan.messages:,}")
    finally:
        await db.close()
    return list(conv_ids)


def start_ms_for_now() -> int:
    """The history ends a day before now: nothing seeded is in the future."""
    return int(time.time() * 1000) - (SPAN_DAYS + 1) * DAY_MS
