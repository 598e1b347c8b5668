"""Pre-sales consults: the shop's routing rules and the choices they make, without I/O.

A consult is queued, open (an agent owns it) or closed. Which queue takes it
(by the visitor's language), which agent of the queue gets it (round-robin,
fewest open, or the visitor's last agent), whether everyone is busy, and when
the shop is open are all functions of their arguments here; the clock and the
counts come from `services/consults.py`. The file format is docs/consults.md §2.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orderchat.core.errors import BadRequest, Forbidden
from orderchat.core.ids import UserId
from orderchat.core.media import MediaKind, family
from orderchat.core.model import Role
from orderchat.core.texts import LANGUAGES, say

E = TypeVar("E", bound=StrEnum)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_QUEUES = 50
MAX_CAPACITY = 1000
DAY_MS = 86_400_000


class ConsultStatus(StrEnum):
    QUEUED = "queued"  # nobody owns it yet
    OPEN = "open"
    CLOSED = "closed"


class Strategy(StrEnum):
    ROUND_ROBIN = "round_robin"
    FEWEST_OPEN = "fewest_open"
    LAST_AGENT = "last_agent"


class Source(StrEnum):
    """How the visitor came in: the /chat page, a site's widget, a printed QR code."""

    PAGE = "page"
    WIDGET = "widget"
    QR = "qr"


@dataclass(frozen=True, slots=True)
class Queue:
    name: str
    roles: tuple[Role, ...]
    strategy: Strategy
    languages: frozenset[str] | None = None  # None: any language

    def takes(self, language: str) -> bool:
        return self.languages is None or language in self.languages


@dataclass(frozen=True, slots=True)
class Hours:
    """When the shop answers, in its own time zone; `close` may be past midnight."""

    days: frozenset[int]  # 0 = Monday
    open_minute: int
    close_minute: int
    away: Mapping[str, str] | None = None  # per language; {next_open} is filled in

    def is_open(self, local: datetime) -> bool:
        minute = local.hour * 60 + local.minute
        if self.open_minute < self.close_minute:
            return local.weekday() in self.days and self.open_minute <= minute < self.close_minute
        # An evening that runs into the next day belongs to the day it began.
        if minute >= self.open_minute:
            return local.weekday() in self.days
        yesterday = (local.weekday() - 1) % 7
        return minute < self.close_minute and yesterday in self.days

    def next_open(self, local: datetime) -> datetime:
        """The next moment the shop opens, strictly after `local` unless it is open now."""
        if self.is_open(local):
            return local
        day = local.replace(second=0, microsecond=0)
        for ahead in range(8):
            candidate = (day + timedelta(days=ahead)).replace(
                hour=self.open_minute // 60, minute=self.open_minute % 60
            )
            if candidate > local and candidate.weekday() in self.days:
                return candidate
        return local  # no day is listed: parse_rules refuses that


@dataclass(frozen=True, slots=True)
class ConsultRules:
    queues: tuple[Queue, ...]
    first_response_s: int = 300
    max_open_per_agent: int = 5
    timezone: str = "Asia/Shanghai"
    hours: Hours | None = None

    def queue_for(self, language: str) -> Queue:
        for queue in self.queues:
            if queue.takes(language):
                return queue
        return self.queues[-1]

    def queue_named(self, name: str) -> Queue | None:
        return next((q for q in self.queues if q.name == name), None)

    def queue_of_role(self, role: Role) -> Queue:
        """Where a consult transferred to `role` waits: its queue, or one made for it."""
        for queue in self.queues:
            if queue.roles == (role,):
                return queue
        return Queue(f"role:{role.value}", (role,), Strategy.ROUND_ROBIN)

    def local(self, now_ms: int) -> datetime:
        return datetime.fromtimestamp(now_ms / 1000, ZoneInfo(self.timezone))

    def is_open(self, now_ms: int) -> bool:
        return self.hours is None or self.hours.is_open(self.local(now_ms))

    def next_open_ms(self, now_ms: int) -> int:
        if self.hours is None:
            return now_ms
        return int(self.hours.next_open(self.local(now_ms)).timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class AgentLoad:
    """One agent of a queue and how many open consults they own now."""

    user_id: UserId
    open_count: int


def choose_agent(
    queue: Queue,
    agents: Sequence[AgentLoad],
    capacity: int,
    last_given: UserId | None,
    last_agent: UserId | None = None,
) -> UserId | None:
    """Who of `agents` gets the next consult of `queue`; None when all are at capacity.

    `last_given` is who got the queue's previous consult (round-robin continues
    after them); `last_agent` is who served this visitor last.
    """
    free = sorted((a for a in agents if a.open_count < capacity), key=lambda a: a.user_id)
    if not free:
        return None
    if queue.strategy is Strategy.LAST_AGENT and any(a.user_id == last_agent for a in free):
        return last_agent
    turn = _after(free, last_given)
    if queue.strategy is Strategy.FEWEST_OPEN:
        least = min(a.open_count for a in free)
        return next(a.user_id for a in turn if a.open_count == least)
    return turn[0].user_id


def _after(free: list[AgentLoad], last_given: UserId | None) -> list[AgentLoad]:
    """`free` in round-robin order: starting with the first agent after `last_given`."""
    if last_given is None:
        return free
    split = next((i for i, a in enumerate(free) if a.user_id > last_given), 0)
    return free[split:] + free[:split]


# Before an order vouches for them, a visitor sends pictures and voice only.
VISITOR_FILE_FAMILIES = frozenset({MediaKind.IMAGE, MediaKind.VOICE})


def check_visitor_file(mime: str, length: int, max_bytes: int) -> None:
    """Raises Forbidden for a file an unverified visitor may not send."""
    if family(mime) not in VISITOR_FILE_FAMILIES:
        raise Forbidden(say("consults.unverified_files"))
    if length > max_bytes:
        raise Forbidden(say("consults.visitor_file_too_large", mb=max_bytes // (1024 * 1024)))


# --- the file -----------------------------------------------------------------------


def parse_rules(text: str) -> ConsultRules:
    """The rules of `consults.toml`.

    Raises:
        BadRequest: the TOML is invalid, or a value is of the wrong kind or unknown.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _invalid("consults.toml", str(exc)) from None
    known = {"first_response_s", "max_open_per_agent", "timezone", "hours", "queue"}
    _no_unknown(raw, known, "consults.toml")
    queues = raw.get("queue", [])
    if not isinstance(queues, list) or not queues or len(queues) > MAX_QUEUES:
        raise _invalid("queue", f"1 to {MAX_QUEUES} [[queue]] tables")
    parsed = tuple(_queue(q, i) for i, q in enumerate(queues))
    names = [q.name for q in parsed]
    if len(set(names)) != len(names):
        raise _invalid("queue", "queue names must differ")
    timezone = raw.get("timezone", "Asia/Shanghai")
    if not isinstance(timezone, str):
        raise _invalid("timezone", "a time zone name such as Asia/Shanghai")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise _invalid("timezone", f"unknown time zone {timezone!r}") from None
    return ConsultRules(
        queues=parsed,
        first_response_s=_int(raw.get("first_response_s", 300), "first_response_s", 1, 86_400),
        max_open_per_agent=_int(
            raw.get("max_open_per_agent", 5), "max_open_per_agent", 1, MAX_CAPACITY
        ),
        timezone=timezone,
        hours=_hours(raw["hours"]) if "hours" in raw else None,
    )


def _queue(raw: object, index: int) -> Queue:
    where = f"queue[{index}]"
    if not isinstance(raw, dict):
        raise _invalid(where, "a table")
    _no_unknown(raw, {"name", "roles", "strategy", "languages"}, where)
    name = raw.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        raise _invalid(f"{where}.name", "a name of 1 to 32 characters")
    roles = raw.get("roles")
    if not isinstance(roles, list) or not roles:
        raise _invalid(f"{where}.roles", "a list of roles")
    strategy = raw.get("strategy", Strategy.ROUND_ROBIN.value)
    languages = raw.get("languages")
    if languages is not None and (
        not isinstance(languages, list) or not languages or set(languages) - set(LANGUAGES)
    ):
        raise _invalid(f"{where}.languages", f"a list of {', '.join(LANGUAGES)}")
    return Queue(
        name=name,
        roles=tuple(dict.fromkeys(_enum(Role, r, f"{where}.roles") for r in roles)),
        strategy=_enum(Strategy, strategy, f"{where}.strategy"),
        languages=frozenset(languages) if languages is not None else None,
    )


def _hours(raw: object) -> Hours:
    if not isinstance(raw, dict):
        raise _invalid("hours", "a table")
    _no_unknown(raw, {"days", "open", "close", "away"}, "hours")
    days = raw.get("days", list(DAYS))
    if not isinstance(days, list) or not days or any(d not in DAYS for d in days):
        raise _invalid("hours.days", f"a list of {', '.join(DAYS)}")
    opening = _minute(raw.get("open", "00:00"), "hours.open")
    closing = _minute(raw.get("close", "24:00"), "hours.close")
    if opening == closing:
        raise _invalid("hours", "open and close must differ")
    away = raw.get("away")
    if away is not None and (
        not isinstance(away, dict)
        or set(away) - set(LANGUAGES)
        or not all(isinstance(v, str) and 0 < len(v) <= 500 for v in away.values())
    ):
        raise _invalid("hours.away", "texts of up to 500 characters per language")
    return Hours(frozenset(DAYS.index(d) for d in days), opening, closing % 1440, away)


def _minute(value: object, where: str) -> int:
    if isinstance(value, str) and len(value) == 5 and value[2] == ":":
        hours, minutes = value[:2], value[3:]
        if hours.isdigit() and minutes.isdigit():
            total = int(hours) * 60 + int(minutes)
            if int(minutes) < 60 and total <= 1440:
                return total
    raise _invalid(where, "a time of day such as 09:00")


def _int(value: object, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(where, f"a whole number from {low} to {high}")
    return value


def _enum(kind: type[E], value: object, where: str) -> E:
    try:
        return kind(str(value))
    except ValueError:
        raise _invalid(where, f"one of {', '.join(kind)}") from None


def _no_unknown(raw: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise _invalid(where, f"unknown key(s) {', '.join(unknown)}")


def _invalid(where: str, reason: str) -> BadRequest:
    return BadRequest(say("consults.rules_invalid", where=where, reason=reason))


def away_text(rules: ConsultRules, language: str, next_open: str) -> str | None:
    """The shop's own away message, if it wrote one, with the next opening filled in."""
    if rules.hours is None or not rules.hours.away:
        return None
    text = rules.hours.away.get(language) or next(iter(rules.hours.away.values()))
    return text.replace("{next_open}", next_open)
