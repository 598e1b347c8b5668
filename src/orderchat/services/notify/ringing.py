"""A call rings on devices whose page is closed: a web push per invitee, now.

Not through the outbox: a ring is worth something for the ring time only (the
push's TTL is that long), and a ring that could not be delivered is not
retried — the missed call's record, a mention like any other, is what reaches
the person later through the planner. When the ring stops (answered on
another device, declined, over), a quiet push with the same tag replaces the
ringing notification.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from orderchat.core.calls import Call, CallPhase
from orderchat.core.ids import ConversationId, UserId
from orderchat.core.model import UserKind
from orderchat.core.notify import NO_PREFERENCES
from orderchat.core.texts import DEFAULT_LANGUAGE, say
from orderchat.services.notify.channels import PushChannel
from orderchat.services.notify.events import Links, Told
from orderchat.services.ports import Clock
from orderchat.storage import calls as call_store
from orderchat.storage import notify as store
from orderchat.storage import notify_people as people
from orderchat.storage.engine import Database

logger = logging.getLogger(__name__)


class CallRinger:
    def __init__(self, db: Database, clock: Clock, links: Links, push: PushChannel) -> None:
        self._db = db
        self._clock = clock
        self._links = links
        self._push = push

    async def ring(self, call: Call, users: Sequence[UserId], ring_s: int) -> None:
        """Push "X is calling" to every device of `users`."""
        await self._tell(call, users, ring_s, ringing=True)

    async def stop(self, call: Call, users: Sequence[UserId]) -> None:
        """Replace the ringing notification of `users` with a quiet one saying why."""
        await self._tell(call, users, 60, ringing=False)

    async def _tell(self, call: Call, users: Sequence[UserId], ttl_s: int, ringing: bool) -> None:
        if not users:
            return
        async with self._db.read() as conn:
            persons = await store.persons(conn, [call.caller, *users])
            prefs = await people.preferences(conn, users)
            orders = await store.orders_of_conversations(conn, [call.conv])
            title = await call_store.conversation_title(conn, call.conv)
        caller = persons.get(call.caller)
        caller_name = caller.display_name if caller is not None else ""
        order = orders.get(ConversationId(call.conv))
        now = self._clock.now_ms()
        for user in users:
            person = persons.get(user)
            language = prefs.get(user, NO_PREFERENCES).language
            language = language or (person.language if person else None) or DEFAULT_LANGUAGE
            customer = person is not None and person.kind is UserKind.CUSTOMER
            if customer and order is not None:
                path, where = f"/c?order={order['id']}", order["number"]
            else:
                path, where = f"/#/c/{call.conv}", title or caller_name
            told = Told(
                title=say(_title_key(call, ringing), caller=caller_name).render(language),
                body=say("calls.push_body", where=where).render(language) if ringing else where,
                path=path,
                tag=f"call-{call.id}",
            )
            flags = {"ring": True} if ringing else {"quiet": True}
            try:
                await self._push.send(
                    user, told, urgent=True, ts_ms=now, now_ms=now, ttl_s=ttl_s, flags=flags
                )
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception:
                logger.warning("a call's push to %s failed", user, exc_info=True)


def _title_key(call: Call, ringing: bool) -> str:
    if ringing:
        return f"calls.push_ringing_{call.media.value}"
    if call.phase is CallPhase.ENDED:
        return "calls.push_over"
    return "calls.push_answered"
