"""The per-conversation hash chain that makes a thread's history tamper-evident.

Each message's hash covers its content and the previous message's hash, so
changing, removing or reordering any stored message breaks every hash after it.
A recall does not change the hash: the original content stays in storage for
the audit trail; only what members are shown changes. An edit is a link of its
own (`edit_hash`): it chains after whatever came before it in the conversation,
and the next message chains after it, so no version of a text can be dropped
or changed unnoticed.
"""

from __future__ import annotations

import hashlib

import orjson

from orderchat.core.edits import MessageEdit
from orderchat.core.model import Message

GENESIS = "0" * 64


def chain_hash(previous: str, message: Message) -> str:
    fields: list[object] = [
        message.id,
        message.conv,
        message.seq,
        message.sender,
        message.kind.value,
        message.text,
        list(message.attachments),
        list(message.mentions),
        message.reply_to,
        message.ts,
        message.meta,
    ]
    if message.urgent:  # only when set, so that every earlier hash still holds
        fields.append({"urgent": True})
    if message.forwarded_from is not None:  # likewise only when set
        fields.append({"forwarded_from": message.forwarded_from})
    canonical = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(previous.encode() + canonical).hexdigest()


def edit_hash(previous: str, edit: MessageEdit) -> str:
    """The link an edit adds: tagged, so an edit can never pass for a message."""
    fields: list[object] = [
        "edit",
        edit.message_id,
        edit.conv,
        edit.seq,
        edit.version,
        edit.by,
        edit.text,
        edit.ts,
    ]
    canonical = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(previous.encode() + canonical).hexdigest()
