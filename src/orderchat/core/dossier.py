"""The dossier's file format: what a ZIP holds, and the hashed fields of every link.

A dossier is one order's record, exported to be read and checked by someone
who has no access to the server (a court, a brand client). It is a ZIP:

    dossier.pdf     the record for people to read
    dossier.json    the same record as data, with every link's hashed fields
    files/…         every file sent in the conversation, byte for byte
    manifest.json   SHA-256 of each of the above, and the hash chain in order

The writer (services/dossier/) and the checker (core/proof.py `check_dossier`,
`orderchat verify dossier.zip`) both go through this module, so the fields
written are exactly the fields the chain hashed, and read back into the same
values. See docs/proof.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from orderchat.core.edits import MessageEdit
from orderchat.core.ids import ConversationId, MessageId, UserId
from orderchat.core.model import Message, MessageKind

FORMAT = "orderchat-dossier"
VERSION = 1
MANIFEST = "manifest.json"
DOCUMENT = "dossier.json"
PDF = "dossier.pdf"
FILES_DIR = "files/"

# A file's name in the ZIP keeps what the sender called it, made safe for any
# unzip tool: no directories, no dot files, no characters Windows refuses.
_UNSAFE = re.compile(r'[\x00-\x1f<>:"/\\|?*]+')
MAX_NAME_CHARS = 100


def message_fields(message: Message) -> dict[str, Any]:
    """The fields `core.chain.chain_hash` covers, by name."""
    return {
        "id": message.id,
        "conv": message.conv,
        "seq": message.seq,
        "sender": message.sender,
        "kind": message.kind.value,
        "text": message.text,
        "attachments": list(message.attachments),
        "mentions": list(message.mentions),
        "reply_to": message.reply_to,
        "ts": message.ts,
        "meta": message.meta,
        "urgent": message.urgent,
        "forwarded_from": message.forwarded_from,
    }


def edit_fields(edit: MessageEdit) -> dict[str, Any]:
    """The fields `core.chain.edit_hash` covers, by name."""
    return {
        "message_id": edit.message_id,
        "conv": edit.conv,
        "seq": edit.seq,
        "version": edit.version,
        "by": edit.by,
        "text": edit.text,
        "ts": edit.ts,
    }


def message_of(fields: Mapping[str, Any]) -> Message:
    """A message back from its fields; ValueError when they are not what was written."""
    return Message(
        id=MessageId(_typed(fields, "id", str)),
        conv=ConversationId(_typed(fields, "conv", str)),
        seq=_typed(fields, "seq", int),
        ref=None,
        sender=UserId(_typed(fields, "sender", str)),
        kind=MessageKind(_typed(fields, "kind", str)),
        text=_typed(fields, "text", str),
        attachments=tuple(_typed(fields, "attachments", list)),
        mentions=tuple(str(m) for m in _typed(fields, "mentions", list)),
        reply_to=_optional(fields, "reply_to", int),
        ts=_typed(fields, "ts", int),
        recalled=False,
        meta=_optional(fields, "meta", dict),
        urgent=_typed(fields, "urgent", bool),
        forwarded_from=_optional(fields, "forwarded_from", dict),
    )


def edit_of(fields: Mapping[str, Any]) -> MessageEdit:
    """An edit back from its fields; ValueError when they are not what was written."""
    return MessageEdit(
        message_id=MessageId(_typed(fields, "message_id", str)),
        conv=ConversationId(_typed(fields, "conv", str)),
        seq=_typed(fields, "seq", int),
        version=_typed(fields, "version", int),
        by=UserId(_typed(fields, "by", str)),
        text=_typed(fields, "text", str),
        ts=_typed(fields, "ts", int),
    )


def _typed(fields: Mapping[str, Any], name: str, kind: type[Any]) -> Any:
    value = fields.get(name) if isinstance(fields, Mapping) else None
    # bool is an int to Python, never to the chain: True must not pass for seq 1.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(name)
    return value


def _optional(fields: Mapping[str, Any], name: str, kind: type[Any]) -> Any:
    return None if fields.get(name) is None else _typed(fields, name, kind)


def file_path(seq: int, index: int, name: str) -> str:
    """Where the `index`-th file of message `seq` goes in the ZIP: unique, sortable, readable."""
    safe = _UNSAFE.sub("_", name).strip(" .") or "file"
    if len(safe) > MAX_NAME_CHARS:
        _, dot, ext = safe.rpartition(".")
        suffix = f".{ext}" if dot and len(ext) <= 10 else ""
        safe = safe[: MAX_NAME_CHARS - len(suffix)] + suffix
    return f"{FILES_DIR}{seq:06d}-{index}-{safe}"


def attachment_digests(message: Message) -> dict[str, str]:
    """The SHA-256 each attachment was sent with, by its media id: hashed in the chain."""
    found: dict[str, str] = {}
    for item in message.attachments:
        if isinstance(item, Mapping):
            media, sha = item.get("id"), item.get("sha256")
            if isinstance(media, str) and isinstance(sha, str):
                found[media] = sha
    return found


def is_withheld(message: Message, *, staff_only: bool, recalled: bool) -> bool:
    """Whether this dossier's reader may not see the message (and its edits): a staff-only
    one without `staff_only`, a recalled one without `recalled` (members were shown it
    gone; only an admin's audit reads the original). Its link stays, as its hash."""
    return (message.internal and not staff_only) or (message.recalled and not recalled)
