"""Bodies of the proof routes (api/routes/proof.py): a conversation's chain, checked."""

from __future__ import annotations

from typing import Literal

from orderchat.api.response_schemas._base import Body


class BrokenLink(Body):
    link: Literal["message", "edit"]
    seq: int
    version: int  # 0 for a message itself
    reason: Literal["changed", "missing", "reordered", "head"]
    message: str


class ChainProof(Body):
    conv: str
    holds: bool
    links: int
    last_seq: int
    head: str
    stored_head: str
    broken: BrokenLink | None


class RetentionRules(Body):
    """Days each kind keeps its content; null: forever."""

    channel: int | None
    direct: int | None
    order: int | None
    consult: int | None


class HeldOrder(Body):
    id: str
    number: str


class Purge(Body):
    ts: int
    conv: str
    first_seq: int
    last_seq: int
    messages: int
    files: int


class Retention(Body):
    rules: RetentionRules
    held: list[HeldOrder]
    purges: list[Purge]


class PurgeReport(Body):
    conversations: int
    messages: int
    files: int


class Anchor(Body):
    """A day's signed digest of every conversation's chain head (core/anchor.py)."""

    id: int
    ts: int
    digest: str
    conversations: int
    key_id: str
    signature: str


class Anchors(Body):
    public_key: str  # Ed25519, raw 32 bytes, base64
    key_id: str
    anchors: list[Anchor]
