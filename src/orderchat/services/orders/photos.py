"""Evidence photos of an order step or a defect report: which uploads may go, and how.

The photos become attachments of the order-event message the step posts, so
they are exactly as visible as that message: a staff-only step's photos reach
staff only, a customer-visible step's reach the customer too (the media rules
in services/media/serving.py follow the message). Being attachments, they are
in the order's file library and in the conversation's export like any file.

Everything is checked before the step writes anything: a refused photo leaves
the order, its stock and its messages as they were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orderchat.core.errors import BadRequest, Conflict, Forbidden, NotFound
from orderchat.core.ids import ConversationId, UploadId
from orderchat.core.media import MediaKind, family
from orderchat.core.model import Message, User
from orderchat.core.texts import say
from orderchat.core.workflows import Transition, Workflow
from orderchat.services.media.views import upload_descriptor
from orderchat.services.writer import WriteTxn
from orderchat.storage import media as media_store
from orderchat.storage.media import UploadRow


@dataclass(frozen=True, slots=True)
class StepPhotos:
    """Checked photos and the words that go with them (the step's note)."""

    uploads: tuple[UploadRow, ...] = ()
    caption: str = ""

    def attachments(self) -> tuple[dict[str, object], ...]:
        """The message's attachments; each carries the caption, which search reads too."""
        extra = {"caption": self.caption} if self.caption else {}
        return tuple({**upload_descriptor(u), **extra} for u in self.uploads)

    def attach(self, tx: WriteTxn, message: Message) -> None:
        for upload in self.uploads:
            tx.attach(upload.id, message)


def check_required(workflow: Workflow, transition: Transition, given: Sequence[UploadId]) -> None:
    """A step the workflow marks `photos = true` is refused without one."""
    if transition.photos_required and not given:
        target = workflow.state_words(transition.target)
        raise BadRequest(say("photos.step_needs_photo", target=target))


async def step_photos_txn(
    tx: WriteTxn, user: User, conv_id: ConversationId, ids: Sequence[UploadId], caption: str
) -> StepPhotos:
    """The uploads named as photos, if every one may go into `conv_id`'s step message.

    Raises:
        NotFound: no such upload.
        Forbidden: someone else's upload.
        Conflict: not finished, or already sent with another message.
        BadRequest: made for another conversation, or not a picture.
    """
    found = await media_store.get_uploads(tx.conn, list(ids))
    uploads = tuple(_sendable(tx, user, found.get(i), i, conv_id) for i in ids)
    return StepPhotos(uploads, caption)


def _sendable(
    tx: WriteTxn, user: User, upload: UploadRow | None, upload_id: UploadId, conv: ConversationId
) -> UploadRow:
    """The same rules as a picture message's files (services/chat/messaging.py)."""
    if upload is None:
        raise NotFound(say("messaging.no_upload", upload_id=upload_id))
    if upload.owner_id != user.id:
        raise Forbidden(say("messaging.upload_not_yours_send", upload_id=upload_id))
    if not upload.finished:
        raise Conflict(say("messaging.upload_not_finished", upload_id=upload_id))
    if upload.conv_id != conv:
        raise BadRequest(say("messaging.upload_was_made_for_another", upload_id=upload_id))
    if upload.message_id is not None or tx.attached_here(upload.id):
        raise Conflict(say("messaging.upload_was_already_sent", upload_id=upload_id))
    if family(upload.type) is not MediaKind.IMAGE:
        raise BadRequest(say("photos.photo_not_picture", upload_id=upload_id, mime=upload.type))
    return upload
