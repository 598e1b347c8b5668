"""The call's rules (core/calls.py) and its TURN credentials (core/turn.py), without I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from orderchat.core import calls as rules
from orderchat.core.calls import (
    Call,
    CallMedia,
    CallPhase,
    CallRules,
    Outcome,
    PartyState,
)
from orderchat.core.errors import BadRequest, Conflict, Forbidden
from orderchat.core.ids import ConversationId, MessageId, UserId
from orderchat.core.model import ConversationKind, MessageKind
from orderchat.core.texts import say
from orderchat.core.turn import IceConfig, ice_servers, turn_password
from orderchat.realtime.redis_bus import decode, encode, sent_by
from orderchat.services.notify.events import worded
from orderchat.services.ports import Delivery
from orderchat.storage.notify_reads import StreamMessage

A, B, C, D = (UserId(f"u_{n}") for n in "abcd")
RULES = CallRules(max_participants=3, ring_timeout_ms=30_000, rejoin_grace_ms=30_000)
# Where staleness is not the point, every node keeps vouching (no party goes stale).
STALE = 10**12


def ring(*invitees: UserId, busy: tuple[UserId, ...] = (), at: int = 0) -> Call:
    return rules.start("call_1", "c_1", A, "w_a", CallMedia.VIDEO, False, invitees, busy, at, RULES)


def states(call: Call) -> dict[UserId, PartyState]:
    return {p.user: p.state for p in call.parties}


def test_an_invite_rings_everyone_but_the_busy_and_the_caller_is_in() -> None:
    call = ring(B, C, busy=(C,))
    assert states(call) == {A: PartyState.JOINED, B: PartyState.RINGING, C: PartyState.BUSY}
    assert call.phase is CallPhase.RINGING and call.next_deadline_ms(STALE) == 30_000


def test_everyone_busy_ends_at_once_as_busy() -> None:
    call = ring(B, busy=(B,))
    assert call.phase is CallPhase.ENDED and call.outcome is Outcome.BUSY


def test_nobody_to_call_and_a_busy_caller_are_refused() -> None:
    with pytest.raises(BadRequest):
        ring(A)
    with pytest.raises(Conflict):
        rules.start("x", "c", A, "w", CallMedia.AUDIO, False, [B], [A], 0, RULES)


def test_answering_makes_the_call_active_and_the_first_answer_wins() -> None:
    call = rules.accept(ring(B), B, "w_b1", 1_000, RULES)
    assert call.phase is CallPhase.ACTIVE and call.answered_ms == 1_000
    assert call.party(B) is not None and call.party(B).conn == "w_b1"  # type: ignore[union-attr]
    with pytest.raises(Conflict):  # the same person's second device
        rules.accept(call, B, "w_b2", 1_100, RULES)


def test_the_limit_refuses_one_more_and_counts_those_away() -> None:
    call = rules.accept(ring(B, C, D), B, "w_b", 10, RULES)
    call = rules.accept(call, C, "w_c", 20, RULES)
    call = rules.drop(call, "w_c", 30, RULES)
    assert states(call)[C] is PartyState.AWAY
    with pytest.raises(Conflict) as refused:
        rules.accept(call, D, "w_d", 40, RULES)
    assert refused.value.text.key == "calls.call_full"
    with pytest.raises(Conflict):  # nor rung into it
        rules.add(rules.hang_up(call, D, 50), A, [D], [], 60, RULES)


def test_a_declined_a_cancelled_and_an_unanswered_call_end_as_such() -> None:
    declined = rules.decline(ring(B), B, False, 5)
    assert declined.outcome is Outcome.DECLINED and rules.missed_by(declined) == []
    cancelled = rules.hang_up(ring(B, C), A, 5)
    assert cancelled.outcome is Outcome.CANCELLED and rules.missed_by(cancelled) == [B, C]
    unanswered = ring(B)
    assert rules.tick(unanswered, 29_999, STALE) == unanswered
    missed = rules.tick(unanswered, 30_000, STALE)
    assert missed.outcome is Outcome.MISSED and states(missed)[B] is PartyState.MISSED
    assert missed.next_deadline_ms(STALE) is None


def test_a_group_call_goes_on_while_two_remain_and_rings_out_the_rest() -> None:
    call = rules.accept(ring(B, C), B, "w_b", 1_000, RULES)
    call = rules.tick(call, 30_000, STALE)
    assert call.phase is CallPhase.ACTIVE and states(call)[C] is PartyState.MISSED
    call = rules.hang_up(call, B, 90_000)
    assert call.outcome is Outcome.ANSWERED
    meta = rules.record_meta(call)
    assert meta["joined"] == [A, B] and meta["missed"] == [C]
    assert meta["duration_ms"] == 89_000


def test_a_caller_who_leaves_stops_the_ring_for_one_left_alone() -> None:
    call = rules.accept(ring(B, C), B, "w_b", 1_000, RULES)
    over = rules.hang_up(call, A, 2_000)
    assert over.outcome is Outcome.ANSWERED and states(over)[C] is PartyState.MISSED
    # With the caller still in, ringing goes on after another leaves.
    call = rules.accept(ring(B, C, D), B, "w_b", 1_000, RULES)
    going = rules.hang_up(call, B, 2_000)
    assert going.phase is CallPhase.ACTIVE and states(going)[C] is PartyState.RINGING


def test_a_joined_party_no_node_vouches_for_has_left_and_ends_the_call() -> None:
    stale = RULES.stale_ms
    call = rules.accept(ring(B), B, "w_b", 0, RULES)
    assert call.next_deadline_ms(stale) == 30_000  # the ring's end, and B's staleness
    kept = rules.keep_alive(call, {"w_a"}, 20_000)  # A's node is alive; B's died
    assert kept.party(A).seen_ms == 20_000 and kept.party(B).seen_ms == 0  # type: ignore[union-attr]
    assert kept.next_deadline_ms(stale) == stale
    assert rules.tick(kept, stale - 1, stale) == kept
    over = rules.tick(kept, stale, stale)
    assert over.outcome is Outcome.ANSWERED and states(over)[B] is PartyState.LEFT


def test_one_who_drops_may_rejoin_within_the_grace_and_has_left_after_it() -> None:
    call = rules.accept(ring(B), B, "w_b", 0, RULES)
    away = rules.drop(call, "w_b", 1_000, RULES)
    assert away.next_deadline_ms(STALE) == 31_000
    back = rules.rejoin(away, B, "w_b2", 2_000)
    assert back.party(B).conn == "w_b2"  # type: ignore[union-attr]
    assert back.next_deadline_ms(STALE) == STALE, "no grace runs: only staleness, from A"
    assert rules.drop(back, "w_b", 3_000, RULES) == back, "the old connection no longer counts"
    gone = rules.tick(rules.drop(back, "w_b2", 4_000, RULES), 34_000, STALE)
    assert gone.outcome is Outcome.ANSWERED and states(gone)[B] is PartyState.LEFT
    with pytest.raises(Conflict):
        rules.rejoin(gone, B, "w_b3", 35_000)


def test_someone_who_left_can_be_rung_back_in_and_strangers_cannot_act() -> None:
    call = rules.accept(ring(B, C), B, "w_b", 0, RULES)
    call = rules.accept(call, C, "w_c", 0, RULES)
    call = rules.hang_up(call, C, 10)
    again = rules.add(call, A, [C], [], 20, RULES)
    assert states(again)[C] is PartyState.RINGING and again.ring_until_ms == 30_020
    with pytest.raises(Forbidden):
        rules.add(call, D, [C], [], 20, RULES)
    with pytest.raises(Forbidden):
        rules.accept(call, D, "w_d", 20, RULES)
    with pytest.raises(Forbidden):
        rules.set_media(call, B, "w_other", True, False, False)


def test_whom_a_call_rings() -> None:
    members, customers = [A, B, C], [C]
    assert rules.invitees(A, members, customers, None, False) == [B, C]
    assert rules.invitees(A, members, customers, None, True) == [B]
    assert rules.invitees(C, members, customers, None, False) == [A, B]
    with pytest.raises(Forbidden):
        rules.invitees(C, members, customers, None, True)
    with pytest.raises(Forbidden):
        rules.invitees(D, members, customers, None, False)
    with pytest.raises(BadRequest):
        rules.invitees(A, members, customers, [D], False)
    with pytest.raises(BadRequest):
        rules.invitees(A, members, customers, [C], True)


def test_turn_credentials_follow_the_rest_api_scheme_and_stay_off_without_a_secret() -> None:
    config = IceConfig(("stun:s:3478",), ("turn:t:3478",), "s3cret", credential_ttl_s=600)
    stun, turn = ice_servers(config, "u_a", "call_1", now_s=1_000)
    assert stun == {"urls": ["stun:s:3478"]}
    assert turn["username"] == "1600:u_a:call_1"
    digest = hmac.new(b"s3cret", b"1600:u_a:call_1", hashlib.sha1).digest()
    assert turn["credential"] == turn_password("s3cret", "1600:u_a:call_1")
    assert turn["credential"] == base64.b64encode(digest).decode()
    assert ice_servers(IceConfig(turn_urls=("turn:t",)), "u_a", None, 0) == []
    assert IceConfig(relay_only=True).transport_policy == "relay"


def test_a_delivery_to_one_connection_crosses_nodes_as_it_was_and_old_frames_still_read() -> None:
    only = Delivery(0, frozenset({A}), "{}", None, only_connection="w_1")  # type: ignore[arg-type]
    plain = Delivery(7, frozenset({A, B}), "{}", "w_2")  # type: ignore[arg-type]
    assert decode(encode("n1", [only, plain])) == ("n1", [only, plain])
    old = b'{"n":"n0","i":[["d",3,["u_a"],"{}",null]]}'
    assert decode(old) == ("n0", [Delivery(3, frozenset({A}), "{}")])
    # A node skips its own unread, and only its own: not a node whose id its id begins.
    assert encode("n1", [plain]).startswith(sent_by("n1"))
    assert not encode("n10", [plain]).startswith(sent_by("n1"))
    assert not encode('n1"', [plain]).startswith(sent_by("n1"))


def test_a_call_record_is_worded_in_the_readers_language_in_pushes_and_mails() -> None:
    call = rules.tick(ring(B), 30_000, STALE)
    said = say("calls.record_video_missed", duration="0:00")
    record = StreamMessage(
        pos=1,
        id=MessageId("m_1"),
        conv=ConversationId("c_1"),
        conv_kind=ConversationKind.DIRECT,
        conv_title=None,
        seq=1,
        sender=A,
        kind=MessageKind.CALL,
        text=said.render("zh-CN"),
        mentions=tuple(rules.missed_by(call)),
        internal=False,
        urgent=False,
        meta={**rules.record_meta(call), "say": said.to_json()},
        ts=30_000,
    )
    assert worded(record, "en") == "Missed video call"
    assert worded(record, "zh-CN") == "未接视频通话"
