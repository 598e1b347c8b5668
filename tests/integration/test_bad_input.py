"""G6: bad input gets the contract's error, keeps the connection, and changes nothing.

Every case compares a snapshot of the real database file before and after,
proves the connection is still usable with a ping, and checks that another
member's connection received nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from tests.support import (
    Account,
    Frame,
    PeerPool,
    Recorder,
    ServerProcess,
    barrier,
    start_server,
    wait_closed,
)

pytestmark = pytest.mark.timeout(60)


@dataclass(frozen=True)
class World:
    alice: Account  # speaks the bad frames; a plain member
    bob: Account  # the other member, watching
    carol: Account  # in another conversation only
    dave: Account  # in no conversation; only cases that must fail try to add him
    conv: str  # alice and bob
    other_conv: str  # carol and the admin; alice is not in it
    bobs_seq: int  # a message by bob in conv
    alices_seq: int  # a message by alice in conv
    last_seq: int


@pytest.fixture(scope="module")
def world(server: ServerProcess) -> World:
    alice, bob, carol, dave = (server.user(), server.user("warehouse"), server.user(),
                               server.user())  # fmt: skip
    conv = server.conversation(alice, "channel", [bob], title="bad input")["id"]
    other = server.conversation(carol, "channel", [], title="elsewhere")["id"]

    async def seed() -> tuple[int, int]:
        async with PeerPool(server) as pool:
            bob_conn = await pool.open(bob.token)
            alice_conn = await pool.open(alice.token)
            by_bob = await bob_conn.send_text(conv, "from bob", "seed-bob")
            by_alice = await alice_conn.send_text(conv, "from alice", "seed-alice")
            return by_bob["seq"], by_alice["seq"]

    bobs_seq, alices_seq = asyncio.run(seed())
    return World(alice, bob, carol, dave, conv, other, bobs_seq, alices_seq, alices_seq)


Build = Callable[[World], "Frame | str"]


@dataclass(frozen=True)
class Case:
    name: str
    build: Build
    code: str | frozenset[str]
    ref: str | None = None  # the ref the error must echo


def _send(w: World, ref: object = "bad-send", **fields: Any) -> Frame:
    frame: Frame = {"op": "send", "ref": ref, "conv": w.conv, "kind": "text", "text": "hello"}
    frame.update(fields)
    return frame


def _without(frame: Frame, key: str) -> Frame:
    return {k: v for k, v in frame.items() if k != key}


BAD = "bad_request"
NO_SUCH_CONV = "c_doesnotexist0000000000"

CASES = [
    # not a frame at all
    Case("malformed-json", lambda w: '{"op": "send", "ref": ', BAD),
    Case("json-array", lambda w: '[{"op": "ping"}]', BAD),
    Case("json-string", lambda w: '"ping"', BAD),
    Case("json-number", lambda w: "42", BAD),
    Case("json-null", lambda w: "null", BAD),
    Case("unknown-op", lambda w: {"op": "dance", "ref": "r-unknown-op"}, BAD, "r-unknown-op"),
    Case(
        "missing-op",
        lambda w: _without(_send(w, "r-missing-op"), "op"),
        BAD,
        "r-missing-op",
    ),
    Case("op-not-a-string", lambda w: {"op": ["send"], "ref": "r-op-list"}, BAD, "r-op-list"),
    Case(
        "second-hello",
        lambda w: {"op": "hello", "token": w.alice.token, "device": "x", "cursor": None},
        BAD,
    ),
    # send: wrong types and values
    Case("send-conv-int", lambda w: _send(w, "r-conv-int", conv=123), BAD, "r-conv-int"),
    Case("send-conv-missing", lambda w: _without(_send(w, "r-no-conv"), "conv"), BAD, "r-no-conv"),
    Case("send-text-int", lambda w: _send(w, "r-text-int", text=123), BAD, "r-text-int"),
    Case("send-text-null", lambda w: _send(w, "r-text-null", text=None), BAD, "r-text-null"),
    Case("send-text-missing", lambda w: _without(_send(w, "r-no-text"), "text"), BAD, "r-no-text"),
    Case("send-text-blank", lambda w: _send(w, "r-blank", text=" \n\t "), BAD, "r-blank"),
    Case("send-text-empty", lambda w: _send(w, "r-empty", text=""), BAD, "r-empty"),
    Case("send-text-10001", lambda w: _send(w, "r-long", text="x" * 10_001), "too_large", "r-long"),
    Case(
        "send-text-10001-multibyte",
        lambda w: _send(w, "r-long-mb", text="货" * 10_001),
        "too_large",
        "r-long-mb",
    ),
    Case("send-text-500k", lambda w: _send(w, "r-500k", text="y" * 500_000), "too_large", "r-500k"),
    Case("send-kind-image", lambda w: _send(w, "r-image", kind="image"), BAD, "r-image"),
    Case("send-kind-system", lambda w: _send(w, "r-system", kind="system"), BAD, "r-system"),
    Case("send-kind-unknown", lambda w: _send(w, "r-kind-x", kind="sticker"), BAD, "r-kind-x"),
    Case("send-kind-int", lambda w: _send(w, "r-kind-int", kind=5), BAD, "r-kind-int"),
    Case("send-mentions-string", lambda w: _send(w, "r-m-str", mentions=w.bob.id), BAD, "r-m-str"),
    Case("send-mentions-ints", lambda w: _send(w, "r-m-int", mentions=[5]), BAD, "r-m-int"),
    Case(
        "send-mention-non-member",
        lambda w: _send(w, "r-m-out", mentions=[w.carol.id]),
        BAD,
        "r-m-out",
    ),
    Case(
        "send-mention-unknown-user",
        lambda w: _send(w, "r-m-nobody", mentions=["u_nobody00000000000000"]),
        BAD,
        "r-m-nobody",
    ),
    Case(
        "send-mention-unknown-role",
        lambda w: _send(w, "r-m-role", mentions=["@janitor"]),
        BAD,
        "r-m-role",
    ),
    Case("send-attachments-string", lambda w: _send(w, "r-att", attachments="x"), BAD, "r-att"),
    Case("send-reply-to-string", lambda w: _send(w, "r-rt-str", reply_to="1"), BAD, "r-rt-str"),
    Case("send-reply-to-bool", lambda w: _send(w, "r-rt-bool", reply_to=True), BAD, "r-rt-bool"),
    Case("send-reply-to-zero", lambda w: _send(w, "r-rt-zero", reply_to=0), BAD, "r-rt-zero"),
    Case(
        "send-reply-to-nonexistent",
        lambda w: _send(w, "r-rt-none", reply_to=w.last_seq + 1000),
        frozenset({BAD, "not_found"}),
        "r-rt-none",
    ),
    Case("send-ref-too-long", lambda w: _send(w, "r" * 65), BAD),
    Case("send-ref-non-ascii", lambda w: _send(w, "réf-1"), BAD),
    Case("send-ref-control-char", lambda w: _send(w, "a\nb"), BAD),
    Case("send-ref-empty", lambda w: _send(w, ""), BAD),
    Case("send-ref-int", lambda w: _send(w, 5), BAD),
    Case("send-ref-missing", lambda w: _without(_send(w), "ref"), BAD),
    Case(
        "send-forbidden-conv",
        lambda w: _send(w, "r-forb", conv=w.other_conv),
        "forbidden",
        "r-forb",
    ),
    Case("send-unknown-conv", lambda w: _send(w, "r-nf", conv=NO_SUCH_CONV), "not_found", "r-nf"),
    # read
    Case("read-seq-string", lambda w: {"op": "read", "conv": w.conv, "seq": "1"}, BAD),
    Case("read-seq-bool", lambda w: {"op": "read", "conv": w.conv, "seq": True}, BAD),
    Case("read-seq-negative", lambda w: {"op": "read", "conv": w.conv, "seq": -1}, BAD),
    Case("read-seq-float", lambda w: {"op": "read", "conv": w.conv, "seq": 1.5}, BAD),
    Case("read-seq-missing", lambda w: {"op": "read", "conv": w.conv}, BAD),
    Case("read-conv-int", lambda w: {"op": "read", "conv": 7, "seq": 1}, BAD),
    Case(
        "read-beyond-last-seq",
        lambda w: {"op": "read", "conv": w.conv, "seq": w.last_seq + 1000},
        BAD,
    ),
    Case(
        "read-forbidden-conv", lambda w: {"op": "read", "conv": w.other_conv, "seq": 1}, "forbidden"
    ),
    Case(
        "read-unknown-conv", lambda w: {"op": "read", "conv": NO_SUCH_CONV, "seq": 1}, "not_found"
    ),
    # recall
    Case(
        "recall-seq-string",
        lambda w: {"op": "recall", "ref": "r-rc-str", "conv": w.conv, "seq": "1"},
        BAD,
        "r-rc-str",
    ),
    Case(
        "recall-ref-missing", lambda w: {"op": "recall", "conv": w.conv, "seq": w.alices_seq}, BAD
    ),
    Case(
        "recall-someone-elses-message",
        lambda w: {"op": "recall", "ref": "r-rc-bob", "conv": w.conv, "seq": w.bobs_seq},
        "forbidden",
        "r-rc-bob",
    ),
    Case(
        "recall-nonexistent-seq",
        lambda w: {"op": "recall", "ref": "r-rc-nf", "conv": w.conv, "seq": w.last_seq + 1000},
        "not_found",
        "r-rc-nf",
    ),
    Case(
        "recall-forbidden-conv",
        lambda w: {"op": "recall", "ref": "r-rc-forb", "conv": w.other_conv, "seq": 1},
        "forbidden",
        "r-rc-forb",
    ),
    Case(
        "recall-unknown-conv",
        lambda w: {"op": "recall", "ref": "r-rc-unk", "conv": NO_SUCH_CONV, "seq": 1},
        "not_found",
        "r-rc-unk",
    ),
    # typing
    Case("typing-conv-missing", lambda w: {"op": "typing"}, BAD),
    Case("typing-conv-int", lambda w: {"op": "typing", "conv": 3}, BAD),
    Case("typing-forbidden-conv", lambda w: {"op": "typing", "conv": w.other_conv}, "forbidden"),
    Case("typing-unknown-conv", lambda w: {"op": "typing", "conv": NO_SUCH_CONV}, "not_found"),
]


def _raw(payload: Frame | str) -> str:
    return payload if isinstance(payload, str) else orjson.dumps(payload).decode()


def _expect(error: Frame, code: str | frozenset[str], ref: str | None) -> None:
    assert error["op"] == "error", f"expected an error, got {error}"
    codes = {code} if isinstance(code, str) else code
    assert error.get("code") in codes, f"expected {sorted(codes)}, got {error}"
    assert isinstance(error.get("message"), str), error
    assert error["message"], error
    if ref is not None:
        assert error.get("ref") == ref, f"error does not echo ref {ref!r}: {error}"


@pytest.mark.pg_sample(12)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_bad_frame_gets_error_keeps_connection_and_changes_nothing(
    server: ServerProcess, world: World, case: Case
) -> None:
    async with PeerPool(server) as pool:
        alice = await pool.open(world.alice.token, "bad-input")
        bob = await pool.open(world.bob.token, "watching")
        carol = await pool.open(world.carol.token, "elsewhere")
        before = server.db_snapshot()

        await alice.send_raw(_raw(case.build(world)))

        _expect(await alice.recv(), case.code, case.ref)
        assert await barrier(alice) == [], "more than one answer, or the connection is gone"
        assert await barrier(bob) == [], "a member was sent something after an error"
        assert await barrier(carol) == [], "a member was sent something after an error"
        assert server.db_snapshot() == before


async def test_binary_frame_gets_an_answer_and_keeps_the_connection(
    server: ServerProcess, world: World
) -> None:
    async with PeerPool(server) as pool:
        alice = await pool.open(world.alice.token)
        before = server.db_snapshot()
        await alice.send_raw(orjson.dumps(_send(world, "r-binary")))
        answer = await alice.recv_ack("r-binary")
        if answer["op"] == "error":
            _expect(answer, BAD, "r-binary")
        else:
            assert answer["op"] == "ack", answer
        await barrier(alice)
        if answer["op"] == "error":
            assert server.db_snapshot() == before


async def test_text_of_exactly_10000_characters_is_accepted(
    server: ServerProcess, world: World
) -> None:
    async with PeerPool(server) as pool:
        alice = await pool.open(world.alice.token)
        ack = await alice.send_text(world.conv, "货" * 10_000, "limit-exactly")
    assert ack["op"] == "ack", ack


@pytest.mark.parametrize(
    ("frame", "code", "ref"),
    [
        (
            {"op": "send", "ref": "pre-send", "conv": "c_x", "kind": "text", "text": "hi"},
            "unauthorized",
            "pre-send",
        ),
        ({"op": "read", "conv": "c_x", "seq": 1}, "unauthorized", None),
        (
            {"op": "recall", "ref": "pre-recall", "conv": "c_x", "seq": 1},
            "unauthorized",
            "pre-recall",
        ),
        ({"op": "typing", "conv": "c_x"}, "unauthorized", None),
        (
            {"op": "hello", "token": "not-a-token", "device": "d", "cursor": None},
            "unauthorized",
            None,
        ),
        ({"op": "hello", "device": "d", "cursor": None}, "bad_request", None),
        ({"op": "hello", "token": "t", "device": "", "cursor": None}, "bad_request", None),
        ({"op": "hello", "token": "t", "device": "d" * 65, "cursor": None}, "bad_request", None),
        ({"op": "hello", "token": 5, "device": "d", "cursor": None}, "bad_request", None),
        ({"op": "hello", "token": "t", "device": "d", "cursor": 5}, "bad_request", None),
    ],
    ids=[
        "send",
        "read",
        "recall",
        "typing",
        "bad-token",
        "no-token",
        "empty-device",
        "long-device",
        "token-int",
        "cursor-int",
    ],
)
async def test_frame_before_hello_gets_error_and_hello_still_works(
    server: ServerProcess, world: World, frame: Frame, code: str, ref: str | None
) -> None:
    frame = {**frame, "conv": world.conv} if "conv" in frame else frame
    async with PeerPool(server) as pool:
        bob = await pool.open(world.bob.token, "watching")
        conn = await pool.open(world.alice.token, hello=False)
        before = server.db_snapshot()
        await conn.send(frame)
        _expect(await conn.recv(), code, ref)
        assert await barrier(conn) == []
        welcome = await conn.hello(world.alice.token, "retry", None)
        assert welcome["user"]["id"] == world.alice.id
        assert await barrier(bob) == []
        assert server.db_snapshot() == before


async def test_revoked_token_cannot_say_hello(server: ServerProcess, world: World) -> None:
    token = server.login(world.alice.username, world.alice.password)["token"]
    with server.http(token) as client:
        assert client.post("/api/auth/logout").status_code == 204
        me = client.get("/api/me")
    assert me.status_code == 401, me.text
    assert me.json()["error"]["code"] == "unauthorized"
    async with PeerPool(server) as pool:
        conn = await pool.open(token, hello=False)
        before = server.db_snapshot()
        await conn.send({"op": "hello", "token": token, "device": "d", "cursor": None})
        _expect(await conn.recv(), "unauthorized", None)
        assert await barrier(conn) == []
        await conn.hello(world.alice.token, "d", None)
        assert server.db_snapshot() == before


async def test_oversized_frame_closes_with_1009_and_changes_nothing(
    server: ServerProcess, world: World
) -> None:
    async with PeerPool(server) as pool:
        bob = await pool.open(world.bob.token, "watching")
        alice = await pool.open(world.alice.token)
        before = server.db_snapshot()
        huge = _send(world, "r-huge", text="z" * (1024 * 1024 + 100))
        await alice.send_raw(_raw(huge))
        assert await wait_closed(alice) == 1009
        assert await barrier(bob) == []
        assert server.db_snapshot() == before
        again = await pool.open(world.alice.token)
        assert await barrier(again) == []


# --- servers with short windows -----------------------------------------------


@dataclass(frozen=True)
class ShortWindows:
    recall: ServerProcess  # --recall-window-s 1
    sessions: ServerProcess  # --session-ttl-s 1


@pytest.fixture(scope="module")
def short_windows(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShortWindows]:
    """Two servers with short windows, started side by side to save time."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        recall = pool.submit(
            start_server, tmp_path_factory.mktemp("recall"), "--rate-limits", "off",
            "--recall-window-s", "1",
        )  # fmt: skip
        sessions = pool.submit(
            start_server, tmp_path_factory.mktemp("ttl"), "--rate-limits", "off",
            "--session-ttl-s", "1",
        )  # fmt: skip
    failures = [exc for f in (recall, sessions) if (exc := f.exception()) is not None]
    started = [f.result() for f in (recall, sessions) if f.exception() is None]
    try:
        if failures:
            raise failures[0]
        yield ShortWindows(*started)
    finally:
        for proc in started:
            proc.kill()


async def test_recall_outside_window_is_refused_and_changes_nothing(
    short_windows: ShortWindows,
) -> None:
    server = short_windows.recall
    alice, bob = server.user(), server.user()
    conv = server.conversation(alice, "channel", [bob], title="window")["id"]
    async with PeerPool(server) as pool:
        alice_conn = await pool.record(alice.token)
        bob_conn = await pool.record(bob.token)
        old = await _acked(alice_conn, _text_frame(conv, "window-old", "a while ago"))
        await asyncio.sleep(1.6)
        fresh = await _acked(alice_conn, _text_frame(conv, "window-fresh", "just now"))
        await _acked(alice_conn, {"op": "recall", "ref": "rc-fresh", "conv": conv,
                                  "seq": fresh["seq"]})  # fmt: skip
        for conn in (alice_conn, bob_conn):
            await conn.wait_for(lambda f: f.get("op") == "recalled")
            await conn.barrier()
        mark = len(alice_conn.frames)
        before = server.db_snapshot()

        await alice_conn.send({"op": "recall", "ref": "rc-old", "conv": conv, "seq": old["seq"]})
        await alice_conn.wait_for(lambda f: f.get("ref") == "rc-old", start=mark)
        await alice_conn.barrier()
        answers = [f for f in alice_conn.frames[mark:] if f.get("op") != "pong"]
        assert len(answers) == 1, answers
        _expect(answers[0], "forbidden", "rc-old")
        assert await bob_conn.barrier() == []
        assert server.db_snapshot() == before


def _text_frame(conv: str, ref: str, text: str) -> Frame:
    return {"op": "send", "ref": ref, "conv": conv, "kind": "text", "text": text}


async def _acked(conn: Recorder, frame: Frame) -> Frame:
    start = len(conn.frames)
    await conn.send(frame)
    answer = await conn.wait_for(
        lambda f: f.get("ref") == frame["ref"] and f["op"] in ("ack", "error"), start=start
    )
    assert answer["op"] == "ack", answer
    return answer


async def test_expired_token_cannot_say_hello_or_call_http(short_windows: ShortWindows) -> None:
    server = short_windows.sessions
    assert server.admin is not None
    stale = server.login(server.admin.username, server.admin.password)["token"]
    await asyncio.sleep(1.5)
    with server.http(stale) as client:
        me = client.get("/api/me")
    assert me.status_code == 401, me.text
    assert me.json()["error"]["code"] == "unauthorized"
    async with PeerPool(server) as pool:
        conn = await pool.open(stale, hello=False)
        before = server.db_snapshot()
        await conn.send({"op": "hello", "token": stale, "device": "d", "cursor": None})
        _expect(await conn.recv(), "unauthorized", None)
        assert await barrier(conn) == []
        assert server.db_snapshot() == before
        fresh = server.login(server.admin.username, server.admin.password)["token"]
        welcome = await conn.hello(fresh, "d", None)
        assert welcome["user"]["id"] == server.admin.id


async def test_live_socket_is_closed_with_4001_when_its_session_expires(
    short_windows: ShortWindows,
) -> None:
    server = short_windows.sessions
    assert server.admin is not None
    token = server.login(server.admin.username, server.admin.password)["token"]
    async with PeerPool(server) as pool:
        conn = await pool.open(token, "soon-expired")
        assert await wait_closed(conn, timeout_s=5) == 4001


# --- HTTP ---------------------------------------------------------------------


@dataclass(frozen=True)
class HttpCase:
    name: str
    method: str
    path: Callable[[World], str]
    body: Callable[[World], Any] | None
    status: int | frozenset[int]
    who: str = "alice"  # alice, bob, carol, admin or none
    raw: bool = False  # body is sent as raw text, not JSON


def _conv_body(**fields: Any) -> Callable[[World], Any]:
    return lambda w: {"kind": "channel", "title": "t", "members": [w.bob.id], **fields}


NOT_FOUND_OR_BAD = frozenset({400, 404})

HTTP_CASES = [
    HttpCase(
        "conv-invalid-json",
        "POST",
        lambda w: "/api/conversations",
        lambda w: '{"kind": "channel", ',
        400,
        raw=True,
    ),
    HttpCase("conv-json-array", "POST", lambda w: "/api/conversations", lambda w: [], 400),
    HttpCase("conv-json-string", "POST", lambda w: "/api/conversations", lambda w: "x", 400),
    HttpCase(
        "conv-empty-body", "POST", lambda w: "/api/conversations", lambda w: "", 400, raw=True
    ),
    HttpCase(
        "conv-kind-unknown", "POST", lambda w: "/api/conversations", _conv_body(kind="group"), 400
    ),
    HttpCase(
        "conv-kind-missing",
        "POST",
        lambda w: "/api/conversations",
        lambda w: {"title": "t", "members": [w.bob.id]},
        400,
    ),
    HttpCase("conv-kind-int", "POST", lambda w: "/api/conversations", _conv_body(kind=1), 400),
    HttpCase(
        "conv-members-string",
        "POST",
        lambda w: "/api/conversations",
        lambda w: {"kind": "channel", "title": "t", "members": w.bob.id},
        400,
    ),
    HttpCase(
        "conv-members-ints", "POST", lambda w: "/api/conversations", _conv_body(members=[1, 2]), 400
    ),
    HttpCase("conv-title-int", "POST", lambda w: "/api/conversations", _conv_body(title=5), 400),
    HttpCase(
        "conv-unknown-member",
        "POST",
        lambda w: "/api/conversations",
        _conv_body(members=["u_nobody00000000000000"]),
        NOT_FOUND_OR_BAD,
    ),
    HttpCase(
        "direct-three-members",
        "POST",
        lambda w: "/api/conversations",
        lambda w: {"kind": "direct", "members": [w.bob.id, w.carol.id]},
        400,
    ),
    HttpCase(
        "direct-no-other",
        "POST",
        lambda w: "/api/conversations",
        lambda w: {"kind": "direct", "members": []},
        400,
    ),
    HttpCase(
        "direct-only-self",
        "POST",
        lambda w: "/api/conversations",
        lambda w: {"kind": "direct", "members": [w.alice.id]},
        400,
    ),
    HttpCase(
        "users-non-admin",
        "POST",
        lambda w: "/api/users",
        lambda w: {"username": "sneaky", "password": "sturdy-passphrase", "roles": ["admin"]},
        403,
    ),
    HttpCase(
        "users-bad-username",
        "POST",
        lambda w: "/api/users",
        lambda w: {"username": "bad name!", "password": "sturdy-passphrase", "roles": ["sales"]},
        400,
        who="admin",
    ),
    HttpCase(
        "users-unknown-role",
        "POST",
        lambda w: "/api/users",
        lambda w: {"username": "newbie1", "password": "sturdy-passphrase", "roles": ["janitor"]},
        400,
        who="admin",
    ),
    HttpCase(
        "users-no-roles",
        "POST",
        lambda w: "/api/users",
        lambda w: {"username": "newbie2", "password": "sturdy-passphrase", "roles": []},
        400,
        who="admin",
    ),
    HttpCase(
        "users-roles-string",
        "POST",
        lambda w: "/api/users",
        lambda w: {"username": "newbie3", "password": "sturdy-passphrase", "roles": "sales"},
        frozenset({400}),
        who="admin",
    ),
    HttpCase(
        "users-password-missing",
        "POST",
        lambda w: "/api/users",
        lambda w: {"username": "newbie4", "roles": ["sales"]},
        400,
        who="admin",
    ),
    HttpCase(
        "users-password-int",
        "POST",
        lambda w: "/api/users",
        lambda w: {"username": "newbie5", "password": 5, "roles": ["sales"]},
        400,
        who="admin",
    ),
    HttpCase(
        "users-duplicate",
        "POST",
        lambda w: "/api/users",
        lambda w: {"username": w.bob.username, "password": "sturdy-passphrase", "roles": ["sales"]},
        409,
        who="admin",
    ),
    HttpCase(
        "history-not-a-member",
        "GET",
        lambda w: f"/api/conversations/{w.other_conv}/messages",
        None,
        403,
    ),
    HttpCase(
        "history-unknown-conv",
        "GET",
        lambda w: f"/api/conversations/{NO_SUCH_CONV}/messages",
        None,
        404,
    ),
    HttpCase(
        "history-limit-not-int",
        "GET",
        lambda w: f"/api/conversations/{w.conv}/messages?limit=abc",
        None,
        400,
    ),
    HttpCase(
        "history-after-not-int",
        "GET",
        lambda w: f"/api/conversations/{w.conv}/messages?after=x",
        None,
        400,
    ),
    HttpCase(
        "conv-detail-not-a-member", "GET", lambda w: f"/api/conversations/{w.other_conv}", None, 403
    ),
    HttpCase(
        "conv-detail-unknown", "GET", lambda w: f"/api/conversations/{NO_SUCH_CONV}", None, 404
    ),
    HttpCase("list-without-token", "GET", lambda w: "/api/conversations", None, 401, who="none"),
    HttpCase(
        "create-without-token",
        "POST",
        lambda w: "/api/conversations",
        _conv_body(),
        401,
        who="none",
    ),
    HttpCase(
        "members-add-not-a-member",
        "POST",
        lambda w: f"/api/conversations/{w.conv}/members",
        lambda w: {"members": [w.carol.id]},
        403,
        who="carol",
    ),
    HttpCase(
        "members-add-string",
        "POST",
        lambda w: f"/api/conversations/{w.conv}/members",
        lambda w: {"members": w.carol.id},
        400,
    ),
    HttpCase(
        "members-add-unknown-user",
        "POST",
        lambda w: f"/api/conversations/{w.conv}/members",
        lambda w: {"members": ["u_nobody00000000000000"]},
        NOT_FOUND_OR_BAD,
    ),
    HttpCase(
        "members-remove-by-non-creator",
        "DELETE",
        lambda w: f"/api/conversations/{w.conv}/members/{w.alice.id}",
        None,
        403,
        who="bob",
    ),
    HttpCase(
        "leave-not-a-member",
        "POST",
        lambda w: f"/api/conversations/{w.other_conv}/leave",
        None,
        403,
    ),
    # unknown JSON members: a typo must not silently create something else
    HttpCase(
        "conv-unknown-json-member",
        "POST",
        lambda w: "/api/conversations",
        lambda w: {"kind": "channel", "title": "t", "member": [w.bob.id]},
        400,
    ),
    HttpCase(
        "users-unknown-json-member",
        "POST",
        lambda w: "/api/users",
        lambda w: {
            "username": "newbie6",
            "password": "sturdy-passphrase",
            "roles": ["sales"],
            "admin": True,
        },
        400,
        who="admin",
    ),
    HttpCase(
        "members-add-unknown-json-member",
        "POST",
        lambda w: f"/api/conversations/{w.conv}/members",
        lambda w: {"members": [w.dave.id], "silently": True},
        400,
    ),
    HttpCase("unknown-endpoint", "GET", lambda w: "/api/no-such-thing", None, 404),
    HttpCase(
        "conv-title-too-long",
        "POST",
        lambda w: "/api/conversations",
        _conv_body(title="t" * 201),
        frozenset({400, 413}),
    ),
    HttpCase(
        "conv-two-megabyte-body",
        "POST",
        lambda w: "/api/conversations",
        _conv_body(title="t" * 2_000_000),
        frozenset({400, 413}),
    ),
    HttpCase(
        "audit-non-admin",
        "GET",
        lambda w: f"/api/conversations/{w.conv}/messages/{w.bobs_seq}/audit",
        None,
        403,
    ),
]

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "too_large",
}


def _token(world: World, server: ServerProcess, who: str) -> str | None:
    if who == "admin":
        assert server.admin is not None
        return server.admin.token
    account: Account | None = getattr(world, who, None)
    return account.token if account else None


@pytest.mark.pg_sample(12)
@pytest.mark.parametrize("case", HTTP_CASES, ids=[c.name for c in HTTP_CASES])
def test_bad_http_request_gets_error_body_and_changes_nothing(
    server: ServerProcess, world: World, case: HttpCase
) -> None:
    before = server.db_snapshot()
    token = _token(world, server, case.who)
    with server.http(token) as client:
        kwargs: dict[str, Any] = {}
        if case.body is not None:
            body = case.body(world)
            if case.raw:
                kwargs["content"] = body
                kwargs["headers"] = {"Content-Type": "application/json"}
            else:
                kwargs["json"] = body
        resp = client.request(case.method, case.path(world), **kwargs)
    statuses = {case.status} if isinstance(case.status, int) else case.status
    assert resp.status_code in statuses, f"{resp.status_code} {resp.text}"
    _expect_error_body(resp, _STATUS_CODES[resp.status_code])
    assert server.db_snapshot() == before


def _expect_error_body(resp: httpx.Response, code: str) -> None:
    body = resp.json()
    assert set(body) == {"error"}, body
    assert body["error"].get("code") == code, body
    assert isinstance(body["error"].get("message"), str), body
    assert body["error"]["message"], body


def test_members_add_to_direct_conversation_is_refused(server: ServerProcess, world: World) -> None:
    direct = server.conversation(world.alice, "direct", [world.bob])["id"]
    before = server.db_snapshot()
    with server.http(world.alice.token) as client:
        resp = client.post(
            f"/api/conversations/{direct}/members", json={"members": [world.carol.id]}
        )
    assert resp.status_code in (400, 409), resp.text
    _expect_error_body(resp, _STATUS_CODES[resp.status_code])
    assert server.db_snapshot() == before
