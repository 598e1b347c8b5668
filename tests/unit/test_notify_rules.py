"""Who hears of what, on which channel, when: the pure rules of core/notify.py."""

from __future__ import annotations

from importlib import resources

import pytest

from orderchat.core.errors import BadRequest
from orderchat.core.ids import UserId
from orderchat.core.model import ConversationKind, MessageKind, Role, UserKind
from orderchat.core.notify import (
    Channel,
    Ladder,
    Member,
    Occasion,
    Policy,
    Preferences,
    Retry,
    Said,
    Topic,
    mail_kind,
    next_try_ms,
    occasions,
    parse_off,
    parse_policy,
    plan,
    preview,
    quiet_hours,
    read_unsubscribe_token,
    topics,
    unsubscribe_token,
    when_to_send,
)

AMY = Member(UserId("u_amy"), UserKind.STAFF, frozenset({Role.CUSTOMER_SERVICE}))
WES = Member(UserId("u_wes"), UserKind.STAFF, frozenset({Role.WAREHOUSE}))
CARA = Member(UserId("u_cara"), UserKind.CUSTOMER, frozenset())
PUSH_AND_MAIL = frozenset({Channel.PUSH, Channel.EMAIL})


def said(**changes: object) -> Said:
    base: dict[str, object] = {
        "conv_kind": ConversationKind.ORDER,
        "sender": AMY.id,
        "kind": MessageKind.TEXT,
        "mentions": (),
        "internal": False,
        "urgent": False,
        "event": None,
    }
    base.update(changes)
    return Said(**base)  # type: ignore[arg-type]


def default_policy() -> Policy:
    text = resources.files("orderchat.workflows").joinpath("notify.toml").read_text("utf-8")
    return parse_policy(text)


def test_the_shop_writing_in_an_order_concerns_its_customer_not_other_staff() -> None:
    found = occasions(said(), [AMY, WES, CARA])
    assert found == {CARA.id: Occasion.DIRECT}


def test_a_staff_only_note_never_concerns_a_customer_even_urgent_or_mentioning_all() -> None:
    found = occasions(said(internal=True, urgent=True, mentions=("@all",)), [AMY, WES, CARA])
    assert CARA.id not in found
    assert found == {WES.id: Occasion.URGENT}


def test_a_person_hears_once_for_the_strongest_reason() -> None:
    message = said(urgent=True, mentions=(str(WES.id), "@warehouse"))
    assert occasions(message, [AMY, WES]) == {WES.id: Occasion.URGENT}
    message = said(mentions=(str(WES.id), "@warehouse"))
    assert occasions(message, [AMY, WES]) == {WES.id: Occasion.MENTION}


def test_the_sender_never_hears_of_their_own_message() -> None:
    assert occasions(said(urgent=True, mentions=("@all",)), [AMY]) == {}


def test_order_events_reach_the_customer_as_status_and_the_roles_as_exceptions() -> None:
    moved = said(kind=MessageKind.ORDER_EVENT, event="status_changed", mentions=("@warehouse",))
    assert occasions(moved, [AMY, WES, CARA]) == {
        CARA.id: Occasion.ORDER_STATUS,
        WES.id: Occasion.ROLE_MENTION,
    }
    short = said(
        kind=MessageKind.ORDER_EVENT, event="out_of_stock", mentions=("@warehouse",), internal=True
    )
    assert occasions(short, [AMY, WES, CARA]) == {WES.id: Occasion.EXCEPTION}
    proposed = said(kind=MessageKind.ORDER_EVENT, event="confirmation_proposed")
    assert occasions(proposed, [CARA]) == {CARA.id: Occasion.CONFIRMATION}


def test_a_plain_group_message_concerns_nobody_away() -> None:
    assert occasions(said(conv_kind=ConversationKind.CHANNEL), [AMY, WES]) == {}


def test_direct_chats_concern_the_other_person() -> None:
    found = occasions(said(conv_kind=ConversationKind.DIRECT), [AMY, WES])
    assert found == {WES.id: Occasion.DIRECT}


def test_plan_uses_only_the_channels_a_person_has_and_wants() -> None:
    policy = default_policy()
    concerned = {WES.id: Occasion.DIRECT, CARA.id: Occasion.ORDER_STATUS}
    reachable = {WES.id: frozenset({Channel.PUSH}), CARA.id: PUSH_AND_MAIL}
    prefs = {CARA.id: Preferences(off={Occasion.ORDER_STATUS: frozenset({Channel.EMAIL})})}
    planned = plan(concerned, reachable, prefs, policy, at_ms=1_000)
    assert {(p.recipient, p.channel, p.due_ms) for p in planned} == {
        (WES.id, Channel.PUSH, 1_000 + 30_000),
        (CARA.id, Channel.PUSH, 1_000),
    }


def test_nobody_reachable_means_nothing_planned() -> None:
    assert plan({WES.id: Occasion.URGENT}, {}, {}, default_policy(), at_ms=0) == []


def test_an_urgent_message_climbs_the_ladder() -> None:
    policy = Policy(
        delays={Occasion.URGENT: {Channel.PUSH: 0}},
        ladder=Ladder(escalate_after_s=300, every_s=600, reminders=3, channels=(Channel.PUSH,)),
    )
    planned = plan({WES.id: Occasion.URGENT}, {WES.id: PUSH_AND_MAIL}, {}, policy, at_ms=0)
    assert [(p.step, p.channel, p.due_ms) for p in planned] == [
        (0, Channel.PUSH, 0),
        (1, Channel.PUSH, 300_000),
        (2, Channel.PUSH, 900_000),
        (3, Channel.PUSH, 1_500_000),
    ]


def test_quiet_hours_put_off_all_but_urgent() -> None:
    # 22:00-07:00 in UTC+8; 23:30 local is 15:30 UTC.
    quiet = quiet_hours("22:00", "07:00", 480)
    prefs = Preferences(quiet=quiet)
    at_2330_local = (15 * 60 + 30) * 60_000
    later = when_to_send(at_2330_local, at_2330_local, Occasion.DIRECT, prefs)
    assert later == at_2330_local + (7 * 60 + 30) * 60_000  # 07:00 local
    assert when_to_send(at_2330_local, at_2330_local, Occasion.URGENT, prefs) == at_2330_local
    noon_local = 4 * 3600_000
    assert when_to_send(noon_local, noon_local, Occasion.DIRECT, prefs) == noon_local


@pytest.mark.parametrize(
    ("start", "end", "offset"),
    [("24:00", "07:00", 0), ("7:00", "08:00", 0), ("07:00", "08:00", 900)],
)
def test_quiet_hours_refuse_what_is_not_a_time(start: str, end: str, offset: int) -> None:
    with pytest.raises(BadRequest):
        quiet_hours(start, end, offset)


def test_retries_grow_and_stop_after_the_day() -> None:
    retry = Retry(first_s=10, max_s=3600, give_up_after_s=24 * 3600)
    first = next_try_ms(1, 0, 0, 0.5, retry)
    second = next_try_ms(2, 0, 0, 0.5, retry)
    assert first == 10_000 and second == 20_000
    assert next_try_ms(40, 0, 0, 0.5, retry) == 3_600_000
    assert next_try_ms(3, 0, 24 * 3600_000, 0.5, retry) is None


def test_the_policy_file_refuses_what_it_does_not_know() -> None:
    for text in (
        "[occasions.shouting]\npush = 0",
        "[occasions.direct]\nsms = 0",
        "[occasions.direct]\npush = -1",
        "[occasions.direct]\npush = true",
        "occasions = 3",
        "not toml [",
    ):
        with pytest.raises(BadRequest):
            parse_policy(text)


def test_the_built_in_policy_reaches_a_customer_at_once() -> None:
    policy = default_policy()
    assert policy.delay(Occasion.ORDER_STATUS, Channel.PUSH) == 0
    assert policy.delay(Occasion.ORDER_STATUS, Channel.EMAIL) == 0


def test_unsubscribe_links_cannot_be_made_up() -> None:
    secret = b"k" * 32
    token = unsubscribe_token(secret, "u_amy", "messages")
    assert read_unsubscribe_token(secret, token) == ("u_amy", "messages")
    for forged in (
        token[:-1] + ("0" if token[-1] != "0" else "1"),
        unsubscribe_token(b"x" * 32, "u_amy", "messages"),
        token.replace("messages", "orders"),
        "",
        "a.b",
    ):
        with pytest.raises(BadRequest):
            read_unsubscribe_token(secret, forged)
    assert mail_kind(Occasion.ORDER_STATUS) == "orders"


def test_switched_off_channels_are_checked() -> None:
    assert parse_off({"direct": ["email"]}) == {Occasion.DIRECT: frozenset({Channel.EMAIL})}
    for bad in ({"direct": "email"}, {"shouting": []}, {"direct": ["fax"]}, []):
        with pytest.raises(BadRequest):
            parse_off(bad)


def test_topics_of_messages() -> None:
    moved = said(kind=MessageKind.ORDER_EVENT, event="status_changed")
    assert topics(moved) == [Topic.ORDER_STATUS]
    assert topics(said(urgent=True)) == [Topic.MESSAGE_URGENT]
    assert topics(said()) == []


def test_a_lock_screen_shows_the_first_hundred_characters() -> None:
    assert preview("a" * 150) == "a" * 99 + "…"
    assert preview("two\n\nlines") == "two lines"


def test_done_deliveries_are_kept_thirty_days_unless_the_policy_says() -> None:
    assert parse_policy("").keep_days == 30
    assert parse_policy("[history]\nkeep_days = 7\n").keep_days == 7
    for bad in ("0", "3651", "true", '"30"', "1.5"):
        with pytest.raises(BadRequest, match=r"history\.keep_days"):
            parse_policy(f"[history]\nkeep_days = {bad}\n")
