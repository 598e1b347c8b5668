"""A call's rules as pure transitions: who may do what, and when a call is over.

A `Call` is a value; every operation returns the next one or raises a
DomainError and changes nothing. The service (services/calls.py) loads the
call under the conversation's lock, applies one transition, stores the result
and tells the parties. Timers are transitions too (`tick`): whichever server
process looks first applies them, and a second look finds nothing to do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from orderchat.core.errors import BadRequest, Conflict, Forbidden, NotFound
from orderchat.core.ids import UserId
from orderchat.core.texts import say


class CallMedia(StrEnum):
    AUDIO = "audio"
    VIDEO = "video"


class CallPhase(StrEnum):
    RINGING = "ringing"  # nobody has answered yet
    ACTIVE = "active"
    ENDED = "ended"


class PartyState(StrEnum):
    RINGING = "ringing"
    JOINED = "joined"
    AWAY = "away"  # their connection dropped; they may rejoin for a while
    LEFT = "left"
    DECLINED = "declined"
    BUSY = "busy"
    MISSED = "missed"


class Outcome(StrEnum):
    ANSWERED = "answered"
    MISSED = "missed"
    DECLINED = "declined"
    BUSY = "busy"
    CANCELLED = "cancelled"


# A party in the call's media: they count towards the limit and keep it going.
IN_CALL = frozenset({PartyState.JOINED, PartyState.AWAY})
# Someone who may still be rung again by `add`.
GONE = frozenset({PartyState.LEFT, PartyState.DECLINED, PartyState.BUSY, PartyState.MISSED})


@dataclass(frozen=True, slots=True)
class CallRules:
    max_participants: int = 4
    ring_timeout_ms: int = 30_000
    rejoin_grace_ms: int = 30_000
    max_invitees: int = 20
    # Each node says this often that its joined connections are still there; a joined
    # party nobody has vouched for in three times as long was on a node that died (or
    # a server that restarted) and has left.
    keepalive_ms: int = 10_000

    @property
    def stale_ms(self) -> int:
        return 3 * self.keepalive_ms


@dataclass(frozen=True, slots=True)
class Party:
    user: UserId
    state: PartyState
    conn: str | None = None  # the connection a joined party talks from
    audio: bool = True
    video: bool = True
    screen: bool = False
    joined_ms: int | None = None  # first joined
    away_until_ms: int | None = None
    ever_joined: bool = False
    seen_ms: int | None = None  # when a node last vouched for a joined party's connection


@dataclass(frozen=True, slots=True)
class Call:
    id: str
    conv: str
    caller: UserId
    media: CallMedia
    internal: bool
    phase: CallPhase
    started_ms: int
    ring_until_ms: int
    parties: tuple[Party, ...]  # the caller first, then in the order invited
    answered_ms: int | None = None
    ended_ms: int | None = None
    outcome: Outcome | None = None

    def party(self, user: UserId) -> Party | None:
        return next((p for p in self.parties if p.user == user), None)

    def joined_at(self, conn: str) -> Party | None:
        return next(
            (p for p in self.parties if p.conn == conn and p.state is PartyState.JOINED), None
        )

    @property
    def users(self) -> frozenset[UserId]:
        return frozenset(p.user for p in self.parties)

    def in_state(self, *states: PartyState) -> list[Party]:
        return [p for p in self.parties if p.state in states]

    def next_deadline_ms(self, stale_ms: int) -> int | None:
        """When `tick` may next change something; None once the call is over."""
        if self.phase is CallPhase.ENDED:
            return None
        deadlines = [p.away_until_ms for p in self.parties if p.away_until_ms is not None]
        joined = self.in_state(PartyState.JOINED)
        deadlines += [p.seen_ms + stale_ms for p in joined if p.seen_ms is not None]
        if self.in_state(PartyState.RINGING):
            deadlines.append(self.ring_until_ms)
        return min(deadlines) if deadlines else None


def start(
    call_id: str,
    conv: str,
    caller: UserId,
    conn: str,
    media: CallMedia,
    internal: bool,
    invitees: Iterable[UserId],
    busy: Iterable[UserId],
    now_ms: int,
    rules: CallRules,
) -> Call:
    """A new call: the caller joined from `conn`, every invitee ringing (or busy)."""
    wanted = list(dict.fromkeys(u for u in invitees if u != caller))
    if not wanted:
        raise BadRequest(say("calls.nobody_to_call"))
    if len(wanted) > rules.max_invitees:
        raise BadRequest(say("calls.too_many_invitees", max_invitees=rules.max_invitees))
    engaged = set(busy)
    if caller in engaged:
        raise Conflict(say("calls.you_are_in_a_call"))
    me = Party(
        caller,
        PartyState.JOINED,
        conn,
        video=media is CallMedia.VIDEO,
        joined_ms=now_ms,
        seen_ms=now_ms,
    )
    others = [
        Party(u, PartyState.BUSY if u in engaged else PartyState.RINGING, video=False)
        for u in wanted
    ]
    call = Call(
        id=call_id,
        conv=conv,
        caller=caller,
        media=media,
        internal=internal,
        phase=CallPhase.RINGING,
        started_ms=now_ms,
        ring_until_ms=now_ms + rules.ring_timeout_ms,
        parties=(replace(me, ever_joined=True), *others),
    )
    return _settle(call, now_ms)


def add(
    call: Call,
    by: UserId,
    invitees: Iterable[UserId],
    busy: Iterable[UserId],
    now_ms: int,
    rules: CallRules,
) -> Call:
    """Ring more people into a call `by` is in; someone who left or missed it rings again.

    Not into a full call: they could only be refused when they answer.
    """
    _require_in_call(call, by)
    if len(call.in_state(*IN_CALL)) >= rules.max_participants:
        raise Conflict(say("calls.call_full", max_participants=rules.max_participants))
    engaged = set(busy)
    parties = list(call.parties)
    rung = False
    for user in dict.fromkeys(invitees):
        found = call.party(user)
        if found is not None and found.state not in GONE:
            continue  # already ringing or in the call
        state = PartyState.BUSY if user in engaged else PartyState.RINGING
        rung = rung or state is PartyState.RINGING
        fresh = Party(user, state, video=False, ever_joined=found is not None and found.ever_joined)
        if found is None:
            parties.append(fresh)
        else:
            parties[parties.index(found)] = replace(fresh, joined_ms=found.joined_ms)
    if len(parties) > rules.max_invitees + 1:
        raise BadRequest(say("calls.too_many_invitees", max_invitees=rules.max_invitees))
    ring_until = now_ms + rules.ring_timeout_ms if rung else call.ring_until_ms
    return _settle(replace(call, parties=tuple(parties), ring_until_ms=ring_until), now_ms)


def accept(call: Call, user: UserId, conn: str, now_ms: int, rules: CallRules) -> Call:
    """`user` answers from `conn`: every other device of theirs stops ringing."""
    _require_live(call)
    party = call.party(user)
    if party is None:
        raise Forbidden(say("calls.not_invited"))
    if party.state is not PartyState.RINGING:
        raise Conflict(say("calls.not_ringing", state=party.state.value))
    if len(call.in_state(*IN_CALL)) >= rules.max_participants:
        raise Conflict(say("calls.call_full", max_participants=rules.max_participants))
    joined = replace(
        party,
        state=PartyState.JOINED,
        conn=conn,
        video=call.media is CallMedia.VIDEO,
        joined_ms=party.joined_ms or now_ms,
        ever_joined=True,
        seen_ms=now_ms,
    )
    answered = call.answered_ms or now_ms
    call = replace(call, phase=CallPhase.ACTIVE, answered_ms=answered)
    return _settle(_with(call, joined), now_ms)


def decline(call: Call, user: UserId, busy: bool, now_ms: int) -> Call:
    _require_live(call)
    party = call.party(user)
    if party is None:
        raise Forbidden(say("calls.not_invited"))
    if party.state is not PartyState.RINGING:
        raise Conflict(say("calls.not_ringing", state=party.state.value))
    state = PartyState.BUSY if busy else PartyState.DECLINED
    return _settle(_with(call, replace(party, state=state)), now_ms)


def hang_up(call: Call, user: UserId, now_ms: int) -> Call:
    """Leave from any device. The caller before any answer cancels; a ringing invitee declines."""
    _require_live(call)
    party = call.party(user)
    if party is None:
        raise Forbidden(say("calls.not_in_call"))
    if party.state is PartyState.RINGING:
        return decline(call, user, False, now_ms)
    if party.state not in IN_CALL:
        raise Conflict(say("calls.not_in_call"))
    if user == call.caller and call.phase is CallPhase.RINGING:
        return _end(call, now_ms, Outcome.CANCELLED)
    left = replace(party, state=PartyState.LEFT, conn=None, away_until_ms=None, screen=False)
    return _settle(_with(call, left), now_ms)


def drop(call: Call, conn: str, now_ms: int, rules: CallRules) -> Call:
    """The connection `conn` is gone: its party is away for the rejoin grace."""
    party = call.joined_at(conn) if call.phase is not CallPhase.ENDED else None
    if party is None:
        return call
    away = replace(party, state=PartyState.AWAY, away_until_ms=now_ms + rules.rejoin_grace_ms)
    return _with(call, away)


def rejoin(call: Call, user: UserId, conn: str, now_ms: int) -> Call:
    """Back from another connection, while away (or before the old one was seen to drop)."""
    _require_live(call)
    party = call.party(user)
    if party is None or party.state not in IN_CALL:
        raise Conflict(say("calls.cannot_rejoin"))
    back = replace(party, state=PartyState.JOINED, conn=conn, away_until_ms=None, seen_ms=now_ms)
    return _with(call, back)


def set_media(call: Call, user: UserId, conn: str, audio: bool, video: bool, screen: bool) -> Call:
    _require_live(call)
    party = call.party(user)
    if party is None or party.state is not PartyState.JOINED or party.conn != conn:
        raise Forbidden(say("calls.not_in_call"))
    return _with(call, replace(party, audio=audio, video=video, screen=screen))


def keep_alive(call: Call, conns: Iterable[str], now_ms: int) -> Call:
    """A node vouches for its connections: the parties joined from them are still there."""
    here = set(conns)
    if call.phase is CallPhase.ENDED:
        return call
    parties = tuple(
        replace(p, seen_ms=now_ms) if p.state is PartyState.JOINED and p.conn in here else p
        for p in call.parties
    )
    return replace(call, parties=parties)


def tick(call: Call, now_ms: int, stale_ms: int) -> Call:
    """What the clock changes: unanswered rings become missed, the long away have left,
    and so has a joined party no node has vouched for (its node died)."""
    if call.phase is CallPhase.ENDED:
        return call
    parties = []
    for party in call.parties:
        stale = party.seen_ms is not None and now_ms >= party.seen_ms + stale_ms
        if party.state is PartyState.RINGING and now_ms >= call.ring_until_ms:
            party = replace(party, state=PartyState.MISSED)
        elif (party.state is PartyState.AWAY and now_ms >= (party.away_until_ms or 0)) or (
            party.state is PartyState.JOINED and stale
        ):
            party = replace(party, state=PartyState.LEFT, conn=None, away_until_ms=None)
        parties.append(party)
    return _settle(replace(call, parties=tuple(parties)), now_ms)


def _settle(call: Call, now_ms: int) -> Call:
    """End the call if nobody is left to talk to."""
    if call.phase is CallPhase.ENDED:
        return call
    in_call = call.in_state(*IN_CALL)
    ringing = call.in_state(PartyState.RINGING)
    if call.phase is CallPhase.RINGING:
        if not in_call:
            return _end(call, now_ms, Outcome.CANCELLED)
        if ringing:
            return call
        said_no = {p.state for p in call.parties if p.user != call.caller}
        if PartyState.DECLINED in said_no:
            return _end(call, now_ms, Outcome.DECLINED)
        if said_no == {PartyState.BUSY}:
            return _end(call, now_ms, Outcome.BUSY)
        return _end(call, now_ms, Outcome.MISSED)
    # Ringing goes on for whoever rang: once the caller has gone, one person left
    # alone is not kept waiting for the others to pick up.
    caller_in = any(p.user == call.caller for p in in_call)
    if not in_call or (len(in_call) == 1 and (not ringing or not caller_in)):
        return _end(call, now_ms, Outcome.ANSWERED)
    return call


def _end(call: Call, now_ms: int, outcome: Outcome) -> Call:
    def after(party: Party) -> Party:
        if party.state in IN_CALL:
            return replace(party, state=PartyState.LEFT, conn=None, away_until_ms=None)
        if party.state is PartyState.RINGING:
            return replace(party, state=PartyState.MISSED)
        return party

    return replace(
        call,
        phase=CallPhase.ENDED,
        ended_ms=now_ms,
        outcome=outcome,
        parties=tuple(after(p) for p in call.parties),
    )


def _with(call: Call, changed: Party) -> Call:
    return replace(
        call, parties=tuple(changed if p.user == changed.user else p for p in call.parties)
    )


def _require_live(call: Call) -> None:
    if call.phase is CallPhase.ENDED:
        raise Conflict(say("calls.call_over"))


def _require_in_call(call: Call, user: UserId) -> None:
    _require_live(call)
    party = call.party(user)
    if party is None or party.state not in IN_CALL:
        raise Forbidden(say("calls.not_in_call"))


def invitees(
    caller: UserId,
    members: Iterable[UserId],
    customers: Iterable[UserId],
    wanted: Iterable[str] | None,
    internal: bool,
) -> list[UserId]:
    """Whom a call rings: members only; a customer rings the staff; nobody rings a
    customer into a staff-only call.

    Raises:
        Forbidden: the caller is not a member, or a customer asked for a staff-only call.
        BadRequest: someone named is not a member, or is a customer of a staff-only call.
    """
    everyone, buyers = set(members), set(customers)
    if caller not in everyone:
        raise Forbidden(say("conversations.you_are_not_member_conversation"))
    if internal and caller in buyers:
        raise Forbidden(say("calls.customer_not_in_internal"))
    may_ring = everyone - {caller}
    if caller in buyers or internal:
        may_ring -= buyers
    if wanted is None:
        return sorted(may_ring)
    named = [UserId(u) for u in dict.fromkeys(wanted) if u != caller]
    for user in named:
        if user not in everyone:
            raise BadRequest(say("calls.invitee_not_member"))
        if user not in may_ring:
            raise BadRequest(say("calls.customer_not_in_internal"))
    return named


def missed_by(call: Call) -> list[UserId]:
    """Invitees who never joined and did not say no: the record mentions them."""
    return [p.user for p in call.parties if p.state is PartyState.MISSED and not p.ever_joined]


def record_meta(call: Call) -> dict[str, object]:
    """What the call's record message keeps (docs/calls.md)."""
    answered, ended = call.answered_ms, call.ended_ms or call.started_ms
    others = [p for p in call.parties if p.user != call.caller]
    return {
        "call": call.id,
        "media": call.media.value,
        "outcome": (call.outcome or Outcome.MISSED).value,
        "caller": call.caller,
        "invited": [p.user for p in others],
        "joined": [p.user for p in call.parties if p.ever_joined],
        "missed": missed_by(call),
        "declined": [p.user for p in others if p.state is PartyState.DECLINED],
        "busy": [p.user for p in others if p.state is PartyState.BUSY],
        "started_ts": call.started_ms,
        "answered_ts": answered,
        "ended_ts": ended,
        "duration_ms": 0 if answered is None else max(0, ended - answered),
    }


def require_exists(call: Call | None) -> Call:
    if call is None:
        raise NotFound(say("calls.no_call"))
    return call
