"""G1 and G7 under stress: SIGKILL in the middle of a send stream, and a reader that stalls.

Every wait is bounded in time and every load loop in count.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import orjson
import pytest
from websockets.exceptions import ConnectionClosed

from tests.support import (
    Frame,
    Peer,
    PeerPool,
    RawWebSocket,
    ServerProcess,
    durable,
    messages,
    start_server,
)

pytestmark = pytest.mark.timeout(120)

STREAM = 2000
KILL_AFTER_ACKS = 150


def _send_frame(conv: str, ref: str, text: str) -> Frame:
    return {"op": "send", "ref": ref, "conv": conv, "kind": "text", "text": text}


async def _stream_until_killed(
    server: ServerProcess, token: str, conv: str, refs: list[str]
) -> dict[str, Frame]:
    """Pipeline sends without waiting; SIGKILL the server once some acks are in.

    Returns every ack the client received, including those that were already on
    the wire when the server died: each one is a promise the server made.
    """
    conn = await Peer.open(server, token, "g1")
    acks: dict[str, Frame] = {}

    async def pump() -> None:
        # Small pauses keep group commits small, so the kill lands while
        # batches are being written rather than between two huge ones.
        with contextlib.suppress(ConnectionClosed):
            for i, ref in enumerate(refs):
                await conn.send(_send_frame(conv, ref, f"order line {ref}"))
                if i % 20 == 19:
                    await asyncio.sleep(0.002)

    def take(frame: Frame) -> None:
        assert frame["op"] != "error", frame
        if frame["op"] == "ack":
            acks[frame["ref"]] = frame

    pumping = asyncio.create_task(pump())
    try:
        async with asyncio.timeout(30):
            while len(acks) < KILL_AFTER_ACKS:
                take(await conn.recv(10))
        server.kill()
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            async with asyncio.timeout(10):
                while True:
                    take(await conn.recv(5))
    finally:
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
            await pumping
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.close(), 2)
    return acks


@pytest.mark.slow
async def test_every_acked_message_survives_sigkill_mid_stream(own_server: ServerProcess) -> None:
    server = own_server
    server.start()
    server.create_admin()
    alice, bob = server.user(), server.user()
    conv = server.conversation(alice, "channel", [bob], title="g1")["id"]
    refs = [f"g1-{i:05d}" for i in range(STREAM)]

    acks = await _stream_until_killed(server, alice.token, conv, refs)
    assert len(acks) >= KILL_AFTER_ACKS
    server.start()

    stored = messages(server, bob.token, conv)
    assert [m["seq"] for m in stored] == list(range(1, len(stored) + 1)), "seq gap after crash"
    by_ref = {m["ref"]: m for m in stored if m["sender"] == alice.id}
    lost = sorted(ref for ref in acks if ref not in by_ref)
    assert lost == [], f"{len(lost)} acked messages lost after SIGKILL, e.g. {lost[:5]}"
    moved = [
        (ref, ack["seq"], by_ref[ref]["seq"])
        for ref, ack in acks.items()
        if (by_ref[ref]["seq"], by_ref[ref]["id"]) != (ack["seq"], ack["id"])
    ]
    assert moved == [], f"acked messages stored under another seq or id: {moved[:5]}"
    rows = server.db_rows(
        "SELECT ref, seq FROM messages WHERE conv_id = ? AND sender_id = ?", conv, alice.id
    )
    assert {ref: seq for ref, seq in rows} == {ref: m["seq"] for ref, m in by_ref.items()}

    # Resending everything after the crash must store each ref exactly once (G2).
    async with PeerPool(server) as pool:
        conn = await pool.record(alice.token, "g1-retry")
        for i, ref in enumerate(refs):
            await conn.send(_send_frame(conv, ref, f"order line {ref}"))
            if i % 200 == 0:
                await asyncio.sleep(0)
        await conn.wait_count(lambda f: f.get("op") in ("ack", "error"), STREAM, timeout_s=60)
    retried = {f["ref"]: f for f in conn.frames if f.get("op") in ("ack", "error")}
    assert [f for f in retried.values() if f["op"] != "ack"] == []
    changed = [ref for ref, ack in acks.items() if retried[ref]["seq"] != ack["seq"]]
    assert changed == [], f"a resent ref got a different seq than its first ack: {changed[:5]}"
    final = messages(server, bob.token, conv)
    assert [m["seq"] for m in final] == list(range(1, len(final) + 1))
    sent = [m["ref"] for m in final if m["sender"] == alice.id]
    assert sorted(sent) == refs, "each ref must be stored exactly once"


# --- G7 -----------------------------------------------------------------------

QUEUE_FRAMES = 64
FLOOD = 3000
BODY = "x" * 4000
# The healthy sender keeps few sends in flight: its acks and its own echoes
# share the same small queue, and it must never look slow itself.
WINDOW = 16
RSS_GROWTH_LIMIT_KB = 60 * 1024


@pytest.fixture(scope="module")
def small_queue_server(
    tmp_path_factory: pytest.TempPathFactory, store: str
) -> Iterator[ServerProcess]:
    proc = start_server(
        tmp_path_factory.mktemp("small-queue"),
        "--rate-limits", "off", "--ws-queue-frames", str(QUEUE_FRAMES),
        store=store,
    )  # fmt: skip
    yield proc
    proc.kill()


def _is_answer(frame: Frame) -> bool:
    return frame.get("op") in ("ack", "error")


async def _sample_rss(server: ServerProcess, peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], server.rss_kb())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)


@pytest.mark.slow
async def test_stalled_reader_is_dropped_memory_stays_bounded_and_it_catches_up(
    small_queue_server: ServerProcess,
) -> None:
    server = small_queue_server
    alice, sloth = server.user(), server.user()
    created = server.conversation(alice, "channel", [sloth], title="g7")
    conv, base = created["id"], created["last_seq"]

    stalled = RawWebSocket.connect(server.port, rcvbuf=4096)
    try:
        stalled.send_text(
            orjson.dumps({"op": "hello", "token": sloth.token, "device": "stalled",
                          "cursor": None}).decode()
        )  # fmt: skip
        welcome = stalled.recv_json()
        assert welcome["op"] == "welcome", welcome

        rss_before = server.rss_kb()
        peak = [rss_before]
        stop = asyncio.Event()
        sampler = asyncio.create_task(_sample_rss(server, peak, stop))
        async with PeerPool(server) as pool:
            sender = await pool.record(alice.token, "sender")
            for i in range(FLOOD):
                if i >= WINDOW:
                    await sender.wait_count(_is_answer, i - WINDOW + 1, 30)
                await sender.send(_send_frame(conv, f"g7-{i:05d}", f"{i:05d} {BODY}"))
            await sender.wait_count(_is_answer, FLOOD, 30)
            stop.set()
            await sampler
            errors = [f for f in sender.frames if f.get("op") == "error"]
            assert errors == []
            assert not sender.closed, f"the sender was dropped too ({sender.close_code})"

            growth_kb = peak[0] - rss_before
            assert growth_kb < RSS_GROWTH_LIMIT_KB, f"server RSS grew by {growth_kb} KiB"

            frames, close_code = await asyncio.to_thread(stalled.read_to_end, 20.0)
            assert close_code in (4008, None), f"closed with {close_code}, expected 4008"
            got = [f["seq"] for f in frames if f.get("op") == "message"]
            assert got == list(range(base + 1, base + 1 + len(got))), "stalled socket got gaps"
            assert len(got) < FLOOD, "the stalled socket was never dropped while behind"

            cursor = (durable(frames) or [welcome])[-1]["cursor"]
            resumed = await pool.record(sloth.token, "stalled", cursor)
            await resumed.wait_for(lambda f: f.get("op") in ("synced", "error"), timeout_s=60)
            await resumed.barrier(timeout_s=30)
    finally:
        stalled.close()

    replay = [f for f in resumed.frames if f.get("op") == "message"]
    assert [f.get("op") for f in resumed.frames if f.get("op") == "error"] == []
    seqs = [f["seq"] for f in replay]
    expected = list(range(base + 1 + len(got), base + FLOOD + 1))
    assert seqs == expected, f"catch-up after the drop: {len(seqs)} of {len(expected)} in order"
    assert all(f["text"].endswith(BODY) for f in replay)


# --- a socket cut in the middle of a frame --------------------------------------


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
async def test_socket_cut_mid_frame_stores_nothing_and_server_carries_on(
    small_queue_server: ServerProcess, reset: bool
) -> None:
    server = small_queue_server
    alice, bob = server.user(), server.user()
    conv = server.conversation(alice, "channel", [bob], title="cut")["id"]
    async with PeerPool(server) as pool:
        watcher = await pool.record(bob.token)
        before = server.db_snapshot()
        raw = RawWebSocket.connect(server.port)
        try:
            raw.send_text(
                orjson.dumps({"op": "hello", "token": alice.token, "device": "cut",
                              "cursor": None}).decode()
            )  # fmt: skip
            assert raw.recv_json()["op"] == "welcome"
            frame = _send_frame(conv, "cut-mid-frame", "half a message " * 100)
            raw.send_text(orjson.dumps(frame).decode(), cut_after=700)
            await asyncio.sleep(0.2)
        finally:
            raw.close(reset=reset)
        await asyncio.sleep(0.3)
        assert durable(await watcher.barrier()) == []
        assert server.db_snapshot() == before
        alice_again = await pool.open(alice.token, "cut")
        ack = await alice_again.send_text(conv, "whole this time", "cut-after")
        assert ack["op"] == "ack", ack


async def test_a_client_pipelining_past_its_send_window_gets_every_answer(
    small_queue_server: ServerProcess,
) -> None:
    """Past the sends a connection may have in flight, reading pauses; nothing is lost."""
    server = small_queue_server
    alice, bob = server.user(), server.user()
    conv = server.conversation(alice, "channel", [bob], title="window")["id"]
    sends = 10 * (QUEUE_FRAMES // 4)  # ten times the window of this queue size
    async with PeerPool(server) as pool:
        sender = await pool.record(alice.token, "pipeliner")
        for i in range(sends):
            await sender.send(_send_frame(conv, f"w-{i:04d}", f"{i}"))
        await sender.wait_count(_is_answer, sends, 30)
        assert not sender.closed
    acks = [f for f in sender.frames if f.get("op") == "ack"]
    assert sorted(a["ref"] for a in acks) == [f"w-{i:04d}" for i in range(sends)]
    assert sorted(a["seq"] for a in acks) == list(range(acks[0]["seq"], acks[0]["seq"] + sends))
