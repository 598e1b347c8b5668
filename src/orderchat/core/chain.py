"""The per-conversation hash chain that makes a thread's history tamper-evident.

Each message's hash covers its content and the previous message's hash, so
changing, removing or reordering any stored message breaks every hash after it.
A recall does not change the hash: the original content stays in storage for
the audit trail; only what members are shown changes.
"""

from __future__ import annotations

import hashlib

import orjson

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
    canonical = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(previous.encode() + canonical).hexdigest()
