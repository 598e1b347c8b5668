"""The pure rules behind editing, forwarding and paging a query's answer."""

from __future__ import annotations

import dataclasses

import pytest

from orderchat.core.chain import GENESIS, chain_hash, edit_hash
from orderchat.core.edits import MessageEdit, check_edit
from orderchat.core.errors import BadRequest, Conflict, DomainError, Forbidden, NotFound, TooLarge
from orderchat.core.forwarding import check_forward
from orderchat.core.ids import ConversationId, MessageId, UserId
from orderchat.core.model import MAX_TEXT_CHARS, Message, MessageKind, Role, User, UserKind
from orderchat.core.paging import page_of

ANN = User(UserId("u_ann"), "ann", "Ann", (Role.SALES,))
BOB = User(UserId("u_bob"), "bob", "Bob", (Role.ADMIN,))
CUS = User(UserId("u_cus"), "cus", "Cus", (), UserKind.CUSTOMER)
WINDOW_S = 120.0
SENT_MS = 1_000_000


def _message(
    kind: MessageKind = MessageKind.TEXT,
    *,
    sender: UserId = ANN.id,
    internal: bool = False,
    recalled: bool = False,
    text: str = "hello",
) -> Message:
    return Message(
        MessageId("m_1"),
        ConversationId("c_1"),
        3,
        "r1",
        sender,
        kind,
        text,
        (),
        (),
        None,
        SENT_MS,
        recalled,
        internal=internal,
    )


# --- edit ------------------------------------------------------------------------------


def _edit(message: Message, text: str = "hello!", *, actor: User = ANN, after_s: float = 1) -> None:
    check_edit(actor, message, text, SENT_MS + int(after_s * 1000), WINDOW_S, message.text)


def test_the_sender_may_edit_text_and_captions_within_the_window() -> None:
    _edit(_message())
    _edit(_message(), after_s=WINDOW_S)
    _edit(_message(MessageKind.IMAGE, text="photo"), "better photo")
    _edit(_message(MessageKind.FILE, text="caption"), "")  # a caption may be removed


@pytest.mark.parametrize(
    ("message", "text", "actor", "after_s", "error"),
    [
        (_message(sender=BOB.id), "x", ANN, 1, Forbidden),  # not yours
        (_message(sender=ANN.id), "x", BOB, 1, Forbidden),  # admins recall, they do not edit
        (_message(), "x", ANN, WINDOW_S + 0.001, Forbidden),  # window passed
        (_message(recalled=True), "x", ANN, 1, Conflict),
        (_message(MessageKind.SYSTEM), "x", ANN, 1, Forbidden),
        (_message(MessageKind.ORDER_EVENT), "x", ANN, 1, Forbidden),
        (_message(MessageKind.CALL), "x", ANN, 1, Forbidden),
        (_message(), "", ANN, 1, BadRequest),
        (_message(), "   ", ANN, 1, BadRequest),
        (_message(), "hello", ANN, 1, BadRequest),  # unchanged
        (_message(), "x" * (MAX_TEXT_CHARS + 1), ANN, 1, TooLarge),
    ],
)
def test_an_edit_that_breaks_a_rule_is_refused(
    message: Message, text: str, actor: User, after_s: float, error: type[DomainError]
) -> None:
    with pytest.raises(error):
        _edit(message, text, actor=actor, after_s=after_s)


def test_an_edit_is_its_own_link_of_the_chain() -> None:
    message = _message()
    first = chain_hash(GENESIS, message)
    edit = MessageEdit(message.id, message.conv, message.seq, 1, ANN.id, "hello!", SENT_MS + 5)
    link = edit_hash(first, edit)
    assert link != first and link == edit_hash(first, edit)
    assert link != edit_hash(first, dataclasses.replace(edit, text="hellp"))
    assert link != edit_hash(GENESIS, edit)


# --- forward -----------------------------------------------------------------------------


def test_what_one_sees_may_be_forwarded() -> None:
    message = _message()
    assert check_forward(CUS, message, True, False, True) is message
    assert (
        check_forward(ANN, _message(MessageKind.FILE), True, False, True).kind is MessageKind.FILE
    )


@pytest.mark.parametrize(
    ("actor", "message", "sees", "error"),
    [
        (ANN, None, True, NotFound),
        (ANN, _message(), False, NotFound),  # not a member of the original's conversation
        (ANN, _message(recalled=True), True, NotFound),
        (CUS, _message(internal=True), True, NotFound),  # a customer never learns of a note
        (ANN, _message(MessageKind.SYSTEM), True, Forbidden),
        (ANN, _message(MessageKind.ORDER_EVENT), True, Forbidden),
    ],
)
def test_what_one_cannot_see_or_must_not_move_is_refused(
    actor: User, message: Message | None, sees: bool, error: type[DomainError]
) -> None:
    with pytest.raises(error):
        check_forward(actor, message, sees, False, False)


def test_a_staff_note_stays_staff_only_where_customers_are() -> None:
    note = _message(internal=True)
    with pytest.raises(Forbidden):
        check_forward(ANN, note, True, False, True)
    assert check_forward(ANN, note, True, True, True) is note  # forwarded as a note
    assert check_forward(ANN, note, True, False, False) is note  # nobody there is a customer


# --- paging ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "asked", "number", "pages", "offset"),
    [
        (0, 1, 1, 1, 0),
        (0, 5, 1, 1, 0),
        (1, 1, 1, 1, 0),
        (10, 1, 1, 1, 0),
        (11, 2, 2, 2, 10),
        (25, 3, 3, 3, 20),
        (25, 9, 3, 3, 20),  # past the end: the last page
        (25, 0, 1, 3, 0),
        (25, -4, 1, 3, 0),
    ],
)
def test_pages(total: int, asked: int, number: int, pages: int, offset: int) -> None:
    page = page_of(total, asked, 10)
    assert (page.number, page.pages, page.offset) == (number, pages, offset)
    assert page.has_prev == (number > 1)
    assert page.has_next == (number < pages)


def test_every_match_is_on_exactly_one_page() -> None:
    for total in range(0, 35):
        seen: list[int] = []
        pages = page_of(total, 1, 10).pages
        for n in range(1, pages + 1):
            page = page_of(total, n, 10)
            seen += range(page.offset, min(page.offset + page.size, total))
        assert seen == list(range(total))


def test_a_page_holds_something() -> None:
    with pytest.raises(ValueError, match="at least one"):
        page_of(3, 1, 0)
