"""Notification timings of minutes and days, on the shop's default policy, with the
server's clock moved instead of waited for. The urgent ladder: the first word at
once, a reminder after 5 minutes and then every 10, three in all, each only to who
has not read it. The outbox: done deliveries kept 30 days, then deleted.

The server is the whole app on a thread of this process (tests/clocked_server.py),
on a loopback port, with the push service of tests/push_service.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orderchat.core.notify import Ladder
from orderchat.services.notify.pruner import LOOK_EVERY_S as PRUNE_LOOKS_EVERY_S
from tests.clocked_server import ClockedServer
from tests.push_service import Delivery, PushService, Subscription
from tests.support import Account, Peer

pytestmark = pytest.mark.timeout(120)

LADDER = Ladder()  # the defaults the shop's notify.toml ships with
# The worker looks for due deliveries every second: a reminder due shows within this.
SHOWS_WITHIN_S = 3.0
# Real time passes too while the test runs: "not yet" is checked this far ahead of due.
SHORT_S = 30


@pytest.fixture
def push_service() -> Iterator[PushService]:
    with PushService() as service:
        yield service


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ClockedServer]:
    clocked = ClockedServer(
        tmp_path, settings={"rate_limits": False, "allow_private_targets": True}
    )
    clocked.start()
    clocked.create_admin()
    yield clocked
    clocked.stop()


def _subscribe(server: ClockedServer, who: Account, push_service: PushService) -> Subscription:
    with server.http(who.token) as client:
        key = client.get("/api/push/key").json()["public_key"]
        sub = push_service.subscribe(application_server_key=key)
        assert client.post("/api/push/subscriptions", json=sub.to_json()).status_code == 201
    return sub


def _to(push_service: PushService, sub: Subscription) -> list[Delivery]:
    return [d for d in push_service.deliveries if d.subscription_id == sub.id]


async def _settled(push_service: PushService) -> None:
    """Long enough for anything due to have gone out, and no longer."""
    await asyncio.sleep(SHOWS_WITHIN_S)


async def test_the_ladder_climbs_on_the_minute_and_stops_for_each_reader(
    server: ClockedServer, push_service: PushService
) -> None:
    assert (LADDER.escalate_after_s, LADDER.every_s, LADDER.reminders) == (300, 600, 3)
    sender = server.user("customer_service")
    wes, quinn = server.user("warehouse"), server.user("qc")
    with server.http(sender.token) as client:
        resp = client.post(
            "/api/conversations",
            json={"kind": "channel", "title": "dock", "members": [wes.id, quinn.id]},
        )
        assert resp.status_code == 201, resp.text
        conv = resp.json()["id"]
    to_wes = _subscribe(server, wes, push_service)
    to_quinn = _subscribe(server, quinn, push_service)

    peer = await Peer.open(server, sender.token)
    try:
        ack = await peer.send_text(conv, "@warehouse 冲锋衣断货", ref=f"u-{time.monotonic_ns()}",
                                   urgent=True)  # fmt: skip
    finally:
        await peer.close()
    seq = ack["seq"]
    await push_service.wait_for(1, subscription_id=to_wes.id)
    await push_service.wait_for(1, subscription_id=to_quinn.id)

    server.clock.advance(LADDER.escalate_after_s - SHORT_S)  # not yet
    await _settled(push_service)
    assert (len(_to(push_service, to_wes)), len(_to(push_service, to_quinn))) == (1, 1)

    server.clock.advance(SHORT_S)  # five minutes: the first reminder, to both
    await push_service.wait_for(2, subscription_id=to_wes.id, timeout_s=SHOWS_WITHIN_S)
    await push_service.wait_for(2, subscription_id=to_quinn.id, timeout_s=SHOWS_WITHIN_S)

    reader = await Peer.open(server, quinn.token)
    try:
        await reader.send({"op": "read", "conv": conv, "seq": seq})
        await reader.recv_op("read")
    finally:
        await reader.close()

    for step in (2, 3):  # every ten minutes, to the one who has not read it
        server.clock.advance(LADDER.every_s - SHORT_S)
        await _settled(push_service)
        assert len(_to(push_service, to_wes)) == step
        server.clock.advance(SHORT_S)
        await push_service.wait_for(step + 1, subscription_id=to_wes.id, timeout_s=SHOWS_WITHIN_S)
    server.clock.advance(LADDER.every_s * 3)  # three reminders in all
    await _settled(push_service)
    assert len(_to(push_service, to_wes)) == 1 + LADDER.reminders
    assert len(_to(push_service, to_quinn)) == 2

    with server.http(sender.token) as client:
        ladder = client.get(f"/api/conversations/{conv}/messages/{seq}/reminders").json()
    by_user = {r["user"]: r for r in ladder["recipients"]}
    assert sorted((d["step"], d["state"]) for d in by_user[wes.id]["deliveries"]) == [
        (0, "sent"),
        (1, "sent"),
        (2, "sent"),
        (3, "sent"),
    ]
    assert sorted((d["step"], d["state"]) for d in by_user[quinn.id]["deliveries"]) == [
        (0, "sent"),
        (1, "sent"),
        (2, "cancelled"),
        (3, "cancelled"),
    ]


async def test_done_deliveries_are_deleted_after_the_days_the_policy_keeps_them(
    server: ClockedServer, push_service: PushService
) -> None:
    """A direct message's push goes out 30 s after it, unread (the shop default); the
    delivery stays in the outbox for 30 days, and is gone once they have passed."""
    sender, reader = server.user("sales"), server.user("purchasing")
    with server.http(sender.token) as client:
        conv = client.post(
            "/api/conversations", json={"kind": "direct", "members": [reader.id]}
        ).json()["id"]
    sub = _subscribe(server, reader, push_service)
    peer = await Peer.open(server, sender.token)
    try:
        await peer.send_text(conv, "the samples left today", ref=f"d-{time.monotonic_ns()}")
    finally:
        await peer.close()
    server.clock.advance(31)
    await push_service.wait_for(1, subscription_id=sub.id, timeout_s=SHOWS_WITHIN_S)

    def kept() -> list[tuple[object, ...]]:
        return server.db_rows(
            "SELECT state FROM notifications WHERE recipient = ? AND channel = 'push'", reader.id
        )

    assert await _becomes(kept, [("sent",)]), kept()
    server.clock.advance(29 * 24 * 3600)  # still within the 30 days
    await _settled(push_service)
    await asyncio.sleep(PRUNE_LOOKS_EVERY_S)
    assert kept() == [("sent",)]
    server.clock.advance(2 * 24 * 3600)
    assert await _becomes(kept, [], within_s=PRUNE_LOOKS_EVERY_S + SHOWS_WITHIN_S), kept()


async def _becomes(read: Callable[[], object], wanted: object, within_s: float = 5.0) -> bool:
    """Whether `read()` gives `wanted` within `within_s` (it is read every 0.1 s)."""
    for _ in range(int(within_s * 10)):
        if read() == wanted:
            return True
        await asyncio.sleep(0.1)
    return read() == wanted
