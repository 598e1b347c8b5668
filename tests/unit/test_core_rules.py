from __future__ import annotations

import pytest

from orderchat.core.errors import BadRequest, Conflict, Forbidden, RateLimited
from orderchat.core.ids import UserId
from orderchat.core.mentions import ALL, mentioned_users, resolve_mentions
from orderchat.core.model import ConversationKind, MessageKind, Role, User
from orderchat.core.policy import check_add_members, check_recall, check_remove_member
from orderchat.core.ratelimit import Rate, RateLimiter

AMY, WES, LEO = UserId("u_amy"), UserId("u_wes"), UserId("u_leo")
MEMBERS = {
    AMY: (Role.CUSTOMER_SERVICE,),
    WES: (Role.WAREHOUSE,),
    LEO: (Role.LOGISTICS, Role.WAREHOUSE),
}
NAMES = {"amy": AMY, "wes": WES, "leo": LEO}


def _resolve(text: str, explicit: list[object] | None = None) -> tuple[str, ...]:
    return resolve_mentions(text, explicit or [], MEMBERS, NAMES)


def test_mentions_found_in_text() -> None:
    assert _resolve("@warehouse please pick, cc @amy") == ("@warehouse", AMY)
    assert _resolve("@所有人 开会") == (ALL,)
    assert _resolve("@everyone meeting") == (ALL,)
    assert _resolve("mail amy@example.com, @nobody here") == ()
    assert _resolve("@wes. and @wes again") == (WES,)


def test_explicit_mentions_come_first_without_repeats() -> None:
    assert _resolve("@amy hi", [WES, "@qc", "@amy"]) == (WES, "@qc", AMY)
    assert _resolve("hi", ["@all"]) == (ALL,)


@pytest.mark.parametrize("bad", [["u_stranger"], ["@wizard"], [42], [""], [None]])
def test_explicit_mentions_are_checked(bad: list[object]) -> None:
    with pytest.raises(BadRequest):
        _resolve("hi", bad)


def test_role_mention_reaches_members_holding_it_only() -> None:
    assert mentioned_users(["@warehouse"], MEMBERS) == {WES, LEO}
    assert mentioned_users([AMY], MEMBERS) == {AMY}
    assert mentioned_users([ALL], MEMBERS) == set(MEMBERS)
    assert mentioned_users(["@finance"], MEMBERS) == set()


def _user(uid: UserId, *roles: Role) -> User:
    return User(uid, uid, uid, roles or (Role.SALES,))


def test_sender_recalls_within_window_only() -> None:
    amy = _user(AMY)
    check_recall(amy, AMY, MessageKind.TEXT, sent_at_ms=0, now_ms=120_000, window_s=120)
    with pytest.raises(Forbidden, match="within 120 seconds"):
        check_recall(amy, AMY, MessageKind.TEXT, sent_at_ms=0, now_ms=120_001, window_s=120)


def test_others_cannot_recall_but_admins_always_can() -> None:
    with pytest.raises(Forbidden):
        check_recall(_user(WES), AMY, MessageKind.TEXT, 0, 1, 120)
    check_recall(_user(WES, Role.ADMIN), AMY, MessageKind.TEXT, 0, 10**12, 120)


def test_system_messages_are_not_recalled_by_their_sender() -> None:
    with pytest.raises(Forbidden):
        check_recall(_user(AMY), AMY, MessageKind.SYSTEM, 0, 1, 120)


def test_membership_rules() -> None:
    amy, admin = _user(AMY), _user(LEO, Role.ADMIN)
    check_add_members(amy, ConversationKind.CHANNEL, is_member=True)
    check_add_members(admin, ConversationKind.CHANNEL, is_member=False)
    with pytest.raises(Forbidden):
        check_add_members(amy, ConversationKind.CHANNEL, is_member=False)
    with pytest.raises(Conflict):
        check_add_members(admin, ConversationKind.DIRECT, is_member=True)
    check_remove_member(amy, ConversationKind.CHANNEL, created_by=WES, target=AMY)  # leaving
    check_remove_member(amy, ConversationKind.CHANNEL, created_by=AMY, target=WES)
    check_remove_member(admin, ConversationKind.CHANNEL, created_by=WES, target=AMY)
    with pytest.raises(Forbidden):
        check_remove_member(amy, ConversationKind.CHANNEL, created_by=WES, target=LEO)
    with pytest.raises(Conflict):
        check_remove_member(amy, ConversationKind.DIRECT, created_by=AMY, target=AMY)


def test_rate_limiter_allows_burst_then_refills() -> None:
    limiter = RateLimiter(Rate(burst=3, per_s=1))
    for _ in range(3):
        limiter.hit("k", 0.0, "tries")
    with pytest.raises(RateLimited) as info:
        limiter.hit("k", 0.0, "tries")
    assert info.value.retry_after_s == pytest.approx(1.0)
    limiter.hit("other", 0.0, "tries")  # keys are independent
    limiter.hit("k", 1.0, "tries")  # one token back after a second
    with pytest.raises(RateLimited):
        limiter.hit("k", 1.0, "tries")


def test_refused_hit_takes_nothing() -> None:
    limiter = RateLimiter(Rate(burst=1, per_s=1))
    limiter.hit("k", 0.0, "x")
    for _ in range(5):
        with pytest.raises(RateLimited):
            limiter.hit("k", 0.5, "x")
    limiter.hit("k", 1.0, "x")


def test_disabled_limiter_never_refuses() -> None:
    limiter = RateLimiter(Rate(burst=1, per_s=0.001), enabled=False)
    for _ in range(100):
        limiter.hit("k", 0.0, "x")


def test_full_buckets_are_forgotten() -> None:
    limiter = RateLimiter(Rate(burst=2, per_s=1))
    for i in range(RateLimiter._PRUNE_EVERY - 1):
        limiter.hit(f"k{i}", 0.0, "x")
    limiter.hit("late", 10.0, "x")  # this hit prunes: every early bucket is full again
    assert list(limiter._buckets) == ["late"]
