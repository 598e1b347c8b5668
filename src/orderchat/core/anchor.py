"""Anchoring: the day's chain heads of every conversation, digested and signed.

A hash chain proves a row was not changed behind the others' backs; it cannot
prove the whole database was not rewritten, every hash recomputed. So once a
day the server hashes the list of every conversation's head (id, last seq,
last hash) and signs that digest with its Ed25519 key, and publishes it where
the database cannot reach back: the #audit channel's readers, the outbound
webhooks' receivers. A later database whose chains do not pass through the
published heads has been rewritten.

The digest and the signed statement are canonical JSON, so anyone with the
public key can check a published anchor without OrderChat.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

KEY_NAME = "anchor-ed25519"


@dataclass(frozen=True, slots=True)
class Head:
    conv: str
    seq: int
    hash: str


@dataclass(frozen=True, slots=True)
class SignedAnchor:
    """One day's anchor as kept: the heads it covers, their digest and its signature."""

    id: int
    ts: int
    digest: str
    conversations: int
    heads: list[Head]
    key_id: str
    signature: str


def digest(heads: Sequence[Head]) -> str:
    """SHA-256 of the heads in conversation order, as canonical JSON."""
    ordered = sorted(heads, key=lambda h: h.conv)
    return hashlib.sha256(orjson.dumps([[h.conv, h.seq, h.hash] for h in ordered])).hexdigest()


def statement(ts: int, heads_digest: str, count: int) -> bytes:
    """The bytes that are signed: when, what digest, over how many conversations."""
    return orjson.dumps(
        {"conversations": count, "digest": heads_digest, "ts": ts, "what": "orderchat.anchor"},
        option=orjson.OPT_SORT_KEYS,
    )


def new_private_key() -> str:
    return base64.b64encode(Ed25519PrivateKey.generate().private_bytes_raw()).decode()


def public_key(private_b64: str) -> str:
    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(private_b64))
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def key_id(public_b64: str) -> str:
    """A short name for a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(base64.b64decode(public_b64)).hexdigest()[:16]


def sign(private_b64: str, message: bytes) -> str:
    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(private_b64))
    return base64.b64encode(key.sign(message)).decode()


def verify(public_b64: str, message: bytes, signature_b64: str) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_b64))
        key.verify(base64.b64decode(signature_b64), message)
    except (InvalidSignature, ValueError):
        return False
    return True
