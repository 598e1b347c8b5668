"""Editing a sent message: who may, until when, and what an edit is.

An edit never rewrites the stored message. It is a version of its own, kept
next to the original and linked into the conversation's hash chain
(`core.chain.edit_hash`), so the audit trail shows every text a message ever
had, in order. Members are shown the newest.

Rules, the same window as a recall so that one setting covers "I just sent
that by mistake":
- only the sender edits, and only within the recall window of sending;
- only what a person typed: a text message's text or a file's caption, never
  system, order or call records;
- a recalled message has nothing left to edit;
- a text message cannot be edited to nothing (a caption may be removed).
"""

from __future__ import annotations

from dataclasses import dataclass

from orderchat.core.errors import BadRequest, Conflict, Forbidden, TooLarge
from orderchat.core.ids import ConversationId, MessageId, UserId
from orderchat.core.model import CLIENT_KINDS, MAX_TEXT_CHARS, Message, MessageKind, User
from orderchat.core.texts import say


@dataclass(frozen=True, slots=True)
class MessageEdit:
    """One stored version of a message's text, after the original (version 1 is the first edit)."""

    message_id: MessageId
    conv: ConversationId
    seq: int
    version: int
    by: UserId
    text: str
    ts: int
    ref: str | None = None


def check_edit(
    actor: User, message: Message, text: str, now_ms: int, window_s: float, current: str
) -> None:
    """Raise why `actor` may not change `message`'s text (now `current`) to `text`."""
    if actor.id != message.sender:
        raise Forbidden(say("edits.only_sender_may_edit"))
    if message.kind not in CLIENT_KINDS:
        raise Forbidden(say("edits.kind_not_editable"))
    if message.recalled:
        raise Conflict(say("edits.recalled_not_editable"))
    if now_ms - message.ts > window_s * 1000:
        raise Forbidden(say("edits.window_passed", window_s=window_s))
    check_edit_text(message.kind, text)
    if text == current:
        raise BadRequest(say("edits.text_unchanged"))


def check_edit_text(kind: MessageKind, text: str) -> None:
    if len(text) > MAX_TEXT_CHARS:
        raise TooLarge(
            say("model.text_characters_limit", length=len(text), max_text_chars=MAX_TEXT_CHARS)
        )
    if kind is MessageKind.TEXT and not text.strip():
        raise BadRequest(say("edits.text_empty"))
