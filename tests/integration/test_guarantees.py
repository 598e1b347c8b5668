"""The contract's guarantees G2-G5, checked against a real server process.

G1 (SIGKILL mid-stream) and G7 (a consumer that stops reading) live in
tests/adversity; G6 (bad input changes nothing) in test_bad_input.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import (
    Account,
    Frame,
    Peer,
    PeerPool,
    Recorder,
    ServerProcess,
    barrier,
    collect_until,
    durable,
    messages,
)

pytestmark = pytest.mark.timeout(60)

ACK_FIELDS = ("op", "ref", "conv", "seq", "id", "ts")


def _is_message(ref: str) -> Callable[[Frame], bool]:
    return lambda f: f.get("op") == "message" and f.get("ref") == ref


def _send_frame(conv: str, ref: str, text: str, **extra: Any) -> Frame:
    return {"op": "send", "ref": ref, "conv": conv, "kind": "text", "text": text, **extra}


def _ack_fields(ack: Frame) -> dict[str, Any]:
    assert ack["op"] == "ack", ack
    return {k: ack.get(k) for k in ACK_FIELDS}


def _event_key(frame: Frame) -> tuple[Any, ...]:
    """What identifies a durable event, whether delivered live or replayed."""
    return (
        frame["op"],
        frame.get("cursor"),
        frame.get("conv"),
        frame.get("seq"),
        frame.get("user"),
        frame.get("action"),
    )


def _channel(server: ServerProcess, owner: Account, *others: Account) -> dict[str, Any]:
    return server.conversation(owner, "channel", list(others), title="guarantees")


@pytest.fixture(scope="module")
def staff(server: ServerProcess) -> list[Account]:
    """Users shared by this module's tests; each test makes its own conversations and refs."""
    return [server.user() for _ in range(5)]


# --- G2 idempotent send -------------------------------------------------------


async def _resume(
    pool: PeerPool, token: str, cursor: str, device: str = "phone"
) -> tuple[Peer, list[Frame], Frame]:
    """Reconnect with a cursor: the connection, the events replayed, and `synced`."""
    peer = await pool.open(token, device, cursor)
    replay = await collect_until(peer, lambda f: f.get("op") in ("synced", "error"))
    assert replay[-1]["op"] == "synced", replay[-1]
    return peer, replay[:-1], replay[-1]


async def _arrives_live_once(resumed: Peer, sender: Peer, conv: str, ref: str) -> Frame:
    """After a replay, a new message arrives live exactly once, and nothing follows it."""
    after = await sender.send_text(conv, f"live {ref}", ref)
    live = await collect_until(resumed, _is_message(ref))
    assert [f["seq"] for f in durable(live)] == [after["seq"]]
    assert durable(await barrier(resumed)) == []
    return after


async def test_same_ref_twice_returns_first_ack_and_stores_one_message(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    alice, bob = staff[:2]
    conv = _channel(server, alice, bob)["id"]
    async with PeerPool(server) as pool:
        sender = await pool.open(alice.token, "phone")
        watcher = await pool.record(bob.token, "desk")
        first = await sender.send_text(conv, "ship order 1001 today", "g2-same-ref")
        snapshot = server.db_snapshot()

        again = await sender.send_text(conv, "ship order 1001 today", "g2-same-ref")
        changed = await sender.send_text(conv, "a different text, same ref", "g2-same-ref")

        assert _ack_fields(again) == _ack_fields(first)
        assert _ack_fields(changed) == _ack_fields(first)
        assert server.db_snapshot() == snapshot
        await watcher.barrier()
        delivered = [f for f in watcher.frames if _is_message("g2-same-ref")(f)]
        assert len(delivered) == 1, delivered
    stored = [m for m in messages(server, alice.token, conv) if m["ref"] == "g2-same-ref"]
    assert [(m["seq"], m["id"], m["text"]) for m in stored] == [
        (first["seq"], first["id"], "ship order 1001 today")
    ]


async def test_same_ref_sent_twice_without_waiting_stores_one_message(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    alice, bob = staff[:2]
    conv = _channel(server, alice, bob)["id"]
    async with PeerPool(server) as pool:
        phone = await pool.record(alice.token, "phone")
        laptop = await pool.record(alice.token, "laptop")
        frame = _send_frame(conv, "g2-pipelined", "twice at once")
        await asyncio.gather(phone.send(frame), phone.send(frame), laptop.send(frame))
        for device, count in ((phone, 2), (laptop, 1)):
            await device.wait_count(
                lambda f: f.get("ref") == "g2-pipelined" and f["op"] in ("ack", "error"), count
            )
        answers = [
            f
            for d in (phone, laptop)
            for f in d.frames
            if f.get("ref") == "g2-pipelined" and f["op"] in ("ack", "error")
        ]
        assert [f["op"] for f in answers] == ["ack", "ack", "ack"], answers
        assert len({tuple(_ack_fields(a).items()) for a in answers}) == 1, answers
        # The event may follow the ack by a moment (with several writers it waits
        # for the persisted horizon); once there, nothing more comes after it.
        await laptop.wait_count(_is_message("g2-pipelined"), 1)
        await laptop.barrier()
        assert sum(1 for f in laptop.frames if _is_message("g2-pipelined")(f)) == 1
    stored = [m for m in messages(server, bob.token, conv) if m["ref"] == "g2-pipelined"]
    assert len(stored) == 1, stored
    assert (stored[0]["seq"], stored[0]["id"], stored[0]["ts"]) == (
        answers[0]["seq"],
        answers[0]["id"],
        answers[0]["ts"],
    )


async def test_same_ref_after_reconnect_returns_first_ack(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    alice, bob = staff[:2]
    conv = _channel(server, alice, bob)["id"]
    async with PeerPool(server) as pool:
        first_conn = await pool.open(alice.token, "phone")
        first = await first_conn.send_text(conv, "packed", "g2-reconnect")
        await first_conn.close()
        snapshot = server.db_snapshot()

        second_conn = await pool.open(alice.token, "phone")
        again = await second_conn.send_text(conv, "packed", "g2-reconnect")
        other_device = await pool.open(alice.token, "laptop")
        from_laptop = await other_device.send_text(conv, "packed", "g2-reconnect")

    assert _ack_fields(again) == _ack_fields(first)
    assert _ack_fields(from_laptop) == _ack_fields(first)
    assert server.db_snapshot() == snapshot


async def test_same_ref_from_another_sender_is_a_new_message(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    alice, bob = staff[:2]
    conv = _channel(server, alice, bob)["id"]
    async with PeerPool(server) as pool:
        alice_conn = await pool.open(alice.token)
        bob_conn = await pool.open(bob.token)
        from_alice = await alice_conn.send_text(conv, "mine", "g2-shared-ref")
        from_bob = await bob_conn.send_text(conv, "mine too", "g2-shared-ref")
    assert from_bob["op"] == "ack", from_bob
    assert from_bob["seq"] == from_alice["seq"] + 1
    assert from_bob["id"] != from_alice["id"]


async def test_same_ref_after_server_restart_returns_first_ack(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    alice, bob = staff[:2]
    conv = _channel(server, alice, bob)["id"]
    async with PeerPool(server) as pool:
        conn = await pool.open(alice.token)
        first = await conn.send_text(conv, "before the crash", "g2-restart")
    server.restart()
    async with PeerPool(server) as pool:
        conn = await pool.open(alice.token)
        snapshot = server.db_snapshot()
        again = await conn.send_text(conv, "before the crash", "g2-restart")
        assert server.db_snapshot() == snapshot
        following = await conn.send_text(conv, "after the crash", "g2-after-restart")
    assert _ack_fields(again) == _ack_fields(first)
    assert following["seq"] == first["seq"] + 1
    stored = [m["ref"] for m in messages(server, alice.token, conv) if m["sender"] == alice.id]
    assert stored == ["g2-restart", "g2-after-restart"]


# --- G3 order -----------------------------------------------------------------


async def test_concurrent_senders_every_connection_sees_gapless_seq_order(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    senders, watcher = staff[:4], staff[4]
    created = server.conversation(senders[0], "channel", [*senders[1:], watcher], title="g3")
    conv, start = created["id"], created["last_seq"]
    per_sender = 60
    total = per_sender * len(senders)

    def is_conv_message(f: Frame) -> bool:
        return f.get("op") == "message" and f.get("conv") == conv

    async with PeerPool(server) as pool:
        sending = [await pool.record(s.token, "g3-sender") for s in senders]
        watching = [await pool.record(watcher.token, f"g3-watch-{i}") for i in range(2)]

        async def pump(index: int, conn: Recorder) -> None:
            for n in range(per_sender):
                await conn.send(_send_frame(conv, f"g3-{index}-{n}", f"sender {index} line {n}"))

        await asyncio.gather(*(pump(i, c) for i, c in enumerate(sending)))
        for conn in [*sending, *watching]:
            await conn.wait_count(is_conv_message, total, timeout_s=30)
        for conn in sending:
            await conn.wait_count(lambda f: f.get("op") in ("ack", "error"), per_sender)

        expected = list(range(start + 1, start + total + 1))
        for conn in [*sending, *watching]:
            seen = [f["seq"] for f in conn.frames if is_conv_message(f)]
            assert seen == expected, f"gap, repeat or disorder: {_first_difference(seen, expected)}"
        acks = {f["ref"]: f for c in sending for f in c.frames if f.get("op") in ("ack", "error")}
        assert all(a["op"] == "ack" for a in acks.values()), [
            a for a in acks.values() if a["op"] != "ack"
        ]
        live = {f["ref"]: f for f in watching[0].frames if is_conv_message(f)}
        assert {ref: a["seq"] for ref, a in acks.items()} == {
            ref: m["seq"] for ref, m in live.items()
        }

    history = [m for m in messages(server, watcher.token, conv) if m["seq"] > start]
    assert [(m["seq"], m["ref"], m["id"]) for m in history] == [
        (m["seq"], m["ref"], m["id"]) for m in sorted(live.values(), key=lambda m: m["seq"])
    ]
    per_sender_order = {s.id: [m["ref"] for m in history if m["sender"] == s.id] for s in senders}
    for index, sender in enumerate(senders):
        assert per_sender_order[sender.id] == [f"g3-{index}-{n}" for n in range(per_sender)]


def _first_difference(seen: list[int], expected: list[int]) -> str:
    for i, (a, b) in enumerate(zip(seen, expected, strict=False)):
        if a != b:
            return f"at index {i}: got seq {a}, expected {b} (got {len(seen)} of {len(expected)})"
    return f"got {len(seen)} messages, expected {len(expected)}"


# --- G4 resume ----------------------------------------------------------------


async def test_resume_delivers_exactly_the_missed_events_then_synced(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    alice, bob, carol = staff[:3]
    conv = server.conversation(alice, "channel", [bob, carol], title="g4")["id"]
    async with PeerPool(server) as pool:
        phone = await pool.open(alice.token, "phone")
        desk = await pool.record(alice.token, "desk")
        bob_conn = await pool.open(bob.token, "bob")
        carol_conn = await pool.open(carol.token, "carol")

        await bob_conn.send_text(conv, "before the gap", "g4-before")
        seen = await collect_until(phone, _is_message("g4-before"))
        cursor = durable(seen)[-1]["cursor"]
        await desk.wait_for(_is_message("g4-before"))
        mark = len(desk.frames)
        await phone.close()

        m1 = await bob_conn.send_text(conv, "missed one", "g4-m1")
        m2 = await carol_conn.send_text(conv, "missed two", "g4-m2")
        await desk.send({"op": "read", "conv": conv, "seq": m2["seq"]})
        await desk.barrier()
        await bob_conn.send({"op": "read", "conv": conv, "seq": m2["seq"]})
        await barrier(bob_conn)
        await bob_conn.send({"op": "recall", "ref": "g4-recall", "conv": conv, "seq": m1["seq"]})
        assert (await bob_conn.recv_ack("g4-recall"))["op"] == "ack"
        last = await carol_conn.send_text(conv, "last missed", "g4-last")
        await desk.wait_for(_is_message("g4-last"))
        await desk.barrier()
        expected = durable(desk.frames[mark:])

        resumed, got, synced = await _resume(pool, alice.token, cursor)
        assert isinstance(synced.get("cursor"), str)
        assert [f for f in got if f["op"] not in ("message", "recalled", "read", "member")] == []

        assert [_event_key(f) for f in got] == [_event_key(f) for f in expected]
        ops = [(f["op"], f.get("seq"), f.get("user")) for f in got]
        assert ("message", m1["seq"], None) in ops
        assert ("message", m2["seq"], None) in ops
        assert ("message", last["seq"], None) in ops
        assert ("read", m2["seq"], alice.id) in ops, "own read mark from another device missing"
        assert ("recalled", m1["seq"], None) in ops
        replayed_m1 = next(f for f in got if f["op"] == "message" and f["seq"] == m1["seq"])
        assert replayed_m1["recalled"] is True
        assert not replayed_m1.get("text"), "a recalled message was replayed with its content"

        assert durable(await barrier(resumed)) == [], "events delivered twice after synced"
        await _arrives_live_once(resumed, bob_conn, conv, "g4-after")


async def test_resume_from_synced_cursor_replays_nothing(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    alice, bob = staff[:2]
    conv = _channel(server, alice, bob)["id"]
    async with PeerPool(server) as pool:
        bob_conn = await pool.open(bob.token)
        await bob_conn.send_text(conv, "one", "g4-sync-1")
        first = await pool.open(alice.token, "phone")
        _, replay, synced = await _resume(pool, alice.token, first.welcome["cursor"])
        assert replay == []
        _, replay, _ = await _resume(pool, alice.token, synced["cursor"], "tablet")
        assert replay == []


async def test_resume_after_restart_delivers_missed_events_once(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    alice, bob = staff[:2]
    conv = _channel(server, alice, bob)["id"]
    async with PeerPool(server) as pool:
        phone = await pool.open(alice.token, "phone")
        desk = await pool.record(alice.token, "desk")
        bob_conn = await pool.open(bob.token)
        await bob_conn.send_text(conv, "seen", "g4r-seen")
        cursor = durable(await collect_until(phone, _is_message("g4r-seen")))[-1]["cursor"]
        await desk.wait_for(_is_message("g4r-seen"))
        mark = len(desk.frames)
        await phone.close()

        acks = [await bob_conn.send_text(conv, f"missed {i}", f"g4r-{i}") for i in range(3)]
        await desk.send({"op": "read", "conv": conv, "seq": acks[1]["seq"]})
        await bob_conn.send(
            {"op": "recall", "ref": "g4r-recall", "conv": conv, "seq": acks[0]["seq"]}
        )
        assert (await bob_conn.recv_ack("g4r-recall"))["op"] == "ack"
        await desk.wait_for(lambda f: f.get("op") == "recalled")
        await desk.barrier()
        expected = durable(desk.frames[mark:])
    assert {f["op"] for f in expected} >= {"message", "read", "recalled"}

    server.restart()

    async with PeerPool(server) as pool:
        resumed, replay, _ = await _resume(pool, alice.token, cursor)
        assert [_event_key(f) for f in replay] == [_event_key(f) for f in expected]
        assert durable(await barrier(resumed)) == []

        bob_conn = await pool.open(bob.token)
        after = await _arrives_live_once(resumed, bob_conn, conv, "g4r-after")
        assert after["seq"] == acks[-1]["seq"] + 1, "seq continues without a gap after restart"


async def test_resume_while_messages_flow_has_no_gap_or_repeat(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    alice, bob = staff[:2]
    created = _channel(server, alice, bob)
    conv = created["id"]
    async with PeerPool(server) as pool:
        first = await pool.open(alice.token, "phone")
        cursor = first.welcome["cursor"]
        await first.close()
        bob_conn = await pool.record(bob.token)
        for i in range(100):
            await bob_conn.send(_send_frame(conv, f"flow-pre-{i}", f"pre {i}"))

        async def pump() -> None:
            for i in range(200):
                await bob_conn.send(_send_frame(conv, f"flow-{i}", f"during {i}"))
                if i % 20 == 0:
                    await asyncio.sleep(0)

        pumping = asyncio.create_task(pump())
        resumed = await pool.record(alice.token, "phone", cursor)
        await pumping
        await bob_conn.wait_count(lambda f: f.get("op") == "ack", 300)
        last_seq = max(f["seq"] for f in bob_conn.frames if f.get("op") == "ack")
        await resumed.wait_for(
            lambda f: f.get("op") == "message" and f.get("seq") == last_seq, timeout_s=30
        )
        await resumed.barrier()

    seqs = [f["seq"] for f in resumed.frames if f.get("op") == "message" and f["conv"] == conv]
    assert seqs == list(range(created["last_seq"] + 1, last_seq + 1)), _first_difference(
        seqs, list(range(created["last_seq"] + 1, last_seq + 1))
    )
    assert sum(1 for f in resumed.frames if f.get("op") == "synced") == 1
    cursors = [f["cursor"] for f in durable(resumed.frames)]
    assert len(cursors) == len(set(cursors)), "an event was delivered twice"


async def test_resume_after_removal_replays_the_removal_but_nothing_later(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    alice, bob, carol = staff[:3]
    conv = server.conversation(alice, "channel", [bob, carol], title="removal")["id"]
    async with PeerPool(server) as pool:
        bob_phone = await pool.open(bob.token, "phone")
        cursor = bob_phone.welcome["cursor"]
        await bob_phone.close()
        alice_conn = await pool.open(alice.token)
        await alice_conn.send_text(conv, "while bob is away", "rm-before")
        with server.http(alice.token) as client:
            assert client.delete(f"/api/conversations/{conv}/members/{bob.id}").status_code == 200
        await alice_conn.send_text(conv, "bob must not see this", "rm-after")

        resumed, replay, _ = await _resume(pool, bob.token, cursor)
        in_conv = [
            (f["op"], f.get("ref"), f.get("action")) for f in replay if f.get("conv") == conv
        ]
        assert ("message", "rm-before", None) in in_conv
        assert ("member", None, "removed") in in_conv
        removed_at = in_conv.index(("member", None, "removed"))
        later = [e for e in in_conv[removed_at + 1 :] if e[0] == "message" and e[1] is not None]
        assert later == [], f"a removed member was replayed later messages: {later}"
        assert "must not see" not in str(replay)
        await alice_conn.send({"op": "typing", "conv": conv})
        await alice_conn.send_text(conv, "nor this", "rm-live")
        leaked = [f for f in await barrier(resumed) if f.get("conv") == conv]
        assert leaked == [], "a removed member still gets the conversation's live events"


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "", "v2.1", "v1.", "v1.-5", "v1.1e3", "v1.99999999999", "x" * 100],
    ids=[
        "garbage",
        "empty",
        "other-version",
        "no-position",
        "negative",
        "exponent",
        "future",
        "long",
    ],
)
async def test_unservable_cursor_gets_cursor_expired(
    server: ServerProcess, staff: list[Account], cursor: str
) -> None:
    alice, bob = staff[:2]
    conv = _channel(server, alice, bob)["id"]
    async with PeerPool(server) as pool:
        bob_conn = await pool.open(bob.token)
        await bob_conn.send_text(conv, "something to replay", f"exp-{len(cursor)}-{cursor[:8]}")
        conn = await pool.open(alice.token, "phone", hello=False)
        await conn.send({"op": "hello", "token": alice.token, "device": "phone", "cursor": cursor})
        frames = await collect_until(
            conn, lambda f: f.get("op") in ("error", "synced"), timeout_s=5
        )
        assert frames[-1].get("code") == "cursor_expired", frames
        assert durable(frames) == [], "events were sent for a cursor the server cannot serve"
        fresh = await pool.open(alice.token, "phone", None)
        assert isinstance(fresh.welcome.get("cursor"), str)


async def test_null_cursor_gets_welcome_and_no_backlog(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    alice, bob = staff[:2]
    conv = _channel(server, alice, bob)["id"]
    async with PeerPool(server) as pool:
        bob_conn = await pool.open(bob.token)
        for i in range(3):
            await bob_conn.send_text(conv, f"old news {i}", f"null-{i}")
        conn = await pool.open(alice.token, "phone", None)
        assert conn.welcome["op"] == "welcome"
        assert conn.welcome["user"]["id"] == alice.id
        assert isinstance(conn.welcome.get("cursor"), str)
        assert durable(await barrier(conn)) == []


# --- G5 every device ----------------------------------------------------------


async def test_every_device_receives_own_sends_and_read_marks(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    alice, bob = staff[:2]
    conv = _channel(server, alice, bob)["id"]
    async with PeerPool(server) as pool:
        phone = await pool.record(alice.token, "phone")
        laptop = await pool.record(alice.token, "laptop")
        bob_conn = await pool.record(bob.token, "bob")

        await phone.send(_send_frame(conv, "g5-own", "sent from the phone"))
        ack = await phone.wait_for(
            lambda f: f.get("ref") == "g5-own" and f["op"] in ("ack", "error")
        )
        assert ack["op"] == "ack", ack
        for device in (phone, laptop, bob_conn):
            message = await device.wait_for(_is_message("g5-own"))
            assert (message["seq"], message["sender"], message["text"]) == (
                ack["seq"],
                alice.id,
                "sent from the phone",
            )

        await bob_conn.send(_send_frame(conv, "g5-bob", "from bob"))
        from_bob = await laptop.wait_for(_is_message("g5-bob"))
        await phone.send({"op": "read", "conv": conv, "seq": from_bob["seq"]})
        for device in (phone, laptop):
            read = await device.wait_for(
                lambda f: f.get("op") == "read" and f.get("user") == alice.id
            )
            assert (read["conv"], read["seq"]) == (conv, from_bob["seq"])
            assert isinstance(read.get("cursor"), str)

        for device in (phone, laptop):
            await device.barrier()
            own = [f for f in device.frames if _is_message("g5-own")(f)]
            assert len(own) == 1, "a device got its own message more or less than once"


async def test_read_that_does_not_advance_is_a_silent_no_op(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    alice, bob = staff[:2]
    conv = _channel(server, alice, bob)["id"]
    async with PeerPool(server) as pool:
        bob_conn = await pool.open(bob.token)
        acks = [await bob_conn.send_text(conv, f"n{i}", f"noop-{i}") for i in range(2)]
        phone = await pool.record(alice.token, "phone")
        laptop = await pool.record(alice.token, "laptop")
        await phone.send({"op": "read", "conv": conv, "seq": acks[1]["seq"]})
        await laptop.wait_for(lambda f: f.get("op") == "read")
        await phone.barrier()
        snapshot = server.db_snapshot()
        mark, mark_phone = len(laptop.frames), len(phone.frames)

        await phone.send({"op": "read", "conv": conv, "seq": acks[0]["seq"]})
        await phone.send({"op": "read", "conv": conv, "seq": acks[1]["seq"]})
        # A read is answered (if at all) after the database saw it, which may be
        # after the pong; give a wrong answer time to show up.
        await asyncio.sleep(0.3)
        await phone.barrier()

        assert [f for f in phone.frames[mark_phone:] if f.get("op") in ("error", "read")] == []
        await laptop.barrier()
        assert durable(laptop.frames[mark:]) == []
        assert server.db_snapshot() == snapshot
