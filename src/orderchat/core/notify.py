"""Who hears of a message away from the app, on which channel, and when: rules, no I/O.

A message reaches every member in the app at once (that is the event stream).
This module decides the rest: for each person the message concerns, the
*occasion* (why it concerns them: a direct message, @them, @their role, an
urgent message, their order moved …) and, from the shop's policy, after how
many seconds of the message staying unread each channel (web push, e-mail) is
used. A person's own choices switch channels off per occasion and set quiet
hours; urgent messages pass quiet hours. Webhooks are the shop's own tools:
they subscribe to *topics* (an order's status, an exception, an urgent
message …) and hear of them whoever reads what.

Everything here is a function of its arguments: the clock is passed in, and
the storage of deliveries, the sending and the retries live in
`services/notify/`.
"""

from __future__ import annotations

import hashlib
import hmac
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from orderchat.core.errors import BadRequest
from orderchat.core.ids import UserId
from orderchat.core.model import ConversationKind, MessageKind, Role, UserKind
from orderchat.core.texts import say

E = TypeVar("E", bound=StrEnum)


class Occasion(StrEnum):
    """Why a message concerns a person; the strongest one is theirs."""

    URGENT = "urgent"
    MENTION = "mention"  # @them
    EXCEPTION = "exception"  # an order exception routed to their role
    PAYMENT = "payment"  # a payment received, to finance
    CONFIRMATION = "confirmation"  # a sample version waits for the customer
    ORDER_STATUS = "order_status"  # the customer's order moved
    ROLE_MENTION = "role_mention"  # @their role
    DIRECT = "direct"  # a direct chat, or the shop writing in a customer's order


# Strongest first: a person hears of one message once, for its strongest reason.
STRENGTH: tuple[Occasion, ...] = tuple(Occasion)


class Channel(StrEnum):
    PUSH = "push"
    EMAIL = "email"
    WEBHOOK = "webhook"


PERSONAL_CHANNELS = (Channel.PUSH, Channel.EMAIL)


class Topic(StrEnum):
    """What a webhook endpoint subscribes to."""

    ORDER_CREATED = "order.created"
    ORDER_STATUS = "order.status"
    ORDER_EXCEPTION = "order.exception"
    PAYMENT_RECEIVED = "payment.received"
    CONFIRMATION = "confirmation"
    MESSAGE_URGENT = "message.urgent"
    CONSULT_NEW = "consult.new"
    AUDIT_ANCHOR = "audit.anchor"  # the day's signed chain heads (core/anchor.py)


# Order events (`meta.event` of an order_event message) that are exceptions.
EXCEPTION_EVENTS = frozenset(
    {
        "out_of_stock",
        "low_stock",
        "address_change_requested",
        "delay_risk",
        "delay_notice",
        "defect_found",
    }
)
_TOPIC_OF_EVENT: Mapping[str, Topic] = {
    "order_created": Topic.ORDER_CREATED,
    "status_changed": Topic.ORDER_STATUS,
    "payment_received": Topic.PAYMENT_RECEIVED,
    "confirmation_proposed": Topic.CONFIRMATION,
    "confirmation_decided": Topic.CONFIRMATION,
    **{event: Topic.ORDER_EXCEPTION for event in EXCEPTION_EVENTS},
    "chain_anchor": Topic.AUDIT_ANCHOR,
    "consult_opened": Topic.CONSULT_NEW,
}


# --- the shop's policy ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ladder:
    """How an unread urgent message climbs: reminders every `every_s`, at most `reminders`."""

    escalate_after_s: int = 300
    every_s: int = 600
    reminders: int = 3
    channels: tuple[Channel, ...] = (Channel.PUSH, Channel.EMAIL)


@dataclass(frozen=True, slots=True)
class Retry:
    """A failed delivery is tried again after `first_s`, doubling up to `max_s`, for a day."""

    first_s: int = 10
    max_s: int = 3600
    give_up_after_s: int = 24 * 3600


MAX_KEEP_DAYS = 3650


@dataclass(frozen=True, slots=True)
class Policy:
    """Seconds unread before each channel is used, per occasion; absent means never."""

    delays: Mapping[Occasion, Mapping[Channel, int]]
    ladder: Ladder = field(default_factory=Ladder)
    # Staff missed-message mails gather what came in this long before going out.
    email_batch_s: int = 600
    retry: Retry = field(default_factory=Retry)
    # Deliveries that are done (sent, cancelled, given up) are kept this long: the
    # delivery log and the reminders panel show them, then they are deleted.
    keep_days: int = 30

    def delay(self, occasion: Occasion, channel: Channel) -> int | None:
        return self.delays.get(occasion, {}).get(channel)


def parse_policy(text: str) -> Policy:
    """The policy in `notify.toml` (see docs/notifications.md).

    Raises:
        BadRequest: the TOML is invalid, or names an unknown occasion or channel.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadRequest(say("notify.policy_not_valid_toml", reason=exc)) from None
    delays: dict[Occasion, dict[Channel, int]] = {}
    for name, channels in _table(raw, "occasions").items():
        occasion = _member(Occasion, name, "occasions")
        delays[occasion] = {
            _member(Channel, c, f"occasions.{name}"): _seconds(v, f"occasions.{name}.{c}")
            for c, v in _as_table(channels, f"occasions.{name}").items()
        }
    ladder_raw = _table(raw, "ladder")
    ladder = Ladder(
        escalate_after_s=_seconds(ladder_raw.get("escalate_after_s", 300), "ladder"),
        every_s=max(1, _seconds(ladder_raw.get("every_s", 600), "ladder")),
        reminders=min(20, _seconds(ladder_raw.get("reminders", 3), "ladder")),
        channels=tuple(
            _member(Channel, c, "ladder.channels")
            for c in ladder_raw.get("channels", ["push", "email"])
        ),
    )
    batch = _seconds(_table(raw, "email").get("batch_s", 600), "email.batch_s")
    retry_raw = _table(raw, "retry")
    retry = Retry(
        first_s=max(1, _seconds(retry_raw.get("first_s", 10), "retry.first_s")),
        max_s=max(1, _seconds(retry_raw.get("max_s", 3600), "retry.max_s")),
        give_up_after_s=_seconds(
            retry_raw.get("give_up_after_s", 24 * 3600), "retry.give_up_after_s"
        ),
    )
    keep = _table(raw, "history").get("keep_days", 30)
    if isinstance(keep, bool) or not isinstance(keep, int) or not 1 <= keep <= MAX_KEEP_DAYS:
        raise BadRequest(say("notify.policy_needs_days", where="history.keep_days"))
    return Policy(delays=delays, ladder=ladder, email_batch_s=batch, retry=retry, keep_days=keep)


def _table(raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    return _as_table(raw.get(name, {}), name)


def _as_table(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(say("notify.policy_needs_table", where=where))
    return value


def _member(kind: type[E], name: object, where: str) -> E:
    try:
        return kind(str(name))
    except ValueError:
        raise BadRequest(
            say("notify.policy_unknown_name", name=str(name), where=where, known=[*kind])
        ) from None


def _seconds(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 7 * 86400:
        raise BadRequest(say("notify.policy_needs_seconds", where=where))
    return value


# --- a person's own choices -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Minutes after local midnight; `start > end` spans midnight (22:00-07:00)."""

    start_min: int
    end_min: int
    utc_offset_min: int

    def contains(self, now_ms: int) -> bool:
        local = self._local_minute(now_ms)
        if self.start_min <= self.end_min:
            return self.start_min <= local < self.end_min
        return local >= self.start_min or local < self.end_min

    def ends_after(self, now_ms: int) -> int:
        """The first moment at or after `now_ms` outside the quiet hours."""
        if not self.contains(now_ms):
            return now_ms
        local = self._local_minute(now_ms)
        wait_min = (self.end_min - local) % (24 * 60)
        minute_start = now_ms - now_ms % 60_000
        return minute_start + wait_min * 60_000

    def _local_minute(self, now_ms: int) -> int:
        return (now_ms // 60_000 + self.utc_offset_min) % (24 * 60)


@dataclass(frozen=True, slots=True)
class Preferences:
    """What one person switched off, and when they must not be disturbed."""

    off: Mapping[Occasion, frozenset[Channel]] = field(default_factory=dict)
    quiet: QuietHours | None = None
    email: str | None = None
    language: str | None = None

    def wants(self, occasion: Occasion, channel: Channel) -> bool:
        return channel not in self.off.get(occasion, frozenset())


NO_PREFERENCES = Preferences()


# --- from a message to deliveries -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Member:
    id: UserId
    kind: UserKind
    roles: frozenset[Role]


@dataclass(frozen=True, slots=True)
class Said:
    """What the planner knows of one stored message."""

    conv_kind: ConversationKind
    sender: UserId
    kind: MessageKind
    mentions: tuple[str, ...]
    internal: bool
    urgent: bool
    event: str | None  # `meta.event` of an order event


def occasions(said: Said, members: Iterable[Member]) -> dict[UserId, Occasion]:
    """Each member this message concerns, with their strongest reason."""
    found: dict[UserId, Occasion] = {}
    for member in members:
        if member.id == said.sender:
            continue
        if member.kind is UserKind.CUSTOMER and said.internal:
            continue  # never: a staff-only note does not reach a customer on any channel
        reasons = _reasons(said, member)
        if reasons:
            found[member.id] = min(reasons, key=STRENGTH.index)
    return found


def _reasons(said: Said, member: Member) -> list[Occasion]:
    reasons: list[Occasion] = []
    if said.urgent:
        reasons.append(Occasion.URGENT)
    if member.id in said.mentions or "@all" in said.mentions:
        reasons.append(Occasion.MENTION)
    mentioned_role = any(f"@{r.value}" in said.mentions for r in member.roles)
    if said.kind is MessageKind.ORDER_EVENT:
        reasons.extend(_order_event_reasons(said, member, mentioned_role))
    elif mentioned_role:
        reasons.append(Occasion.ROLE_MENTION)
    if said.conv_kind is ConversationKind.DIRECT and said.kind is not MessageKind.SYSTEM:
        reasons.append(Occasion.DIRECT)
    if (
        member.kind is UserKind.CUSTOMER
        and said.conv_kind in (ConversationKind.ORDER, ConversationKind.CONSULT)
        and said.kind not in (MessageKind.SYSTEM, MessageKind.ORDER_EVENT)
    ):
        reasons.append(Occasion.DIRECT)
    return reasons


def _order_event_reasons(said: Said, member: Member, mentioned_role: bool) -> list[Occasion]:
    if member.kind is UserKind.CUSTOMER:
        if said.event == "confirmation_proposed":
            return [Occasion.CONFIRMATION]
        return [Occasion.ORDER_STATUS]
    if not mentioned_role:
        return []
    if said.event in EXCEPTION_EVENTS:
        return [Occasion.EXCEPTION]
    if said.event == "payment_received":
        return [Occasion.PAYMENT]
    return [Occasion.ROLE_MENTION]


@dataclass(frozen=True, slots=True)
class Planned:
    """One delivery to make: to a person on a channel, due at a moment, unless read first."""

    recipient: UserId
    occasion: Occasion
    channel: Channel
    due_ms: int
    step: int = 0  # 0: the first word; 1.. : the urgent ladder's reminders


def plan(
    concerned: Mapping[UserId, Occasion],
    reachable: Mapping[UserId, frozenset[Channel]],
    preferences: Mapping[UserId, Preferences],
    policy: Policy,
    at_ms: int,
) -> list[Planned]:
    """The deliveries a message calls for, from the moment it was written.

    `reachable` says which channels each person can be reached on at all (a
    push subscription, an e-mail address): nobody is planned on a channel they
    do not have, so a shop without push or e-mail writes nothing here.
    """
    planned: list[Planned] = []
    for user, occasion in sorted(concerned.items()):
        prefs = preferences.get(user, NO_PREFERENCES)
        channels = reachable.get(user, frozenset())
        for channel in PERSONAL_CHANNELS:
            delay = policy.delay(occasion, channel)
            if delay is None or channel not in channels or not prefs.wants(occasion, channel):
                continue
            planned.append(Planned(user, occasion, channel, at_ms + delay * 1000))
        if occasion is Occasion.URGENT:
            planned.extend(_ladder(user, channels, prefs, policy.ladder, at_ms))
    return planned


# Chat that waits for its person merges: a busy conversation makes one push (and
# one line of a mail) saying how many messages came, not one for each message.
# The order's own steps, exceptions, payments and urgent messages are each told.
MERGING = frozenset({Occasion.DIRECT, Occasion.MENTION, Occasion.ROLE_MENTION})


def merge_key(recipient: str, conv: str, channel: Channel, occasion: str, step: int) -> str | None:
    """What a waiting delivery merges by, or None for one that is told on its own."""
    if step or channel not in PERSONAL_CHANNELS or occasion not in MERGING:
        return None
    return f"{recipient}:{conv}:{channel.value}:{occasion}"


def _ladder(
    user: UserId,
    channels: frozenset[Channel],
    prefs: Preferences,
    ladder: Ladder,
    at_ms: int,
) -> list[Planned]:
    steps: list[Planned] = []
    for step in range(1, ladder.reminders + 1):
        due = at_ms + (ladder.escalate_after_s + (step - 1) * ladder.every_s) * 1000
        for channel in ladder.channels:
            wanted = channel in channels and prefs.wants(Occasion.URGENT, channel)
            if wanted and channel in PERSONAL_CHANNELS:
                steps.append(Planned(user, Occasion.URGENT, channel, due, step))
    return steps


def topics(said: Said) -> list[Topic]:
    """What webhook endpoints hear of this message."""
    found: list[Topic] = []
    if said.event is not None and said.event in _TOPIC_OF_EVENT:
        found.append(_TOPIC_OF_EVENT[said.event])
    if said.urgent:
        found.append(Topic.MESSAGE_URGENT)
    return found


def when_to_send(due_ms: int, now_ms: int, occasion: Occasion, prefs: Preferences) -> int:
    """When a due delivery may go out: now, or when the person's quiet hours end.

    Urgent messages pass quiet hours: the ladder is for what cannot wait.
    """
    at = max(due_ms, now_ms)
    if occasion is Occasion.URGENT or prefs.quiet is None:
        return at
    return prefs.quiet.ends_after(at)


# --- retries ----------------------------------------------------------------------------


def next_try_ms(
    attempts: int, first_due_ms: int, now_ms: int, jitter: float, retry: Retry
) -> int | None:
    """When to try again after `attempts` failures, or None: the day is over, give up.

    `jitter` in [0, 1) spreads the retries of many deliveries that failed together.
    """
    wait_s = min(retry.max_s, retry.first_s * 2 ** min(30, max(0, attempts - 1)))
    at = now_ms + int(wait_s * (0.75 + 0.5 * jitter) * 1000)
    if at - first_due_ms > retry.give_up_after_s * 1000:
        return None
    return at


def preview(text: str, limit: int = 100) -> str:
    """The first `limit` characters, as a lock screen may show them."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def quiet_hours(start: str, end: str, utc_offset_min: int) -> QuietHours:
    """Quiet hours from "HH:MM" texts.

    Raises:
        BadRequest: a time is not HH:MM, or the offset is not a real one.
    """
    if not -14 * 60 <= utc_offset_min <= 14 * 60:
        raise BadRequest(say("notify.quiet_hours_need_times"))
    return QuietHours(_minute(start), _minute(end), utc_offset_min)


def _minute(hhmm: str) -> int:
    parts = hhmm.split(":")
    if len(parts) != 2 or not all(p.isdigit() and len(p) == 2 for p in parts):
        raise BadRequest(say("notify.quiet_hours_need_times"))
    hours, minutes = int(parts[0]), int(parts[1])
    if hours > 23 or minutes > 59:
        raise BadRequest(say("notify.quiet_hours_need_times"))
    return hours * 60 + minutes


def parse_off(raw: object) -> dict[Occasion, frozenset[Channel]]:
    """A person's switched-off channels, `{occasion: [channel, …]}`.

    Raises:
        BadRequest: an unknown occasion or channel, or not that shape.
    """
    if not isinstance(raw, dict):
        raise BadRequest(say("notify.preferences_off_shape"))
    off: dict[Occasion, frozenset[Channel]] = {}
    for name, channels in raw.items():
        occasion = _member(Occasion, name, "off")
        if not isinstance(channels, list):
            raise BadRequest(say("notify.preferences_off_shape"))
        off[occasion] = frozenset(_member(Channel, c, f"off.{name}") for c in channels)
    return off


# --- unsubscribing from a kind of mail --------------------------------------------------

# What one unsubscribe link switches off: the occasions its kind of mail covers.
UNSUBSCRIBE_KINDS: Mapping[str, tuple[Occasion, ...]] = {
    "messages": (
        Occasion.DIRECT,
        Occasion.MENTION,
        Occasion.ROLE_MENTION,
        Occasion.EXCEPTION,
        Occasion.PAYMENT,
    ),
    "orders": (Occasion.ORDER_STATUS, Occasion.CONFIRMATION),
    "urgent": (Occasion.URGENT,),
}


def mail_kind(occasion: Occasion) -> str:
    return next(kind for kind, covered in UNSUBSCRIBE_KINDS.items() if occasion in covered)


def unsubscribe_token(secret: bytes, user: str, kind: str) -> str:
    """`<user>.<kind>.<signature>`: a link that needs no sign-in and cannot be made up."""
    claim = f"{user}.{kind}"
    mac = hmac.new(secret, claim.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{claim}.{mac}"


def read_unsubscribe_token(secret: bytes, token: str) -> tuple[UserId, str]:
    """The person and the kind of mail a link is for.

    Raises:
        BadRequest: the link was not made by this shop, or names no kind of mail.
    """
    parts = token.split(".") if isinstance(token, str) and len(token) <= 200 else []
    if len(parts) != 3 or parts[1] not in UNSUBSCRIBE_KINDS:
        raise BadRequest(say("notify.unsubscribe_link_not_valid"))
    expected = unsubscribe_token(secret, parts[0], parts[1])
    if not hmac.compare_digest(expected.encode(), token.encode()):
        raise BadRequest(say("notify.unsubscribe_link_not_valid"))
    return UserId(parts[0]), parts[1]
