"""The dossier's file format: what a ZIP holds, and the hashed fields of every link.

A dossier is one order's record, exported to be read and checked by someone
who has no access to the server (a court, a brand client). It is a ZIP:

    dossier.pdf     the record for people to read
    dossier.json    the same record as data, with every link's hashed fields
    files/…         every file sent in the conversation, byte for byte
    manifest.json   SHA-256 of each of the above, and the hash chain in order

The order's conversation is one chain; each consult the order came from
(docs/consults.md) is a chain of its own, listed under `consults` in both
dossier.json and manifest.json, its files under `files/<consult id>/`.

The writer (services/dossier/) and the checker (`check_dossier` below, run by
`orderchat verify dossier.zip`) both go through this module, so the fields
written are exactly the fields the chain hashed, and read back into the same
values. See docs/proof.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orderchat.core.edits import MessageEdit
from orderchat.core.ids import ConversationId, MessageId, UserId
from orderchat.core.model import Message, MessageKind
from orderchat.core.proof import ChainReport, Link, LinkRef, check_links
from orderchat.core.texts import Text, say

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


def file_path(seq: int, index: int, name: str, consult: str | None = None) -> str:
    """Where the `index`-th file of message `seq` goes in the ZIP: unique, sortable, readable.
    A consult's files go in a folder named after it (its conversation's id)."""
    safe = _safe(name) or "file"
    if len(safe) > MAX_NAME_CHARS:
        _, dot, ext = safe.rpartition(".")
        suffix = f".{ext}" if dot and len(ext) <= 10 else ""
        safe = safe[: MAX_NAME_CHARS - len(suffix)] + suffix
    folder = "" if consult is None else f"{_safe(consult)[:MAX_NAME_CHARS] or 'consult'}/"
    return f"{FILES_DIR}{folder}{seq:06d}-{index}-{safe}"


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name).strip(" .")


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


# --- a dossier, checked offline ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsultChain:
    """How the chain of one consult the order came from held."""

    consult: str
    report: ChainReport


@dataclass(frozen=True, slots=True)
class DossierCheck:
    """What `check_dossier` found: every problem, and the chains' reports if they could walk."""

    problems: list[Text]
    chain: ChainReport | None  # the order's conversation
    files: int
    consults: list[ConsultChain] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class _Listed:
    """One chain as the manifest states it: its links in order (which link, its hash,
    whether withheld), and the head it must end at."""

    entries: list[tuple[LinkRef, str, bool]]
    head: str


def check_dossier(manifest: object, document: object, digests: Mapping[str, str]) -> DossierCheck:
    """Whether an exported dossier is as it was written, naming each thing that is not.

    `digests` is the SHA-256 of every file in the ZIP but the manifest itself,
    by path. Three independent proofs, so that rewriting one does not hide a
    change from the others:
    - the manifest's list of files and their SHA-256;
    - each hash chain (the order's, and each consult's), recomputed from
      dossier.json's fields in the manifest's order, ending at the manifest's head;
    - every file against the SHA-256 its message was sent with (in the chain).
    A dossier written before consults were included has none in either file.
    """
    try:
        if _field(manifest, "format") != FORMAT:
            raise ValueError("format")
        order = _listed_chain(manifest)
        consults = _listed_consults(manifest)
        listed = _listed_files(manifest)
    except ValueError:
        return DossierCheck([say("dossier.manifest_malformed")], None, 0)
    problems = _file_problems(listed, digests)
    content = _DocumentLinks.read(document)
    documented = _documented_consults(document)
    if content is None or documented is None:
        return DossierCheck([*problems, say("dossier.document_malformed")], None, len(listed))
    report, found = _check_chain(order, content, digests)
    problems += found
    reports = []
    for consult, chain in consults.items():
        consult_report, found = _check_consult(consult, chain, documented.get(consult), digests)
        problems += found
        if consult_report is not None:
            reports.append(ConsultChain(consult, consult_report))
    for consult in documented:
        if consult not in consults:
            problems.append(say("dossier.consult_unlisted", consult=consult))
    return DossierCheck(problems, report, len(listed), reports)


def _check_chain(
    listed: _Listed, content: _DocumentLinks, digests: Mapping[str, str]
) -> tuple[ChainReport, list[Text]]:
    """One chain: the manifest's links against dossier.json's content, order and files."""
    problems = []
    links = []
    for ref, hash_, withheld in listed.entries:
        body = None if withheld else content.bodies.get(ref)
        if not withheld and ref in content.malformed:
            problems.append(say("dossier.link_malformed", link=ref.text()))
        elif not withheld and body is None:
            problems.append(say("dossier.link_absent", link=ref.text()))
        links.append(Link(ref, hash_, body))
    report = check_links(links, listed.head)
    broken = report.problem()
    if broken is not None:
        problems.append(broken)
    if content.head != listed.head:
        problems.append(say("dossier.heads_differ"))
    shown = [ref for ref, _, withheld in listed.entries if not withheld]
    problems += _order_problems(shown, content.order)
    problems += _file_digest_problems(content, digests)
    return report, problems


def _check_consult(
    consult: str, listed: _Listed, entry: object, digests: Mapping[str, str]
) -> tuple[ChainReport | None, list[Text]]:
    """A consult's chain; each problem says which consult it is in."""
    if entry is None:
        return None, [say("dossier.consult_absent", consult=consult)]
    content = _DocumentLinks.read(entry)
    if content is None:
        return None, [say("dossier.consult_malformed", consult=consult)]
    report, problems = _check_chain(listed, content, digests)
    return report, [say("dossier.in_consult", consult=consult, problem=p) for p in problems]


def _field(data: object, name: str) -> object:
    if not isinstance(data, Mapping) or name not in data:
        raise ValueError(name)
    return data[name]


def _typed_str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(value)
    return value


def _listed_chain(data: object) -> _Listed:
    """A chain of the manifest (the order's, or a consult's entry)."""
    chain = _field(data, "chain")
    if not isinstance(chain, list):
        raise ValueError("chain")
    found = []
    for entry in chain:
        seq, version = _field(entry, "seq"), _field(entry, "version")
        if not isinstance(seq, int) or not isinstance(version, int):
            raise ValueError("seq")
        withheld = _field(entry, "withheld")
        found.append((LinkRef(seq, version), _typed_str(_field(entry, "hash")), withheld is True))
    return _Listed(found, _typed_str(_field(data, "head")))


def _listed_consults(manifest: object) -> dict[str, _Listed]:
    """The consults' chains by consult id, in the manifest's order; none in an older one."""
    consults = manifest.get("consults") if isinstance(manifest, Mapping) else None
    if consults is None:
        return {}
    if not isinstance(consults, list):
        raise ValueError("consults")
    found: dict[str, _Listed] = {}
    for entry in consults:
        consult = _typed_str(_field(entry, "conv"))
        if consult in found:
            raise ValueError(consult)
        found[consult] = _listed_chain(entry)
    return found


def _documented_consults(document: object) -> dict[str, object] | None:
    """dossier.json's consults by id (none in an older one); None when they are malformed."""
    consults = document.get("consults") if isinstance(document, Mapping) else None
    if consults is None:
        return {}
    if not isinstance(consults, list):
        return None
    found: dict[str, object] = {}
    for entry in consults:
        consult = entry.get("id") if isinstance(entry, Mapping) else None
        if not isinstance(consult, str) or consult in found:
            return None
        found[consult] = entry
    return found


def _listed_files(manifest: object) -> dict[str, str]:
    files = _field(manifest, "files")
    if not isinstance(files, list):
        raise ValueError("files")
    return {
        _typed_str(_field(entry, "path")): _typed_str(_field(entry, "sha256")) for entry in files
    }


def _file_problems(listed: Mapping[str, str], digests: Mapping[str, str]) -> list[Text]:
    problems = []
    for path, sha in sorted(listed.items()):
        if path not in digests:
            problems.append(say("dossier.file_missing", path=path))
        elif digests[path] != sha:
            problems.append(say("dossier.file_changed", path=path))
    for path in sorted(set(digests) - set(listed)):
        problems.append(say("dossier.file_unlisted", path=path))
    return problems


@dataclass(frozen=True, slots=True)
class _DocumentLinks:
    """What dossier.json says of one chain's links: their content, and in which order it
    lists them. The order's are at the top of the document, each consult's in its entry."""

    bodies: dict[LinkRef, Message | MessageEdit]
    malformed: set[LinkRef]
    order: list[LinkRef]
    head: object
    files: list[tuple[str, int, str]]  # (path in the ZIP, message seq, media id)

    @classmethod
    def read(cls, document: object) -> _DocumentLinks | None:
        try:
            messages = _field(document, "messages")
            edits = _field(document, "edits")
            head = _field(_field(document, "conversation"), "head")
            files = _field(document, "files")
            if not all(isinstance(x, list) for x in (messages, edits, files)):
                return None
            assert isinstance(messages, list) and isinstance(edits, list)
            assert isinstance(files, list)
            found = cls({}, set(), [], head, [])
            for entry in messages:
                found._add(entry, 0, message_of)
            for entry in edits:
                found._add(entry, _field(entry, "version"), edit_of)
            for entry in files:
                seq = _field(entry, "seq")
                path, media = _typed_str(_field(entry, "path")), _field(entry, "media")
                if isinstance(seq, int) and isinstance(media, str):
                    found.files.append((path, seq, media))
        except ValueError:
            return None
        return found

    def _add(self, entry: object, version: object, parse: Callable[[Any], Any]) -> None:
        seq = _field(entry, "seq")
        if not isinstance(seq, int) or not isinstance(version, int):
            raise ValueError("seq")
        ref = LinkRef(seq, version)
        if ref.version == 0:
            self.order.append(ref)
        try:
            body = parse(_field(entry, "fields"))
        except ValueError:
            self.malformed.add(ref)
            return
        if (body.seq, getattr(body, "version", 0)) != (ref.seq, ref.version):
            self.malformed.add(ref)  # the label says one link, the hashed fields another
            return
        self.bodies[ref] = body


def _order_problems(chain: Sequence[LinkRef], listed: Sequence[LinkRef]) -> list[Text]:
    """dossier.json lists its messages in chain order; name the first that is not, and
    any message it has that the chain does not."""
    in_chain = {ref for ref in chain if ref.version == 0}
    problems = [
        say("dossier.link_unchained", link=ref.text()) for ref in listed if ref not in in_chain
    ]
    expected = [ref for ref in chain if ref.version == 0 and ref in set(listed)]
    actual = [ref for ref in listed if ref in in_chain]
    for there, due in zip(actual, expected, strict=False):
        if there != due:
            problems.append(say("dossier.out_of_order", seq=there.seq, due=due.seq))
            break
    return problems


def _file_digest_problems(content: _DocumentLinks, digests: Mapping[str, str]) -> list[Text]:
    """Each file is the one its message was sent with: the message's hashed attachment says so."""
    problems = []
    for path, seq, media in content.files:
        body = content.bodies.get(LinkRef(seq))
        sent = attachment_digests(body).get(media) if isinstance(body, Message) else None
        if sent is None:
            problems.append(say("dossier.file_not_sent", path=path, seq=seq))
        elif path in digests and digests[path] != sent:
            problems.append(say("dossier.file_not_as_sent", path=path, seq=seq))
    return problems
