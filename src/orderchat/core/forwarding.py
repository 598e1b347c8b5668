"""Forwarding a message into another conversation: what may go where.

A forward is a new message in the target conversation that carries the
original's content and a link back (`forwarded_from`). Its files are the
original's, referenced rather than copied; whoever may see the forward may
open them (`services.media.serving`).

Rules:
- the forwarder must be able to see the original now: a member of its
  conversation, not a customer when it is a staff-only note, and not recalled.
  So forwarding can never reach something its sender could not read;
- only what people wrote travels: system, order and call records stay where
  they are, because their meaning depends on their conversation;
- a staff-only note stays staff-only: forwarded into a conversation with
  customers it must be forwarded as staff-only itself. (Into a staff-only
  conversation it may go either way: nobody there is a customer.)
"""

from __future__ import annotations

from orderchat.core.errors import Forbidden, NotFound
from orderchat.core.model import CLIENT_KINDS, Message, User, UserKind
from orderchat.core.texts import say


def check_forward(
    actor: User,
    original: Message | None,
    sees_original: bool,
    as_internal: bool,
    target_has_customers: bool,
) -> Message:
    """The original, if `actor` may forward it as asked; raises why not otherwise.

    `sees_original` is whether the actor is a current member of the original's
    conversation. A message the actor may not see is answered as not found, so
    forwarding cannot be used to probe for one.
    """
    if original is None or not sees_original or original.recalled:
        raise NotFound(say("forwarding.no_such_message"))
    if original.internal and actor.kind is UserKind.CUSTOMER:
        raise NotFound(say("forwarding.no_such_message"))
    if original.kind not in CLIENT_KINDS:
        raise Forbidden(say("forwarding.kind_not_forwardable"))
    if original.internal and not as_internal and target_has_customers:
        raise Forbidden(say("forwarding.internal_only_as_internal"))
    return original
