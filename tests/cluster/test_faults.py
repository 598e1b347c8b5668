"""Faults of a two-node cluster: a node killed or frozen, Redis and PostgreSQL restarted.

Each test has a cluster of its own. Loads are bounded in count and time; what
is checked is what the guarantees promise (nothing acked lost, nothing twice,
no gap in any conversation's seq), not how fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from tests.cluster.conftest import Cluster
from tests.stores import pg_rows
from tests.support import Account, Peer, Recorder, ServerProcess

pytestmark = pytest.mark.slow


def _messages(recorder: Recorder, conv: str) -> list[dict[str, Any]]:
    return [f for f in recorder.frames if f.get("op") == "message" and f.get("conv") == conv]


async def _send_all(peer: Peer, conv: str, prefix: str, count: int, acked: dict[str, int]) -> None:
    """Send `count` messages, retrying each `unavailable` with the same ref; record acks."""
    for i in range(count):
        ref = f"{prefix}-{i}"
        for _attempt in range(50):
            answer = await peer.send_text(conv, f"{prefix} {i}", ref)
            if answer["op"] == "ack":
                acked[ref] = answer["seq"]
                break
            assert answer["code"] == "unavailable", answer
            await asyncio.sleep(answer.get("retry_after_s") or 0.2)
        else:
            raise AssertionError(f"{ref} was never stored")


def _stored(cluster: Cluster, conv: str) -> list[tuple[str, int]]:
    return [
        (r[0], r[1])
        for r in pg_rows(
            cluster.url, "SELECT ref, seq FROM messages WHERE conv_id = ? ORDER BY seq", (conv,)
        )
    ]


async def _resume(node: ServerProcess, account: Account, cursor: str | None) -> list[Any]:
    """Everything a client gets on reconnecting with its cursor, up to synced."""
    peer = await Peer.open(node, account.token, cursor=cursor)
    frames = []
    async with asyncio.timeout(20):
        while (frame := await peer.recv(20)).get("op") != "synced":
            frames.append(frame)
    await peer.close()
    return frames


async def test_a_killed_node_loses_nothing_acked(own_cluster: Cluster) -> None:
    one, two = own_cluster.nodes
    amy, bo = one.user(), one.user()
    group = one.conversation(amy, "channel", [bo], title="kill")["id"]
    reader = Recorder(await Peer.open(one, bo.token))
    sender = await Peer.open(two, amy.token)
    acked: dict[str, int] = {}
    sending = asyncio.create_task(_send_all(sender, group, "k", 150, acked))
    await reader.wait_count(lambda f: f.get("op") == "message", 40, timeout_s=20)
    one.kill()  # the reader's node, mid-stream
    await sending
    got = _messages(reader, group)
    cursor = got[-1]["cursor"] if got else None
    rest = [f for f in await _resume(two, bo, cursor) if f.get("op") == "message"]
    seqs = [f["seq"] for f in got + rest]
    assert seqs == sorted(set(seqs)), "nothing twice, in order"
    assert seqs == list(range(1, len(acked) + 1)), "no gap: every acked message arrived"
    assert sorted(acked.values()) == seqs
    assert _stored(own_cluster, group) == sorted(
        ((ref, seq) for ref, seq in acked.items()), key=lambda p: p[1]
    )
    await reader.stop()
    await sender.close()


async def test_a_killed_sender_node_leaves_no_half_written_send(own_cluster: Cluster) -> None:
    one, two = own_cluster.nodes
    amy, bo = one.user(), one.user()
    group = one.conversation(amy, "channel", [bo], title="kill sender")["id"]
    sender = await Peer.open(one, amy.token)
    acked: dict[str, int] = {}
    sending = asyncio.create_task(_send_all(sender, group, "s", 400, acked))
    async with asyncio.timeout(20):
        while len(acked) < 50:  # noqa: ASYNC110 - acks arrive in another task's dict
            await asyncio.sleep(0.005)
    one.kill()
    with contextlib.suppress(ConnectionClosed, AssertionError, TimeoutError):
        await sending
    stored = _stored(own_cluster, group)
    assert [seq for _, seq in stored] == list(range(1, len(stored) + 1)), "gapless"
    assert set(acked.items()) <= set(stored), "every acked send is stored"
    # The rest is resent by the client, through the other node, with the same refs.
    retry = await Peer.open(two, amy.token)
    for ref, _ in stored[-3:]:
        again = await retry.send_text(group, "resent", ref)
        assert again["op"] == "ack" and (ref, again["seq"]) in stored
    await retry.close()
    assert _stored(own_cluster, group) == stored, "the resends stored nothing new"


async def test_redis_down_then_back_delivery_stays_complete(own_cluster: Cluster) -> None:
    one, two = own_cluster.nodes
    amy, bo = one.user(), one.user()
    conv = one.conversation(amy, "direct", [bo])["id"]
    reader = Recorder(await Peer.open(two, bo.token))
    sender = await Peer.open(one, amy.token)
    acked: dict[str, int] = {}
    await _send_all(sender, conv, "up", 10, acked)
    own_cluster.redis.kill()
    await _send_all(sender, conv, "down", 30, acked)
    await reader.wait_count(lambda f: f.get("op") == "message", 40, timeout_s=15)
    own_cluster.redis.restart()
    await asyncio.sleep(3)  # the relays reconnect with back-off of at most 2 s
    started = time.monotonic()
    await _send_all(sender, conv, "again", 10, acked)
    await reader.wait_count(lambda f: f.get("op") == "message", 50, timeout_s=15)
    assert time.monotonic() - started < 15
    seqs = [f["seq"] for f in _messages(reader, conv)]
    assert seqs == list(range(1, 51))
    log = "".join(n.log_path.read_text() for n in own_cluster.nodes if n.log_path)
    assert "falls back to the database" in log
    assert "redis is back" in log
    await reader.stop()
    await sender.close()


async def test_postgres_restart_answers_unavailable_and_heals(own_cluster: Cluster) -> None:
    one, two = own_cluster.nodes
    amy, bo = one.user(), one.user()
    conv = one.conversation(amy, "direct", [bo])["id"]
    reader = Recorder(await Peer.open(two, bo.token))
    sender = await Peer.open(one, amy.token)
    codes: list[str] = []
    acked: dict[str, int] = {}
    restart = asyncio.create_task(asyncio.to_thread(own_cluster.postgres.restart))
    for i in range(200):
        answer = await sender.send_text(conv, f"p {i}", f"p-{i}")
        codes.append(answer["op"] if answer["op"] == "ack" else answer["code"])
        if answer["op"] == "ack":
            acked[f"p-{i}"] = answer["seq"]
        if restart.done() and codes[-1] == "ack" and i > 20:
            break
        await asyncio.sleep(0.02)
    await restart
    assert set(codes) <= {"ack", "unavailable"}, codes
    # Whatever was refused is retried with its ref, and stored exactly once.
    refused = [f"p-{i}" for i, code in enumerate(codes) if code == "unavailable"]
    for ref in refused:
        for _attempt in range(50):
            answer = await sender.send_text(conv, "retried", ref)
            if answer["op"] == "ack":
                acked[ref] = answer["seq"]
                break
            await asyncio.sleep(0.2)
    stored = _stored(own_cluster, conv)
    assert [seq for _, seq in stored] == list(range(1, len(stored) + 1))
    assert sorted(stored) == sorted(acked.items())
    await reader.wait_count(lambda f: f.get("op") == "message", len(stored), timeout_s=20)
    assert [f["seq"] for f in _messages(reader, conv)] == list(range(1, len(stored) + 1))
    await reader.stop()
    await sender.close()


async def test_a_frozen_node_holds_back_others_only_while_its_transaction_lives(
    own_cluster: Cluster,
) -> None:
    one, two = own_cluster.nodes
    amy, bo, cy = one.user(), one.user(), one.user()
    conv = one.conversation(amy, "direct", [bo])["id"]
    busy = one.conversation(cy, "direct", [bo])["id"]
    reader = Recorder(await Peer.open(one, bo.token))
    sender = await Peer.open(one, amy.token)
    frozen_sender = await Peer.open(two, cy.token)
    # Node two writes all the time, so it is often inside a transaction when frozen.
    for i in range(200):
        await frozen_sender.send(
            {"op": "send", "ref": f"f-{i}", "conv": busy, "kind": "text", "text": "busy"}
        )
    await asyncio.sleep(0.05)
    assert two.proc is not None
    two.proc.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        acked: dict[str, int] = {}
        await _send_all(sender, conv, "live", 5, acked)
        try:
            await reader.wait_count(lambda f: f.get("conv") == conv, 5, timeout_s=15)
        except TimeoutError:
            raise AssertionError(f"held back: {_sessions(own_cluster)}") from None
        # At worst the database ends the frozen transaction (5 s) and the horizon moves.
        assert time.monotonic() - started < 12
    finally:
        two.proc.send_signal(signal.SIGCONT)
    stored = _stored(own_cluster, busy)
    assert [seq for _, seq in stored] == list(range(1, len(stored) + 1))
    await reader.stop()
    for peer in (sender, frozen_sender):
        with contextlib.suppress(Exception):
            await peer.close()


def _sessions(cluster: Cluster) -> list[tuple[Any, ...]]:
    """What each database session is doing, and the locks it waits for: why a
    delivery is held back, when one is."""
    return pg_rows(
        cluster.url,
        "SELECT a.pid, a.application_name, a.state, a.wait_event_type, a.wait_event,"
        " now() - a.xact_start, left(a.query, 120),"
        " (SELECT string_agg(l.locktype || ':' || coalesce(l.objid::text, '') || ':'"
        "  || l.mode || ':' || l.granted::text, ' ') FROM pg_locks l WHERE l.pid = a.pid)"
        " FROM pg_stat_activity a WHERE a.datname = current_database()",
        (),
    )


async def test_catching_up_from_the_database_never_overflows_a_reader_that_keeps_up(
    own_cluster: Cluster,
) -> None:
    """With Redis down, a node learns of the other's events only from the database,
    a poll's worth at a time: hundreds of events for one reader at once. A reader
    that reads everything must get them all, however small its queue, and so must
    one that resumes from far back while that goes on."""
    one = own_cluster.nodes[0]
    small = own_cluster.add_node("--ws-queue-frames", "64")
    amy, bo = one.user(), one.user()
    conv = one.conversation(amy, "channel", [bo], title="catch-up")["id"]
    reader = Recorder(await Peer.open(small, bo.token))
    sender = Recorder(await Peer.open(one, amy.token))
    own_cluster.redis.kill()
    count, window = 600, 48
    late: Recorder | None = None
    for i in range(count):
        if i >= window:
            await sender.wait_count(lambda f: f.get("op") == "ack", i - window + 1, 30)
        if i == count // 2:  # resumes from the first message: a backlog, then catch-ups
            first = await reader.wait_for(lambda f: f.get("conv") == conv, timeout_s=15)
            late = Recorder(await Peer.open(small, bo.token, "late", first["cursor"]))
        await sender.send({"op": "send", "ref": f"c-{i}", "conv": conv, "kind": "text",
                           "text": f"line {i} " + "x" * 200})  # fmt: skip
    await sender.wait_count(lambda f: f.get("op") == "ack", count, 30)
    try:
        await reader.wait_count(lambda f: f.get("conv") == conv, count, timeout_s=30)
    except AssertionError:
        raise AssertionError(f"the reader was dropped: {reader.close_code}") from None
    assert [f["seq"] for f in _messages(reader, conv)] == list(range(1, count + 1))
    assert late is not None
    try:
        await late.wait_count(lambda f: f.get("conv") == conv, count - 1, timeout_s=30)
    except AssertionError:
        raise AssertionError(f"the resuming reader was dropped: {late.close_code}") from None
    assert [f["seq"] for f in _messages(late, conv)] == list(range(2, count + 1))
    assert small.log_path is not None and "too slow" not in small.log_path.read_text()
    for recorder in (reader, late, sender):
        await recorder.stop()
