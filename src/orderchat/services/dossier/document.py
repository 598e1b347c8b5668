"""dossier.json and manifest.json: the dossier as data, and the list that proves it.

dossier.json is the whole record as its reader may see it, with each shown
link's hashed fields verbatim (core/dossier.py names them), so anyone can
recompute the chain. The PDF is drawn from this same document, never from the
store, so the two cannot say different things. The manifest lists every
file's SHA-256 and every link of the chain, withheld ones by their hash.

Each consult the order came from is given the way the order's conversation
is (its messages, edits, files and members, its chain in the manifest), under
`consults`, so what was said before the order is evidence too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orderchat.core import anchor as anchor_rules
from orderchat.core.dossier import (
    DOCUMENT,
    FORMAT,
    PDF,
    VERSION,
    edit_fields,
    file_path,
    message_fields,
)
from orderchat.core.model import Message, MessageKind
from orderchat.core.orders import Issue, customer_order_view
from orderchat.core.proof import Link
from orderchat.services.dossier.gather import ConsultHistory, Gathered, History
from orderchat.services.money.digest import payment_fields
from orderchat.services.money.finance import invoice_fields
from orderchat.services.orders.confirmations import item_fields
from orderchat.services.orders.events import order_fields

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class PackedFile:
    """An original file to copy into the ZIP: which blob, under which path."""

    path: str
    conv: str  # the conversation whose message sent it: the order's, or a consult's
    media: str
    seq: int
    name: str
    type: str
    size: int
    sha256: str


def plan_files(found: Gathered) -> tuple[list[PackedFile], list[Json]]:
    """Where each shown message's files go in the ZIP, and those whose bytes are gone."""
    packed: list[PackedFile] = []
    unavailable: list[Json] = []
    for history in found.histories():
        consult = history.conv if found.is_consult(history) else None
        for message in history.shown():
            for index, item in enumerate(message.attachments, start=1):
                media = item.get("id") if isinstance(item, dict) else None
                upload = found.uploads.get(media) if isinstance(media, str) else None
                if upload is None or upload.sha256 is None or upload.blob is None:
                    unavailable.append({"conv": history.conv, "media": media, "seq": message.seq})
                    continue
                packed.append(
                    PackedFile(
                        file_path(message.seq, index, upload.filename, consult),
                        history.conv,
                        upload.id,
                        message.seq,
                        upload.filename,
                        upload.type,
                        upload.blob.size,
                        upload.sha256,
                    )
                )
    return packed, unavailable


def document(found: Gathered, packed: list[PackedFile], unavailable: list[Json]) -> Json:
    """dossier.json."""
    order = order_fields(found.order, found.workflow)
    viewer = found.viewer
    shown = found.history.shown()
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": found.exported_at_ms,
        "exported_by": viewer.name,
        "anchor_key": _anchor_key(found),
        "view": "staff" if viewer.staff_only else "customer",
        "language": viewer.language,
        "order": order if viewer.staff_only else customer_order_view(order),
        "workflow": {
            "name": found.workflow.name,
            "title": dict(found.workflow.title),
            "labels": {s: dict(found.workflow.labels.get(s, {})) for s in found.workflow.states},
        },
        "customer": _customer(found),
        "people": {uid: person.name for uid, person in sorted(found.people.items())},
        **_history(found, found.history, packed, unavailable),
        "timeline": _timeline(shown),
        "calls": [_call(m) for m in shown if m.kind is MessageKind.CALL],
        "confirmations": [item_fields(item) for item in found.confirmations],
        "payments": [payment_fields(p, found.order.currency) for p in found.payments],
        "invoice": None if found.invoice is None else invoice_fields(found.invoice),
        "issues": [_issue(issue) for issue in found.issues],
        "consults": [_consult(found, c, packed, unavailable) for c in found.consults],
    }


def _history(
    found: Gathered, history: History, packed: list[PackedFile], unavailable: list[Json]
) -> Json:
    """One conversation as the document gives it: the order's, or a consult's."""
    files = [file for file in packed if file.conv == history.conv]
    paths: dict[int, list[str]] = {}
    for file in files:
        paths.setdefault(file.seq, []).append(file.path)
    return {
        "conversation": _conversation(history),
        "members": [
            {"user": user, "read_seq": read_seq, "current": current}
            for user, read_seq, current in history.reads
        ],
        "messages": [_message(found, history, m, paths.get(m.seq, [])) for m in history.shown()],
        "edits": [_edit(link) for link in history.links if link.ref.version and link.body],
        "files": [_file(file) for file in files],
        "unavailable": [u for u in unavailable if u["conv"] == history.conv],
    }


def _consult(
    found: Gathered, item: ConsultHistory, packed: list[PackedFile], unavailable: list[Json]
) -> Json:
    """A consult the order came from: where it began, and its whole conversation."""
    consult = item.consult
    return {
        "id": consult.conv_id,
        "visitor": consult.visitor_id,
        "source": consult.source,
        "tag": consult.tag,
        "page_url": consult.page_url,
        "sku": consult.sku,
        "created_ts": consult.created_at_ms,
        **_history(found, item.history, packed, unavailable),
    }


def _customer(found: Gathered) -> Json:
    customer = found.customer
    return {
        "id": customer.user_id,
        "name": customer.name,
        "company": customer.company,
        "phone": customer.phone,
        "email": customer.email,
        "segment": customer.segment,
        "language": customer.language,
    }


def _conversation(history: History) -> Json:
    report = history.report
    broken = report.broken
    return {
        "id": history.conv,
        "title": history.head.title,
        "last_seq": history.head.last_seq,
        "head": history.head.last_hash,
        "links": len(history.links),
        "withheld": history.withheld,
        "holds": report.holds,
        "broken": None
        if broken is None
        else {"seq": broken.ref.seq, "version": broken.ref.version, "reason": broken.reason.value},
    }


def _read_by(found: Gathered, history: History, message: Message) -> list[str]:
    """Who has read it: members whose read mark is at or past it, who could see it, but
    its sender."""
    readers: list[str] = []
    for user, read_seq, _ in history.reads:
        person = found.people.get(user)
        could_see = not message.internal or (person is not None and person.staff)
        if user != message.sender and read_seq >= message.seq and could_see:
            readers.append(user)
    return readers


def _message(found: Gathered, history: History, message: Message, files: list[str]) -> Json:
    stored = history.stored[message.seq]
    return {
        "seq": message.seq,
        "hash": stored.hash,
        "fields": message_fields(message),
        "internal": message.internal,
        "recalled": message.recalled,
        "recalled_ts": stored.recalled_at_ms,
        "recalled_by": stored.recalled_by,
        "read_by": _read_by(found, history, message),
        "files": files,
    }


def _edit(link: Link) -> Json:
    assert link.body is not None and not isinstance(link.body, Message)
    return {
        "seq": link.ref.seq,
        "version": link.ref.version,
        "hash": link.hash,
        "fields": edit_fields(link.body),
    }


def _timeline(messages: list[Message]) -> list[Json]:
    """The order's status changes, from the order events in the conversation."""
    steps = []
    for message in messages:
        meta = message.meta or {}
        if message.kind is not MessageKind.ORDER_EVENT:
            continue
        details = meta.get("details") if isinstance(meta.get("details"), dict) else {}
        assert isinstance(details, dict)
        if meta.get("event") == "status_changed":
            steps.append({"seq": message.seq, "ts": message.ts, "by": message.sender, **details})
        elif meta.get("event") == "order_created":
            steps.append({"seq": message.seq, "ts": message.ts, "by": message.sender, "to": None})
    return steps


def _call(message: Message) -> Json:
    meta = message.meta or {}
    return {"seq": message.seq, "ts": message.ts, "text": message.text, **meta}


def _issue(issue: Issue) -> Json:
    return {
        "id": issue.id,
        "kind": issue.kind,
        "detail": issue.detail,
        "raised_by": issue.raised_by,
        "raised_ts": issue.raised_at_ms,
        "outcome": issue.outcome,
        "outcome_detail": issue.outcome_detail,
        "settled_by": issue.settled_by,
        "settled_ts": issue.settled_at_ms,
    }


def _file(file: PackedFile) -> Json:
    return {
        "path": file.path,
        "media": file.media,
        "seq": file.seq,
        "name": file.name,
        "type": file.type,
        "size": file.size,
        "sha256": file.sha256,
    }


def _anchor_key(found: Gathered) -> Json | None:
    if found.anchor_key is None:
        return None
    return {"public_key": found.anchor_key, "key_id": anchor_rules.key_id(found.anchor_key)}


def manifest(found: Gathered, digests: list[tuple[str, str, int]]) -> Json:
    """manifest.json: every other file's SHA-256 and size, and the chain link by link."""
    history = found.history
    return {
        "format": FORMAT,
        "version": VERSION,
        "order": found.order.number,
        "conv": history.conv,
        "exported_at": found.exported_at_ms,
        "view": "staff" if found.viewer.staff_only else "customer",
        "anchor_key": _anchor_key(found),
        "head": history.head.last_hash,
        "links": len(history.links),
        "withheld": history.withheld,
        "files": [{"path": p, "sha256": sha, "size": size} for p, sha, size in digests],
        "chain": _chain(history),
        "consults": [
            {
                "conv": c.history.conv,
                "head": c.history.head.last_hash,
                "links": len(c.history.links),
                "withheld": c.history.withheld,
                "chain": _chain(c.history),
            }
            for c in found.consults
        ],
    }


def _chain(history: History) -> list[Json]:
    return [
        {
            "link": link.ref.kind.value,
            "seq": link.ref.seq,
            "version": link.ref.version,
            "hash": link.hash,
            "withheld": link.withheld,
        }
        for link in history.links
    ]


# The files every dossier has besides the originals, in the order they are written.
FIXED_FILES = (PDF, DOCUMENT)
