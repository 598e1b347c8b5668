"""What a send into a consult changes beyond the message itself.

Run by the send path (`services/chat/messaging.py`) for conversations of kind
`consult` only, inside the send's transaction:

- before the message: a blocked visitor is refused, an unverified one may
  carry only pictures and voice of a bounded size, and a visitor's message
  names who must answer it (its agent, or its queue's roles) so that the
  notification rules reach them;
- after it: the inbox's clocks (waiting since, first response), a closed
  consult opened again by the visitor, and an unassigned consult taken by
  the staff member who answers it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from orderchat.core.consults import ConsultRules, ConsultStatus, check_visitor_file
from orderchat.core.errors import Forbidden
from orderchat.core.model import Conversation, Message, MessageKind, User, UserKind
from orderchat.core.texts import say
from orderchat.services.consults.notes import post_note_txn, who_to_tell
from orderchat.services.consults.routing import assign_txn, route_txn
from orderchat.services.writer import WriteTxn
from orderchat.storage import consults as consult_store
from orderchat.storage.consults import ConsultRow
from orderchat.storage.media import UploadRow


@dataclass(frozen=True, slots=True)
class ConsultHooks:
    rules: ConsultRules
    visitor_max_upload_bytes: int

    async def before_send(
        self, tx: WriteTxn, conv: Conversation, sender: User, files: Sequence[UploadRow]
    ) -> tuple[ConsultRow | None, tuple[str, ...]]:
        """Refuse what a visitor may not send. The consult as the send finds it (for
        `after_send`, read once), and the mentions a visitor's message gets."""
        row = await consult_store.find_consult(tx.conn, conv.id)
        if sender.kind is not UserKind.CUSTOMER:
            return row, ()
        flags = await consult_store.visitor_flags(tx.conn, sender.id)
        if flags is not None and (flags.blocked or flags.erased):
            raise Forbidden(say("consults.blocked"))
        if flags is not None and not flags.verified:
            for upload in files:
                self.check_visitor_file(upload.type, upload.length)
        return row, () if row is None else who_to_tell(row)

    def check_visitor_file(self, mime: str, length: int) -> None:
        check_visitor_file(mime, length, self.visitor_max_upload_bytes)

    async def after_send(
        self,
        tx: WriteTxn,
        conv: Conversation,
        sender: User,
        message: Message,
        row: ConsultRow | None,
    ) -> None:
        """`row` is the consult as it was just before `message` (`before_send`'s)."""
        if row is None:
            return
        if sender.id == row.visitor_id:
            await self._visitor_wrote(tx, conv, row)
        elif (
            sender.kind is UserKind.STAFF
            and not message.internal
            and message.kind is not MessageKind.SYSTEM
        ):
            await self._staff_answered(tx, row, sender)

    async def _visitor_wrote(self, tx: WriteTxn, conv: Conversation, row: ConsultRow) -> None:
        if row.status is ConsultStatus.CLOSED:
            reopened = replace(
                row,
                status=ConsultStatus.QUEUED,
                assignee_id=None,
                opened_at_ms=tx.now_ms,
                waiting_since_ms=tx.now_ms,
                first_response_at_ms=None,
                escalated_at_ms=None,
                closed_at_ms=None,
            )
            await consult_store.save_consult_txn(tx.conn, reopened)
            visitor_name = conv.title or ""
            said = say("note.consult_reopened", name=visitor_name)
            await post_note_txn(tx, conv, row.visitor_id, "consult_reopened", said, reopened)
            await route_txn(tx, self.rules, reopened, row.visitor_id)
        elif row.waiting_since_ms is None:
            await consult_store.save_consult_txn(tx.conn, replace(row, waiting_since_ms=tx.now_ms))

    async def _staff_answered(self, tx: WriteTxn, row: ConsultRow, sender: User) -> None:
        answered = replace(
            row,
            waiting_since_ms=None,
            first_response_at_ms=row.first_response_at_ms or tx.now_ms,
        )
        if answered != row:
            await consult_store.save_consult_txn(tx.conn, answered)
        if answered.assignee_id is None and answered.status is not ConsultStatus.CLOSED:
            await assign_txn(tx, self.rules, answered, sender.id, sender.id)
