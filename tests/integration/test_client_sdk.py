"""The SDK against a real server: delivery, devices, restarts, resume, errors.

Each test drives `orderchat.client` exactly as an application would, and
checks what it saw against the server's own HTTP history.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import httpx
import pytest

from orderchat.client import (
    Ack,
    BadRequestError,
    Client,
    ClientOptions,
    Event,
    ForbiddenError,
    MembersChanged,
    Message,
    MessageReceived,
    NotFoundError,
    ReadMarked,
    Session,
    SessionRevokedError,
    TooLargeError,
    UnauthorizedError,
    login,
)
from orderchat.core.errors import ErrorCode
from tests.support import Account, ServerProcess, TcpRelay

# Quick reconnects and heartbeats, so a dropped connection heals within a test.
FAST = ClientOptions(
    device="test",
    connect_timeout_s=10.0,
    ack_timeout_s=60.0,
    heartbeat_interval_s=1.0,
    dead_after_s=5.0,
    backoff_initial_s=0.05,
    backoff_max_s=0.5,
)
WAIT_S = 10.0

E = TypeVar("E", bound=Event)


async def session_for(server: ServerProcess, account: Account) -> Session:
    return await login(server.base_url, account.username, account.password)


def device(name: str) -> ClientOptions:
    return dataclasses.replace(FAST, device=name)


async def next_of(stream: AsyncIterator[Event], kind: type[E], timeout_s: float = WAIT_S) -> E:
    """The next event of this kind, skipping others."""
    async with asyncio.timeout(timeout_s):
        async for event in stream:
            if isinstance(event, kind):
                return event
    raise AssertionError("the event stream ended")


async def collect_texts(
    stream: AsyncIterator[Event], conv: str, count: int, sink: list[Message]
) -> None:
    """Append messages of `conv` to `sink` until it holds `count` text messages."""
    texts = 0
    async for event in stream:
        if isinstance(event, MessageReceived) and event.message.conv == conv:
            sink.append(event.message)
            texts += event.message.kind == "text"
            if texts == count:
                return


def assert_consecutive(messages: list[Message]) -> None:
    """Seqs with no gap and no repeat: what G3 and exactly-once delivery promise."""
    seqs = [m.seq for m in messages]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


def history(server: ServerProcess, account: Account, conv: str) -> list[dict[str, Any]]:
    """The whole conversation over HTTP, in seq order."""
    found: list[dict[str, Any]] = []
    with server.http(account.token) as http:
        while True:
            after = found[-1]["seq"] if found else 0
            resp = http.get(
                f"/api/conversations/{conv}/messages", params={"after": after, "limit": 200}
            )
            assert resp.status_code == 200, resp.text
            page = resp.json()["messages"]
            found.extend(page)
            if len(page) < 200:
                return found


def assert_gapless_and_once(messages: list[dict[str, Any]], texts: list[str]) -> None:
    seqs = [m["seq"] for m in messages]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    stored = [m["text"] for m in messages if m["kind"] == "text"]
    for text in texts:
        assert stored.count(text) == 1, (text, stored.count(text))


async def test_send_and_receive_between_two_users(server: ServerProcess) -> None:
    ann, bob = server.user("sales"), server.user("warehouse")
    conv = server.conversation(ann, "channel", [bob], title="sdk-two-users")["id"]
    async with (
        Client(await session_for(server, ann), options=FAST) as a,
        Client(await session_for(server, bob), options=FAST) as b,
    ):
        a_events, b_events = a.events(), b.events()
        ack = await a.send(conv, "hello bob")
        assert isinstance(ack, Ack)
        assert ack.conv == conv
        assert ack.seq >= 1

        got = (await next_of(b_events, MessageReceived)).message
        assert (got.conv, got.seq, got.id, got.sender) == (conv, ack.seq, ack.id, ann.id)
        assert got.text == "hello bob"
        assert got.kind == "text"
        assert not got.recalled
        assert got.ref == ack.ref

        reply = await b.send(conv, "hi ann", reply_to=ack.seq)
        own = (await next_of(a_events, MessageReceived)).message
        assert own.seq == ack.seq  # ann's own send reaches ann too
        seen = (await next_of(a_events, MessageReceived)).message
        assert (seen.seq, seen.text, seen.reply_to) == (reply.seq, "hi ann", ack.seq)

        # Sending moved bob's own read mark to his reply; a newer message can be read.
        third = await a.send(conv, "third")
        await b.mark_read(conv, third.seq)
        read = await next_of(a_events, ReadMarked)
        assert (read.conv, read.user, read.seq) == (conv, bob.id, third.seq)
        assert a.cursor is not None
        assert a.last_seqs[got.conv] == third.seq


async def test_urgent_messages_and_staff_notes_go_both_ways(server: ServerProcess) -> None:
    ann, bob = server.user("sales"), server.user("warehouse")
    conv = server.conversation(ann, "channel", [bob], title="sdk-urgent")["id"]
    async with (
        Client(await session_for(server, ann), options=FAST) as a,
        Client(await session_for(server, bob), options=FAST) as b,
    ):
        b_events = b.events()
        urgent = await a.send(conv, "out of stock, call the customer", urgent=True)
        got = (await next_of(b_events, MessageReceived)).message
        assert (got.seq, got.urgent, got.internal) == (urgent.seq, True, False)
        note = await a.send(conv, "plain note", internal=True)
        got = (await next_of(b_events, MessageReceived)).message
        assert (got.seq, got.urgent, got.internal) == (note.seq, False, True)
    stored = {m["seq"]: m for m in history(server, ann, conv)}
    assert stored[urgent.seq].get("urgent") is True and "urgent" not in stored[note.seq]


async def test_membership_changes_arrive_as_events(server: ServerProcess) -> None:
    ann, bob = server.user("sales"), server.user("warehouse")
    async with (
        Client(await session_for(server, ann), options=FAST) as a,
        Client(await session_for(server, bob), options=FAST) as b,
    ):
        conv = await a.api.create_conversation("channel", [bob.id], title="sdk-members")
        assert conv.kind == "channel"
        assert set(conv.members) == {ann.id, bob.id}
        for stream in (a.events(), b.events()):
            event = await next_of(stream, MembersChanged)
            assert (event.conv, event.action) == (conv.id, "added")
            assert bob.id in event.users
            assert event.conversation is not None
            assert event.conversation.title == "sdk-members"
        listed = {c.id: c for c in await b.api.conversations()}
        assert listed[conv.id].title == "sdk-members"


async def test_every_device_of_a_user_gets_events(server: ServerProcess) -> None:
    ann, bob = server.user("sales"), server.user("warehouse")
    conv = server.conversation(bob, "channel", [ann], title="sdk-devices")["id"]
    ann_session = await session_for(server, ann)
    async with (
        Client(ann_session, options=device("phone")) as phone,
        Client(ann_session, options=device("desk")) as desk,
        Client(await session_for(server, bob), options=FAST) as b,
    ):
        phone_events, desk_events = phone.events(), desk.events()
        ack = await b.send(conv, "to every device")
        for stream in (phone_events, desk_events):
            message = (await next_of(stream, MessageReceived)).message
            assert (message.seq, message.text) == (ack.seq, "to every device")

        await desk.mark_read(conv, ack.seq)
        for stream in (phone_events, desk_events):
            read = await next_of(stream, ReadMarked)
            assert (read.user, read.seq) == (ann.id, ack.seq)

        mine = await phone.send(conv, "sent from the phone")
        for stream in (phone_events, desk_events):
            message = (await next_of(stream, MessageReceived)).message
            assert (message.seq, message.sender) == (mine.seq, ann.id)


async def test_resume_after_restart_loses_nothing_and_posts_nothing_twice(
    own_server: ServerProcess,
) -> None:
    own_server.start()
    own_server.create_admin()
    ann, bob = own_server.user("sales"), own_server.user("warehouse")
    conv = own_server.conversation(ann, "channel", [bob], title="sdk-restart")["id"]
    texts = [f"restart-{i}" for i in range(90)]
    received: list[Message] = []
    async with (
        Client(await session_for(own_server, ann), options=FAST) as a,
        Client(await session_for(own_server, bob), options=FAST) as b,
    ):
        collector = asyncio.create_task(collect_texts(b.events(), conv, len(texts), received))
        try:
            acked = [await a.send(conv, text) for text in texts[:30]]
            # In flight when the server dies: stored or not, the ack may be lost.
            in_flight = [asyncio.create_task(a.send(conv, text)) for text in texts[30:60]]
            await asyncio.sleep(0)
            await asyncio.to_thread(own_server.kill)
            # Sent while the server is down: kept and written after reconnecting.
            queued = [asyncio.create_task(a.send(conv, text)) for text in texts[60:]]
            await asyncio.sleep(0.3)
            assert not any(task.done() for task in queued)
            await asyncio.to_thread(own_server.start)
            async with asyncio.timeout(60):
                acked += await asyncio.gather(*in_flight, *queued)
                await collector
        finally:
            collector.cancel()

    stored = history(own_server, ann, conv)
    assert_gapless_and_once(stored, texts)
    by_text = {m["text"]: m for m in stored}
    for text, ack in zip(texts, acked, strict=True):
        assert (by_text[text]["seq"], by_text[text]["ref"]) == (ack.seq, ack.ref)
    # Bob's application saw every message once, in order, across the restart.
    assert_consecutive(received)
    assert [m.seq for m in received] == [m["seq"] for m in stored[received[0].seq - 1 :]]
    assert sorted(m.text for m in received if m.kind == "text") == sorted(texts)


async def test_stream_with_forced_reconnects_is_delivered_once_in_order(
    server: ServerProcess,
) -> None:
    ann, bob = server.user("sales"), server.user("warehouse")
    conv = server.conversation(ann, "channel", [bob], title="sdk-stream")["id"]
    count = 200
    texts = [f"stream-{i:03d}" for i in range(count)]
    received: list[Message] = []
    async with (
        Client(await session_for(server, ann), options=FAST) as a,
        Client(await session_for(server, bob), options=FAST) as b,
    ):
        collector = asyncio.create_task(collect_texts(b.events(), conv, count, received))
        try:
            acks: list[Ack] = []
            for start in range(0, count, 20):
                batch = texts[start : start + 20]
                acks += await asyncio.gather(*(a.send(conv, text) for text in batch))
                if start in (80, 140):
                    # Drop both ends mid-stream; both resume by themselves.
                    await b.reconnect()
                    await a.reconnect()
            async with asyncio.timeout(30):
                await collector
        finally:
            collector.cancel()
        assert_consecutive(received)
        by_seq = {ack.seq: text for ack, text in zip(acks, texts, strict=True)}
        assert [m.text for m in received if m.seq in by_seq] == [by_seq[s] for s in sorted(by_seq)]
        assert b.last_seqs[received[0].conv] == received[-1].seq == max(by_seq)
    assert_gapless_and_once(history(server, ann, conv), texts)


async def test_silent_connection_is_dropped_and_resumed(server: ServerProcess) -> None:
    ann, bob = server.user("sales"), server.user("warehouse")
    conv = server.conversation(ann, "channel", [bob], title="sdk-silence")["id"]
    relay = TcpRelay(server.port)
    await relay.start()
    # Bob reaches the server through the relay, and gives up on silence quickly.
    quick = dataclasses.replace(
        FAST, heartbeat_interval_s=0.3, dead_after_s=1.5, close_timeout_s=0.5
    )
    try:
        bob_session = await login(relay.base_url, bob.username, bob.password)
        async with (
            Client(await session_for(server, ann), options=FAST) as a,
            Client(bob_session, options=quick) as b,
        ):
            stream = b.events()
            first = await a.send(conv, "before the path died")
            assert (await next_of(stream, MessageReceived)).message.seq == first.seq
            relay.freeze()
            frozen_at = relay.connections
            during = await a.send(conv, "while bob's path is dead")
            from_bob = asyncio.create_task(b.send(conv, "bob on a dead path"))
            got = (await next_of(stream, MessageReceived, timeout_s=15)).message
            assert (got.seq, got.text) == (during.seq, "while bob's path is dead")
            async with asyncio.timeout(15):
                ack = await from_bob
            own = (await next_of(stream, MessageReceived)).message
            assert (own.seq, own.text) == (ack.seq, "bob on a dead path")
            assert relay.connections > frozen_at  # a new connection, not the frozen one
    finally:
        await relay.close()
    assert_gapless_and_once(
        history(server, ann, conv), ["while bob's path is dead", "bob on a dead path"]
    )


async def test_new_client_resumes_from_persisted_cursor(server: ServerProcess) -> None:
    ann, bob = server.user("sales"), server.user("warehouse")
    conv = server.conversation(ann, "channel", [bob], title="sdk-persisted")["id"]
    bob_session = await session_for(server, bob)
    async with Client(await session_for(server, ann), options=FAST) as a:
        async with Client(bob_session, options=FAST) as b:
            seen = await a.send(conv, "seen before closing")
            stream = b.events()
            while (await next_of(stream, MessageReceived)).message.seq != seen.seq:
                pass
            cursor, last_seqs = b.cursor, b.last_seqs
        assert cursor is not None
        missed = [(await a.send(conv, f"missed-{i}")).seq for i in range(5)]
        async with Client(bob_session, cursor=cursor, last_seqs=last_seqs, options=FAST) as b2:
            stream = b2.events()
            got = [(await next_of(stream, MessageReceived)).message for _ in missed]
            assert [m.seq for m in got] == missed
            assert all(m.text.startswith("missed-") for m in got)
            live = await a.send(conv, "after resuming")
            assert (await next_of(stream, MessageReceived)).message.seq == live.seq


@pytest.mark.parametrize(
    "cursor", ["not-a-cursor-this-server-issued", "v1." + "7" * 80], ids=["foreign", "long"]
)
async def test_expired_cursor_reloads_missed_messages_over_http(
    server: ServerProcess, cursor: str
) -> None:
    ann, bob = server.user("sales"), server.user("warehouse")
    conv = server.conversation(ann, "channel", [bob], title="sdk-expired")["id"]
    bob_session = await session_for(server, bob)
    async with Client(await session_for(server, ann), options=FAST) as a:
        acks = [await a.send(conv, f"before-{i}") for i in range(6)]
        known = acks[2].seq
        async with Client(
            bob_session,
            cursor=cursor,
            last_seqs={acks[2].conv: known},
            options=FAST,
        ) as b:
            stream = b.events()
            got = [(await next_of(stream, MessageReceived)) for _ in acks[3:]]
            assert [e.message.seq for e in got] == [ack.seq for ack in acks[3:]]
            assert all(e.cursor is None for e in got)  # recovered over HTTP
            live = await a.send(conv, "live after reload")
            event = await next_of(stream, MessageReceived)
            assert (event.message.seq, event.message.text) == (live.seq, "live after reload")
            assert event.cursor is not None
            assert b.cursor == event.cursor


async def test_server_errors_map_to_typed_exceptions(server: ServerProcess) -> None:
    ann, bob, carol = server.user("sales"), server.user("warehouse"), server.user("finance")
    conv = server.conversation(ann, "channel", [bob], title="sdk-errors")["id"]
    before = history(server, ann, conv)
    async with Client(await session_for(server, carol), options=FAST) as c:
        with pytest.raises(ForbiddenError) as forbidden:
            await c.send(conv, "not a member")
        assert forbidden.value.code is ErrorCode.FORBIDDEN
        assert forbidden.value.ref
        with pytest.raises(NotFoundError):
            await c.send("c_doesnotexist", "nowhere")
        with pytest.raises(TooLargeError):
            await c.send(conv, "x" * 10_001)
        with pytest.raises(BadRequestError):
            await c.send(conv, "   ")
        with pytest.raises(ForbiddenError) as over_http:
            await c.api.messages(conv)
        assert over_http.value.status == 403
        assert c.connected  # errors leave the connection usable
    assert history(server, ann, conv) == before
    with pytest.raises(UnauthorizedError) as wrong:
        await login(server.base_url, ann.username, "wrong password")
    assert wrong.value.status == 401


async def test_revoked_session_stops_the_client(server: ServerProcess) -> None:
    ann = server.user("sales")
    session = await session_for(server, ann)
    async with Client(session, options=FAST) as a:
        stream = a.events()
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            resp = await http.post("/api/auth/logout", headers=server.auth(session.token))
        assert resp.status_code == 204, resp.text
        with pytest.raises(SessionRevokedError):
            await next_of(stream, MessageReceived)
        assert not a.connected
        with pytest.raises(SessionRevokedError):
            await a.send("c_any", "after sign-out")
    # A token the server refuses is final: entering fails instead of retrying.
    with pytest.raises(UnauthorizedError):
        async with asyncio.timeout(WAIT_S), Client(session, options=FAST):
            pass
