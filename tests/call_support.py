"""Speaking the call protocol from a test (docs/calls.md): requests, matchers, records."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.support import Account, Frame, Recorder, ServerProcess, messages

_refs = itertools.count(1)


def ref() -> str:
    return f"call-ref-{next(_refs)}"


def is_call(call_id: str | None = None, **wanted: Any) -> Callable[[Frame], bool]:
    def match(frame: Frame) -> bool:
        if frame.get("op") != "call" or (call_id is not None and frame["call"] != call_id):
            return False
        return all(frame.get(k) == v for k, v in wanted.items())

    return match


def party(frame: Frame, user: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in frame["parties"] if p["user"] == user)
    return found


def rings(user: str) -> Callable[[Frame], bool]:
    return lambda f: f.get("op") == "call" and party(f, user)["state"] == "ringing"


async def request(rec: Recorder, frame: Frame) -> Frame:
    """Send a call request and return its answer (the call's state, or an error)."""
    frame = {**frame, "ref": frame.get("ref") or ref()}
    start = len(rec.frames)
    await rec.send(frame)
    return await rec.wait_for(
        lambda f: f.get("ref") == frame["ref"] and f["op"] in ("call", "error"), 10, start
    )


async def invite(rec: Recorder, conv: str, media: str = "video", **extra: Any) -> Frame:
    answer = await request(rec, {"op": "call_invite", "conv": conv, "media": media, **extra})
    assert answer["op"] == "call", answer
    return answer


async def wait_record(server: ServerProcess, token: str, conv: str, call_id: str) -> Frame:
    for _ in range(100):
        found = [
            m for m in messages(server, token, conv) if (m.get("meta") or {}).get("call") == call_id
        ]
        if found:
            assert len(found) == 1, found
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no record of {call_id}")


@dataclass
class Pair:
    caller: Account
    callee: Account
    conv: str


def pair(server: ServerProcess) -> Pair:
    caller, callee = server.user("sales"), server.user("warehouse")
    conv = server.conversation(caller, "direct", [callee])["id"]
    return Pair(caller, callee, conv)
