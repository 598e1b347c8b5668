"""Two nodes on one PostgreSQL and one Redis behave as one server (PROTOCOL: scale-out)."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.cluster.conftest import Cluster
from tests.stores import pg_rows
from tests.support import Peer, Recorder, ServerProcess, run_cli, wait_closed

pytestmark = pytest.mark.slow


def _is_msg(conv: str) -> Any:
    return lambda f: f.get("op") == "message" and f.get("conv") == conv


async def _record(node: ServerProcess, token: str, cursor: str | None = None) -> Recorder:
    return Recorder(await Peer.open(node, token, cursor=cursor))


async def test_sends_on_both_nodes_reach_everyone_once_in_seq_order(cluster: Cluster) -> None:
    one, two = cluster.nodes[:2]
    amy, bo, cy = one.user(), one.user(), one.user()
    group = one.conversation(amy, "channel", [bo, cy], title="two nodes")
    on_one = await _record(one, amy.token)
    on_two = await _record(two, bo.token)
    cy_on_two = await _record(two, cy.token)
    senders = [on_one, on_two]
    for i in range(60):
        await senders[i % 2].send(
            {"op": "send", "ref": f"x{i}", "conv": group["id"], "kind": "text", "text": f"m{i}"}
        )
    for recorder in (on_one, on_two, cy_on_two):
        await recorder.wait_count(_is_msg(group["id"]), 60, timeout_s=20)
        got = [f for f in recorder.frames if _is_msg(group["id"])(f)]
        assert [f["seq"] for f in got] == list(range(1, 61))
        cursors = [int(f["cursor"].split(".")[1]) for f in recorder.frames if "cursor" in f]
        assert cursors == sorted(set(cursors)), "cursors must rise, each once"
    for recorder in (on_one, on_two, cy_on_two):
        await recorder.stop()
        await recorder.peer.close()
    rows = pg_rows(cluster.url, "SELECT seq FROM messages WHERE conv_id = ?", (group["id"],))
    assert sorted(r[0] for r in rows) == list(range(1, 61))


async def test_a_client_resumes_on_the_other_node_from_its_cursor(cluster: Cluster) -> None:
    one, two = cluster.nodes[:2]
    amy, bo = one.user(), one.user()
    conv = one.conversation(amy, "direct", [bo])["id"]
    sender = await Peer.open(one, amy.token)
    reader = await Peer.open(one, bo.token)
    for i in range(5):
        await sender.send_text(conv, f"before {i}", f"b{i}")
    seen = [await reader.recv_op("message") for _ in range(5)]
    cursor = seen[-1]["cursor"]
    await reader.close()
    for i in range(7):
        await sender.send_text(conv, f"after {i}", f"a{i}")
    resumed = await Peer.open(two, bo.token, cursor=cursor)
    frames = []
    while (frame := await resumed.recv()).get("op") != "synced":
        frames.append(frame)
    assert [f["text"] for f in frames if f["op"] == "message"] == [f"after {i}" for i in range(7)]
    await sender.close()
    await resumed.close()


async def test_a_member_removed_through_one_node_cannot_send_through_the_other(
    cluster: Cluster,
) -> None:
    one, two = cluster.nodes[:2]
    amy, bo, cy = one.user(), one.user(), one.user()
    group = one.conversation(amy, "channel", [bo, cy], title="who is in")["id"]
    bo_on_one = await Peer.open(one, bo.token)
    ack = await bo_on_one.send_text(group, "warm the cache", "w1")
    assert ack["op"] == "ack"  # node one's writer now has the members cached
    with two.http(amy.token) as client:
        assert client.delete(f"/api/conversations/{group}/members/{bo.id}").status_code == 200
    refused = await bo_on_one.send_text(group, "still here?", "w2")
    assert refused["op"] == "error" and refused["code"] == "forbidden"
    dee = one.user()
    with two.http(amy.token) as client:
        resp = client.post(f"/api/conversations/{group}/members", json={"members": [dee.id]})
        assert resp.status_code == 200, resp.text
    dee_on_one = await Peer.open(one, dee.token)
    assert (await dee_on_one.send_text(group, "hello all", "d1"))["op"] == "ack"
    for peer in (bo_on_one, dee_on_one):
        await peer.close()
    rows = pg_rows(cluster.url, "SELECT text FROM messages WHERE conv_id = ?", (group,))
    assert "still here?" not in [r[0] for r in rows]


async def test_signing_out_through_one_node_closes_the_connection_on_the_other(
    cluster: Cluster,
) -> None:
    one, two = cluster.nodes[:2]
    amy = one.user()
    on_two = await Peer.open(two, amy.token)
    with one.http(amy.token) as client:
        assert client.post("/api/auth/logout").status_code in (200, 204)
    assert await wait_closed(on_two, 5.0) == 4001


async def test_typing_crosses_nodes(cluster: Cluster) -> None:
    one, two = cluster.nodes[:2]
    amy, bo = one.user(), one.user()
    conv = one.conversation(amy, "direct", [bo])["id"]
    typer = await Peer.open(one, amy.token)
    watcher = await Peer.open(two, bo.token)
    await typer.send({"op": "typing", "conv": conv})
    frame = await watcher.recv_op("typing")
    assert (frame["conv"], frame["user"]) == (conv, amy.id)
    await typer.close()
    await watcher.close()


async def test_the_same_ref_on_both_nodes_at_once_stores_one_message(cluster: Cluster) -> None:
    one, two = cluster.nodes[:2]
    amy, bo = one.user(), one.user()
    conv = one.conversation(amy, "direct", [bo])["id"]
    phone = await Peer.open(one, amy.token, device="phone")
    laptop = await Peer.open(two, amy.token, device="laptop")
    for i in range(20):  # the same refs, through both nodes, without waiting
        for peer in (phone, laptop):
            await peer.send(
                {"op": "send", "ref": f"same-{i}", "conv": conv, "kind": "text", "text": "once"}
            )

    async def answers_of(peer: Peer) -> list[dict[str, Any]]:
        return [await peer.recv_ack(f"same-{i}", timeout=20) for i in range(20)]

    per_peer = await asyncio.gather(answers_of(phone), answers_of(laptop))
    answers = [a for found in per_peer for a in found]
    for i in range(20):
        pair = [a for a in answers if a.get("ref") == f"same-{i}"]
        assert all(a["op"] in ("ack", "error") for a in pair)
        acks = [a for a in pair if a["op"] == "ack"]
        assert acks, pair
        assert len({(a["conv"], a["seq"], a["id"]) for a in acks}) == 1
        for a in pair:
            if a["op"] == "error":
                assert a["code"] == "unavailable"
    rows = pg_rows(
        cluster.url, "SELECT ref FROM messages WHERE conv_id = ? AND sender_id = ?", (conv, amy.id)
    )
    assert sorted(r[0] for r in rows) == sorted(f"same-{i}" for i in range(20))
    await phone.close()
    await laptop.close()


def test_sign_in_limits_are_shared_by_the_nodes(cluster: Cluster) -> None:
    first = cluster.add_node("--rate-limits", "on")
    second = cluster.add_node("--rate-limits", "on")
    victim = cluster.nodes[0].user()
    statuses = []
    for node in (first, first, first, first, first, second, second, second):
        resp = httpx.post(
            f"{node.base_url}/api/auth/login",
            json={"username": victim.username, "password": "not the password"},
            timeout=10,
        )
        statuses.append(resp.status_code)
    # Five tries in the burst, wherever they land; the sixth is refused on the other node.
    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429, 429, 429]
    refused = httpx.post(
        f"{second.base_url}/api/auth/login",
        json={"username": victim.username, "password": "not the password"},
        timeout=10,
    )
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1


def test_each_job_has_one_holder_in_the_cluster(cluster: Cluster) -> None:
    # Each node asks for every job's advisory lock (the upload sweep, the notification
    # planner, the outbox's pruning, the call timers, the consults' first-response
    # timer) once it first runs it; of each, one node has it.
    held: list[tuple[Any, ...]] = []
    for _ in range(50):
        held = pg_rows(
            cluster.url,
            "SELECT objid, count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = ?"
            " AND objsubid = 2 AND granted GROUP BY objid",
            (0x4F44,),
        )
        if len(held) >= 5:
            break
        time.sleep(0.1)
    assert len(held) == 5 and all(count == 1 for _, count in held), held


def test_an_idempotency_key_holds_across_nodes(cluster: Cluster) -> None:
    one, two = cluster.nodes[:2]
    amy, bo = one.user(), one.user()
    body = {"kind": "channel", "title": "keyed once", "members": [bo.id]}
    headers = {**ServerProcess.auth(amy.token), "Idempotency-Key": "make-the-channel-1"}

    def post(node: ServerProcess) -> httpx.Response:
        return httpx.post(
            f"{node.base_url}/api/conversations", json=body, headers=headers, timeout=10
        )

    with ThreadPoolExecutor(2) as pool:
        first = list(pool.map(post, [one, two]))
    assert sorted(r.status_code for r in first) in ([201, 201], [201, 409], [200, 201])
    made = [r for r in first if r.status_code in (200, 201)]
    again = post(two)
    assert again.status_code in (200, 201)
    assert again.json()["id"] == made[0].json()["id"]
    rows = pg_rows(cluster.url, "SELECT id FROM conversations WHERE title = ?", ("keyed once",))
    assert len(rows) == 1


async def test_presence_shows_each_device_wherever_it_is_connected(cluster: Cluster) -> None:
    one, two = cluster.nodes[:2]
    amy, bo = one.user(), one.user()
    phone = await Peer.open(two, bo.token, device="phone")
    laptop = await Peer.open(one, bo.token, device="laptop")

    def devices() -> list[str]:
        with one.http(amy.token) as client:
            resp = client.get("/api/presence", params={"users": f"{bo.id},{amy.id}"})
        assert resp.status_code == 200, resp.text
        assert resp.json()["presence"][amy.id] == []
        return sorted(d["device"] for d in resp.json()["presence"][bo.id])

    for _ in range(50):  # written by each node's presence task, a moment after hello
        if devices() == ["laptop", "phone"]:
            break
        await asyncio.sleep(0.1)
    assert devices() == ["laptop", "phone"]
    await phone.close()
    for _ in range(50):
        if devices() == ["laptop"]:
            break
        await asyncio.sleep(0.1)
    assert devices() == ["laptop"]
    await laptop.close()


def test_presence_refuses_bad_asks(cluster: Cluster) -> None:
    one = cluster.nodes[0]
    amy = one.user()
    with one.http(amy.token, language="en") as client:
        too_many = ",".join(f"u_{n}" for n in range(201))
        for params in ({"users": ","}, {"users": f"{amy.id},"}, {"users": too_many}, {}):
            resp = client.get("/api/presence", params=params)
            assert resp.status_code == 400, resp.text
            assert resp.json()["error"]["code"] == "bad_request"
        repeated = client.get("/api/presence", params={"users": f"{amy.id},{amy.id}"})
        assert list(repeated.json()["presence"]) == [amy.id]
    with httpx.Client(base_url=one.base_url, timeout=10) as anonymous:
        assert anonymous.get("/api/presence", params={"users": amy.id}).status_code == 401


async def test_disabling_from_the_command_line_closes_connections_on_the_nodes(
    cluster: Cluster,
) -> None:
    one, two = cluster.nodes[:2]
    amy = one.user()
    on_two = await Peer.open(two, amy.token)
    out = run_cli(
        "user",
        "disable",
        amy.username,
        "--data-dir",
        str(cluster.base_dir / "data"),
        "--database",
        cluster.url,
        "--redis",
        cluster.redis.url,
    )
    assert "disabled" in out.stdout
    assert await wait_closed(on_two, 5.0) == 4001


async def test_a_call_rings_and_signals_across_nodes_and_ends_once(cluster: Cluster) -> None:
    one, two = cluster.nodes[:2]
    amy, bo = one.user(), one.user()
    conv = one.conversation(amy, "direct", [bo])["id"]
    caller = await _record(one, amy.token)
    bo_here, bo_there = await _record(one, bo.token), await _record(two, bo.token)
    try:
        await caller.send({"op": "call_invite", "ref": "x1", "conv": conv, "media": "audio"})
        started = await caller.wait_for(lambda f: f.get("ref") == "x1")
        call = started["call"]
        for device in (bo_here, bo_there):
            await device.wait_for(lambda f: f.get("op") == "call" and f["call"] == call)
        await bo_there.send({"op": "call_accept", "ref": "x2", "call": call})
        accepted = await bo_there.wait_for(lambda f: f.get("ref") == "x2")
        assert accepted["state"] == "active", accepted
        await bo_here.wait_for(lambda f: f.get("op") == "call" and f["state"] == "active")
        sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"
        offer = {"op": "call_signal", "call": call, "to": bo.id, "kind": "offer", "sdp": sdp}
        await caller.send(offer)
        relayed = await bo_there.wait_for(lambda f: f.get("op") == "call_signal")
        assert relayed["from"] == amy.id and relayed["sdp"] == sdp
        await bo_here.barrier()
        assert not [f for f in bo_here.frames if f.get("op") == "call_signal"]
        await caller.send({"op": "call_hangup", "ref": "x3", "call": call})
        for device in (bo_here, bo_there):
            await device.wait_for(lambda f: f.get("op") == "call" and f["state"] == "ended")
        records = pg_rows(
            cluster.url,
            "SELECT count(*) FROM messages WHERE conv_id = ? AND kind = 'call'",
            (conv,),
        )
        assert records == [(1,)]
    finally:
        for recorder in (caller, bo_here, bo_there):
            await recorder.stop()
            await recorder.peer.close()
