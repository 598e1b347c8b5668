"""The `notify` workload's mixed messages: who sends what to whom, the sending, the checking.

Senders and readers are different people. A reader never sends, so nothing
marks a message read before its notifications go out (a send advances its
sender's read mark, and the worker drops what was read meanwhile); every
planned delivery must therefore arrive, exactly once.

- Each reader has a direct conversation with a sender (reader r with sender
  r % senders). A **direct** message there concerns the reader: one push and
  one mail.
- Readers are also spread over a few channels, each with one sender. A
  message there that **@mentions** one reader concerns that reader alone: one
  push and one mail. The other members hear nothing (a plain channel message).
- An **urgent** message in a direct conversation: one push and one mail to
  its reader, and one `message.urgent` webhook to each endpoint.

Every message's text starts with its tag (`bench/_notify_receivers.py`), which
the push body, the mail's text and the webhook's JSON all carry.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench._notify_receivers import Receivers, Taken, tag_of
from bench._seed import SeededUser
from orderchat.core.model import MessageKind
from orderchat.notify.mail_compose import MAX_LISTED
from orderchat.protocol.codec import encode_client_frame
from orderchat.protocol.frames import Hello, PostMessage

KINDS = ("direct", "mention", "urgent")
ENDPOINTS = ("erp", "robot")  # webhook endpoints, each hearing every urgent message
TOPICS = ["message.urgent", "order.status"]
WEBHOOK_SHARE = 0.33  # of all deliveries
WINDOW = 8  # sends in flight per sender connection
CONNECT_TIMEOUT_S = 30.0
HTTP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Mix:
    """How many of each: messages by kind, people, channels."""

    direct: int
    mention: int
    urgent: int
    readers: int
    senders: int
    channels: int

    @classmethod
    def for_deliveries(cls, total: int, readers: int, senders: int, channels: int) -> Mix:
        """A third of the deliveries webhooks, the rest a push and a mail per message."""
        urgent = max(1, round(total * WEBHOOK_SHARE / len(ENDPOINTS)))
        messages = max(urgent + 2, (total - urgent * len(ENDPOINTS)) // 2)
        direct = (messages - urgent) // 2
        mix = cls(direct, messages - urgent - direct, urgent, readers, senders, channels)
        if -(-messages // readers) > MAX_LISTED:
            raise ValueError(f"more than {MAX_LISTED} mails a reader: one mail could not list all")
        return mix

    @property
    def messages(self) -> int:
        return self.direct + self.mention + self.urgent

    def planned(self) -> dict[str, int]:
        """Deliveries planned per channel."""
        return {
            "push": self.messages,
            "mail": self.messages,
            "webhook": self.urgent * len(ENDPOINTS),
        }

    def plan(self) -> list[Message]:
        """Every message, kinds shuffled (with a fixed seed), readers in turn."""
        kinds = ["direct"] * self.direct + ["mention"] * self.mention + ["urgent"] * self.urgent
        random.Random(7).shuffle(kinds)
        found: list[Message] = []
        for index, kind in enumerate(kinds):
            reader = index % self.readers
            channel = reader % self.channels
            sender = channel % self.senders if kind == "mention" else reader % self.senders
            found.append(Message(index, kind, sender, reader))
        return found

    def channel_members(self, channel: int) -> list[int]:
        return [r for r in range(self.readers) if r % self.channels == channel]


@dataclass(frozen=True, slots=True)
class Message:
    index: int
    kind: str
    sender: int
    reader: int

    @property
    def tag(self) -> str:
        return tag_of(self.index)


@dataclass
class Shop:
    """A server set up for the mix: its people, conversations and (when on) reachability."""

    base_url: str
    ws_url: str
    senders: list[SeededUser]
    readers: list[SeededUser]
    directs: list[str] = field(default_factory=list)  # per reader
    channels: list[str] = field(default_factory=list)
    subscriptions: dict[str, int] = field(default_factory=dict)  # push subscription -> reader
    addresses: dict[str, int] = field(default_factory=dict)  # mail address -> reader

    def conv_of(self, message: Message, mix: Mix) -> str:
        if message.kind == "mention":
            return self.channels[message.reader % mix.channels]
        return self.directs[message.reader]


def _call(client: httpx.Client, token: str, method: str, path: str, body: Any) -> Any:
    resp = client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
    if resp.status_code not in (200, 201):
        raise RuntimeError(f"{method} {path}: {resp.status_code} {resp.text[:300]}")
    return resp.json()


def make_conversations(shop: Shop, mix: Mix) -> None:
    """Each reader's direct conversation with their sender, and the channels."""
    with httpx.Client(base_url=shop.base_url, timeout=HTTP_TIMEOUT_S, trust_env=False) as client:
        for r, reader in enumerate(shop.readers):
            sender = shop.senders[r % mix.senders]
            body = {"kind": "direct", "members": [reader.id]}
            made = _call(client, sender.token, "POST", "/api/conversations", body)
            shop.directs.append(made["id"])
        for c in range(mix.channels):
            body = {
                "kind": "channel",
                "title": f"notify bench {c}",
                "members": [shop.readers[r].id for r in mix.channel_members(c)],
            }
            sender = shop.senders[c % mix.senders]
            made = _call(client, sender.token, "POST", "/api/conversations", body)
            shop.channels.append(made["id"])


def make_reachable(
    base_url: str,
    people: Sequence[SeededUser],
    receivers: Receivers,
    admin_token: str,
    endpoints: Sequence[str] = ENDPOINTS,
) -> tuple[dict[str, int], dict[str, int]]:
    """A push subscription and an address for each person, and the admin's endpoints.

    The subscriptions and addresses, each mapped to the person's position in `people`.
    """
    subscriptions: dict[str, int] = {}
    addresses: dict[str, int] = {}
    with httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT_S, trust_env=False) as client:
        key = _call(client, people[0].token, "GET", "/api/push/key", None)["public_key"]
        made = receivers.subscribe(key, len(people))
        for number, (person, (sub_id, sub_json)) in enumerate(zip(people, made, strict=True)):
            _call(client, person.token, "POST", "/api/push/subscriptions", sub_json)
            address = f"{person.username}@bench.example"
            _call(client, person.token, "PUT", "/api/me/notifications", {"email": address})
            subscriptions[sub_id] = number
            addresses[address] = number
        for name in endpoints:
            body = {"url": receivers.webhook_url(name), "topics": TOPICS, "description": name}
            _call(client, admin_token, "POST", "/api/admin/webhooks", body)
    return subscriptions, addresses


# --- sending -------------------------------------------------------------------------


@dataclass
class Sent:
    """The acks: each message's commit time as the server stamped it, and when they came."""

    commit_ms: dict[int, int] = field(default_factory=dict)
    started: float = 0.0  # time.time() of the first send
    finished: float = 0.0  # of the last ack
    errors: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return max(self.finished - self.started, 1e-9)


async def send_all(shop: Shop, mix: Mix, timeout_s: float) -> Sent:
    """Every message of the mix, each sender on a connection of its own, `WINDOW` in flight.

    The connections are all open before the clock starts.
    """
    sent = Sent()
    queues: list[list[tuple[int, bytes]]] = [[] for _ in shop.senders]
    for message in mix.plan():
        queues[message.sender].append((message.index, _frame(message, shop, mix)))
    async with asyncio.timeout(timeout_s):
        sockets = await asyncio.gather(*(_open(shop.ws_url, s.token) for s in shop.senders))
        try:
            sent.started = time.time()
            await asyncio.gather(
                *(_send_queue(ws, queue, sent) for ws, queue in zip(sockets, queues, strict=True))
            )
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return sent


def _frame(message: Message, shop: Shop, mix: Mix) -> bytes:
    text = f"{message.tag} {message.kind} message from the notify benchmark"
    mentions: tuple[object, ...] = ()
    if message.kind == "mention":
        mentions = (shop.readers[message.reader].id,)
    frame = PostMessage(
        message.tag,
        shop.conv_of(message, mix),
        MessageKind.TEXT,
        text,
        (),
        mentions,
        None,
        urgent=message.kind == "urgent",
    )
    return encode_client_frame(frame)


async def _open(ws_url: str, token: str) -> ClientConnection:
    ws = await connect(
        ws_url,
        max_size=None,
        compression=None,
        ping_interval=None,
        proxy=None,
        open_timeout=CONNECT_TIMEOUT_S,
    )
    await ws.send(encode_client_frame(Hello(token, "notify-bench", None)), text=True)
    async with asyncio.timeout(CONNECT_TIMEOUT_S):
        welcome = orjson.loads(await ws.recv())
    if welcome.get("op") != "welcome":
        await ws.close()
        raise RuntimeError(f"expected welcome, got {str(welcome)[:200]}")
    return ws


async def _send_queue(ws: ClientConnection, queue: list[tuple[int, bytes]], sent: Sent) -> None:
    """Send in order with at most `WINDOW` unanswered; the window back whole: all answered."""
    free = asyncio.Semaphore(WINDOW)
    pending: dict[str, int] = {}
    reader = asyncio.create_task(_read_acks(ws, pending, free, sent))
    try:
        for index, frame in queue:
            await free.acquire()
            pending[tag_of(index)] = index
            await ws.send(frame, text=True)
        for _ in range(WINDOW):
            await free.acquire()
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def _read_acks(
    ws: ClientConnection, pending: dict[str, int], free: asyncio.Semaphore, sent: Sent
) -> None:
    """Each ack's commit time; an error frame, or the connection closing, frees its slot too."""
    try:
        async for raw in ws:
            frame = orjson.loads(raw)
            op, ref = frame.get("op"), frame.get("ref")
            if op not in ("ack", "error") or ref not in pending:
                continue
            index = pending.pop(ref)
            if op == "ack":
                sent.commit_ms[index] = int(frame["ts"])
                sent.finished = max(sent.finished, time.time())
            else:
                sent.errors.append(f"{ref}: {str(frame)[:200]}")
            free.release()
    except ConnectionClosed as exc:
        sent.errors.append(f"a sender's connection closed with {len(pending)} unanswered: {exc}")
        for _ in range(WINDOW):
            free.release()


# --- checking what arrived -----------------------------------------------------------


@dataclass
class Arrivals:
    """One channel's deliveries checked against the plan."""

    channel: str
    expected: int
    delivered: int  # distinct planned deliveries that arrived
    missing: int
    duplicates: int  # arrivals of a delivery that had already arrived
    unexpected: int  # arrivals that match nothing planned
    requests: int  # pushes, mails or webhook posts received
    lags_ms: list[float]  # sorted; commit -> arrival, one per delivery
    last_at: float  # time.time() of the last arrival

    def lag_ms(self, fraction: float) -> float:
        """Nearest rank, as bench/_load.py's percentile; 0 for none."""
        if not self.lags_ms:
            return 0.0
        rank = max(1, min(len(self.lags_ms), math.ceil(fraction * len(self.lags_ms))))
        return self.lags_ms[rank - 1]

    def summary(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "expected": self.expected,
            "delivered": self.delivered,
            "missing": self.missing,
            "duplicates": self.duplicates,
            "unexpected": self.unexpected,
            "requests": self.requests,
            "lag_ms": {
                "p50": self.lag_ms(0.5),
                "p90": self.lag_ms(0.9),
                "p99": self.lag_ms(0.99),
                "max": self.lags_ms[-1] if self.lags_ms else 0.0,
            },
            "last_at": self.last_at,
        }


def expected_deliveries(mix: Mix) -> dict[str, set[tuple[str, str]]]:
    """(tag, who) of every planned delivery, per channel; who is a reader number or endpoint."""
    expected: dict[str, set[tuple[str, str]]] = {"push": set(), "mail": set(), "webhook": set()}
    for message in mix.plan():
        expected["push"].add((message.tag, str(message.reader)))
        expected["mail"].add((message.tag, str(message.reader)))
        if message.kind == "urgent":
            expected["webhook"].update((message.tag, name) for name in ENDPOINTS)
    return expected


def earlier_of(mix: Mix) -> dict[str, str]:
    """Each message's tag to the tag before it in the same chain — one conversation, one
    reader, one reason — which is what a merged push or mail line stands for too.

    A sender's messages to one conversation go out in order on one connection, so
    the plan's order is the conversation's. Urgent messages never merge.
    """
    last: dict[tuple[str, int, int], str] = {}
    before: dict[str, str] = {}
    for message in mix.plan():
        if message.kind == "urgent":
            continue
        where = message.sender if message.kind == "direct" else message.reader % mix.channels
        chain = (message.kind, where, message.reader)
        if chain in last:
            before[message.tag] = last[chain]
        last[chain] = message.tag
    return before


def _told(tag: str, earlier: int, before: dict[str, str]) -> list[str]:
    """The tagged message and the `earlier` ones before it in its chain."""
    told = [tag]
    while earlier > 0 and told[-1] in before:
        told.append(before[told[-1]])
        earlier -= 1
    return told


def check(taken: Taken, shop: Shop, mix: Mix, sent: Sent) -> dict[str, Arrivals]:
    """Each channel's arrivals matched to the plan, with the lag of each from its commit.

    A push or mail line that stands for several messages (a merged one) counts
    for each of them, arriving when it did.
    """
    before = earlier_of(mix)
    seen: dict[str, list[tuple[tuple[str, str], float]]] = {"push": [], "mail": [], "webhook": []}
    for push in taken.pushes:
        who = str(shop.subscriptions.get(push.subscription_id, "?"))
        for tag in push.tags or ("?",):
            told = _told(tag, push.earlier, before)
            seen["push"] += [((one, who), push.received_at) for one in told]
    for mail in taken.mails:
        # The receivers give each tag its count of earlier messages; a mail without a
        # tag counts as one stray delivery.
        counted = list(zip(mail.tags, mail.earlier, strict=True)) or [("?", 0)]
        for address in mail.recipients:
            who = str(shop.addresses.get(address, "?"))
            for tag, count in counted:
                told = _told(tag, count, before)
                seen["mail"] += [((one, who), mail.received_at) for one in told]
    for hook in taken.hooks:
        who = hook.path.rsplit("/", 1)[-1]
        seen["webhook"] += [((tag, who), hook.received_at) for tag in hook.tags or ("?",)]
    requests = {"push": len(taken.pushes), "mail": len(taken.mails), "webhook": len(taken.hooks)}
    expected = expected_deliveries(mix)
    return {
        channel: _matched(channel, expected[channel], seen[channel], requests[channel], sent)
        for channel in expected
    }


def _matched(
    channel: str,
    expected: set[tuple[str, str]],
    seen: list[tuple[tuple[str, str], float]],
    requests: int,
    sent: Sent,
) -> Arrivals:
    first: dict[tuple[str, str], float] = {}
    duplicates = unexpected = 0
    for key, at in sorted(seen, key=lambda item: item[1]):
        if key not in expected:
            unexpected += 1
        elif key in first:
            duplicates += 1
        else:
            first[key] = at
    lags = []
    for (tag, _), at in first.items():
        committed = sent.commit_ms.get(int(tag[2:]))
        if committed is not None:
            lags.append(at * 1000 - committed)
    return Arrivals(
        channel=channel,
        expected=len(expected),
        delivered=len(first),
        missing=len(expected) - len(first),
        duplicates=duplicates,
        unexpected=unexpected,
        requests=requests,
        lags_ms=sorted(lags),
        last_at=max(first.values(), default=0.0),
    )
