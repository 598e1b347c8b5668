"""Workload `calls`: how fast a call rings and connects, and what its signalling costs.

Three parts against one server (`--rate-limits off`, media relay-only through
a loopback coturn, so that every packet stays on 127.0.0.1):

1. **Ring.** 200 invites (20 with `--quick`) from 20 callers, each to a callee
   with two devices connected: the time from sending `call_invite` to the
   `call` frame that rings each device, per device and until both ring
   (p50, p99). Each call is then cancelled and seen to end on both devices.
2. **Signalling CPU.** Complete calls over the protocol — invite, accept, an
   offer and an answer (SDPs the size of Chromium's), 20 ICE candidates each
   way, two mute toggles, hang-up — and the server process's CPU time per
   call. Then 50 calls left active for 10 s: the server's CPU per active call,
   which should be next to nothing, since the server relays no media.
3. **Connect in Chromium.** Two pages (Debian's Chromium with a fake camera)
   call each other over the WebSocket with the server's ICE servers: the time
   from the callee's `call_accept` to its first decoded remote video frame.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from collections.abc import Sequence
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

from bench._calls_browser import browser_calls as _browser_calls
from bench._load import cpu_seconds
from bench._report import Progress, Row, row
from bench._seed import SeededUser, seed_users
from bench._server import BenchServer, scratch_dir
from bench._turn import turn_server
from bench.fanout import percentile

NAME = "calls"
DESCRIPTION = (
    "invite to ring on 2 devices (p50/p99 over 200 invites), accept to first frame "
    "in Chromium, server CPU per call"
)

TURN_SECRET = "bench-calls-turn-secret"
FULL = {"invites": 200, "pairs": 20, "cpu_calls": 100, "idle_calls": 50, "browser_calls": 5}
QUICK = {"invites": 20, "pairs": 4, "cpu_calls": 10, "idle_calls": 5, "browser_calls": 1}
IDLE_S = 10.0
QUICK_IDLE_S = 2.0
CANDIDATES = 20
STEP_TIMEOUT_S = 20.0
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
# An offer of the size a browser's is (audio and video, several codecs).
_SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" + "".join(
    f"m={kind} 9 UDP/TLS/RTP/SAVPF 96 97 98\r\nc=IN IP4 0.0.0.0\r\n"
    + "".join(f"a=rtpmap:{96 + n} codec{n}/90000\r\na=rtcp-fb:{96 + n} nack\r\n" for n in range(30))
    for kind in ("audio", "video")
)
_CANDIDATE = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", "sdpMid": "0"}
_refs = itertools.count(1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("calls workload")
    group.add_argument(
        "--calls-skip-browser", action="store_true", help="leave out part 3 (Chromium)"
    )


class Device:
    """One WebSocket of a user, whose frames are read into a queue per op."""

    def __init__(self, ws: ClientConnection, user: str) -> None:
        self.ws = ws
        self.user = user
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, who: SeededUser, device: str) -> Device:
        ws = await connect(url, max_size=None, open_timeout=10)
        await ws.send(orjson.dumps({"op": "hello", "token": who.token, "device": device}).decode())
        opened = cls(ws, who.id)
        await opened.expect(lambda f: f["op"] == "welcome")
        return opened

    async def _read(self) -> None:
        async for data in self.ws:
            self.frames.put_nowait(orjson.loads(data))

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(orjson.dumps(frame).decode())

    async def expect(self, match: Any, timeout_s: float = STEP_TIMEOUT_S) -> dict[str, Any]:
        async with asyncio.timeout(timeout_s):
            while True:
                frame = await self.frames.get()
                if frame["op"] == "error":
                    raise RuntimeError(f"the server refused a call frame: {frame}")
                if match(frame):
                    return frame

    async def request(self, frame: dict[str, Any]) -> dict[str, Any]:
        ref = f"bench-{next(_refs)}"
        await self.send({**frame, "ref": ref})
        return await self.expect(lambda f: f.get("ref") == ref)

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()


def _rings(call: str, user: str) -> Any:
    return lambda f: (
        f["op"] == "call"
        and f["call"] == call
        and any(p["user"] == user and p["state"] == "ringing" for p in f["parties"])
    )


def _ended(call: str) -> Any:
    return lambda f: f["op"] == "call" and f["call"] == call and f["state"] == "ended"


async def _ring_pair(
    url: str, caller: SeededUser, callee: SeededUser, conv: str, invites: int
) -> tuple[list[float], list[float]]:
    """(per-device ring times, until-both-ring times) in ms for one caller and callee."""
    me = await Device.open(url, caller, "desk")
    phone, laptop = [await Device.open(url, callee, name) for name in ("phone", "laptop")]
    per_device: list[float] = []
    both: list[float] = []
    try:
        for _ in range(invites):
            ref = f"bench-{next(_refs)}"
            started = time.perf_counter()
            await me.send({"op": "call_invite", "ref": ref, "conv": conv, "media": "video"})
            answer = await me.expect(lambda f, r=ref: f.get("ref") == r)  # type: ignore[misc]
            call = answer["call"]
            rung = []
            for device in (phone, laptop):
                await device.expect(_rings(call, callee.id))
                rung.append((time.perf_counter() - started) * 1000)
            per_device.extend(rung)
            both.append(max(rung))
            await me.request({"op": "call_hangup", "call": call})
            for device in (phone, laptop):
                await device.expect(_ended(call))
    finally:
        for device in (me, phone, laptop):
            await device.close()
    return per_device, both


async def _whole_call(url: str, caller: SeededUser, callee: SeededUser, conv: str) -> None:
    """One call's complete signalling, as two browsers would do it."""
    me, them = await Device.open(url, caller, "a"), await Device.open(url, callee, "b")
    try:
        call = (await me.request({"op": "call_invite", "conv": conv, "media": "video"}))["call"]
        await them.expect(_rings(call, callee.id))
        await them.request({"op": "call_accept", "call": call})
        signal = {"op": "call_signal", "call": call}
        await me.send({**signal, "to": callee.id, "kind": "offer", "sdp": _SDP})
        await them.expect(lambda f: f["op"] == "call_signal" and f["kind"] == "offer")
        await them.send({**signal, "to": caller.id, "kind": "answer", "sdp": _SDP})
        await me.expect(lambda f: f["op"] == "call_signal" and f["kind"] == "answer")
        for _ in range(CANDIDATES):
            await me.send({**signal, "to": callee.id, "kind": "ice", "candidate": _CANDIDATE})
            await them.send({**signal, "to": caller.id, "kind": "ice", "candidate": _CANDIDATE})
        for device in (me, them):
            for _ in range(CANDIDATES):
                await device.expect(lambda f: f["op"] == "call_signal" and f["kind"] == "ice")
        for muted in (True, False):
            media = {"op": "call_media", "call": call, "audio": not muted, "video": True}
            await me.send(media)
            await them.expect(lambda f: f["op"] == "call" and f["call"] == call)
        await me.request({"op": "call_hangup", "call": call})
        await them.expect(_ended(call))
    finally:
        await me.close()
        await them.close()


async def _idle_calls(
    url: str, pairs: Sequence[tuple[SeededUser, SeededUser, str]], seconds: float, pid: int
) -> float:
    """The server's CPU seconds over `seconds` while each pair has an active call."""
    held: list[tuple[Device, Device, str]] = []
    try:
        for caller, callee, conv in pairs:
            me, them = await Device.open(url, caller, "a"), await Device.open(url, callee, "b")
            call = (await me.request({"op": "call_invite", "conv": conv, "media": "video"}))["call"]
            await them.expect(_rings(call, callee.id))
            await them.request({"op": "call_accept", "call": call})
            held.append((me, them, call))
        before = cpu_seconds(pid)
        await asyncio.sleep(seconds)
        return cpu_seconds(pid) - before
    finally:
        for me, them, call in held:
            await me.request({"op": "call_hangup", "call": call})
            await me.close()
            await them.close()


def _conversations(base_url: str, pairs: Sequence[tuple[SeededUser, SeededUser]]) -> list[str]:
    convs = []
    with httpx.Client(base_url=base_url, timeout=30, trust_env=False) as client:
        for caller, callee in pairs:
            resp = client.post(
                "/api/conversations",
                json={"kind": "direct", "members": [callee.id]},
                headers={"Authorization": f"Bearer {caller.token}"},
            )
            resp.raise_for_status()
            convs.append(resp.json()["id"])
    return convs


async def _all(jobs: Any) -> list[Any]:
    return list(await asyncio.gather(*jobs))


def _ring_rows(
    url: str, pairs: Sequence[tuple[SeededUser, SeededUser]], convs: Sequence[str], invites: int
) -> tuple[list[Row], list[float]]:
    each = max(1, invites // len(pairs))
    jobs = (_ring_pair(url, a, b, conv, each) for (a, b), conv in zip(pairs, convs, strict=True))
    results = asyncio.run(_all(jobs))
    per_device = [ms for devices, _ in results for ms in devices]
    both = [ms for _, pair_both in results for ms in pair_both]
    rows = [
        row(NAME, "invite -> ring, each device p50", percentile(per_device, 50), "ms"),
        row(NAME, "invite -> ring, each device p99", percentile(per_device, 99), "ms"),
        row(NAME, "invite -> ring on both devices p50", percentile(both, 50), "ms"),
        row(NAME, "invite -> ring on both devices p99", percentile(both, 99), "ms"),
        row(NAME, "invites", len(both), "calls"),
    ]
    return rows, per_device


def _cpu_rows(
    pid: int,
    url: str,
    pairs: Sequence[tuple[SeededUser, SeededUser]],
    convs: Sequence[str],
    calls: int,
    idle: Sequence[tuple[SeededUser, SeededUser, str]],
    idle_s: float,
) -> list[Row]:
    async def whole_calls() -> None:
        for n in range(calls):
            (caller, callee), conv = pairs[n % len(pairs)], convs[n % len(pairs)]
            await _whole_call(url, caller, callee, conv)

    before = cpu_seconds(pid)
    asyncio.run(whole_calls())
    per_call_ms = (cpu_seconds(pid) - before) * 1000 / calls
    idle_cpu_s = asyncio.run(_idle_calls(url, idle, idle_s, pid))
    per_active = idle_cpu_s / idle_s / len(idle) * 100
    return [
        row(NAME, "server CPU per call (whole signalling)", per_call_ms, "ms"),
        row(NAME, "server CPU per active call", per_active, "% of a core", calls=len(idle)),
    ]


def run(options: argparse.Namespace) -> dict[str, Any]:
    sizes = QUICK if options.quick else FULL
    progress = Progress(NAME, 3)
    rows: list[Row] = []
    samples: dict[str, Any] = {}
    with scratch_dir("calls-") as work, turn_server(work / "turn", TURN_SECRET) as turn:
        data_dir = work / "server"
        count = sizes["pairs"] * 2 + sizes["idle_calls"] * 2
        people = seed_users(data_dir, count, "caller")
        callers, callees = people[0::2], people[1::2]
        ring_pairs = list(zip(callers[: sizes["pairs"]], callees[: sizes["pairs"]], strict=True))
        idle_pairs = list(zip(callers[sizes["pairs"] :], callees[sizes["pairs"] :], strict=True))
        args = ("--rate-limits", "off", "--turn-url", turn.url, "--call-relay-only")
        server = BenchServer(data_dir, args, env={"ORDERCHAT_TURN_SECRET": TURN_SECRET})
        try:
            server.start()
            url = f"ws://127.0.0.1:{server.port}/ws"
            convs = _conversations(server.base_url, ring_pairs)
            idle_convs = _conversations(server.base_url, idle_pairs)
            progress.set_note(f"ring: {sizes['invites']} invites, 2 devices each")
            ring_rows, samples["ring_ms_per_device"] = _ring_rows(
                url, ring_pairs, convs, sizes["invites"]
            )
            rows += ring_rows
            progress.advance(1, f"signalling CPU: {sizes['cpu_calls']} calls")
            idle = [(a, b, c) for (a, b), c in zip(idle_pairs, idle_convs, strict=True)]
            idle_s = QUICK_IDLE_S if options.quick else IDLE_S
            rows += _cpu_rows(server.pid, url, ring_pairs, convs, sizes["cpu_calls"], idle, idle_s)
            progress.advance(1, f"chromium: {sizes['browser_calls']} calls")
            if not options.calls_skip_browser:
                connect_ms = _browser_calls(
                    server.base_url, ring_pairs[0], convs[0], sizes["browser_calls"]
                )
                samples["accept_to_first_frame_ms"] = connect_ms
                rows += [
                    row(NAME, "accept -> first remote frame, Chromium p50",
                        percentile(connect_ms, 50), "ms"),
                    row(NAME, "accept -> first remote frame, Chromium max", max(connect_ms), "ms"),
                ]  # fmt: skip
            progress.advance(1, "done")
        finally:
            server.stop()
    return {"rows": rows, "samples": samples, "settings": {**sizes, "relay_only": True}}
