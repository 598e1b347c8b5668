"""Outbound webhook targets and formats: no private addresses, robots' own bodies."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from orderchat.core.errors import BadRequest
from orderchat.core.targets import parse_target, refused_addresses
from orderchat.core.webhook_formats import (
    DELIVERY_HEADER,
    Format,
    body_of,
    request_of,
    robot_refused,
)

EVENT = {
    "topic": "order.status",
    "order": {"id": "o_1", "number": "OD-1"},
    "message": {"text": "已发货 [click](http://evil.example) *bold*", "sender_name": "Amy"},
    "link": "https://chat.example/#/c/c_1/m/3",
}


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://0.0.0.0/hook",
        "https://192.168.1.10:8443/hook",
        "http://hooks.example/hook",
        "ftp://hooks.example/hook",
        "https://user:pw@hooks.example/hook",
        "https:///nohost",
        "not a url",
        "https://" + "a" * 3000 + ".example",
    ],
)
def test_targets_inside_or_malformed_are_refused(url: str) -> None:
    with pytest.raises(BadRequest):
        parse_target(url, allow_private=False)


def test_a_public_https_target_passes_and_private_ones_pass_when_allowed() -> None:
    assert parse_target("https://hooks.example:8443/x", allow_private=False).port == 8443
    assert parse_target("http://127.0.0.1:9000/x", allow_private=True).host == "127.0.0.1"


def test_resolved_addresses_inside_are_refused() -> None:
    assert refused_addresses(["93.184.216.34"], allow_private=False) == []
    assert refused_addresses(["93.184.216.34", "10.0.0.7"], allow_private=False) == ["10.0.0.7"]
    assert refused_addresses(["fe80::1", "::1"], allow_private=False) == ["fe80::1", "::1"]
    assert refused_addresses(["10.0.0.7"], allow_private=True) == []


def test_the_orderchat_format_is_signed_over_timestamp_and_body() -> None:
    body = body_of(Format.ORDERCHAT, EVENT, "zh-CN")
    url, headers = request_of(
        Format.ORDERCHAT,
        "https://h.example/x",
        "s" * 20,
        "42:wh_1:order.status",
        "order.status",
        body,
        1_700_000_000_123,
    )
    assert url == "https://h.example/x"
    assert headers[DELIVERY_HEADER] == "42:wh_1:order.status"
    stamp = headers["X-OrderChat-Timestamp"]
    assert stamp == "1700000000"
    expected = hmac.new(b"s" * 20, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert headers["X-OrderChat-Signature"] == f"sha256={expected}"


def test_wecom_and_dingtalk_get_their_markdown_with_the_message_escaped() -> None:
    wecom = orjson.loads(body_of(Format.WECOM, EVENT, "zh-CN"))
    assert wecom["msgtype"] == "markdown"
    content = wecom["markdown"]["content"]
    assert "OD-1" in content and "订单进度" in content
    assert "\\[click\\]\\(http://evil.example\\)" in content and "\\*bold\\*" in content
    ding = orjson.loads(body_of(Format.DINGTALK, EVENT, "en"))
    assert ding["markdown"]["title"] == "Order status"


def test_dingtalk_is_signed_in_the_url_the_way_dingtalk_checks_it() -> None:
    url, _ = request_of(
        Format.DINGTALK,
        "https://oapi.dingtalk.com/robot/send?access_token=abc",
        "SECxyz",
        "d1",
        "order.status",
        b"{}",
        1_700_000_000_123,
    )
    query = parse_qs(urlsplit(url).query)
    assert query["access_token"] == ["abc"] and query["timestamp"] == ["1700000000123"]
    mac = hmac.new(b"SECxyz", b"1700000000123\nSECxyz", hashlib.sha256).digest()
    assert query["sign"] == [base64.b64encode(mac).decode()]


def test_a_robot_refusing_inside_a_200_is_a_failure() -> None:
    assert robot_refused(Format.WECOM, b'{"errcode":0,"errmsg":"ok"}') is None
    assert robot_refused(Format.DINGTALK, b'{"errcode":310000,"errmsg":"sign not match"}')
    assert robot_refused(Format.WECOM, b"<html>") is not None
    assert robot_refused(Format.ORDERCHAT, b"whatever") is None
