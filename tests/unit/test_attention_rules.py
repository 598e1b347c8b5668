"""The conversation list's flags and the group rules, without a server."""

from __future__ import annotations

import pytest

from orderchat.core.attention import Attention, Facts, attention, mentions_me, routed_to_me
from orderchat.core.errors import BadRequest, Conflict, Forbidden
from orderchat.core.ids import UserId
from orderchat.core.model import ConversationKind, Role, User, parse_member_ids
from orderchat.core.policy import check_rename

ME = UserId("u_me")
OTHER = UserId("u_other")
CS = (Role.CUSTOMER_SERVICE,)


def test_a_mention_of_me_my_role_or_everyone_calls_on_me() -> None:
    assert mentions_me([ME], ME, CS)
    assert mentions_me(["@customer_service"], ME, CS)
    assert mentions_me(["@all"], ME, CS)
    assert not mentions_me([OTHER, "@warehouse"], ME, CS)


def test_an_exception_needs_the_roles_it_is_routed_to() -> None:
    assert routed_to_me(["out_of_stock"], (Role.PURCHASING,))
    assert not routed_to_me(["out_of_stock"], (Role.FINANCE,))
    assert not routed_to_me(["no_such_kind"], (Role.ADMIN,))


def test_nothing_known_flags_nothing() -> None:
    assert attention(Facts(), ME, CS) == Attention()


def test_only_others_urgent_messages_need_me() -> None:
    assert not attention(Facts(open_urgent_senders=(ME,)), ME, CS).needs_me
    assert attention(Facts(open_urgent_senders=(ME, OTHER)), ME, CS).needs_me


@pytest.mark.parametrize(
    ("order_open", "by_staff", "waiting"),
    [(True, True, True), (True, False, False), (True, None, False), (False, True, False)],
)
def test_waiting_for_the_customer_needs_an_open_order_and_staff_having_the_last_word(
    order_open: bool, by_staff: bool | None, waiting: bool
) -> None:
    facts = Facts(order_open=order_open, last_word_by_staff=by_staff)
    assert attention(facts, ME, CS).waiting_customer is waiting


def test_a_proposal_awaiting_a_decision_waits_for_the_customer_whoever_wrote_last() -> None:
    facts = Facts(order_open=True, last_word_by_staff=False, decision_pending=True)
    assert attention(facts, ME, CS).waiting_customer
    assert not attention(Facts(decision_pending=True), ME, CS).waiting_customer  # closed


def test_an_open_exception_is_flagged_whoever_looks() -> None:
    flags = attention(Facts(open_issue_kinds=("delay_risk",)), ME, (Role.QC,))
    assert flags == Attention(needs_me=False, exception_open=True, waiting_customer=False)


def test_only_a_group_is_renamed_by_its_members_or_an_admin() -> None:
    amy = User(ME, "amy", "Amy", CS)
    boss = User(OTHER, "boss", "Boss", (Role.ADMIN,))
    check_rename(amy, ConversationKind.CHANNEL, is_member=True)
    check_rename(boss, ConversationKind.CHANNEL, is_member=False)
    with pytest.raises(Forbidden):
        check_rename(amy, ConversationKind.CHANNEL, is_member=False)
    for kind in (ConversationKind.DIRECT, ConversationKind.ORDER):
        with pytest.raises(Conflict):
            check_rename(boss, kind, is_member=True)


def test_naming_someone_twice_is_refused_only_when_asked() -> None:
    assert parse_member_ids(["a", "b", "a"]) == ("a", "b")
    with pytest.raises(BadRequest, match="more than once"):
        parse_member_ids(["a", "b", "a"], allow_repeats=False)
