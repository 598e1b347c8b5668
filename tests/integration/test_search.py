"""Search over a real server, on SQLite and on PostgreSQL: what a shop would type,
who may find what, and that a message is found the moment its sender has the ack.

Each test writes into conversations of its own and filters on them, so the
shared server's other traffic never changes an answer.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

from orderchat.storage import engine as storage_engine
from tests.media_support import media_info, send_media, tus_upload
from tests.order_support import Customer, Shop, assert_unchanged
from tests.support import Account, Peer, PeerPool, ServerProcess, run_cli, start_server

MIGRATIONS = Path(storage_engine.__file__).parent / "migrations"

_refs = itertools.count(1)
Json = dict[str, Any]


def _ref(what: str = "s") -> str:
    return f"search-{what}-{next(_refs)}"


@pytest.fixture
def shop(order_shop: Shop) -> Shop:
    return order_shop


def _search(shop: Shop, who: str | Account | Customer, q: str, **params: Any) -> Json:
    resp = shop.call(who, "GET", "/api/search?" + urlencode({"q": q, **params}, doseq=True))
    assert resp.status_code == 200, resp.text
    body: Json = resp.json()
    return body


def _texts(page: Json) -> list[str]:
    return [r["message"]["text"] for r in page["results"]]


async def _say(peer: Peer, conv: str, text: str, **extra: Any) -> Json:
    ack = await peer.send_text(conv, text, _ref(), **extra)
    assert ack["op"] == "ack", ack
    return ack


# What a shop writes, and what someone there would type to find it again.
SHOP_TALK = (
    "这批皮料是头层牛皮，三周前到的",
    "TNT-2P 防水帐篷到货了，共 40 顶",
    "色号 A12 请客户确认",
    "拉链坏了，换 YKK 的",
    "The tents arrived, all waterproofed and packed",
    "客户问 PO-2026-031 什么时候发货",
    "Boots run small: size up for wide feet",
)
FINDS = (
    ("皮料", [0]),
    ("帐篷", [1]),
    ("TNT-2P 防水", [1]),
    ("tnt-2p", [1]),
    ("色号", [2]),
    ("拉链", [3]),
    ("ykk", [3]),
    ("tent", [4]),
    ("waterproof", [4]),
    ("Packing", [4]),
    ("PO-2026-031", [5]),
    ("发货", [5]),
    ("皮", [0]),
    ("boot", [6]),
    ("SIZE UP", [6]),
)
MISSES = ("皮鞋", "TNT-3P", "PO-2026-032", "tentative", "防水布", "料是头层羊")


@pytest.fixture
async def talk(shop: Shop) -> tuple[str, list[Json]]:
    """A fresh channel holding `SHOP_TALK`, sent by sales and read by the warehouse."""
    ann, bob = shop.staff["sales"], shop.staff["warehouse"]
    conv = shop.server.conversation(ann, "channel", [bob], title=_ref("供应商"))["id"]
    async with PeerPool(shop.server) as pool:
        peer = await pool.open(ann.token)
        acks = [await _say(peer, conv, text) for text in SHOP_TALK]
    return conv, acks


@pytest.mark.pg_sample(6)  # the tokenizer is the same; the store's matching is sampled
@pytest.mark.parametrize(("query", "expected"), FINDS, ids=[q for q, _ in FINDS])
async def test_what_a_shop_types_finds_what_it_wrote(
    shop: Shop, talk: tuple[str, list[Json]], query: str, expected: list[int]
) -> None:
    conv, _ = talk
    page = _search(shop, "warehouse", query, conv=conv)
    assert _texts(page) == [SHOP_TALK[i] for i in reversed(expected)]
    marked = [
        page["results"][0]["snippet"]["text"][start:end]
        for start, end in page["results"][0]["snippet"]["marks"]
    ]
    assert marked, page
    folded = query.replace("-", "").replace(" ", "").casefold()
    # Each mark is a word of the query, or a form of it (tents for tent: the same stem).
    assert all(m.replace("-", "").replace(" ", "").casefold()[:3] in folded for m in marked), marked


async def test_what_was_not_written_is_not_found(shop: Shop, talk: tuple[str, list[Json]]) -> None:
    conv, _ = talk
    for query in MISSES:
        assert _search(shop, "sales", query, conv=conv)["results"] == [], query


async def test_the_highlight_marks_exactly_the_words_searched(
    shop: Shop, talk: tuple[str, list[Json]]
) -> None:
    conv, _ = talk
    for query, wanted in (
        ("皮料", ["皮料"]),
        ("TNT-2P 防水", ["TNT-2P", "防水"]),
        ("tent", ["tents"]),
        ("PO-2026-031", ["PO-2026-031"]),
    ):
        hit = _search(shop, "sales", query, conv=conv)["results"][0]
        text = hit["snippet"]["text"]
        assert [text[s:e] for s, e in hit["snippet"]["marks"]] == wanted, (query, hit)


async def test_filters_by_sender_kind_date_and_file_and_pages_through(
    shop: Shop, talk: tuple[str, list[Json]]
) -> None:
    conv, acks = talk
    ann = shop.staff["sales"]
    assert len(_search(shop, "sales", "了", conv=conv)["results"]) == 2
    assert _search(shop, "sales", "帐篷", conv=conv, sender=ann.id)["results"]
    assert _search(shop, "sales", "帐篷", conv=conv, sender=shop.staff["qc"].id)["results"] == []
    assert _search(shop, "sales", "帐篷", conv=conv, kind="text")["results"]
    assert _search(shop, "sales", "帐篷", conv=conv, kind=["image", "file"])["results"] == []
    assert _search(shop, "sales", "帐篷", conv=conv, has_file="true")["results"] == []
    assert _search(shop, "sales", "帐篷", conv=conv, since=acks[1]["ts"] + 1)["results"] == []
    assert _search(shop, "sales", "帐篷", conv=conv, until=acks[1]["ts"] + 1)["results"]
    # Newest first, two at a time, to the end; then best first.
    everything = "客户"  # in two messages
    first = _search(shop, "sales", everything, conv=conv, limit=1)
    assert _texts(first) == [SHOP_TALK[5]] and first["next"]
    second = _search(shop, "sales", everything, conv=conv, limit=1, cursor=first["next"])
    assert _texts(second) == [SHOP_TALK[2]] and second["next"] is None
    ranked = _search(shop, "sales", everything, conv=conv, sort="relevance")
    assert sorted(_texts(ranked)) == sorted([SHOP_TALK[2], SHOP_TALK[5]])


async def test_a_message_is_found_the_moment_its_ack_arrives(shop: Shop) -> None:
    ann, bob = shop.staff["sales"], shop.staff["warehouse"]
    conv = shop.server.conversation(ann, "channel", [bob], title=_ref("快"))["id"]
    async with PeerPool(shop.server) as pool:
        peer = await pool.open(ann.token)
        for n in range(20):
            ack = await _say(peer, conv, f"色卡第{n}版 swatch{n}")
            found = _search(shop, "warehouse", f"swatch{n}", conv=conv)["results"]
            assert [r["message"]["seq"] for r in found] == [ack["seq"]], n


async def test_an_edit_is_found_by_its_new_words_and_a_recall_leaves_members_results(
    shop: Shop,
) -> None:
    ann, bob = shop.staff["sales"], shop.staff["warehouse"]
    conv = shop.server.conversation(ann, "channel", [bob], title=_ref("改"))["id"]
    async with PeerPool(shop.server) as pool:
        peer = await pool.open(ann.token)
        edited = await _say(peer, conv, "周三发红色背包")
        await peer.send(
            {
                "op": "edit",
                "ref": _ref("e"),
                "conv": conv,
                "seq": edited["seq"],
                "text": "周五发蓝色背包",
            }
        )
        await peer.recv_op("ack")
        gone = await _say(peer, conv, "内部价 180 元 背包")
        await peer.send({"op": "recall", "ref": _ref("r"), "conv": conv, "seq": gone["seq"]})
        await peer.recv_op("ack")
    assert _texts(_search(shop, "warehouse", "蓝色", conv=conv)) == ["周五发蓝色背包"]
    assert _search(shop, "warehouse", "红色", conv=conv)["results"] == []
    assert _search(shop, "warehouse", "内部价", conv=conv)["results"] == []
    assert _search(shop, "sales", "内部价", conv=conv)["results"] == []
    audit = _search(shop, "admin", "内部价", conv=conv, audit="true")["results"]
    assert [(r["message"]["text"], r["recalled"]) for r in audit] == [("内部价 180 元 背包", True)]
    resp = shop.call("sales", "GET", f"/api/search?q=背包&audit=true&conv={conv}")
    assert resp.status_code == 403, resp.text
    shop.server.check_search_index()  # what the writer fed FTS5 is what search_docs holds


async def test_customers_find_their_own_order_and_never_a_staff_note(shop: Shop) -> None:
    mine, theirs = shop.create_order(), shop.create_order()
    me, other = shop.customer(mine), shop.customer(theirs)
    word = _ref("货号").replace("-", "")  # one word, unique to this test
    async with PeerPool(shop.server) as pool:
        staff = await pool.open(shop.staff["customer_service"].token)
        await _say(staff, mine["conv"], f"{word} 明天发货")
        await _say(staff, mine["conv"], f"{word} 这位客户要求开专票", internal=True)
        await _say(staff, theirs["conv"], f"{word} 另一位客户的订单")
    mine_only = _search(shop, me, word)
    assert _texts(mine_only) == [f"{word} 明天发货"]
    assert mine_only["results"][0]["order"] == {"id": mine["id"], "number": mine["number"]}
    assert _texts(_search(shop, other, word)) == [f"{word} 另一位客户的订单"]
    staff_sees = _texts(_search(shop, "customer_service", word, order=mine["id"]))
    assert staff_sees == [f"{word} 这位客户要求开专票", f"{word} 明天发货"]
    # Another customer's order, or a staff channel, is refused rather than empty.
    resp = shop.call(me, "GET", f"/api/search?q={word}&order={theirs['id']}")
    assert resp.status_code == 404, resp.text
    channel = shop.server.conversation(shop.staff["sales"], "channel", [], title=_ref("内部"))
    resp = shop.call(me, "GET", f"/api/search?q={word}&conv={channel['id']}")
    assert resp.status_code == 403, resp.text
    resp = shop.call(me, "GET", f"/api/search?q={word}&audit=true")
    assert resp.status_code == 403, resp.text


async def test_order_events_are_found_by_order_and_in_either_language(shop: Shop) -> None:
    order = shop.create_order()
    shop.drive(order, "confirmed")
    by_number = _search(shop, "customer_service", order["number"])
    assert by_number["results"], by_number
    kinds = {r["message"]["kind"] for r in by_number["results"]}
    assert "order_event" in kinds, by_number
    events = _search(
        shop, "customer_service", order["number"], order=order["id"], kind="order_event"
    )
    assert events["results"] and all(
        r["order"]["number"] == order["number"] for r in events["results"]
    )


async def test_a_conversation_filter_holds_its_own_messages_ranked_as_without_it(
    shop: Shop,
) -> None:
    """SQLite finds a conversation's messages by its id as an FTS5 term: a message
    elsewhere that quotes the id must stay out, the typed words must never match
    an id, and the filter must not change how the results rank."""
    ann, bob = shop.staff["sales"], shop.staff["warehouse"]
    word = _ref("样品").replace("-", "")
    here = shop.server.conversation(ann, "channel", [bob], title=_ref("甲"))["id"]
    there = shop.server.conversation(ann, "channel", [bob], title=_ref("乙"))["id"]
    async with PeerPool(shop.server) as pool:
        peer = await pool.open(ann.token)
        await _say(peer, here, f"{word} 到了")
        await _say(peer, here, f"{word} {word} 皮料的样品寄出了，客户收到后会确认颜色和手感")
        await _say(peer, here, f"{word} 也到了")
        await _say(peer, there, f"{word} 见 {here}")
    within = _search(shop, "sales", word, conv=here, sort="relevance")["results"]
    assert {r["message"]["conv"] for r in within} == {here} and len(within) == 3
    everywhere = _search(shop, "sales", word, sort="relevance")["results"]
    assert len(everywhere) == 4
    in_here = [r["message"]["id"] for r in everywhere if r["message"]["conv"] == here]
    assert [r["message"]["id"] for r in within] == in_here
    # Typed, the id is only words: it finds the message that quotes it, nothing in `here`.
    assert _texts(_search(shop, "sales", here)) == [f"{word} 见 {here}"]
    assert _search(shop, "sales", word, conv=there)["results"][0]["message"]["conv"] == there


async def test_has_file_finds_the_messages_with_files_by_text_or_file_name(shop: Shop) -> None:
    ann, bob = shop.staff["sales"], shop.staff["warehouse"]
    word = _ref("色卡").replace("-", "")
    conv = shop.server.conversation(ann, "channel", [bob], title=_ref("文件"))["id"]
    # Plain text has nothing to preview: no later event to change the shared server's
    # history. (Counting bytes 0, 1, 2, … would not do: they read as a TGA picture.)
    card = "色卡 A12 黑, B07 白\n".encode() * 40
    upload = tus_upload(shop.server, ann.token, conv, card, f"{word}.txt", "text/plain")
    assert media_info(shop.server, ann.token, upload)["preview"]["status"] == "none"
    async with PeerPool(shop.server) as pool:
        peer = await pool.open(ann.token)
        await _say(peer, conv, f"{word} 下周寄出")
        sent = await send_media(peer, conv, "file", [upload], _ref("f"), text="色卡的电子版")
        assert sent["op"] == "ack", sent
    with_file = _search(shop, "sales", word, conv=conv, has_file="true")["results"]
    assert [r["message"]["seq"] for r in with_file] == [sent["seq"]]
    without = _texts(_search(shop, "sales", word, conv=conv, has_file="false"))
    assert without == [f"{word} 下周寄出"]
    assert len(_search(shop, "sales", word, has_file="true")["results"]) == 1


BAD = (
    ("q=", 400),
    ("q=" + "字" * 201, 400),
    ("q=!!!", 400),
    ("q=a&kind=bogus", 400),
    ("q=a&cursor=zz", 400),
    ("q=a&sort=relevance&cursor=t12", 400),
    ("q=a&limit=0", 400),
    ("q=a&limit=51", 400),
    ("q=a&since=-1", 400),
    ("q=a&conv=nope", 404),
    ("q=a&order=nope", 404),
    ("q=" + "+".join(f"w{i}" for i in range(13)), 400),
)


@pytest.mark.pg_sample(3)
@pytest.mark.parametrize(("query", "status"), BAD, ids=[b[0][:24] for b in BAD])
async def test_bad_searches_get_a_clear_error_and_change_nothing(
    shop: Shop, query: str, status: int
) -> None:
    before = shop.server.db_snapshot()
    resp = shop.call("sales", "GET", f"/api/search?{query}")
    assert resp.status_code == status, resp.text
    assert resp.json()["error"], resp.text
    assert_unchanged(before, shop.server.db_snapshot())
    assert shop.call(None, "GET", "/api/search?q=a").status_code == 401


async def test_the_command_line_finds_what_the_web_app_finds(
    shop: Shop, talk: tuple[str, list[Json]]
) -> None:
    conv, acks = talk
    server = shop.server
    where = ("--data-dir", str(server.data_dir), *server.database_args)
    warehouse = shop.staff["warehouse"].username
    found = run_cli("search", "皮料", "--as", warehouse, "--conv", conv, *where)
    assert found.returncode == 0, found.stderr
    (line,) = found.stdout.splitlines()
    assert "[皮料]" in line and f"#{acks[0]['seq']}" in line, line
    as_json = run_cli("search", "tent", "--as", warehouse, "--conv", conv, "--json", *where)
    (hit,) = [orjson.loads(x) for x in as_json.stdout.splitlines()]
    assert (hit["seq"], hit["snippet"]) == (acks[4]["seq"], SHOP_TALK[4])
    nothing = run_cli("search", "皮鞋", "--as", warehouse, "--conv", conv, *where, check=False)
    assert (nothing.returncode, nothing.stdout) == (1, "")
    refused = run_cli("search", "!!", "--as", warehouse, *where, check=False)
    assert refused.returncode == 2 and "orderchat search:" in refused.stderr
    nobody = run_cli("search", "皮料", "--as", "nobody-here", *where, check=False)
    assert nobody.returncode == 2, nobody.stderr


@pytest.mark.sqlite_only  # about the migration's backfill, whose SQL is the same on both
async def test_history_written_before_search_existed_is_found_after_the_upgrade(
    own_server: ServerProcess,
) -> None:
    """Migration 0013 indexes the messages already stored: latest edits, recalls hidden."""
    own_server.start()
    admin = own_server.create_admin()
    bob = own_server.user("warehouse")
    conv = own_server.conversation(admin, "channel", [bob], title="老仓库")["id"]
    async with PeerPool(own_server) as pool:
        peer = await pool.open(admin.token)
        kept = await _say(peer, conv, "旧皮料的色号是 A12")
        edited = await _say(peer, conv, "黑色拉链")
        await peer.send(
            {"op": "edit", "ref": _ref("e"), "conv": conv, "seq": edited["seq"], "text": "白色拉链"}
        )
        await peer.recv_op("ack")
        gone = await _say(peer, conv, "撤回的皮料报价")
        await peer.send({"op": "recall", "ref": _ref("r"), "conv": conv, "seq": gone["seq"]})
        await peer.recv_op("ack")
    own_server.stop()
    _migrate(own_server.db_path, "0012", down=True)  # as it was before search existed
    assert "search_docs" not in own_server.db_tables()
    own_server.start()  # migrates to the head, which indexes the history
    with own_server.http(bob.token) as http:

        def found(q: str) -> list[int]:
            resp = http.get("/api/search", params={"q": q, "conv": conv})
            assert resp.status_code == 200, resp.text
            return [r["message"]["seq"] for r in resp.json()["results"]]

        assert found("皮料") == [kept["seq"]]
        assert found("白色") == [edited["seq"]]
        assert found("黑色") == []
    own_server.check_search_index()


def _migrate(path: Path, revision: str, *, down: bool = False) -> None:
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)
    finally:
        engine.dispose()


@pytest.mark.sqlite_only  # not about storage
async def test_with_the_index_off_new_messages_are_not_found(tmp_path: Path) -> None:
    """`--search-index off` exists to measure the index's cost; it must really stop it."""
    server = start_server(tmp_path, "--rate-limits", "off", "--search-index", "off")
    try:
        admin = server.admin
        assert admin is not None
        conv = server.conversation(admin, "channel", [], title="off")["id"]
        async with PeerPool(server) as pool:
            await _say(await pool.open(admin.token), conv, "没有索引的皮料")
        with server.http(admin.token) as http:
            resp = http.get("/api/search", params={"q": "皮料", "conv": conv})
        assert resp.status_code == 200 and resp.json()["results"] == [], resp.text
        assert server.db_rows("SELECT COUNT(*) FROM search_docs") == [(0,)]
    finally:
        server.stop()
