"""The server words what people read in their language: errors over HTTP and in
`error` frames, and the system notes it stores (docs/texts.md)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.order_support import Shop
from tests.support import Peer, ServerProcess, messages

HAN = re.compile(r"[\u4e00-\u9fff]")


def _get(server: ServerProcess, path: str, language: str | None) -> httpx.Response:
    headers = server.auth(server.admin.token)
    if language is not None:
        headers["Accept-Language"] = language
    return httpx.get(f"{server.base_url}{path}", headers=headers, timeout=10)


def _post(server: ServerProcess, path: str, body: Any, language: str) -> httpx.Response:
    headers = {**server.auth(server.admin.token), "Accept-Language": language}
    return httpx.post(f"{server.base_url}{path}", json=body, headers=headers, timeout=10)


def test_the_same_missing_sku_is_told_in_each_language(server: ServerProcess) -> None:
    answers = {lang: _get(server, "/api/skus/NOPE-404", lang) for lang in ("zh-CN", "en")}
    for resp in answers.values():
        assert resp.status_code == 404, resp.text
    zh, en = (answers[lang].json()["error"] for lang in ("zh-CN", "en"))
    assert en == {
        "code": "not_found",
        "message": "no SKU 'NOPE-404'",
        "reason": "inventory.no_sku",
        "params": {"code": "NOPE-404"},
    }
    assert zh == {**en, "message": "SKU 'NOPE-404' 不存在"}


@pytest.mark.parametrize(
    ("header", "chinese"),
    [(None, True), ("fr-FR", True), ("en-US,en;q=0.9", False), ("zh-TW;q=0.4, en;q=0.3", True)],
)
def test_accept_language_chooses_and_chinese_is_the_default(
    server: ServerProcess, header: str | None, chinese: bool
) -> None:
    message = _get(server, "/api/skus/NOPE-405", header).json()["error"]["message"]
    assert bool(HAN.search(message)) is chinese, message


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_a_refused_request_is_worded_for_its_reader_and_changes_nothing(
    server: ServerProcess, language: str
) -> None:
    before = server.db_snapshot()
    resp = _post(server, "/api/conversations", {"kind": "group", "title": "x"}, language)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["reason"] == "model.kind_must_channel_direct"
    assert bool(HAN.search(error["message"])) is (language == "zh-CN"), error
    assert server.db_snapshot() == before


@pytest.mark.parametrize(
    ("language", "expected"),
    [("zh-CN", "请求无效，请检查：password"), ("en", "invalid request; check password")],
)
def test_a_request_the_schema_refuses_names_the_field_in_the_readers_words(
    server: ServerProcess, language: str, expected: str
) -> None:
    before = server.db_snapshot()
    resp = httpx.post(
        f"{server.base_url}/api/auth/login",
        json={"username": "someone", "password": 12},
        headers={"Accept-Language": language},
        timeout=10,
    )
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["reason"] == "request.invalid_fields", error
    assert error["params"] == {"fields": ["password"]}
    assert error["message"] == expected
    assert server.db_snapshot() == before


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ({}, "会话 'c_nowhere' 不存在"),
        ({"language": "zh-CN"}, "会话 'c_nowhere' 不存在"),
        ({"language": "en"}, "no conversation 'c_nowhere'"),
        ({"language": "en-GB"}, "no conversation 'c_nowhere'"),
        ({"language": "fr"}, "会话 'c_nowhere' 不存在"),
    ],
)
async def test_an_error_frame_is_worded_in_the_hellos_language(
    server: ServerProcess, language: dict[str, str], expected: str
) -> None:
    peer = await Peer.open(server, server.admin.token, hello=False)
    try:
        hello = {"op": "hello", "token": server.admin.token, "device": "t", "cursor": None}
        await peer.send({**hello, **language})
        await peer.recv_op("welcome")
        before = server.db_snapshot()
        error = await peer.send_text("c_nowhere", "hi", "lang-1")
        assert error == {
            "op": "error",
            "code": "not_found",
            "message": expected,
            "reason": "messaging.no_conversation",
            "params": {"conv_id": "c_nowhere"},
            "ref": "lang-1",
        }
        assert server.db_snapshot() == before
    finally:
        await peer.close()


async def test_a_hello_whose_language_is_not_a_string_is_refused_in_chinese(
    server: ServerProcess,
) -> None:
    peer = await Peer.open(server, server.admin.token, hello=False)
    try:
        bad = {"op": "hello", "token": server.admin.token, "device": "t", "language": 7}
        await peer.send(bad)
        error = await peer.recv_op("error")
        assert error["code"] == "bad_request"
        assert error["reason"] == "codec.language_must_string_null"
        assert HAN.search(error["message"]), error
        # The connection stays usable: a good hello in English is welcomed and
        # its errors are in English from then on.
        await peer.send({**bad, "language": "en"})
        await peer.recv_op("welcome")
        error = await peer.send_text("c_nowhere", "hi", "lang-2")
        assert error["message"] == "no conversation 'c_nowhere'", error
    finally:
        await peer.close()


async def test_a_stock_answer_comes_in_the_asking_connections_language(
    server: ServerProcess,
) -> None:
    conv = server.conversation(server.admin, "channel", [], title="库存")["id"]
    answers = {}
    for language in ("zh-CN", "en"):
        peer = await Peer.open(server, server.admin.token, hello=False)
        try:
            await peer.send(
                {"op": "hello", "token": server.admin.token, "device": language, "cursor": None}
                | {"language": language}
            )
            await peer.recv_op("welcome")
            ref = f"stock-{language}"
            await peer.send({"op": "send", "ref": ref, "conv": conv, "text": "/stock NO-SUCH-1"})
            answers[language] = await peer.recv_op("command_reply")
        finally:
            await peer.close()
    assert answers["zh-CN"]["lines"] == ["库存查询「NO-SUCH-1」：没有找到匹配的商品。"]
    assert answers["en"]["lines"] == ["No SKU matches “NO-SUCH-1”."]
    # A query is not a message: nothing of it is stored for anyone.
    assert messages(server, server.admin.token, conv) == []


@pytest.mark.parametrize("stored", ["en", "zh-CN"])
def test_a_customer_who_sends_no_language_reads_the_one_stored_with_them(
    order_shop: Shop, stored: str
) -> None:
    order = order_shop.create_order("retail", language=stored)
    customer = order_shop.customer(order)
    url = f"{order_shop.server.base_url}/api/orders/o_not_theirs"
    bearer = {"Authorization": f"Bearer {customer.token}"}
    before = order_shop.server.db_snapshot()
    plain = httpx.get(url, headers=bearer, timeout=10).json()["error"]
    assert bool(HAN.search(plain["message"])) is (stored == "zh-CN"), plain
    # The page's own choice, when it sends one, wins over the stored language.
    other = "zh-CN" if stored == "en" else "en"
    chosen = httpx.get(url, headers={**bearer, "Accept-Language": other}, timeout=10)
    error = chosen.json()["error"]
    assert bool(HAN.search(error["message"])) is (other == "zh-CN"), error
    assert error["reason"] == plain["reason"] and error["params"] == plain["params"]
    assert order_shop.server.db_snapshot() == before
