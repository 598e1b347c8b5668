"""Calls: the signalling service (docs/calls.md).

Every change to a call is a writer operation: it locks the call's
conversation (as a send does), applies one transition of core/calls.py to the
stored call, saves it, and queues the new state for every device of every
party, published after commit like any event. The call that ends writes its
record message in the same transaction, so the record and the end are one.

SDPs and ICE candidates are not stored: each is checked against the stored
call (the sender's connection and the receiver must both be joined) and
relayed to the one connection the receiver joined from, on whichever node.

The timers (ring timeout, rejoin grace) are transitions too: one node at a
time (the `call-timers` lease) looks for calls whose `next_check_ms` has come
and applies `tick`; a call nothing happened to is left untouched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from orderchat.core import calls as rules
from orderchat.core.calls import IN_CALL, Call, CallPhase, CallRules, Outcome
from orderchat.core.errors import DomainError, Forbidden, NotFound
from orderchat.core.ids import ConnectionId, ConversationId, UserId
from orderchat.core.model import MessageKind, User
from orderchat.core.ratelimit import Rate, RateLimiter
from orderchat.core.texts import DEFAULT_LANGUAGE, say
from orderchat.core.turn import IceConfig, ice_servers
from orderchat.protocol.calls import (
    CallAccept,
    CallAdd,
    CallDecline,
    CallHangUp,
    CallInvite,
    CallMediaChange,
    CallParty,
    CallRejoin,
    CallRequest,
    CallSignal,
    CallSignalOut,
    CallState,
)
from orderchat.protocol.server_codec import encode_server_frame
from orderchat.services.leases import Leases
from orderchat.services.ports import Clock, Delivery, Publisher
from orderchat.services.writer import GroupCommitWriter, WriteTxn
from orderchat.storage import calls as store
from orderchat.storage.engine import Database

logger = logging.getLogger(__name__)

TIMERS_LEASE = "call-timers"
LOOK_EVERY_S = 1.0
# ICE trickles a few dozen candidates per peer; renegotiations are rare.
SIGNAL_RATE = Rate(per_s=50.0, burst=200.0)


def state_frame(call: Call) -> CallState:
    return CallState(
        call=call.id,
        conv=call.conv,
        media=call.media.value,
        internal=call.internal,
        state=call.phase.value,
        caller=call.caller,
        started_ts=call.started_ms,
        parties=tuple(
            CallParty(p.user, p.state.value, p.conn, p.audio, p.video, p.screen)
            for p in call.parties
        ),
        answered_ts=call.answered_ms,
        ended_ts=call.ended_ms,
        outcome=None if call.outcome is None else call.outcome.value,
    )


def _duration(ms: int) -> str:
    seconds = ms // 1000
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


async def _engaged(tx: WriteTxn, users: Iterable[UserId], besides: str | None) -> set[UserId]:
    """Who among `users` is in another call now: they are busy."""
    wanted = set(users)
    found: set[UserId] = set()
    for call in await store.live_calls(tx.conn):
        if call.id != besides:
            found.update(p.user for p in call.parties if p.user in wanted and p.state in IN_CALL)
    return found


@dataclass(frozen=True, slots=True)
class StartCall:
    user: User
    conn: ConnectionId
    frame: CallInvite
    rules: CallRules

    async def apply(self, tx: WriteTxn) -> Call:
        conv = await tx.conversation(self.frame.conv)
        members = await tx.member_set(conv.id)
        ringing = rules.invitees(
            self.user.id, members.roles, members.customers, self.frame.users, self.frame.internal
        )
        busy = await _engaged(tx, [self.user.id, *ringing], None)
        call = rules.start(
            tx.ids.new("call", tx.now_ms),
            conv.id,
            self.user.id,
            self.conn,
            self.frame.media,
            self.frame.internal,
            ringing,
            busy,
            tx.now_ms,
            self.rules,
        )
        await store.insert_call_txn(tx.conn, call, self.rules.stale_ms)
        await _after_change(tx, call, self.conn)
        return call


@dataclass(frozen=True, slots=True)
class ChangeCall:
    """One transition of a stored call, by a person or by the clock (`user` None)."""

    call_id: str
    user: User | None
    conn: ConnectionId | None
    change: Callable[[Call, WriteTxn, set[UserId]], Call]
    limits: CallRules
    needs_busy: Iterable[UserId] = field(default=())
    member_only: bool = False
    announce: bool = True  # False for a keep-alive: nothing anyone sees has changed

    async def apply(self, tx: WriteTxn) -> Call:
        conv_id = await store.conv_of_call(tx.conn, self.call_id)
        call = None if conv_id is None else await _locked_call(tx, conv_id, self.call_id)
        call = rules.require_exists(call)
        if self.user is not None and self.user.id not in call.users:
            raise Forbidden(say("calls.not_in_call"))
        if self.member_only and self.user is not None:
            members = await tx.member_set(ConversationId(call.conv))
            rules.invitees(self.user.id, members.roles, members.customers, None, call.internal)
        busy = await _engaged(tx, self.needs_busy, call.id) if self.needs_busy else set()
        changed = self.change(call, tx, busy)
        if changed == call:
            return call
        await store.save_call_txn(tx.conn, changed, self.limits.stale_ms)
        if self.announce:
            await _after_change(tx, changed, self.conn)
        return changed


async def _locked_call(tx: WriteTxn, conv_id: str, call_id: str) -> Call | None:
    await tx.conversation(conv_id)  # the lock every change of this call waits on
    return await store.load_call(tx.conn, call_id)


async def _after_change(tx: WriteTxn, call: Call, acting: ConnectionId | None) -> None:
    """Tell every party (but the connection that asked, which gets the answer) and,
    once it is over, write the record."""
    data = encode_server_frame(state_frame(call))
    tx.deliveries.append(Delivery(0, call.users, data, skip_connection=acting))
    if call.phase is not CallPhase.ENDED:
        return
    conv = await tx.conversation(call.conv)
    await tx.member_set(conv.id)  # who the record goes to
    meta = rules.record_meta(call)
    outcome = (call.outcome or Outcome.MISSED).value
    duration = meta["duration_ms"]
    assert isinstance(duration, int)
    said = say(f"calls.record_{call.media.value}_{outcome}", duration=_duration(duration))
    meta["say"] = said.to_json()
    await tx.append_message(
        conv,
        call.caller,
        MessageKind.CALL,
        said.render(DEFAULT_LANGUAGE),
        mentions=tuple(rules.missed_by(call)),
        meta=meta,
        internal=call.internal,
    )


class Ringer(Protocol):
    """Rings devices whose page is closed (services/notify/ringing.py)."""

    async def ring(self, call: Call, users: Sequence[UserId], ring_s: int) -> None: ...

    async def stop(self, call: Call, users: Sequence[UserId]) -> None: ...


class Calls:
    def __init__(
        self,
        db: Database,
        writer: GroupCommitWriter,
        publisher: Publisher,
        clock: Clock,
        leases: Leases,
        call_rules: CallRules,
        ice: IceConfig,
        *,
        rate_limits: bool,
    ) -> None:
        self._db = db
        self._writer = writer
        self._publisher = publisher
        self._clock = clock
        self._leases = leases
        self.rules = call_rules
        self._ice = ice
        self._signal_limiter = RateLimiter(SIGNAL_RATE, enabled=rate_limits)
        # The calls each connection of this node is joined to: what a drop leaves.
        self._joined_here: dict[ConnectionId, set[str]] = {}
        self.ringer: Ringer | None = None  # set once notifications have started
        self._pushing: set[asyncio.Task[None]] = set()

    def ice_servers(self, user: UserId, call: str | None) -> list[dict[str, object]]:
        return ice_servers(self._ice, user, call, self._clock.now_ms() // 1000)

    async def request(self, user: User, conn: ConnectionId, frame: CallRequest) -> CallState:
        """Apply a call request from `conn`; the answer is the call's state with its ref."""
        call = await self._writer.submit(self._op(user, conn, frame))
        self._push_rings(call, user.id, frame)
        mine = call.party(user.id)
        joined = mine is not None and mine.conn == conn and call.phase is not CallPhase.ENDED
        calls_here = self._joined_here.setdefault(conn, set())
        if joined:
            calls_here.add(call.id)
        else:
            calls_here.discard(call.id)
        if not calls_here:
            del self._joined_here[conn]
        if not joined:
            return replace(state_frame(call), ref=frame.ref)
        servers = tuple(self.ice_servers(user.id, call.id))
        policy = self._ice.transport_policy
        return replace(
            state_frame(call), ref=frame.ref, ice_servers=servers, ice_transport_policy=policy
        )

    def _push_rings(self, call: Call, by: UserId, frame: CallRequest | None) -> None:
        """Ring closed pages of those just invited; quiet the rings that have stopped."""
        ringer = self.ringer
        if ringer is None:
            return
        ringing = [p.user for p in call.in_state(rules.PartyState.RINGING)]
        invited = frame.users if isinstance(frame, CallAdd) else None
        if isinstance(frame, CallInvite | CallAdd):
            fresh = [u for u in ringing if invited is None or u in invited]
            self._in_background(ringer.ring(call, fresh, self.rules.ring_timeout_ms // 1000))
        if call.phase is CallPhase.ENDED:
            stopped = [p.user for p in call.parties if p.user != call.caller]
        elif isinstance(frame, CallAccept | CallDecline):
            stopped = [by]
        else:
            return
        self._in_background(ringer.stop(call, stopped))

    def _in_background(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(job)
        self._pushing.add(task)
        task.add_done_callback(self._pushing.discard)

    def _op(self, user: User, conn: ConnectionId, frame: CallRequest) -> StartCall | ChangeCall:
        limits = self.rules
        match frame:
            case CallInvite():
                return StartCall(user, conn, frame, limits)
            case CallAdd(users=users):
                return ChangeCall(
                    frame.call,
                    user,
                    conn,
                    lambda c, tx, busy: rules.add(c, user.id, _members(tx, c, user, users),
                                                  busy, tx.now_ms, limits),
                    limits=limits,
                    needs_busy=[UserId(u) for u in users],
                    member_only=True,
                )  # fmt: skip
            case CallAccept():
                return ChangeCall(
                    frame.call,
                    user,
                    conn,
                    lambda c, tx, busy: rules.accept(c, user.id, conn, tx.now_ms, limits),
                    limits=limits,
                    member_only=True,
                )
            case CallDecline(busy=said_busy):
                return ChangeCall(
                    frame.call,
                    user,
                    conn,
                    lambda c, tx, busy: rules.decline(c, user.id, said_busy, tx.now_ms),
                    limits=limits,
                )
            case CallHangUp():
                return ChangeCall(
                    frame.call,
                    user,
                    conn,
                    lambda c, tx, busy: rules.hang_up(c, user.id, tx.now_ms),
                    limits=limits,
                )
            case CallRejoin():
                return ChangeCall(
                    frame.call,
                    user,
                    conn,
                    lambda c, tx, busy: rules.rejoin(c, user.id, conn, tx.now_ms),
                    limits=limits,
                    member_only=True,
                )
        raise AssertionError(f"not a call request: {frame!r}")

    async def media(self, user: User, conn: ConnectionId, frame: CallMediaChange) -> None:
        self._signal_limiter.hit(conn, self._clock.monotonic_s(), say("ratelimit.call_signals"))
        await self._writer.submit(
            ChangeCall(
                frame.call,
                user,
                conn,
                lambda c, tx, busy: rules.set_media(
                    c, user.id, conn, frame.audio, frame.video, frame.screen
                ),
                limits=self.rules,
            )
        )

    async def signal(self, user: User, conn: ConnectionId, frame: CallSignalOut) -> None:
        """Relay an SDP or a candidate to the receiver's joined connection, and nowhere else."""
        self._signal_limiter.hit(conn, self._clock.monotonic_s(), say("ratelimit.call_signals"))
        async with self._db.read() as db:
            call = rules.require_exists(await store.load_call(db, frame.call))
        sender = call.joined_at(conn)
        if sender is None or sender.user != user.id or call.phase is CallPhase.ENDED:
            raise Forbidden(say("calls.not_in_call"))
        target = call.party(UserId(frame.to))
        if target is None or target.state is not rules.PartyState.JOINED or target.conn is None:
            raise Forbidden(say("calls.signal_target_not_joined"))
        relayed = CallSignal(call.id, user.id, frame.kind.value, frame.sdp, frame.candidate)
        data = encode_server_frame(relayed)
        only = ConnectionId(target.conn)
        self._publisher.publish([Delivery(0, frozenset({target.user}), data, only_connection=only)])

    async def state_for(self, user: UserId, call_id: str) -> CallState:
        """A call as its parties see it; anyone else is told it does not exist."""
        async with self._db.read() as db:
            call = await store.load_call(db, call_id)
        if call is None or user not in call.users:
            raise NotFound(say("calls.no_call"))
        return state_frame(call)

    async def live_for(self, user: UserId) -> list[CallState]:
        """The calls ringing for `user` or waiting for them to rejoin: told after `synced`."""
        async with self._db.read() as db:
            live = await store.live_calls(db)
        wanted = (rules.PartyState.RINGING, rules.PartyState.AWAY, rules.PartyState.JOINED)
        return [
            state_frame(call)
            for call in live
            if (mine := call.party(user)) is not None and mine.state in wanted
        ]

    def dropped(self, conn: ConnectionId) -> None:
        """A connection of this node is gone: its parties are away while they may rejoin."""
        limits = self.rules
        for call_id in self._joined_here.pop(conn, ()):
            op = ChangeCall(
                call_id,
                None,
                None,
                lambda c, tx, busy: rules.drop(c, conn, tx.now_ms, limits),
                limits=limits,
            )
            future = self._writer.submit_nowait(op)
            future.add_done_callback(_log_failure)

    async def run_timers(self, stop: asyncio.Event) -> None:
        """Ring timeouts and rejoin graces on the node holding the lease; on every node,
        the keep-alive of the calls its connections are joined to."""
        next_keep_alive = 0.0
        while not stop.is_set():
            try:
                async with asyncio.timeout(LOOK_EVERY_S):
                    await stop.wait()
                return
            except TimeoutError:
                pass
            if (now_s := self._clock.monotonic_s()) >= next_keep_alive:
                next_keep_alive = now_s + self.rules.keepalive_ms / 1000
                await self._keep_alive()
            try:
                if await self._leases.hold(TIMERS_LEASE):
                    await self.tick(self._clock.now_ms())
            except DomainError:
                pass
            except Exception:
                logger.warning("call timers failed; trying again", exc_info=True)

    async def _keep_alive(self) -> None:
        by_call: dict[str, set[str]] = {}
        for conn, call_ids in self._joined_here.items():
            for call_id in call_ids:
                by_call.setdefault(call_id, set()).add(conn)
        ops = [
            ChangeCall(call_id, None, None, _vouch_for(conns), limits=self.rules, announce=False)
            for call_id, conns in by_call.items()
        ]
        await self._apply_together(ops, "a call's keep-alive")

    async def tick(self, now_ms: int) -> None:
        async with self._db.read() as db:
            due = await store.due_calls(db, now_ms)
        stale_ms = self.rules.stale_ms
        ops = [
            ChangeCall(
                call_id,
                None,
                None,
                lambda c, tx, busy: rules.tick(c, tx.now_ms, stale_ms),
                limits=self.rules,
            )
            for call_id in due
        ]
        for call in await self._apply_together(ops, "a call's timers"):
            self._push_rings(call, call.caller, None)

    async def _apply_together(self, ops: Sequence[ChangeCall], what: str) -> list[Call]:
        """Queued at once, so one group commit applies them all; the calls that changed."""
        futures = [self._writer.submit_nowait(op) for op in ops]
        done: list[Call] = []
        for outcome in await asyncio.gather(*futures, return_exceptions=True):
            if isinstance(outcome, Call):
                done.append(outcome)
            elif not isinstance(outcome, DomainError):  # a DomainError: the call is gone
                logger.warning("%s failed; trying again", what, exc_info=outcome)
        return done


def _vouch_for(conns: Iterable[str]) -> Callable[[Call, WriteTxn, set[UserId]], Call]:
    mine = frozenset(conns)
    return lambda call, tx, busy: rules.keep_alive(call, mine, tx.now_ms)


def _members(tx: WriteTxn, call: Call, user: User, users: tuple[str, ...]) -> list[UserId]:
    """The people `call_add` names, as the invite rules allow them (members checked)."""
    members = tx.member_cache.get(ConversationId(call.conv))
    assert members is not None, "the conversation's members are loaded before the change"
    return rules.invitees(user.id, members.roles, members.customers, users, call.internal)


def _log_failure(future: asyncio.Future[Call]) -> None:
    exc = None if future.cancelled() else future.exception()
    if exc is not None and not isinstance(exc, DomainError):
        logger.warning("marking a dropped call party away failed", exc_info=exc)
