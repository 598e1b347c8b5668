"""The file library: every file sent in a conversation, newest first.

Read-only; what a user may see follows the message it was sent in (internal
files for staff, recalled ones for admins only).
"""

from __future__ import annotations

from orderchat.core.errors import BadRequest, Forbidden
from orderchat.core.model import MessageKind, User, UserKind
from orderchat.core.texts import say
from orderchat.services.media.views import upload_descriptor
from orderchat.storage import conversations as conv_store
from orderchat.storage import media as media_store
from orderchat.storage.engine import Database
from orderchat.storage.media import SentFile

MAX_LIBRARY_PAGE = 200


class Library:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(
        self,
        user: User,
        conv_id: str,
        kinds: list[MessageKind],
        before: int | None,
        limit: int,
    ) -> dict[str, object]:
        """Every file sent in a conversation that the user may see, newest first."""
        if not 1 <= limit <= MAX_LIBRARY_PAGE:
            raise BadRequest(say("library.limit_must_1", max_library_page=MAX_LIBRARY_PAGE))
        async with self._db.read() as conn:
            await conv_store.get_conversation(conn, conv_id)
            member = await media_store.is_current_member(conn, conv_id, user.id)
            if not member and not user.is_admin:
                raise Forbidden(say("conversations.you_are_not_member_conversation"))
            found = await media_store.conversation_files(
                conn,
                conv_id,
                kinds=kinds,
                before=before,
                limit=limit + 1,
                include_internal=user.kind is UserKind.STAFF,
                include_recalled=user.is_admin,
            )
        page = found[:limit]
        files = [_library_entry(f) for f in page]
        more = len(found) > limit
        return {"files": files, "next": page[-1].upload.seq if more and page else None}


def _library_entry(sent: SentFile) -> dict[str, object]:
    entry: dict[str, object] = {
        **upload_descriptor(sent.upload),
        "message": sent.upload.message_id,
        "seq": sent.upload.seq,
        "sender": sent.sender,
        "ts": sent.ts,
        "message_kind": sent.kind.value,
    }
    if sent.recalled:
        entry["recalled"] = True
    return entry
