"""The tokenizer both stores are fed: terms, queries, snippets and paging, without a server."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderchat.core import search as search_module
from orderchat.core.errors import BadRequest
from orderchat.core.ids import ConversationId, MessageId, UserId
from orderchat.core.model import Message, MessageKind
from orderchat.core.search import (
    MAX_QUERY_TERMS,
    MAX_TERM_CHARS,
    SortBy,
    _stem_word,
    fts5_match,
    index_terms,
    normalize,
    page_at,
    parse_query,
    search_parts,
    snippet,
    tsquery,
    tsvector,
)
from orderchat.core.texts import say


def _finds(text: str, query: str) -> bool:
    """A query matches when every term is there; a phrase's pairs in a row."""
    terms = index_terms([text])
    for term in parse_query(query).terms:
        if term.prefix:
            if not any(t.startswith(term.words[0]) for t in terms):
                return False
            continue
        width = len(term.words)
        if not any(tuple(terms[i : i + width]) == term.words for i in range(len(terms))):
            return False
    return True


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("这批皮料是头层牛皮", "皮料"),
        ("这批皮料是头层牛皮", "牛皮"),
        ("这批皮料是头层牛皮", "头层牛皮"),
        ("色号A12", "色号"),
        ("色号A12", "a12"),
        ("拉链坏了", "了"),
        ("TNT-2P 防水帐篷", "TNT-2P 防水"),
        ("TNT-2P 防水帐篷", "tnt2p"),
        ("ＴＮＴ－２Ｐ", "TNT-2P"),
        ("Waterproofing the tents", "waterproof tent"),
        ("Café au lait", "cafe"),
        ("PO-2026-031 shipped", "PO-2026-031"),
        ("PO-2026-031 shipped", "2026"),
        ("PO-2026-031 shipped", "ship"),
    ],
)
def test_what_is_written_is_found_by_what_is_typed(text: str, query: str) -> None:
    assert _finds(text, query)


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("这批皮料是头层牛皮", "皮鞋"),
        ("这批皮料是头层牛皮", "料牛"),  # not adjacent in the text
        ("TNT-2P", "TNT-3P"),
        ("PO-2026-031", "PO-2026-03"),
        ("tent", "tentative"),
    ],
)
def test_what_is_not_written_is_not_found(text: str, query: str) -> None:
    assert not _finds(text, query)


def test_a_cjk_run_becomes_its_pairs_then_its_last_character() -> None:
    assert index_terms(["帐篷到了"]) == ["帐篷", "篷到", "到了", "了"]
    assert index_terms(["包"]) == ["包"]


def test_every_letter_and_digit_is_indexed_and_nothing_else_for_every_code_point() -> None:
    """A script whose letters went missing here would make its messages unfindable.
    (The Basic Multilingual Plane: every script a shop writes in.)"""
    cjk = re.compile(f"[{search_module._CJK}]")
    for point in range(0x10000):
        char = chr(point)
        folded = normalize(char)
        if cjk.match(folded):
            assert index_terms([char]) == [folded], hex(point)
        elif re.fullmatch(r"[^\W_]", folded):
            assert index_terms([f"x{char}9"]) == [f"x{folded}9"], hex(point)
        else:
            assert index_terms([char]) == [], hex(point)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=60))
def test_ascii_text_gives_the_terms_of_the_general_path(text: str) -> None:
    """ASCII text takes a faster pattern; it must cut exactly where the general one does."""
    general: list[str] = []
    for match in search_module._PIECE.finditer(normalize(text)):
        general.extend(search_module._code_terms(match.group(2)))
    assert index_terms([text]) == general


def test_normalizing_keeps_every_character_in_place() -> None:
    text = "ＴＮＴ－２Ｐ Café 防水"
    assert len(normalize(text)) == len(text)
    assert normalize(text) == "tnt-2p cafe 防水"


def test_queries_render_for_both_stores() -> None:
    query = parse_query("防水面料 TNT-2P 皮")
    assert fts5_match(query) == '"防水 水面 面料" AND "tnt2p" AND "皮"*'
    assert tsquery(query) == "('防水' <-> '水面' <-> '面料') & ('tnt2p') & ('皮':*)"
    assert tsvector(["a", "b"]) == "'a':1 'b':2"


@pytest.mark.parametrize("raw", ["", "   ", "!!!", "，。"])
def test_a_query_with_nothing_to_search_for_is_refused(raw: str) -> None:
    with pytest.raises(BadRequest):
        parse_query(raw)


def test_a_query_is_bounded() -> None:
    with pytest.raises(BadRequest):
        parse_query("字" * 201)
    with pytest.raises(BadRequest):
        parse_query(" ".join(f"w{i}" for i in range(MAX_QUERY_TERMS + 1)))
    assert len(parse_query("a a a b").terms) == 2  # repeated terms count once


def test_the_snippet_marks_the_matches_and_cuts_around_the_first() -> None:
    text = "开头" + "很长的一段话" * 40 + "皮料在这里" + "结尾很长" * 20
    cut = snippet([text], parse_query("皮料"), width=40)
    assert cut.text.startswith("…") and cut.text.endswith("…")
    assert [cut.text[s:e] for s, e in cut.marks] == ["皮料"]
    mixed = snippet(["Order PO-2026-031: tents, TNT-2P"], parse_query("tent po-2026-031 tnt-2p"))
    assert [mixed.text[s:e] for s, e in mixed.marks] == ["PO-2026-031", "tents", "TNT-2P"]


def test_a_message_is_found_by_its_words_in_every_language_and_its_files() -> None:
    message = Message(
        id=MessageId("m1"),
        conv=ConversationId("c1"),
        seq=1,
        ref=None,
        sender=UserId("u1"),
        kind=MessageKind.ORDER_EVENT,
        text="已发货",
        attachments=({"id": "f1", "name": "装箱单.pdf", "caption": "封箱照片"},),
        mentions=(),
        reply_to=None,
        ts=1,
        recalled=False,
        meta={"text": {"zh-CN": "已发货", "en": "Shipped"}, "details": {"comment": "加急"}},
    )
    parts = search_parts(message)
    assert parts == ["已发货", "Shipped", "加急", "装箱单.pdf", "封箱照片"]
    said = say("calls.call_over")
    call = replace(message, kind=MessageKind.CALL, text="", meta={"say": said.to_json()})
    assert search_parts(call) == [said.render("zh-CN"), said.render("en"), "装箱单.pdf", "封箱照片"]


def test_a_cursor_belongs_to_its_sort() -> None:
    assert page_at(SortBy.TIME, "t42").before == 42
    assert page_at(SortBy.RELEVANCE, "r20").offset == 20
    assert page_at(SortBy.TIME, None).before is None
    for sort, bad in (
        (SortBy.TIME, "r20"),
        (SortBy.RELEVANCE, "t1"),
        (SortBy.TIME, "t-1"),
        (SortBy.TIME, "t" + "9" * 19),
        (SortBy.TIME, "x"),
    ):
        with pytest.raises(BadRequest):
            page_at(sort, bad)


def test_a_term_is_cut_to_its_limit_in_the_index_and_the_query_alike() -> None:
    long_code = "0" * 10_000
    terms = index_terms([f"{long_code} a-{long_code}"])
    assert max(len(t) for t in terms) == MAX_TERM_CHARS
    assert _finds(long_code, "0" * 150)  # a query, at most 200 characters, cut the same way
    assert _finds(f"a-{long_code}", f"a-{'0' * 150}")


def test_numbers_and_codes_leave_the_stem_cache_to_words() -> None:
    index_terms(["waterproofing"])
    before = _stem_word.cache_info().currsize
    index_terms([f"{n} 20261207 PO-{n}-031 3.{n} x{n}" for n in range(5000, 5100)])
    assert _stem_word.cache_info().currsize - before <= 1  # "po" alone
    assert index_terms(["waterproofing 2026 PO-9"]) == ["waterproof", "2026", "po", "9", "po9"]
