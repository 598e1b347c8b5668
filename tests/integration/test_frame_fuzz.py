"""Every client frame, generated, sent to a real server over a real WebSocket.

Alice (a signed-in staff user) sends the frames; Bob, who shares a conversation
with her, and Carol, who does not, stay connected the whole time. For bad
frames the properties are the contract's G6: an `error` with the right code
(and the frame's `ref` when it had a usable one), the connection still works, no
one else receives anything, and every row of every table in the server's
SQLite file is as it was. For good frames: the documented answer and the
documented delivery to Bob.

The connections live on one event loop in a thread of their own, so they stay
open across Hypothesis examples. `ORDERCHAT_FUZZ_EXAMPLES=N` runs N examples
per property instead of the default few dozen.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import sqlite3
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from tests.frame_strategies import (
    FRESH_UPLOAD,
    MAX_SEQ,
    Bad,
    Frame,
    Ids,
    as_binary,
    bad_frame_kinds,
    batches,
    dumps,
    frames_before_hello,
    valid_frames,
)
from tests.media_support import raw_upload, started_upload
from tests.stores import BACKGROUND_TABLES, pg_snapshot, snapshot_query
from tests.support import Peer, PeerPool, Recorder, ServerProcess

pytestmark = pytest.mark.timeout(300)

T = TypeVar("T")
CALL_TIMEOUT_S = 60.0  # one example's network calls, all together
ANSWER_TIMEOUT_S = 10.0  # one answer from the server
_EXAMPLES = os.environ.get("ORDERCHAT_FUZZ_EXAMPLES")
_refs = itertools.count(1)
PG_SHARE = 3


def fuzz_settings(default_examples: int, scale: int = 1, *, store: str = "sqlite") -> settings:
    """Few examples by default; ORDERCHAT_FUZZ_EXAMPLES (divided by `scale`) for more.

    By default the PostgreSQL leg tries a third as many: the frames' handling does not
    depend on the store, what reaches it does, and a few examples show that.
    """
    if _EXAMPLES:
        examples = max(default_examples, int(_EXAMPLES) // scale)
    elif store == "postgres":
        examples = max(1, default_examples // PG_SHARE)
    else:
        examples = default_examples
    return settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        print_blob=False,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )


def fresh_ref(what: str) -> str:
    return f"{what}-{next(_refs)}"


class Live:
    """An event loop in a thread: connections opened on it outlive each example."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fuzz-loop")
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = CALL_TIMEOUT_S) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@dataclass
class Fuzz:
    server: ServerProcess
    live: Live
    ids: Ids
    alice: Recorder
    bob: Recorder
    carol: Recorder
    alice_http: httpx.Client
    bob_token: str
    pool: PeerPool
    read_mark: int  # alice's read mark in the shared conversation
    recalled: set[int] = field(default_factory=set)

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        return db_snapshot(self.server)


def db_snapshot(server: ServerProcess) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table in the server's database, read-only, behind its back.

    Sessions are left out: a hello may touch the session it signs in with.
    """
    if server.store == "postgres":
        return pg_snapshot(server.db_url, exclude=("sessions",))
    con = sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True, timeout=10)
    try:
        names = [
            row[0]
            for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if row[0] not in ("sessions", "sqlite_sequence", *BACKGROUND_TABLES)
        ]
        return {
            name: sorted(con.execute(snapshot_query(name)).fetchall(), key=repr)
            for name in sorted(names)
        }
    finally:
        con.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, store: str) -> Iterator[ServerProcess]:
    """Rate limits off; a recall window long enough for a long fuzzing run."""
    proc = ServerProcess(
        tmp_path_factory.mktemp("fuzz"),
        ("--rate-limits", "off", "--recall-window-s", "86400"),
        store=store,
    )
    proc.start()
    proc.create_admin()
    yield proc
    proc.stop()


FILE_BYTES = "订单备注 order notes\n".encode() * 64  # plain text: no kind but `file` takes it


@pytest.fixture(scope="module")
def fuzz(server: ServerProcess) -> Iterator[Fuzz]:
    alice = server.user("customer_service")
    bob = server.user("warehouse")
    carol = server.user("sales")
    conv = server.conversation(alice, "channel", [bob], title="fuzzing")["id"]
    other = server.conversation(carol, "channel", [], title="elsewhere")["id"]
    alone = server.conversation(alice, "channel", [], title="alice alone")["id"]
    alice_http = server.http(alice.token)
    with server.http(bob.token) as bob_http:
        others_upload = raw_upload(bob_http, conv, FILE_BYTES, "bobs.bin", "text/plain")
    spare = raw_upload(alice_http, conv, FILE_BYTES, "spare.bin", "text/plain")
    unfinished = started_upload(alice_http, conv, FILE_BYTES, 100)
    foreign = raw_upload(alice_http, alone, FILE_BYTES, "foreign.bin", "text/plain")
    sent = raw_upload(alice_http, conv, FILE_BYTES, "sent.bin", "text/plain")

    live = Live()
    pool = PeerPool(server)

    async def seed() -> tuple[list[int], list[int], str]:
        bob_peer = await Peer.open(server, bob.token, "seed")
        alice_peer = await Peer.open(server, alice.token, "seed")
        try:
            others = [
                (await bob_peer.send_text(conv, f"bob {i}", f"seed-b{i}"))["seq"] for i in range(2)
            ]
            own = [
                (await alice_peer.send_text(conv, f"alice {i}", f"seed-a{i}"))["seq"]
                for i in range(2)
            ]
            await alice_peer.send(
                {
                    "op": "send",
                    "ref": "seed-file",
                    "conv": conv,
                    "kind": "file",
                    "attachments": [{"id": sent}],
                }
            )
            ack = await alice_peer.recv_ack("seed-file")
            assert ack["op"] == "ack", ack
            own.append(ack["seq"])
            return own, others, alice_peer.welcome["cursor"]
        finally:
            await bob_peer.close()
            await alice_peer.close()

    own, others, cursor = live.run(seed())

    async def connect_all() -> tuple[Recorder, Recorder, Recorder]:
        return (
            await pool.record(alice.token, "fuzzer"),
            await pool.record(bob.token, "watching"),
            await pool.record(carol.token, "elsewhere"),
        )

    alice_rec, bob_rec, carol_rec = live.run(connect_all())
    ids = Ids(
        token=alice.token,
        user=alice.id,
        conv=conv,
        other_conv=other,
        missing_conv="c_" + "0" * 21,
        watcher=bob.id,
        watcher_username=bob.username,
        outsider=carol.id,
        outsider_username=carol.username,
        own_seqs=own,
        others_seqs=others,
        last_seq=max(own + others),
        spare_upload=spare,
        others_upload=others_upload,
        unfinished_upload=unfinished,
        foreign_upload=foreign,
        sent_upload=sent,
        cursor=cursor,
    )
    try:
        yield Fuzz(
            server,
            live,
            ids,
            alice_rec,
            bob_rec,
            carol_rec,
            alice_http,
            bob.token,
            pool,
            read_mark=max(own),
        )
    finally:
        with contextlib.suppress(Exception):
            live.run(pool.__aexit__(None, None, None), 20)
        live.close()
        alice_http.close()


# --- what the server must answer ---------------------------------------------------


def expect_error(
    answer: Frame, bad: Bad, codes: frozenset[str] | None = None, ref: str | None = None
) -> None:
    """`answer` is the contract's error for `bad` (or for the codes and ref given)."""
    codes = bad.codes if codes is None else codes
    ref = bad.ref if codes is bad.codes else ref
    where = f"{bad.label}: {bad.payload[:300]!r} -> {answer}"
    assert answer.get("op") == "error", where
    assert answer.get("code") in codes, f"expected {sorted(codes)}; {where}"
    assert isinstance(answer.get("message"), str), where
    assert answer["message"], where
    if bad.ref_optional:
        assert answer.get("ref") in (None, ref), where
    elif ref is not None:
        assert answer.get("ref") == ref, f"the error does not carry ref {ref!r}; {where}"
    else:
        assert "ref" not in answer, f"the error carries a ref the frame had not; {where}"


def others(frames: list[Frame]) -> list[Frame]:
    """Frames other than the pongs the test's own pings brought."""
    return [f for f in frames if f.get("op") != "pong"]


async def answer_to(rec: Recorder, payload: str | bytes) -> Frame:
    """Send `payload`; its one answer, after a ping proved nothing else followed."""
    start = len(rec.frames)
    await rec.peer.send_raw(payload)
    answer = await rec.wait_for(lambda f: f.get("op") != "pong", ANSWER_TIMEOUT_S, start)
    after = len(rec.frames)
    extra = await rec.barrier()
    assert extra == [], f"more than one answer: {answer} then {extra}"
    assert others(rec.frames[start:after]) == [answer], f"more than one answer: {answer}"
    return answer


async def flush(fz: Fuzz) -> None:
    """Wait until every write alice asked for is applied: one more goes through the
    same writer after them, and fails without storing anything."""
    ref = fresh_ref("flush")
    start = len(fz.alice.frames)
    await fz.alice.send({"op": "recall", "ref": ref, "conv": fz.ids.conv, "seq": MAX_SEQ})
    answer = await fz.alice.wait_for(lambda f: f.get("ref") == ref, ANSWER_TIMEOUT_S, start)
    assert answer.get("op") == "error", answer
    assert answer.get("code") == "not_found", answer


async def send_ok(fz: Fuzz, frame: Frame) -> tuple[Frame, Frame]:
    """Send a message that must be stored: its ack, and the event Bob got."""
    ids = fz.ids
    start, bob_start = len(fz.alice.frames), len(fz.bob.frames)
    await fz.alice.peer.send_raw(dumps(frame))
    ack = await fz.alice.wait_for(
        lambda f: f.get("ref") == frame["ref"] and f.get("op") in ("ack", "error"),
        ANSWER_TIMEOUT_S,
        start,
    )
    assert ack["op"] == "ack", (frame, ack)
    assert ack["conv"] == ids.conv, ack
    assert ack["seq"] == ids.last_seq + 1, (ids.last_seq, ack)
    received = await fz.bob.wait_for(
        lambda f: f.get("op") == "message" and f.get("id") == ack["id"],
        ANSWER_TIMEOUT_S,
        bob_start,
    )
    await fz.alice.wait_for(  # G5: the sender's own connection gets the event too
        lambda f: f.get("op") == "message" and f.get("id") == ack["id"], ANSWER_TIMEOUT_S, start
    )
    ids.last_seq = ack["seq"]
    ids.own_seqs.append(ack["seq"])
    fz.read_mark = ack["seq"]  # sending moves the sender's own mark, without an event
    return ack, received


# --- bad frames ------------------------------------------------------------------------


async def refused_batch(fz: Fuzz, batch: list[Bad]) -> None:
    """Send bad frames one by one: each gets its error, and no one else hears of them."""
    bob_start, carol_start = len(fz.bob.frames), len(fz.carol.frames)
    for bad in batch:
        expect_error(await answer_to(fz.alice, bad.payload), bad)
    await flush(fz)
    await fz.bob.barrier()
    await fz.carol.barrier()
    assert others(fz.bob.frames[bob_start:]) == [], "bob was sent something"
    assert others(fz.carol.frames[carol_start:]) == [], "carol was sent something"


async def still_sends(fz: Fuzz) -> None:
    """After bad frames, a good send is stored and delivered as ever."""
    await send_ok(
        fz, {"op": "send", "ref": fresh_ref("after"), "conv": fz.ids.conv, "text": "still here"}
    )


def check_refused(fz: Fuzz, batch: list[Bad]) -> None:
    for bad in batch:
        hypothesis_event(bad.label)
        note(f"sending {bad!r}")
    before = fz.snapshot()
    fz.live.run(refused_batch(fz, batch))
    assert fz.snapshot() == before, "a refused frame changed the database"
    fz.live.run(still_sends(fz))


def test_bad_frames_get_an_error_and_change_nothing(fuzz: Fuzz) -> None:
    """A random mix of bad frames, and bad frames sent again and again."""

    @fuzz_settings(80, store=fuzz.server.store)
    @given(batch=batches(fuzz.ids))
    def run(batch: list[Bad]) -> None:
        check_refused(fuzz, batch)

    run()


BAD_KINDS = bad_frame_kinds()


@pytest.mark.pg_sample(10)
@pytest.mark.parametrize("kind", list(BAD_KINDS))
def test_each_way_of_breaking_a_frame_gets_its_error_and_changes_nothing(
    fuzz: Fuzz, kind: str
) -> None:
    """Every way a frame can be bad, each tried a few times, as text and as binary."""
    bad_frames = BAD_KINDS[kind](fuzz.ids)

    @fuzz_settings(3, scale=10, store=fuzz.server.store)
    @given(bad=bad_frames, in_binary=st.booleans())
    def run(bad: Bad, in_binary: bool) -> None:
        check_refused(fuzz, [as_binary(bad) if in_binary else bad])

    run()


def test_frames_before_hello_get_an_error_and_hello_still_works(fuzz: Fuzz) -> None:
    fz = fuzz

    async def before_hello(bad: Bad) -> None:
        bob_start = len(fz.bob.frames)
        peer = await Peer.open(fz.server, fz.ids.token, hello=False)
        rec = Recorder(peer)
        try:
            answer = await answer_to(rec, bad.payload)
            if bad.stage == "decode" or bad.op == "hello":
                expect_error(answer, bad)
            else:  # a frame that needs a hello: unauthorized, with a send's or recall's ref
                ref = bad.ref if bad.op in ("send", "recall", "edit") else None
                expect_error(answer, bad, frozenset({"unauthorized"}), ref)
            await rec.peer.send(
                {"op": "hello", "token": fz.ids.token, "device": "late", "cursor": None}
            )
            welcome = await rec.wait_for(lambda f: f.get("op") == "welcome", ANSWER_TIMEOUT_S)
            assert welcome["user"]["id"] == fz.ids.user, welcome
        finally:
            await rec.stop()
            await asyncio.wait_for(peer.close(), 5)
        await flush(fz)
        await fz.bob.barrier()
        assert others(fz.bob.frames[bob_start:]) == [], "bob was sent something"

    @fuzz_settings(50, store=fz.server.store)
    @given(bad=frames_before_hello(fz.ids))
    def run(bad: Bad) -> None:
        hypothesis_event(bad.label)
        note(f"sending {bad.label}: {bad.payload[:200]!r}")
        before = fz.snapshot()
        fz.live.run(before_hello(bad))
        assert fz.snapshot() == before, "a frame before hello changed the database"

    run()


def test_frame_over_one_mebibyte_closes_with_1009_and_changes_nothing(fuzz: Fuzz) -> None:
    """The one bad frame that ends the connection, as documented (§12, §13)."""
    fz = fuzz

    async def oversized(payload: str | bytes) -> None:
        bob_start = len(fz.bob.frames)
        peer = await Peer.open(fz.server, fz.ids.token, "oversized")
        try:
            # The server may close while the frame is still going out.
            with contextlib.suppress(ConnectionClosed):
                await peer.send_raw(payload)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(ANSWER_TIMEOUT_S):
                    while True:
                        await peer.ws.recv()
            assert peer.ws.close_code == 1009, peer.ws.close_code
        finally:
            await asyncio.wait_for(peer.close(), 5)
        assert await fz.alice.barrier() == []
        await fz.bob.barrier()
        assert others(fz.bob.frames[bob_start:]) == []

    limit = 1024 * 1024

    def payload_of(shape: str, size: int) -> str | bytes:
        """A frame of `size` bytes (a little more for "货", three bytes each)."""
        if shape == "binary":
            return b"{" + b" " * (size - 2) + b"}"
        filler = "x" * size if shape == "ascii" else "货" * (size // 3 + 1)
        return dumps({"op": "send", "ref": fresh_ref("big"), "conv": fz.ids.conv, "text": filler})

    @fuzz_settings(4, store=fz.server.store)
    @given(
        shape=st.sampled_from(["ascii", "cjk", "binary"]),
        size=st.integers(limit + 1, limit + 4096),
    )
    def run(shape: str, size: int) -> None:
        before = fz.snapshot()
        fz.live.run(oversized(payload_of(shape, size)))
        assert fz.snapshot() == before

    run()


# --- good frames -----------------------------------------------------------------------


def test_valid_frames_get_their_answer_and_reach_the_other_member(fuzz: Fuzz) -> None:
    fz = fuzz
    ids = fz.ids

    async def bob_sends(count: int) -> None:
        """Messages from Bob, so that Alice has something to read."""
        for _ in range(count):
            ref = fresh_ref("bob")
            start, alice_start = len(fz.bob.frames), len(fz.alice.frames)
            await fz.bob.send({"op": "send", "ref": ref, "conv": ids.conv, "text": "from bob"})
            ack = await fz.bob.wait_for(
                lambda f, ref=ref: f.get("ref") == ref and f["op"] == "ack", ANSWER_TIMEOUT_S, start
            )
            for rec, at in ((fz.bob, start), (fz.alice, alice_start)):
                mid = ack["id"]
                # The event itself, not the ack that carries the same id: with several
                # writers delivery follows the ack by a moment (docs/scaling.md).
                await rec.wait_for(
                    lambda f, mid=mid: f.get("op") == "message" and f.get("id") == mid,
                    ANSWER_TIMEOUT_S,
                    at,
                )
            ids.last_seq = ack["seq"]
            ids.others_seqs.append(ack["seq"])

    async def one(frame: Frame, upload: str | None) -> None:
        alice_start, bob_start = len(fz.alice.frames), len(fz.bob.frames)
        expected_for_bob: list[Frame] = []
        op = frame["op"]
        if op == "send":
            ack, got = await send_ok(fz, frame)
            check_message(got, frame, ack, ids, upload)
            expected_for_bob.append(got)
            stored = fz.server.db_rows(
                "SELECT seq, sender_id FROM messages WHERE id = ?", ack["id"]
            )
            assert stored == [(ack["seq"], ids.user)], stored
        elif op == "recall":
            await fz.alice.send(frame)
            ack = await fz.alice.wait_for(
                lambda f: f.get("ref") == frame["ref"], ANSWER_TIMEOUT_S, alice_start
            )
            assert ack["op"] == "ack", (frame, ack)
            assert (ack["conv"], ack["seq"]) == (ids.conv, frame["seq"]), ack
            if frame["seq"] not in fz.recalled:
                got = await fz.bob.wait_for(
                    lambda f: f.get("op") == "recalled", ANSWER_TIMEOUT_S, bob_start
                )
                assert (got["conv"], got["seq"], got["by"]) == (ids.conv, frame["seq"], ids.user)
                expected_for_bob.append(got)
                fz.recalled.add(frame["seq"])
        elif op == "read":
            await fz.alice.send(frame)
            await flush(fz)
            if frame["seq"] > fz.read_mark:
                got = await fz.bob.wait_for(
                    lambda f: f.get("op") == "read", ANSWER_TIMEOUT_S, bob_start
                )
                assert (got["conv"], got["user"], got["seq"]) == (ids.conv, ids.user, frame["seq"])
                expected_for_bob.append(got)
                fz.read_mark = frame["seq"]
        elif op == "typing":
            await fz.alice.send(frame)
            assert await fz.alice.barrier() == []  # typing is relayed before the pong
            await fz.bob.barrier()
            typing = others(fz.bob.frames[bob_start:])
            # at most one: typing notices are dropped quietly when they come too often
            assert typing in ([], [{"op": "typing", "conv": ids.conv, "user": ids.user}]), typing
            expected_for_bob = typing
        else:
            assert op == "ping"
            await fz.alice.send(frame)
            await fz.alice.wait_for(lambda f: f.get("op") == "pong", ANSWER_TIMEOUT_S, alice_start)
        await flush(fz)
        await fz.bob.barrier()
        assert others(fz.bob.frames[bob_start:]) == expected_for_bob
        answers = [
            f
            for f in others(fz.alice.frames[alice_start:])
            if f.get("op") in ("error",) and not f.get("ref", "").startswith("flush-")
        ]
        assert answers == [], answers

    @fuzz_settings(60, store=fz.server.store)
    @given(frame=valid_frames(ids), from_bob=st.integers(0, 2))
    def run(frame: Frame, from_bob: int) -> None:
        hypothesis_event(f"{frame['op']} {frame.get('kind', '')}".strip())
        upload = None
        if FRESH_UPLOAD in [
            a.get("id") if isinstance(a, dict) else a for a in frame.get("attachments") or []
        ]:
            upload = raw_upload(fz.alice_http, ids.conv, FILE_BYTES, "fuzzed.bin", "text/plain")
            frame = {**frame, "attachments": [{"id": upload}]}
        note(f"frame: {frame!r}")
        fz.live.run(bob_sends(from_bob))
        fz.live.run(one(frame, upload))

    run()


def check_message(got: Frame, frame: Frame, ack: Frame, ids: Ids, upload: str | None) -> None:
    """Bob's `message` event is the message Alice sent, as she sent it."""
    kind = frame.get("kind", "text")
    assert got["id"] == ack["id"] and got["seq"] == ack["seq"] and got["conv"] == ids.conv
    assert got["ref"] == frame["ref"]
    assert got["sender"] == ids.user
    assert got["kind"] == kind
    assert got["text"] == (frame.get("text") or ""), got
    assert got["reply_to"] == frame.get("reply_to"), got
    assert got.get("urgent", False) is bool(frame.get("urgent", False)), got
    assert got.get("internal", False) is bool(frame.get("internal", False)), got
    assert got["recalled"] is False
    assert isinstance(got["cursor"], str)
    if upload is None:
        assert got["attachments"] == [], got
    else:
        assert [a["id"] for a in got["attachments"]] == [upload], got
    explicit: list[str] = []
    for token in frame.get("mentions") or []:
        normal = _normal_mention(token, ids)
        if normal not in explicit:
            explicit.append(normal)
    assert got["mentions"][: len(explicit)] == explicit, (explicit, got["mentions"])


def _normal_mention(token: str, ids: Ids) -> str:
    if token in ("@all", "@everyone", "@所有人", "@全体成员"):
        return "@all"
    if token == f"@{ids.watcher_username}":
        return ids.watcher
    return token


# --- regressions the fuzzer found --------------------------------------------------------


def test_typing_where_one_may_not_gets_its_error_past_the_typing_rate_limit(fuzz: Fuzz) -> None:
    """Typing notices over the limit are dropped silently (§14), but a notice for a
    conversation one is not in, or that does not exist, is bad input and gets its error
    every time (§7.4); and it does not use up the limit of the user's real notices."""
    fz = fuzz
    ids = fz.ids

    async def burst() -> None:
        bob_start = len(fz.bob.frames)
        for conv, code in [(ids.other_conv, "forbidden"), (ids.missing_conv, "not_found")] * 6:
            answer = await answer_to(fz.alice, dumps({"op": "typing", "conv": conv}))
            assert (answer.get("op"), answer.get("code")) == ("error", code), answer
            assert "ref" not in answer, answer
        await asyncio.sleep(3)  # the typing limit is full again, whatever came before
        await fz.alice.send({"op": "typing", "conv": ids.conv})
        assert await fz.alice.barrier() == []
        await fz.bob.barrier()
        assert others(fz.bob.frames[bob_start:]) == [
            {"op": "typing", "conv": ids.conv, "user": ids.user}
        ]

    fz.live.run(burst())
