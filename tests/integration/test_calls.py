"""Calls at the protocol level (docs/calls.md): a real server, real sockets, and WebRTC
peers (aiortc) whose session descriptions and media go through the signalling.

Every state of a call, every record it leaves, and every frame the rules refuse,
with the proof that a refused frame changed nothing and reached nobody.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack

from tests.call_support import invite, is_call, pair, party, request, rings, wait_record
from tests.order_support import Shop
from tests.support import (
    Frame,
    Peer,
    PeerPool,
    Recorder,
    ServerProcess,
    barrier,
    messages,
)

TURN_SECRET = "turn-shared-secret-for-tests"
RING_S = 1.5
GRACE_S = 1.5


@pytest.fixture(scope="module")
def calls_server(tmp_path_factory: pytest.TempPathFactory, store: str) -> Iterator[ServerProcess]:
    """Short ring and rejoin times, three people at most, and TURN configured."""
    proc = ServerProcess(
        tmp_path_factory.mktemp("calls"),
        (
            "--rate-limits", "off",
            "--call-ring-timeout-s", str(RING_S),
            "--call-rejoin-grace-s", str(GRACE_S),
            "--call-max-participants", "3",
            "--stun-url", "stun:127.0.0.1:3478",
            "--turn-url", "turn:127.0.0.1:3478?transport=udp",
        ),
        store=store,
        env={"ORDERCHAT_TURN_SECRET": TURN_SECRET},
    )  # fmt: skip
    proc.start()
    proc.create_admin()
    yield proc
    proc.stop()


@pytest.fixture
async def pool(calls_server: ServerProcess) -> AsyncIterator[PeerPool]:
    async with PeerPool(calls_server) as peers:
        yield peers


def loopback_peer() -> RTCPeerConnection:
    """A WebRTC peer with no STUN server (aiortc's default is a public one)."""
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


@pytest.fixture(autouse=True)
def loopback_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    """ICE on 127.0.0.1 only: aioice leaves loopback out and offers every other address."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


# --- ringing, answering, and media through the signalling ----------------------------


async def test_a_call_rings_every_device_connects_media_and_leaves_a_record(
    calls_server: ServerProcess, pool: PeerPool
) -> None:
    p = pair(calls_server)
    alice = await pool.record(p.caller.token, "laptop")
    bob_phone = await pool.record(p.callee.token, "phone")
    bob_desk = await pool.record(p.callee.token, "desk")

    started = await invite(alice, p.conv, "audio")
    call_id = started["call"]
    assert started["state"] == "ringing" and started["caller"] == p.caller.id
    assert party(started, p.caller.id)["state"] == "joined"
    for device in (bob_phone, bob_desk):
        await device.wait_for(lambda f: is_call(call_id)(f) and rings(p.callee.id)(f))

    desk_seen = len(bob_desk.frames)
    accepted = await request(bob_phone, {"op": "call_accept", "call": call_id})
    assert accepted["op"] == "call" and accepted["state"] == "active", accepted
    assert accepted["ice_servers"], "the answer carries the ICE servers"
    # The other device of the same person stops ringing: their party is joined elsewhere.
    stopped = await bob_desk.wait_for(
        lambda f: is_call(call_id)(f) and party(f, p.callee.id)["state"] == "joined",
        start=desk_seen,
    )
    assert party(stopped, p.callee.id)["conn"] == party(accepted, p.callee.id)["conn"]
    await alice.wait_for(is_call(call_id, state="active"))

    # Real WebRTC: the caller's offer and the callee's answer travel as call_signal.
    caller_pc, callee_pc = loopback_peer(), loopback_peer()
    tracks: asyncio.Queue[Any] = asyncio.Queue()
    callee_pc.on("track", tracks.put_nowait)

    try:
        caller_pc.addTrack(AudioStreamTrack())
        await caller_pc.setLocalDescription(await caller_pc.createOffer())
        offer = caller_pc.localDescription
        desk_before = len(bob_desk.frames)
        await alice.send(
            {
                "op": "call_signal",
                "call": call_id,
                "to": p.callee.id,
                "kind": "offer",
                "sdp": offer.sdp,
            }
        )
        got = await bob_phone.wait_for(lambda f: f.get("op") == "call_signal")
        assert got["from"] == p.caller.id and got["kind"] == "offer" and got["sdp"] == offer.sdp
        await callee_pc.setRemoteDescription(RTCSessionDescription(got["sdp"], "offer"))
        await callee_pc.setLocalDescription(await callee_pc.createAnswer())
        await bob_phone.send(
            {
                "op": "call_signal",
                "call": call_id,
                "to": p.caller.id,
                "kind": "answer",
                "sdp": callee_pc.localDescription.sdp,
            }
        )
        answer = await alice.wait_for(lambda f: f.get("op") == "call_signal")
        await caller_pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        track = await asyncio.wait_for(tracks.get(), 20)
        audio = await asyncio.wait_for(track.recv(), 20)  # media flows, end to end
        assert audio.sample_rate > 0
        # Signals go to the joined connection only, never the other device.
        assert not [f for f in await bob_desk.barrier() if f["op"] == "call_signal"]
        assert not [f for f in bob_desk.frames[desk_before:] if f["op"] == "call_signal"]
    finally:
        await caller_pc.close()
        await callee_pc.close()

    await asyncio.sleep(0.05)
    ended = await request(alice, {"op": "call_hangup", "call": call_id})
    assert ended["state"] == "ended" and ended["outcome"] == "answered", ended
    await bob_desk.wait_for(is_call(call_id, state="ended"))
    record = await wait_record(calls_server, p.callee.token, p.conv, call_id)
    meta = record["meta"]
    assert record["kind"] == "call" and record["sender"] == p.caller.id
    assert meta["outcome"] == "answered" and meta["media"] == "audio"
    assert meta["joined"] == [p.caller.id, p.callee.id]
    assert meta["duration_ms"] == meta["ended_ts"] - meta["answered_ts"] >= 0
    assert record["mentions"] == []
    # Evidence stays: the caller, its sender by name, cannot recall it.
    await alice.send({"op": "recall", "ref": "take-back", "conv": p.conv, "seq": record["seq"]})
    refused = await alice.wait_for(lambda f: f.get("ref") == "take-back")
    assert refused["op"] == "error" and refused["code"] == "forbidden"
    # The record is a message like any other: it replays on resume.
    resumed = await pool.record(p.callee.token, "desk", alice.peer.welcome["cursor"])
    replayed = await resumed.wait_for(lambda f: f.get("op") == "message" and f["kind"] == "call")
    assert replayed["meta"]["call"] == call_id


async def test_unanswered_declined_busy_and_cancelled_calls_are_recorded_as_such(
    calls_server: ServerProcess, pool: PeerPool
) -> None:
    p = pair(calls_server)
    alice = await pool.record(p.caller.token)
    bob = await pool.record(p.callee.token)

    missed = await invite(alice, p.conv)
    await bob.wait_for(is_call(missed["call"]))
    over = await bob.wait_for(is_call(missed["call"], state="ended"), timeout_s=RING_S + 5)
    assert over["outcome"] == "missed" and party(over, p.callee.id)["state"] == "missed"
    record = await wait_record(calls_server, p.callee.token, p.conv, missed["call"])
    assert record["meta"]["missed"] == [p.callee.id] and record["mentions"] == [p.callee.id]
    with calls_server.http(p.callee.token) as client:
        listed = client.get("/api/conversations").json()["conversations"]
    assert next(c for c in listed if c["id"] == p.conv)["unread"] >= 1, "a missed call is unread"

    declined = await invite(alice, p.conv)
    await bob.wait_for(is_call(declined["call"]))
    said = await request(bob, {"op": "call_decline", "call": declined["call"]})
    assert said["state"] == "ended" and said["outcome"] == "declined"
    record = await wait_record(calls_server, p.caller.token, p.conv, declined["call"])
    assert record["meta"]["declined"] == [p.callee.id] and record["mentions"] == []

    cancelled = await invite(alice, p.conv)
    await bob.wait_for(is_call(cancelled["call"]))
    gone = await request(alice, {"op": "call_hangup", "call": cancelled["call"]})
    assert gone["outcome"] == "cancelled"
    await bob.wait_for(is_call(cancelled["call"], state="ended"))
    record = await wait_record(calls_server, p.callee.token, p.conv, cancelled["call"])
    assert record["meta"]["outcome"] == "cancelled" and record["mentions"] == [p.callee.id]

    # Bob in a call with Carol is busy for Alice at once.
    carol = calls_server.user("finance")
    other = calls_server.conversation(carol, "direct", [p.callee])["id"]
    carol_rec = await pool.record(carol.token)
    talk = await invite(carol_rec, other, "audio")
    await bob.wait_for(is_call(talk["call"]))
    assert (await request(bob, {"op": "call_accept", "call": talk["call"]}))["state"] == "active"
    busy = await invite(alice, p.conv)
    assert busy["state"] == "ended" and busy["outcome"] == "busy", busy
    assert party(busy, p.callee.id)["state"] == "busy"
    await request(carol_rec, {"op": "call_hangup", "call": talk["call"]})


@pytest.mark.sqlite_only  # not about storage: the same code on both
async def test_a_device_that_connects_while_ringing_rings_too(
    calls_server: ServerProcess, pool: PeerPool
) -> None:
    p = pair(calls_server)
    alice = await pool.record(p.caller.token)
    started = await invite(alice, p.conv)
    late = await pool.record(p.callee.token, "tablet")
    told = await late.wait_for(is_call(started["call"]))
    assert party(told, p.callee.id)["state"] == "ringing"
    await request(alice, {"op": "call_hangup", "call": started["call"]})


async def test_a_dropped_participant_rejoins_within_the_grace_and_leaves_after_it(
    calls_server: ServerProcess, pool: PeerPool
) -> None:
    p = pair(calls_server)
    alice = await pool.record(p.caller.token)
    bob = await pool.record(p.callee.token, "phone")
    call_id = (await invite(alice, p.conv))["call"]
    await bob.wait_for(is_call(call_id))
    await request(bob, {"op": "call_accept", "call": call_id})

    await bob.peer.close()
    away = await alice.wait_for(
        lambda f: is_call(call_id)(f) and party(f, p.callee.id)["state"] == "away"
    )
    assert away["state"] == "active"
    back = await pool.record(p.callee.token, "phone")
    await back.wait_for(is_call(call_id))  # told of the call it may rejoin
    rejoined = await request(back, {"op": "call_rejoin", "call": call_id})
    assert rejoined["op"] == "call" and party(rejoined, p.callee.id)["state"] == "joined"
    assert rejoined["ice_servers"]
    await alice.wait_for(
        lambda f: is_call(call_id)(f) and party(f, p.callee.id)["state"] == "joined"
    )

    await back.peer.close()
    ended = await alice.wait_for(is_call(call_id, state="ended"), timeout_s=GRACE_S + 5)
    assert ended["outcome"] == "answered" and party(ended, p.callee.id)["state"] == "left"
    await wait_record(calls_server, p.caller.token, p.conv, call_id)


async def test_three_join_a_mesh_and_a_fourth_is_refused_with_call_full(
    calls_server: ServerProcess, pool: PeerPool
) -> None:
    people = [calls_server.user("sales") for _ in range(4)]
    conv = calls_server.conversation(people[0], "channel", people[1:], title="mesh")["id"]
    recs = [await pool.record(person.token) for person in people]
    call_id = (await invite(recs[0], conv))["call"]
    for rec, person in zip(recs[1:], people[1:], strict=True):
        await rec.wait_for(lambda f, who=person.id: is_call(call_id)(f) and rings(who)(f))
    assert (await request(recs[1], {"op": "call_accept", "call": call_id}))["op"] == "call"
    assert (await request(recs[2], {"op": "call_accept", "call": call_id}))["op"] == "call"
    before = calls_server.db_snapshot()
    full = await request(recs[3], {"op": "call_accept", "call": call_id})
    assert full["op"] == "error" and full["code"] == "conflict"
    assert full["reason"] == "calls.call_full", full
    assert calls_server.db_snapshot() == before
    # Someone who leaves makes room; they can be rung back in.
    await request(recs[2], {"op": "call_hangup", "call": call_id})
    assert (await request(recs[3], {"op": "call_accept", "call": call_id}))["state"] == "active"
    full_again = await request(
        recs[0], {"op": "call_add", "call": call_id, "users": [people[2].id]}
    )
    assert full_again["op"] == "error" and full_again["reason"] == "calls.call_full"
    await request(recs[3], {"op": "call_hangup", "call": call_id})
    again = await request(recs[0], {"op": "call_add", "call": call_id, "users": [people[2].id]})
    assert party(again, people[2].id)["state"] == "ringing"
    for rec in recs[:2]:
        await request(rec, {"op": "call_hangup", "call": call_id})
    record = await wait_record(calls_server, people[0].token, conv, call_id)
    assert set(record["meta"]["joined"]) == {p.id for p in people}


# --- TURN credentials -----------------------------------------------------------------


@pytest.mark.sqlite_only  # not about storage: the same code on both
def test_turn_credentials_are_short_lived_per_user_and_call_and_the_secret_stays_home(
    calls_server: ServerProcess,
) -> None:
    user = calls_server.user("sales")
    with calls_server.http(user.token) as client:
        body = client.get("/api/calls/ice-servers").json()
        stranger = client.get("/api/calls/ice-servers", params={"call": "call_nobodys"})
    assert stranger.status_code == 404
    assert TURN_SECRET not in str(body)
    stun, turn = body["ice_servers"]
    assert stun == {"urls": ["stun:127.0.0.1:3478"]}
    expires, who = turn["username"].split(":")
    assert who == user.id
    assert 0 < int(expires) - time.time() <= body["ttl_s"] + 5
    expected = hmac.new(TURN_SECRET.encode(), turn["username"].encode(), hashlib.sha1).digest()
    assert turn["credential"] == base64.b64encode(expected).decode()


# --- customers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop(calls_server: ServerProcess) -> Iterator[Shop]:
    opened = Shop.open(calls_server)
    yield opened
    opened.close()


@pytest.mark.sqlite_only  # not about storage: the same code on both
async def test_a_customer_calls_the_orders_staff_and_never_joins_a_staff_only_call(
    shop: Shop, pool: PeerPool
) -> None:
    server = shop.server
    order = shop.create_order("retail")
    customer = shop.customer(order)
    conv = order["conv"]
    with server.http(customer.token) as client:
        members = client.get(f"/api/conversations/{conv}").json()["members"]
    staff = [m for m in members if m != customer.id]
    buyer = await pool.record(customer.token, "phone")

    rung = await invite(buyer, conv, "video")
    assert {p["user"] for p in rung["parties"]} == {customer.id, *staff}
    await request(buyer, {"op": "call_hangup", "call": rung["call"]})
    record = await wait_record(server, customer.token, conv, rung["call"])
    assert record["meta"]["outcome"] == "cancelled"

    before = server.db_snapshot()
    refused = await request(
        buyer, {"op": "call_invite", "conv": conv, "media": "audio", "internal": True}
    )
    assert refused["op"] == "error" and refused["code"] == "forbidden"
    assert server.db_snapshot() == before

    seller = await pool.record(shop.staff["customer_service"].token)
    huddle = await invite(seller, conv, "audio", internal=True)
    assert customer.id not in {p["user"] for p in huddle["parties"]}
    named = await request(
        seller,
        {
            "op": "call_invite",
            "conv": conv,
            "media": "audio",
            "internal": True,
            "users": [customer.id],
        },
    )
    assert named["op"] == "error" and named["code"] == "bad_request"
    await request(seller, {"op": "call_hangup", "call": huddle["call"]})
    await wait_record(server, shop.staff["customer_service"].token, conv, huddle["call"])
    seen = [m for m in messages(server, customer.token, conv) if m["kind"] == "call"]
    assert [m["meta"]["call"] for m in seen] == [rung["call"]], "the staff-only call is not shown"
    assert not [f for f in await buyer.barrier() if f.get("call") == huddle["call"]]
    assert not [f for f in buyer.frames if f.get("call") == huddle["call"]]
    with server.http(customer.token) as client:
        for path in (f"/api/calls/{huddle['call']}", "/api/calls/ice-servers"):
            asked = client.get(path, params={"call": huddle["call"]})
            assert asked.status_code == 404, (path, asked.text)


# --- what the rules refuse, and that it changes nothing ----------------------------------

SDP_OK = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"


async def test_frames_about_calls_you_are_not_in_or_malformed_change_nothing(
    calls_server: ServerProcess, pool: PeerPool
) -> None:
    p = pair(calls_server)
    outsider = calls_server.user("qc")
    alice = await pool.record(p.caller.token)
    bob = await pool.record(p.callee.token)
    eve = await pool.record(outsider.token)
    call_id = (await invite(alice, p.conv))["call"]
    await bob.wait_for(is_call(call_id))
    await request(bob, {"op": "call_accept", "call": call_id})
    await alice.wait_for(is_call(call_id, state="active"))

    signal = {"op": "call_signal", "call": call_id, "kind": "offer", "sdp": SDP_OK}
    to_bob = {**signal, "to": p.callee.id}
    ring = {"op": "call_invite", "conv": p.conv, "media": "video"}
    cases: list[tuple[Recorder, Frame, str]] = [
        (eve, {"op": "call_accept", "call": call_id}, "forbidden"),
        (eve, {"op": "call_hangup", "call": call_id}, "forbidden"),
        (eve, {"op": "call_add", "call": call_id, "users": [outsider.id]}, "forbidden"),
        (eve, to_bob, "forbidden"),
        (eve, ring, "forbidden"),
        (eve, {"op": "call_accept", "call": "call_unknown"}, "not_found"),
        (alice, {**ring, "users": [outsider.id]}, "bad_request"),
        (alice, {"op": "call_add", "call": call_id, "users": [outsider.id]}, "bad_request"),
        (alice, {**ring, "media": "hologram"}, "bad_request"),
        (alice, {**ring, "users": "bob"}, "bad_request"),
        (alice, {**signal, "to": outsider.id}, "forbidden"),
        (alice, {**to_bob, "sdp": "hello"}, "bad_request"),
        (alice, {**to_bob, "sdp": "v=0\r\no=- 1 2 IN IP4 x\r\n"}, "bad_request"),
        (alice, {**to_bob, "sdp": "v=0\r\nm=a" + "x" * 70_000}, "too_large"),
        (alice, {**to_bob, "kind": "ice", "candidate": "nope"}, "bad_request"),
        (alice, {**to_bob, "kind": "ice", "candidate": {"candidate": "x"}}, "bad_request"),
        (alice, {**to_bob, "kind": "shout"}, "bad_request"),
        (alice, {"op": "call_media", "call": call_id, "audio": "off"}, "bad_request"),
        (alice, {"op": "call_accept", "call": call_id}, "conflict"),
        (alice, {"op": "call_rejoin", "call": 7}, "bad_request"),
    ]  # fmt: skip
    before = calls_server.db_snapshot()
    for sender, frame, code in cases:
        answer = await request(sender, frame)
        assert answer["op"] == "error", f"{frame} was not refused: {answer}"
        assert answer["code"] == code, (frame, answer)
    for rec in (alice, bob):
        assert not [f for f in await rec.barrier() if f["op"] in ("call_signal",)]
    assert not [f for f in bob.frames if f["op"] == "call_signal"]
    assert calls_server.db_snapshot() == before
    await request(alice, {"op": "call_hangup", "call": call_id})
    late = await request(bob, {"op": "call_accept", "call": call_id})
    assert late["op"] == "error" and late["code"] == "conflict"


async def test_signalling_is_rate_limited_per_connection(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path)
    server.start()
    try:
        server.create_admin()
        p = pair(server)
        async with PeerPool(server) as peers:
            alice = await peers.record(p.caller.token)
            bob = await peers.record(p.callee.token)
            call_id = (await invite(alice, p.conv))["call"]
            await bob.wait_for(is_call(call_id))
            await request(bob, {"op": "call_accept", "call": call_id})
            candidate = {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"}
            frame = {"op": "call_signal", "call": call_id, "to": p.callee.id, "kind": "ice",
                     "candidate": candidate}  # fmt: skip
            for _ in range(400):
                await alice.send(frame)
            await alice.barrier(10)
            await bob.barrier(10)
            limited = [f for f in alice.frames if f.get("code") == "rate_limited"]
            relayed = [f for f in bob.frames if f["op"] == "call_signal"]
            assert limited and limited[0]["retry_after_s"] > 0
            assert 200 <= len(relayed) < 400 and len(relayed) + len(limited) == 400
    finally:
        server.kill()


@pytest.mark.sqlite_only  # not about storage: the same code on both
async def test_a_peer_that_skips_the_protocol_gets_errors_not_a_closed_socket(
    calls_server: ServerProcess,
) -> None:
    user = calls_server.user("sales")
    peer = await Peer.open(calls_server, user.token)
    try:
        await peer.send({"op": "call_signal", "call": "call_x", "to": "u_x", "kind": "offer"})
        error = await peer.recv_op("error")
        assert error["code"] == "bad_request"
        await barrier(peer)
    finally:
        await peer.close()


async def test_a_call_whose_server_died_ends_by_itself_after_the_restart(
    tmp_path: Path, store: str
) -> None:
    """Nobody vouches for the parties of a SIGKILLed server: they have left, the call
    ends with its record, and nobody stays busy."""
    server = ServerProcess(
        tmp_path, ("--rate-limits", "off", "--call-keepalive-s", "0.5"), store=store
    )
    server.start()
    try:
        server.create_admin()
        p = pair(server)
        async with PeerPool(server) as peers:
            alice = await peers.record(p.caller.token)
            bob = await peers.record(p.callee.token)
            call_id = (await invite(alice, p.conv))["call"]
            await bob.wait_for(is_call(call_id))
            assert (await request(bob, {"op": "call_accept", "call": call_id}))["op"] == "call"
        server.restart()  # SIGKILL: no connection is seen to close
        record = await wait_record(server, p.caller.token, p.conv, call_id)
        assert record["meta"]["outcome"] == "answered"
        async with PeerPool(server) as peers:
            alice = await peers.record(p.caller.token)
            again = await invite(alice, p.conv)
            assert again["state"] == "ringing", "the callee is not left busy"
            await request(alice, {"op": "call_hangup", "call": again["call"]})
    finally:
        server.kill()
