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
