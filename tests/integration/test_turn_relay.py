"""Relay-only calls through a real coturn, with the credentials the server hands out.

coturn runs on loopback with `use-auth-secret` and the server's secret; two
WebRTC peers (aiortc) take their ICE servers from the server's answers, allow
relay candidates only, and must hear each other. A forged or expired
credential gets no relay allocation, so no call can go through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from bench._turn import TurnServer, turn_server

from orderchat.core.turn import turn_password
from tests.call_support import invite, is_call, pair, request
from tests.support import PeerPool, ServerProcess

SECRET = "relay-test-secret"


@pytest.fixture(scope="module")
def turn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TurnServer]:
    with turn_server(tmp_path_factory.mktemp("turn"), SECRET) as running:
        yield running


@pytest.fixture(scope="module")
def relay_server(
    tmp_path_factory: pytest.TempPathFactory, turn: TurnServer
) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("relay"),
        ("--rate-limits", "off", "--turn-url", turn.url, "--call-relay-only"),
        env={"ORDERCHAT_TURN_SECRET": SECRET},
    )
    proc.start()
    proc.create_admin()
    yield proc
    proc.stop()


@pytest.fixture
async def pool(relay_server: ServerProcess) -> AsyncIterator[PeerPool]:
    async with PeerPool(relay_server) as peers:
        yield peers


def relay_peer(servers: list[dict[str, Any]]) -> RTCPeerConnection:
    ice = [RTCIceServer(s["urls"], s.get("username"), s.get("credential")) for s in servers]
    relay_only = RTCIceTransportPolicy.RELAY
    return RTCPeerConnection(RTCConfiguration(iceServers=ice, iceTransportPolicy=relay_only))


def candidates(sdp: str) -> list[str]:
    return [line for line in sdp.splitlines() if line.startswith("a=candidate:")]


async def test_media_flows_through_coturn_with_the_servers_credentials(
    relay_server: ServerProcess, pool: PeerPool, turn: TurnServer
) -> None:
    p = pair(relay_server)
    alice = await pool.record(p.caller.token)
    bob = await pool.record(p.callee.token)
    started = await invite(alice, p.conv, "audio")
    assert started["ice_transport_policy"] == "relay"
    call_id = started["call"]
    await bob.wait_for(is_call(call_id))
    accepted = await request(bob, {"op": "call_accept", "call": call_id})
    (turn_entry,) = accepted["ice_servers"]
    assert turn_entry["urls"] == [turn.url] and turn_entry["username"].endswith(call_id)

    caller_pc, callee_pc = relay_peer(started["ice_servers"]), relay_peer(accepted["ice_servers"])
    tracks: asyncio.Queue[Any] = asyncio.Queue()
    callee_pc.on("track", tracks.put_nowait)
    try:
        caller_pc.addTrack(AudioStreamTrack())
        await caller_pc.setLocalDescription(await caller_pc.createOffer())
        offer = caller_pc.localDescription.sdp
        assert candidates(offer) and all(" typ relay" in c for c in candidates(offer))
        signal = {"op": "call_signal", "call": call_id, "kind": "offer", "sdp": offer}
        await alice.send({**signal, "to": p.callee.id})
        got = await bob.wait_for(lambda f: f.get("op") == "call_signal")
        await callee_pc.setRemoteDescription(RTCSessionDescription(got["sdp"], "offer"))
        await callee_pc.setLocalDescription(await callee_pc.createAnswer())
        answer = callee_pc.localDescription.sdp
        await bob.send({**signal, "to": p.caller.id, "kind": "answer", "sdp": answer})
        back = await alice.wait_for(lambda f: f.get("op") == "call_signal")
        await caller_pc.setRemoteDescription(RTCSessionDescription(back["sdp"], "answer"))
        track = await asyncio.wait_for(tracks.get(), 20)
        frame = await asyncio.wait_for(track.recv(), 20)
        assert frame.sample_rate > 0
        assert (
            callee_pc.iceConnectionState == "completed" or callee_pc.connectionState == "connected"
        )
    finally:
        await caller_pc.close()
        await callee_pc.close()
    await request(alice, {"op": "call_hangup", "call": call_id})


@pytest.mark.parametrize("credential", ["forged", "expired"])
async def test_a_forged_or_expired_credential_gets_no_relay(
    turn: TurnServer, credential: str
) -> None:
    if credential == "forged":
        username = f"{int(time.time()) + 600}:u_eve:call_x"
        password = turn_password("not-the-secret", username)
    else:
        username = f"{int(time.time()) - 60}:u_eve:call_x"
        password = turn_password(SECRET, username)
    pc = relay_peer([{"urls": [turn.url], "username": username, "credential": password}])
    try:
        pc.addTrack(AudioStreamTrack())
        await asyncio.wait_for(pc.setLocalDescription(await pc.createOffer()), 20)
        assert candidates(pc.localDescription.sdp) == [], "coturn allocated a relay"
    finally:
        await pc.close()
    # The same peer with a valid credential is given one: the refusal was the credential's.
    username = f"{int(time.time()) + 600}:u_eve:call_x"
    good = relay_peer(
        [{"urls": [turn.url], "username": username, "credential": turn_password(SECRET, username)}]
    )
    try:
        good.addTrack(AudioStreamTrack())
        await asyncio.wait_for(good.setLocalDescription(await good.createOffer()), 20)
        assert candidates(good.localDescription.sdp)
    finally:
        await good.close()
