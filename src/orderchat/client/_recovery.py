"""Recovering over HTTP what the event stream cannot replay.

Two cases: the server answered `cursor_expired` (it cannot replay from the
client's cursor, so every conversation the client has seen is reloaded after
the last seq it handed on), and a gap inside one conversation's seqs. Messages
the ledger has already admitted are dropped, so nothing reaches the
application twice, whether it comes back over HTTP or live.
"""

from __future__ import annotations

import logging

from orderchat.client._errors import ForbiddenError, NotFoundError
from orderchat.client._http import HttpApi
from orderchat.client._ledger import DeliveryLedger
from orderchat.client._models import Message, MessageReceived
from orderchat.core.ids import ConversationId

logger = logging.getLogger(__name__)


class Recovery:
    def __init__(self, api: HttpApi, ledger: DeliveryLedger) -> None:
        self._api = api
        self._ledger = ledger

    async def missed(
        self, conv: ConversationId, after: int, *, until: int | None = None
    ) -> list[MessageReceived]:
        """The messages of `conv` after `after` (up to `until`) not yet handed on."""
        try:
            found = await self._api.messages_after(conv, after, until=until)
        except (ForbiddenError, NotFoundError) as exc:
            # No longer a member, or gone: nothing there is ours to see.
            logger.warning("cannot reload conversation %s: %s", conv, exc)
            return []
        return [
            MessageReceived(message, None)
            for message in found
            if self._ledger.admit_message(message.conv, message.seq)
        ]

    async def gap(self, message: Message, sees_staff_notes: bool) -> list[MessageReceived]:
        """What a conversation skipped before `message` arrived live, fetched over HTTP."""
        last_seq = self._ledger.gap_before(message.conv, message.seq)
        # A customer's view of an order thread skips the staff-only notes:
        # gaps there are expected, and fetching them would return nothing.
        if last_seq is None or not sees_staff_notes:
            return []
        logger.warning(
            "conversation %s skipped from seq %d to %d; fetching the gap",
            message.conv,
            last_seq,
            message.seq,
        )
        return await self.missed(message.conv, last_seq, until=message.seq)

    async def all_missed(self) -> list[MessageReceived]:
        """After `cursor_expired`: what each known conversation gained."""
        known = self._ledger.last_seqs()
        if not known:
            logger.warning("no conversation known yet; nothing to reload after cursor_expired")
        missed: list[MessageReceived] = []
        for conv, last_seq in known.items():
            missed += await self.missed(conv, last_seq)
        return missed
