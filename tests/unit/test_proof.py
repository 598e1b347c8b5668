"""The proof rules: where a hash chain breaks and why, and a dossier checked offline."""

from __future__ import annotations

import copy
import hashlib
import io
from dataclasses import replace
from typing import Any

import pytest

from orderchat.core.chain import GENESIS, chain_hash, edit_hash
from orderchat.core.dossier import FORMAT, check_dossier, edit_fields, file_path, message_fields
from orderchat.core.edits import MessageEdit
from orderchat.core.ids import ConversationId, MessageId, UserId
from orderchat.core.model import Message, MessageKind
from orderchat.core.proof import (
    BreakReason,
    BrokenLink,
    ChainWalk,
    Link,
    LinkRef,
    check_links,
    edit_link,
    message_link,
)
from orderchat.progress import ProgressBar

CONV = ConversationId("c_1")
PHOTO = b"\x89PNG not really, but bytes all the same"
PHOTO_SHA = hashlib.sha256(PHOTO).hexdigest()


def _message(seq: int, text: str | None = None, **extra: Any) -> Message:
    message = Message(
        id=MessageId(f"m_{seq}"),
        conv=CONV,
        seq=seq,
        ref=None,
        sender=UserId("u_amy" if seq % 2 else "u_lin"),
        kind=MessageKind.TEXT,
        text=text if text is not None else f"第 {seq} 条：防水背包",
        attachments=(),
        mentions=(),
        reply_to=None,
        ts=1_700_000_000_000 + seq,
        recalled=False,
    )
    return replace(message, **extra)


def _edit(seq: int, version: int) -> MessageEdit:
    return MessageEdit(
        MessageId(f"m_{seq}"), CONV, seq, version, UserId("u_amy"), f"改过 {version}", 5 + version
    )


def _chain(*items: Message | MessageEdit) -> list[Link]:
    """The links as the writer hashed them, in this order."""
    links, previous = [], GENESIS
    for item in items:
        if isinstance(item, Message):
            previous = chain_hash(previous, item)
            links.append(message_link(item, previous))
        else:
            previous = edit_hash(previous, item)
            links.append(edit_link(item, previous))
    return links


def _walk(links: list[Link], last_seq: int | None = None) -> ChainWalk:
    """Feed a walk the way storage reads rows: messages in seq order, each with its edits."""
    walk = ChainWalk(keep=True)
    messages = sorted((lk for lk in links if lk.ref.version == 0), key=lambda lk: lk.ref.seq)
    for message in messages:
        walk.message(
            message, [lk for lk in links if lk.ref.version and lk.ref.seq == message.ref.seq]
        )
    return walk


def test_an_untouched_chain_holds_to_its_head() -> None:
    links = _chain(_message(1), _message(2), _edit(1, 1), _message(3))
    report = check_links(links, links[-1].hash)
    assert report.holds and report.links == 4 and report.head == links[-1].hash
    walked = _walk(links).finish(3, links[-1].hash)
    assert walked.holds and walked.links == 4


def test_the_walk_places_each_edit_where_its_hash_says() -> None:
    """Edits do not say after which message they were chained; their hashes do."""
    links = _chain(
        _message(1), _message(2), _edit(1, 1), _message(3), _edit(2, 1), _edit(1, 2), _message(4)
    )
    walk = _walk(links)
    report = walk.finish(4, links[-1].hash)
    assert report.holds, report
    assert [lk.ref for lk in walk.order or []] == [lk.ref for lk in links]


def test_a_changed_message_is_named_with_its_seq() -> None:
    links = _chain(_message(1), _message(2), _message(3))
    links[1] = replace(links[1], body=_message(2, "改过的内容"))
    for report in (check_links(links, links[-1].hash), _walk(links).finish(3, links[-1].hash)):
        assert report.broken is not None
        assert (report.broken.ref, report.broken.reason) == (LinkRef(2), BreakReason.CHANGED)
        assert "message seq 2" in str(report.problem())


def test_a_changed_edit_is_named_with_its_message_and_version() -> None:
    links = _chain(_message(1), _edit(1, 1), _message(2))
    links[1] = replace(links[1], body=replace(_edit(1, 1), text="another text"))
    report = check_links(links, links[-1].hash)
    assert report.broken is not None
    assert (report.broken.ref, report.broken.reason) == (LinkRef(1, 1), BreakReason.CHANGED)
    assert (
        str(report.problem())
        == "edit 1 of message seq 1: its content does not give its hash (changed)"
    )


def test_a_removed_message_is_missing_by_its_seq() -> None:
    links = _chain(_message(1), _message(2), _message(3))
    gone = [links[0], links[2]]
    for report in (check_links(gone, links[-1].hash), _walk(gone).finish(3, links[-1].hash)):
        assert report.broken is not None
        assert (report.broken.ref, report.broken.reason) == (LinkRef(2), BreakReason.MISSING)


def test_a_removed_last_message_is_missing_against_the_conversations_last_seq() -> None:
    links = _chain(_message(1), _message(2))
    report = _walk(links[:1]).finish(2, links[-1].hash)
    assert report.broken == BrokenLink(LinkRef(2), BreakReason.MISSING)


def test_swapped_messages_are_reordered_not_changed() -> None:
    links = _chain(_message(1), _message(2), _message(3), _message(4))
    swapped = [links[0], links[2], links[1], links[3]]
    report = check_links(swapped, links[-1].hash)
    assert report.broken is not None
    assert report.broken.reason is BreakReason.REORDERED and report.broken.ref == LinkRef(3)


def test_an_intact_link_chained_after_another_is_reordered() -> None:
    """Seqs relabelled to look in order: the hash still says where the link belongs."""
    links = _chain(_message(1), _message(2), _message(3))
    relabelled = [
        links[0],
        Link(LinkRef(2), links[2].hash, links[2].body),
        Link(LinkRef(3), links[1].hash, links[1].body),
    ]
    report = check_links(relabelled, links[-1].hash)
    assert report.broken is not None
    assert (report.broken.ref, report.broken.reason) == (LinkRef(2), BreakReason.REORDERED)


def test_a_skipped_edit_version_is_missing() -> None:
    links = _chain(_message(1), _edit(1, 1), _edit(1, 2), _message(2))
    without_first = [lk for lk in links if lk.ref != LinkRef(1, 1)]
    report = _walk(without_first).finish(2, links[-1].hash)
    assert report.broken is not None
    assert (report.broken.ref, report.broken.reason) == (LinkRef(1, 1), BreakReason.MISSING)
    listed = check_links(without_first, links[-1].hash)
    assert listed.broken is not None and listed.broken.ref == LinkRef(1, 1)


def test_links_that_hold_but_end_elsewhere_break_at_the_head() -> None:
    links = _chain(_message(1), _message(2))
    report = check_links(links, "f" * 64)
    assert report.broken is not None and report.broken.reason is BreakReason.HEAD
    assert report.links == 2


def test_a_withheld_link_is_taken_by_its_hash_and_the_next_proves_it() -> None:
    links = _chain(_message(1), _message(2, internal=True), _edit(2, 1), _message(3))
    seen = [
        links[0],
        Link(links[1].ref, links[1].hash),
        Link(links[2].ref, links[2].hash),
        links[3],
    ]
    report = check_links(seen, links[-1].hash)
    assert report.holds and report.withheld == 2
    forged = [links[0], Link(links[1].ref, "0" * 64), links[2], links[3]]
    assert not check_links(forged, links[-1].hash).holds


# --- a dossier ---------------------------------------------------------------------------


def _dossier() -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """A small dossier's manifest, document and file digests, as the exporter writes them."""
    attachment = {"id": "up_1", "name": "photo.png", "sha256": PHOTO_SHA, "size": len(PHOTO)}
    items: list[Message | MessageEdit] = [
        _message(1),
        _message(2, attachments=(attachment,)),
        _message(3, internal=True),
        _edit(1, 1),
        _message(4),
    ]
    links = _chain(*items)
    shown = [lk for lk in links if lk.ref.seq != 3]
    photo = file_path(2, 1, "photo.png")
    document: dict[str, Any] = {
        "format": FORMAT,
        "conversation": {"head": links[-1].hash},
        "messages": [
            {"seq": lk.ref.seq, "hash": lk.hash, "fields": message_fields(lk.body)}
            for lk in shown
            if isinstance(lk.body, Message)
        ],
        "edits": [
            {"seq": 1, "version": 1, "hash": links[3].hash, "fields": edit_fields(_edit(1, 1))}
        ],
        "files": [{"path": photo, "seq": 2, "media": "up_1"}],
    }
    digests = {"dossier.json": "a" * 64, photo: PHOTO_SHA}
    manifest = {
        "format": FORMAT,
        "head": links[-1].hash,
        "files": [{"path": p, "sha256": sha} for p, sha in digests.items()],
        "chain": [
            {
                "link": lk.ref.kind.value,
                "seq": lk.ref.seq,
                "version": lk.ref.version,
                "hash": lk.hash,
                "withheld": lk.ref.seq == 3,
            }
            for lk in links
        ],
    }
    return manifest, document, digests


def _problems(manifest: object, document: object, digests: dict[str, str]) -> list[str]:
    return [p.render("en") for p in check_dossier(manifest, document, digests).problems]


def test_an_untouched_dossier_holds_with_its_withheld_link_counted() -> None:
    manifest, document, digests = _dossier()
    found = check_dossier(manifest, document, digests)
    assert found.holds, [str(p) for p in found.problems]
    assert found.chain is not None and found.chain.links == 5 and found.chain.withheld == 1


def test_a_file_changed_in_the_zip_is_named() -> None:
    manifest, document, digests = _dossier()
    photo = document["files"][0]["path"]
    digests[photo] = hashlib.sha256(PHOTO + b"!").hexdigest()
    problems = _problems(manifest, document, digests)
    assert any(photo in p and "manifest" in p for p in problems), problems
    assert any(photo in p and "message seq 2" in p for p in problems), problems


def test_a_file_swapped_with_the_manifest_rewritten_still_fails_against_its_message() -> None:
    manifest, document, digests = _dossier()
    photo = document["files"][0]["path"]
    digests[photo] = "b" * 64
    manifest["files"] = [{"path": p, "sha256": sha} for p, sha in digests.items()]
    assert _problems(manifest, document, digests) == [
        f"{photo} is not the file message seq 2 sent: its SHA-256 differs (changed)"
    ]


def test_a_message_edited_in_the_document_is_named() -> None:
    manifest, document, digests = _dossier()
    edited = copy.deepcopy(document)
    edited["messages"][1]["fields"]["text"] = "a different story"
    problems = _problems(manifest, edited, digests)
    assert "message seq 2: its content does not give its hash (changed)" in problems


def test_two_messages_swapped_in_the_document_are_named() -> None:
    manifest, document, digests = _dossier()
    messages = document["messages"]
    messages[0], messages[1] = messages[1], messages[0]
    problems = _problems(manifest, document, digests)
    assert problems == ["message seq 2 stands where seq 1 belongs in dossier.json (reordered)"], (
        problems
    )


def test_a_message_removed_from_the_document_is_named() -> None:
    manifest, document, digests = _dossier()
    del document["messages"][2]  # seq 4
    problems = _problems(manifest, document, digests)
    assert problems == ["message seq 4 is in the chain but not in dossier.json (removed)"]


def test_a_message_removed_from_the_document_and_the_manifest_leaves_a_gap() -> None:
    manifest, document, digests = _dossier()
    del document["messages"][0]
    manifest["chain"] = [e for e in manifest["chain"] if (e["seq"], e["version"]) != (1, 0)]
    problems = _problems(manifest, document, digests)
    assert "message seq 1: missing" in problems, problems


CONSULT = "c_consult"


def _consult_message(seq: int, text: str | None = None, **extra: Any) -> Message:
    return replace(_message(seq, text, **extra), id=MessageId(f"m_c{seq}"), conv=CONSULT)


def _with_a_consult() -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """The small dossier with one consult the order came from: a question with a photo,
    a staff-only note (withheld, as in a customer's dossier) and an answer."""
    manifest, document, digests = _dossier()
    attachment = {"id": "up_c", "name": "tent.png", "sha256": PHOTO_SHA, "size": len(PHOTO)}
    links = _chain(
        _consult_message(1, "这款帐篷防水吗？", attachments=(attachment,)),
        _consult_message(2, "转给同事", internal=True),
        _consult_message(3, "防水，涂层 3000mm"),
    )
    photo = file_path(1, 1, "tent.png", CONSULT)
    document["consults"] = [
        {
            "id": CONSULT,
            "conversation": {"head": links[-1].hash},
            "messages": [
                {"seq": lk.ref.seq, "hash": lk.hash, "fields": message_fields(lk.body)}
                for lk in links
                if isinstance(lk.body, Message) and lk.ref.seq != 2
            ],
            "edits": [],
            "files": [{"path": photo, "seq": 1, "media": "up_c"}],
        }
    ]
    digests[photo] = PHOTO_SHA
    manifest["files"] = [{"path": p, "sha256": sha} for p, sha in digests.items()]
    manifest["consults"] = [
        {
            "conv": CONSULT,
            "head": links[-1].hash,
            "chain": [
                {"seq": lk.ref.seq, "version": 0, "hash": lk.hash, "withheld": lk.ref.seq == 2}
                for lk in links
            ],
        }
    ]
    return manifest, document, digests


def test_a_consults_chain_holds_with_its_withheld_note_counted() -> None:
    manifest, document, digests = _with_a_consult()
    found = check_dossier(manifest, document, digests)
    assert found.holds, [str(p) for p in found.problems]
    assert [(c.consult, c.report.links, c.report.withheld) for c in found.consults] == [
        (CONSULT, 3, 1)
    ]
    assert found.chain is not None and found.chain.links == 5 and found.files == 3


def test_a_consults_message_edited_swapped_or_removed_is_named_with_the_consult() -> None:
    manifest, document, digests = _with_a_consult()
    edited = copy.deepcopy(document)
    edited["consults"][0]["messages"][1]["fields"]["text"] = "不防水"
    assert _problems(manifest, edited, digests) == [
        f"consult {CONSULT}: message seq 3: its content does not give its hash (changed)"
    ]
    swapped = copy.deepcopy(document)
    messages = swapped["consults"][0]["messages"]
    messages[0], messages[1] = messages[1], messages[0]
    assert _problems(manifest, swapped, digests) == [
        f"consult {CONSULT}: message seq 3 stands where seq 1 belongs in dossier.json (reordered)"
    ]
    removed = copy.deepcopy(document)
    del removed["consults"][0]["messages"][1]
    assert _problems(manifest, removed, digests) == [
        f"consult {CONSULT}: message seq 3 is in the chain but not in dossier.json (removed)"
    ]


def test_a_consults_file_changed_is_named_against_its_message() -> None:
    manifest, document, digests = _with_a_consult()
    photo = document["consults"][0]["files"][0]["path"]
    assert photo == f"files/{CONSULT}/000001-1-tent.png"
    digests[photo] = "b" * 64
    manifest["files"] = [{"path": p, "sha256": sha} for p, sha in digests.items()]
    assert _problems(manifest, document, digests) == [
        f"consult {CONSULT}: {photo} is not the file message seq 1 sent: "
        "its SHA-256 differs (changed)"
    ]


def test_a_consult_dropped_from_either_file_is_named() -> None:
    manifest, document, digests = _with_a_consult()
    gone = copy.deepcopy(document)
    gone["consults"] = []
    assert f"consult {CONSULT} is in the manifest but not in dossier.json (removed)" in (
        _problems(manifest, gone, digests)
    )
    unlisted = copy.deepcopy(manifest)
    unlisted["consults"] = []
    assert _problems(unlisted, document, digests) == [
        f"consult {CONSULT} in dossier.json is not in the manifest"
    ]


def test_what_is_not_a_dossier_says_so() -> None:
    assert _problems({"format": "zip"}, {}, {}) == [
        "manifest.json is not a dossier manifest; nothing can be checked"
    ]
    manifest, _, digests = _dossier()
    assert "dossier.json is not a dossier document; the chain cannot be checked" in _problems(
        manifest, None, digests
    )


def test_a_files_name_in_the_zip_is_safe_and_keeps_its_extension() -> None:
    assert file_path(3, 1, "../../etc/passwd") == "files/000003-1-_.._etc_passwd"
    assert file_path(12, 2, "样品 第一轮.jpg") == "files/000012-2-样品 第一轮.jpg"
    long = file_path(1, 1, "x" * 300 + ".jpeg")
    assert long.endswith(".jpeg") and len(long.split("-", 2)[2]) == 100


@pytest.mark.parametrize(
    ("done", "total", "line"),
    [
        (5, 0, "verifying  5"),
        (5, 10, "verifying [##############..............]  50%  5/10"),
        (12_345, 12_345, "verifying [############################] 100%  12,345/12,345"),
    ],
)
def test_the_progress_bar_draws_a_share_or_a_count(done: int, total: int, line: str) -> None:
    assert ProgressBar.render("verifying", done, total) == line


def test_the_progress_bar_is_silent_off_a_terminal() -> None:
    stream = io.StringIO()
    bar = ProgressBar("verifying", stream)
    bar.update(1, 2)
    bar.close()
    assert stream.getvalue() == ""


def test_a_purged_message_and_its_edit_are_taken_by_their_hashes_in_their_places() -> None:
    """Retention removes content, not links: the walk places the blind edits by what follows."""
    links = _chain(_message(1), _message(2), _edit(1, 1), _message(3), _edit(2, 1), _message(4))
    blind = [lk if lk.ref.seq == 3 else Link(lk.ref, lk.hash) for lk in links]
    walk = _walk(blind)
    report = walk.finish(4, links[-1].hash)
    assert report.holds, report
    assert [lk.ref for lk in walk.order or []] == [lk.ref for lk in links]
    assert check_links(walk.order or [], links[-1].hash).holds  # a manifest in this order
