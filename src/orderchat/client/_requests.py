"""The frames the SDK's requests send, and what their answers must be.

Kept apart from `_client`, which owns the connection and the waiting: here is
only what a request says, so a new kind of request adds a builder, not bulk
to the connection's module.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from orderchat.client._errors import ProtocolError
from orderchat.client._models import Ack, CommandReply
from orderchat.core.model import MessageKind
from orderchat.protocol.frames import EditMessage, ForwardOf, PostMessage

Answer = Ack | CommandReply


def new_ref() -> str:
    return uuid.uuid4().hex


def text_post(
    conv: str,
    text: str,
    mentions: Sequence[str] | None,
    reply_to: int | None,
    *,
    ref: str | None,
    urgent: bool,
    internal: bool,
) -> PostMessage:
    return PostMessage(
        ref=ref or new_ref(),
        conv=conv,
        kind=MessageKind.TEXT,
        text=text,
        attachments=(),
        mentions=tuple(mentions or ()),
        reply_to=reply_to,
        internal=internal,
        urgent=urgent,
    )


def files_post(
    conv: str, upload_ids: Sequence[str], kind: str, text: str, *, ref: str | None
) -> PostMessage:
    return PostMessage(
        ref=ref or new_ref(),
        conv=conv,
        kind=MessageKind(kind),
        text=text,
        attachments=tuple(upload_ids),
        mentions=(),
        reply_to=None,
    )


def forward_post(
    conv: str, from_conv: str, seq: int, *, internal: bool, ref: str | None
) -> PostMessage:
    return PostMessage(
        ref=ref or new_ref(),
        conv=conv,
        kind=MessageKind.TEXT,
        text="",
        attachments=(),
        mentions=(),
        reply_to=None,
        internal=internal,
        forward=ForwardOf(conv=from_conv, seq=seq),
    )


def edit_request(conv: str, seq: int, text: str, *, ref: str | None) -> EditMessage:
    return EditMessage(ref=ref or new_ref(), conv=conv, seq=seq, text=text)


def acked(answer: Answer) -> Ack:
    """The ack a request must get: a command reply answers only a query."""
    if not isinstance(answer, Ack):
        raise ProtocolError(f"the server answered {answer.ref!r} with a command reply")
    return answer


def replied(answer: Answer, query: str) -> CommandReply:
    if not isinstance(answer, CommandReply):
        raise ProtocolError(f"{query!r} is not a query this server answers; it was posted")
    return answer
