"""Urgent messages: marked by their sender, delivered as such, counted apart until read."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import Peer, ServerProcess, messages


def _summary(server: ServerProcess, token: str, conv: str) -> dict[str, Any]:
    with server.http(token) as client:
        listed = client.get("/api/conversations").json()["conversations"]
    found: dict[str, Any] = next(c for c in listed if c["id"] == conv)
    return found


async def test_an_urgent_message_is_marked_everywhere_until_read(server: ServerProcess) -> None:
    amy, wes = server.user("customer_service"), server.user("warehouse")
    conv = server.conversation(amy, "direct", [wes])["id"]
    sender, reader = await Peer.open(server, amy.token), await Peer.open(server, wes.token)
    try:
        plain = await sender.send_text(conv, "when you can", "u-1")
        urgent = await sender.send_text(conv, "客户在等！", "u-2", urgent=True)
        live = [await reader.recv_op("message"), await reader.recv_op("message")]
        assert "urgent" not in live[0] and live[1]["urgent"] is True
        stored = messages(server, wes.token, conv)
        assert [m.get("urgent", False) for m in stored] == [False, True]
        assert _summary(server, wes.token, conv)["unread_urgent"] == 1
        assert _summary(server, amy.token, conv)["unread_urgent"] == 0  # their own
        # Read past the plain one only: the urgent one still waits.
        await reader.send({"op": "read", "conv": conv, "seq": plain["seq"]})
        await reader.recv_op("read")
        assert _summary(server, wes.token, conv)["unread_urgent"] == 1
        await reader.send({"op": "read", "conv": conv, "seq": urgent["seq"]})
        await reader.recv_op("read")
        assert _summary(server, wes.token, conv)["unread_urgent"] == 0
    finally:
        await sender.close()
        await reader.close()


async def test_a_recalled_urgent_message_is_no_longer_counted(server: ServerProcess) -> None:
    amy, wes = server.user("customer_service"), server.user("warehouse")
    conv = server.conversation(amy, "direct", [wes])["id"]
    sender = await Peer.open(server, amy.token)
    try:
        ack = await sender.send_text(conv, "wrong chat", "r-1", urgent=True)
        assert _summary(server, wes.token, conv)["unread_urgent"] == 1
        await sender.send({"op": "recall", "ref": "r-2", "conv": conv, "seq": ack["seq"]})
        assert (await sender.recv_ack("r-2"))["op"] == "ack"
        assert _summary(server, wes.token, conv)["unread_urgent"] == 0
    finally:
        await sender.close()


@pytest.mark.parametrize("bad", ["yes", 1, None, [], {}])
async def test_urgent_must_be_true_or_false(server: ServerProcess, bad: object) -> None:
    amy, wes = server.user("customer_service"), server.user("warehouse")
    conv = server.conversation(amy, "direct", [wes])["id"]
    sender = await Peer.open(server, amy.token)
    try:
        before = server.db_snapshot()
        answer = await sender.send_text(conv, "hm", "b-1", urgent=bad)
        assert answer["op"] == "error" and answer["code"] == "bad_request", answer
        assert "urgent" in answer["message"]
        assert server.db_snapshot() == before
    finally:
        await sender.close()
