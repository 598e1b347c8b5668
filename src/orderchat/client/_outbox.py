"""What must still reach the server: requests waiting for their answer, and read marks.

Every send, recall and edit stays here, by `ref`, until its ack or error. After a
reconnect every one not yet written on the new connection is written again,
oldest first, before anything new; the server answers a repeated ref with
the first ack and stores nothing new, so a retry can never post twice. Read
marks made while offline are kept, the highest per conversation, and sent
once connected again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from orderchat.client._errors import ClientError, server_error
from orderchat.client._models import Ack, CommandReply
from orderchat.core.ids import ConversationId
from orderchat.protocol.events import ErrorReport
from orderchat.protocol.frames import (
    ClientFrame,
    EditMessage,
    MarkRead,
    PostMessage,
    RecallMessage,
)

logger = logging.getLogger(__name__)

Request = PostMessage | RecallMessage | EditMessage
# A send that was a private query (`/stock`) is settled by its command reply.
Answer = Ack | CommandReply


@dataclass(slots=True)
class Pending:
    frame: Request
    future: asyncio.Future[Answer]
    # The connection number it was last written on; 0 when never written.
    sent_on: int = 0


class Outbox:
    def __init__(self) -> None:
        self._pending: dict[str, Pending] = {}
        self._reads: dict[ConversationId, int] = {}

    def open(self, frame: Request) -> Pending:
        """Start waiting for the answer to `frame`; `close` it when done waiting.

        Raises:
            ValueError: a request with this ref is already waiting.
        """
        if frame.ref in self._pending:
            raise ValueError(f"ref {frame.ref!r} is already waiting for its answer")
        entry = Pending(frame, asyncio.get_running_loop().create_future())
        self._pending[frame.ref] = entry
        return entry

    def close(self, ref: str) -> None:
        self._pending.pop(ref, None)

    def answer(self, answer: Answer) -> None:
        entry = self._pending.get(answer.ref)
        if entry is not None and not entry.future.done():
            entry.future.set_result(answer)

    def refuse(self, report: ErrorReport) -> bool:
        """Fail the request the error names; False when it names none waiting here."""
        entry = self._pending.get(report.ref) if report.ref is not None else None
        if entry is None:
            return False
        if not entry.future.done():
            entry.future.set_exception(
                server_error(
                    report.code,
                    report.message,
                    ref=entry.frame.ref,
                    retry_after_s=report.retry_after_s,
                    reason=report.reason,
                    params=report.params,
                )
            )
        return True

    def fail_all(self, error: ClientError) -> None:
        for entry in self._pending.values():
            if not entry.future.done():
                entry.future.set_exception(error)

    def keep_read(self, conv: ConversationId, seq: int) -> None:
        self._reads[conv] = max(seq, self._reads.get(conv, 0))

    def read_written(self, conv: ConversationId, seq: int) -> None:
        """`seq` reached the server: forget it unless a later mark replaced it meanwhile."""
        if self._reads.get(conv) == seq:
            del self._reads[conv]

    async def flush(
        self, write: Callable[[ClientFrame], Awaitable[None]], connection_no: int
    ) -> None:
        """Write every pending request not yet written on this connection, oldest
        first; requests made meanwhile join the loop, so none overtakes another.
        Then the read marks kept while offline."""
        while unsent := [
            p for p in self._pending.values() if p.sent_on != connection_no and not p.future.done()
        ]:
            for entry in unsent:
                await write(entry.frame)
                entry.sent_on = connection_no
        if self._reads:
            logger.debug("sending %d read marks kept while offline", len(self._reads))
        for conv, seq in list(self._reads.items()):
            await write(MarkRead(conv=conv, seq=seq))
            self.read_written(conv, seq)
