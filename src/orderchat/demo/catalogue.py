"""A believable outdoor-gear catalogue for the demo: over a thousand SKUs.

Deterministic (a fixed seed), so every `--demo` start shows the same shop and
screenshots and docs stay true.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SEED = 20261122


@dataclass(frozen=True, slots=True)
class DemoSku:
    sku: str
    name_zh: str
    name_en: str
    category: str
    unit_price_cents: int
    low_stock_threshold: int
    on_hand: int


# (category, code, [(zh, en, base price in yuan)], variants)
_LINES: list[tuple[str, str, list[tuple[str, str, int]]]] = [
    (
        "tents",
        "TNT",
        [
            ("单人超轻帐篷", "1-person ultralight tent", 899),
            ("双人帐篷", "2-person tent", 599),
            ("三人露营帐篷", "3-person camping tent", 799),
            ("四季高山帐篷", "4-season mountain tent", 2399),
            ("家庭帐篷", "family tent", 1299),
            ("天幕", "tarp shelter", 329),
            ("速开帐篷", "instant tent", 459),
            ("隧道帐篷", "tunnel tent", 1699),
        ],
    ),
    (
        "backpacks",
        "BPK",
        [
            ("65L 登山包", "65L trekking pack", 899),
            ("45L 徒步背包", "45L hiking pack", 599),
            ("30L 日行包", "30L daypack", 329),
            ("20L 轻量包", "20L light pack", 199),
            ("防水驮包", "waterproof duffel", 459),
            ("攀登包", "climbing pack", 699),
            ("越野跑背心", "trail running vest", 399),
            ("儿童背包", "kids' pack", 159),
        ],
    ),
    (
        "footwear",
        "FTW",
        [
            ("中帮防水徒步鞋", "mid waterproof hiking boot", 899),
            ("低帮徒步鞋", "low hiking shoe", 699),
            ("越野跑鞋", "trail running shoe", 799),
            ("溯溪鞋", "water shoe", 359),
            ("重装登山靴", "mountaineering boot", 2199),
            ("营地拖鞋", "camp slipper", 129),
            ("雪地靴", "winter boot", 999),
            ("徒步袜", "hiking socks", 59),
        ],
    ),
    (
        "clothing",
        "CLO",
        [
            ("冲锋衣", "hardshell jacket", 1299),
            ("软壳衣", "softshell jacket", 799),
            ("羽绒服", "down jacket", 1099),
            ("抓绒衣", "fleece jacket", 399),
            ("速干T恤", "quick-dry tee", 159),
            ("冲锋裤", "hardshell pants", 899),
            ("徒步裤", "hiking pants", 459),
            ("保暖内衣", "base layer", 299),
        ],
    ),
    (
        "climbing",
        "CLB",
        [
            ("安全带", "climbing harness", 599),
            ("头盔", "climbing helmet", 459),
            ("主锁", "locking carabiner", 89),
            ("快挂", "quickdraw", 129),
            ("动力绳 60m", "60m dynamic rope", 1599),
            ("攀岩鞋", "climbing shoe", 899),
            ("下降器", "belay device", 199),
            ("冰镐", "ice axe", 799),
        ],
    ),
]
_COLOURS = [
    ("黑", "black", "BK"),
    ("蓝", "blue", "BL"),
    ("红", "red", "RD"),
    ("绿", "green", "GN"),
    ("灰", "grey", "GY"),
    ("橙", "orange", "OR"),
    ("黄", "yellow", "YL"),
    ("紫", "purple", "PU"),
    ("卡其", "khaki", "KH"),
]
_SIZES = ["XS", "S", "M", "L", "XL"]
_SHOE_SIZES = ["38", "39", "40", "41", "42", "43", "44", "45"]
_TORSO_SIZES = ["S", "M", "L"]


def demo_catalogue() -> list[DemoSku]:
    rng = random.Random(SEED)
    found: list[DemoSku] = []
    for category, code, models in _LINES:
        sizes = {"footwear": _SHOE_SIZES, "clothing": _SIZES, "backpacks": _TORSO_SIZES}.get(
            category, ["-"]
        )
        for m, (zh, en, price) in enumerate(models, start=1):
            for colour_zh, colour_en, colour_code in _COLOURS:
                for size in sizes:
                    suffix = f"-{size}" if size != "-" else ""
                    sku = f"{code}-{m:02d}-{colour_code}{suffix}"
                    size_zh = f" {size}码" if size != "-" else ""
                    size_en = f" size {size}" if size != "-" else ""
                    found.append(
                        DemoSku(
                            sku=sku,
                            name_zh=f"{zh}（{colour_zh}色{size_zh}）",
                            name_en=f"{en} ({colour_en}{size_en})",
                            category=category,
                            unit_price_cents=price * 100,
                            low_stock_threshold=rng.choice([3, 5, 5, 10]),
                            on_hand=rng.choice([0, 2, 4, 8, 15, 30, 60, 120]),
                        )
                    )
    return found
