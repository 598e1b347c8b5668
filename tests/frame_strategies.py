"""Hypothesis strategies for every frame a client may send over `/ws`, good and bad.

The strategies build frames from the real ids of a running server (`Ids`): the
conversations the fuzzing user belongs to and the seqs that exist there. They
read the ids when they draw, so a test that sends messages between examples
keeps them current by updating `Ids`.

A bad frame is a `Bad`: the exact bytes that go on the wire, and what the
contract says the server answers: the error codes allowed, the `ref` the error
must carry (or that it must carry none), and where the frame fails, which is
what decides the answer before a hello. Most bad frames are a valid frame with
exactly one thing broken, so that the expected answer is never a guess.

The rules here are written from `docs/protocol.md`, not from the server's code,
so that the two can disagree.
"""

from __future__ import annotations

import itertools
import json
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from hypothesis import strategies as st

Frame = dict[str, Any]
Stage = Literal["decode", "state", "service"]

OPS = ("hello", "send", "read", "recall", "edit", "typing", "ping")
CLIENT_KINDS = ("text", "image", "voice", "video", "file")
FILE_KINDS = ("image", "voice", "video", "file")
SERVER_KINDS = ("system", "order_event", "call")
ROLES = (
    "admin",
    "customer_service",
    "sales",
    "purchasing",
    "warehouse",
    "logistics",
    "finance",
    "production",
    "qc",
)
MAX_TEXT = 10_000
MAX_ID = 64
MAX_SEQ = 2**62
MAX_MENTIONS = 100
MAX_ATTACHMENTS = 20
PRINTABLE_ASCII = "".join(chr(c) for c in range(0x20, 0x7F))

BAD_REQUEST = frozenset({"bad_request"})
TOO_LARGE = frozenset({"too_large"})
FORBIDDEN = frozenset({"forbidden"})
NOT_FOUND = frozenset({"not_found"})
CONFLICT = frozenset({"conflict"})

# A fresh upload is made for each valid file message; the runner puts its id here.
FRESH_UPLOAD = "<fresh upload>"

_unique = itertools.count(1)


@dataclass
class Ids:
    """What exists on the server under test, as the fuzzing user (alice) sees it."""

    token: str  # alice's session token
    user: str  # alice's id
    conv: str  # alice and the watcher (bob)
    other_conv: str  # alice is not a member
    missing_conv: str  # no such conversation
    watcher: str  # bob's id
    watcher_username: str
    outsider: str  # carol: in other_conv only
    outsider_username: str
    own_seqs: list[int]  # alice's messages in conv (recallable)
    others_seqs: list[int]  # bob's messages in conv
    last_seq: int
    spare_upload: str  # alice's, finished, for conv, never sent: only bad frames carry it
    others_upload: str  # bob's, finished, for conv
    unfinished_upload: str  # alice's, for conv, half sent
    foreign_upload: str  # alice's, finished, made for another conversation
    sent_upload: str  # alice's, already sent in a message
    cursor: str  # a cursor this server issued


@dataclass(frozen=True)
class Bad:
    """A frame the server must refuse, and how."""

    label: str  # what is broken, for reports and `event()`
    payload: str | bytes  # exactly what goes on the wire (bytes: a binary frame)
    codes: frozenset[str]
    ref: str | None  # the ref the error must carry; None: it must carry no ref
    stage: Stage  # decode: the frame itself; state: hello twice; service: the data
    op: str | None = None  # the op, when the frame has a known one
    ref_optional: bool = False  # valid JSON the parser cannot take: a ref is welcome
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # a frame near 1 MiB makes a useless report
        payload = self.payload if len(self.payload) <= 300 else self.payload[:300]
        more = f" (+{len(self.payload) - 300})" if len(self.payload) > 300 else ""
        return (
            f"Bad({self.label!r}, {payload!r}{more}, codes={sorted(self.codes)}, "
            f"ref={self.ref!r}, stage={self.stage!r})"
        )


def is_usable_ref(value: object) -> bool:
    """The contract's ref: 1-64 printable ASCII characters (space through '~')."""
    return (
        isinstance(value, str)
        and 1 <= len(value) <= MAX_ID
        and all(" " <= ch <= "~" for ch in value)
    )


def dumps(frame: object) -> str:
    """JSON as any client library writes it; integers of any size included."""
    return json.dumps(frame, ensure_ascii=False)


# --- refs -----------------------------------------------------------------------


def _unique_ref(body: str) -> str:
    """A ref no other frame of the run uses: bad frames must not hit G2's prior acks."""
    suffix = f"#{next(_unique):x}"
    return (body + suffix)[-MAX_ID:]


def refs() -> st.SearchStrategy[str]:
    """Valid, unique refs: any printable ASCII, up to the full 64 characters."""
    return st.one_of(
        st.text(PRINTABLE_ASCII, max_size=MAX_ID),
        st.uuids().map(str),
        st.text(PRINTABLE_ASCII, min_size=MAX_ID, max_size=MAX_ID),
    ).map(_unique_ref)


def bad_refs() -> st.SearchStrategy[object]:
    """Refs the contract refuses: empty, too long, non-printable, non-ASCII, not strings."""
    return st.one_of(
        st.just(""),
        st.text(PRINTABLE_ASCII, min_size=MAX_ID + 1, max_size=300),
        st.tuples(
            st.text(PRINTABLE_ASCII, max_size=30),
            st.characters(codec="utf-8", exclude_characters=PRINTABLE_ASCII),
            st.text(PRINTABLE_ASCII, max_size=30),
        ).map("".join),
        _wrong_type(str),
    )


# --- JSON values of the wrong type ------------------------------------------------

_JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
)
JSON_VALUES = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def _wrong_type(*allowed: type) -> st.SearchStrategy[object]:
    """Any JSON value whose type is not one of `allowed` (bool is never an int here)."""

    def ok(value: object) -> bool:
        if isinstance(value, bool):
            return bool not in allowed
        return not isinstance(value, allowed)

    return JSON_VALUES.filter(ok)


def bad_seqs() -> st.SearchStrategy[object]:
    """Values that are not a seq: 1..2^62 integers only."""
    return st.one_of(
        st.just(0),
        st.integers(min_value=-(2**63), max_value=0),
        st.integers(min_value=MAX_SEQ + 1, max_value=2**64 - 1),
        st.integers(min_value=2**64, max_value=2**80),  # parsed as a float
        st.booleans(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(min_value=1, max_value=1000).map(float),
        st.integers(min_value=1, max_value=1000).map(str),
        st.none(),
        st.integers(min_value=1, max_value=1000).map(lambda n: {"seq": n}),
        st.integers(min_value=1, max_value=1000).map(lambda n: [n]),
    )


def bad_conv_values() -> st.SearchStrategy[object]:
    """Values that are not a conversation id by type or length."""
    return st.one_of(
        st.just(""),
        st.text(min_size=MAX_ID + 1, max_size=200),
        _wrong_type(str),
    )


def unknown_convs(ids: Ids) -> st.SearchStrategy[str]:
    """Conversation ids of the right shape that name nothing."""
    return st.one_of(
        st.just(ids.missing_conv),
        st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=21).map(
            lambda s: f"c_{s}"
        ),
        st.text(min_size=1, max_size=MAX_ID),
    ).filter(lambda c: c not in (ids.conv, ids.other_conv))


# --- valid frames -----------------------------------------------------------------


def texts() -> st.SearchStrategy[str]:
    """Message text: 1-10,000 characters, not blank, any script; never a /stock command."""
    return st.one_of(
        st.text(min_size=1, max_size=200),
        st.text(min_size=1, max_size=20).map(lambda s: s * (MAX_TEXT // max(len(s), 1))),
        st.just("货" * MAX_TEXT),
    ).filter(lambda t: 0 < len(t) <= MAX_TEXT and t.strip() != "" and not _is_command(t))


def _is_command(text: str) -> bool:
    words = text.strip().split(maxsplit=1)
    return text.strip().startswith("/库存") or (bool(words) and words[0] == "/stock")


def mentions(ids: Ids) -> st.SearchStrategy[list[str]]:
    tokens = st.sampled_from(
        [ids.watcher, ids.user, f"@{ids.watcher_username}", "@all", "@everyone", "@所有人"]
        + [f"@{role}" for role in ROLES]
    )
    return st.lists(tokens, max_size=5)


def replies(ids: Ids) -> st.SearchStrategy[int | None]:
    return st.one_of(st.none(), st.integers(1, 10**6).map(lambda n: 1 + n % ids.last_seq))


def _optional(frame: Frame, key: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[Frame]:
    """The frame with `key` left out or set to a drawn value."""
    return st.one_of(st.just(frame), values.map(lambda v: {**frame, key: v}))


def send_text_frames(ids: Ids) -> st.SearchStrategy[Frame]:
    base = st.fixed_dictionaries(
        {"op": st.just("send"), "ref": refs(), "conv": st.just(ids.conv), "text": texts()},
        optional={
            "kind": st.just("text"),
            "attachments": st.sampled_from([[], None]),
            "mentions": st.one_of(st.none(), mentions(ids)),
            "reply_to": replies(ids),
            "urgent": st.booleans(),
            "internal": st.booleans(),
            "device_hint": st.text(max_size=5),  # unknown fields are ignored
        },
    )
    return base


def send_file_frames(ids: Ids) -> st.SearchStrategy[Frame]:
    """A file message; its attachment is FRESH_UPLOAD, replaced by a new upload when sent."""
    return st.fixed_dictionaries(
        {
            "op": st.just("send"),
            "ref": refs(),
            "conv": st.just(ids.conv),
            "kind": st.just("file"),
            "attachments": st.sampled_from([[{"id": FRESH_UPLOAD}], [FRESH_UPLOAD]]),
        },
        optional={
            "text": st.one_of(st.none(), st.just(""), texts()),
            "mentions": mentions(ids),
            "reply_to": replies(ids),
            "urgent": st.booleans(),
            "internal": st.booleans(),
        },
    )


def read_frames(ids: Ids) -> st.SearchStrategy[Frame]:
    return st.integers(1, 10**6).map(
        lambda n: {"op": "read", "conv": ids.conv, "seq": 1 + n % ids.last_seq}
    )


def recall_frames(ids: Ids) -> st.SearchStrategy[Frame]:
    """A recall of one of alice's own messages (recalled already or not)."""
    return st.tuples(refs(), st.integers(0, 10**6)).map(
        lambda t: {
            "op": "recall",
            "ref": t[0],
            "conv": ids.conv,
            "seq": ids.own_seqs[t[1] % len(ids.own_seqs)],
        }
    )


def edit_frames(ids: Ids) -> st.SearchStrategy[Frame]:
    """An edit of one of alice's own messages (whether the window still allows it or not:
    only refusals that do not depend on that are drawn from these)."""
    return st.tuples(refs(), st.integers(0, 10**6), texts()).map(
        lambda t: {
            "op": "edit",
            "ref": t[0],
            "conv": ids.conv,
            "seq": ids.own_seqs[t[1] % len(ids.own_seqs)],
            "text": t[2],
        }
    )


def forward_frames(ids: Ids) -> st.SearchStrategy[Frame]:
    """A forward of one of bob's messages into the conversation it is in."""
    return st.tuples(refs(), st.integers(0, 10**6), st.booleans()).map(
        lambda t: {
            "op": "send",
            "ref": t[0],
            "conv": ids.conv,
            "forward": {"conv": ids.conv, "seq": ids.others_seqs[t[1] % len(ids.others_seqs)]},
            "internal": t[2],
        }
    )


def typing_frames(ids: Ids) -> st.SearchStrategy[Frame]:
    return st.just({"op": "typing", "conv": ids.conv})


def ping_frames() -> st.SearchStrategy[Frame]:
    return st.just({"op": "ping"})


def hello_frames(ids: Ids) -> st.SearchStrategy[Frame]:
    return st.fixed_dictionaries(
        {
            "op": st.just("hello"),
            "token": st.just(ids.token),
            "device": st.text(min_size=1, max_size=MAX_ID),
            "cursor": st.one_of(st.none(), st.just(ids.cursor)),
        }
    )


def valid_frames(ids: Ids) -> st.SearchStrategy[Frame]:
    """Every frame alice may send once she said hello, built from what exists."""
    return st.one_of(
        send_text_frames(ids),
        send_file_frames(ids),
        read_frames(ids),
        recall_frames(ids),
        typing_frames(ids),
        ping_frames(),
    )


# --- bad frames: one thing broken in a valid frame ---------------------------------

Mutation = Callable[[Frame], st.SearchStrategy[Bad]]


def _bad(
    label: str,
    frame: Frame,
    codes: frozenset[str],
    stage: Stage,
    *,
    ref: str | None = None,
) -> Bad:
    """A bad frame; the error's ref is the frame's own when `ref` is not given and
    the frame's ref is usable."""
    if ref is None and is_usable_ref(frame.get("ref")):
        ref = frame["ref"]
    op = frame.get("op") if frame.get("op") in OPS else None
    return Bad(label, dumps(frame), codes, ref, stage, op)


def _set(frame: Frame, key: str, value: object) -> Frame:
    return {**frame, key: value}


def _without(frame: Frame, key: str) -> Frame:
    return {k: v for k, v in frame.items() if k != key}


def _bad_send(ids: Ids, base: Frame) -> list[st.SearchStrategy[Bad]]:
    """Every way a text send (`base`) can be wrong, one at a time."""

    def one(
        label: str,
        values: st.SearchStrategy[Any],
        key: str,
        codes: frozenset[str],
        stage: Stage = "decode",
    ) -> st.SearchStrategy[Bad]:
        return values.map(lambda v: _bad(label, _set(base, key, v), codes, stage))

    no_ref = bad_refs().map(
        lambda v: Bad(
            "send: bad ref", dumps(_set(base, "ref", v)), BAD_REQUEST, None, "decode", "send"
        )
    )
    missing = st.sampled_from(["ref", "conv", "text"]).map(
        lambda key: Bad(
            f"send: no {key}",
            dumps(_without(base, key)),
            BAD_REQUEST,
            base["ref"] if key != "ref" else None,
            "decode",
            "send",
        )
    )
    return [
        no_ref,
        missing,
        one("send: conv not an id", bad_conv_values(), "conv", BAD_REQUEST),
        one("send: text not a string", _wrong_type(str), "text", BAD_REQUEST),
        one(
            "send: blank text",
            st.text(" \t\r\n\u3000\u00a0\u2028", max_size=50),
            "text",
            BAD_REQUEST,
        ),
        one("send: text too long", _long_texts(), "text", TOO_LARGE),
        one(
            "send: unknown kind",
            st.text(max_size=20).filter(lambda k: k not in CLIENT_KINDS + SERVER_KINDS),
            "kind",
            BAD_REQUEST,
        ),
        one("send: server-only kind", st.sampled_from(SERVER_KINDS), "kind", BAD_REQUEST),
        one("send: kind not a string", _wrong_type(str), "kind", BAD_REQUEST),
        one("send: urgent not a bool", _wrong_type(bool), "urgent", BAD_REQUEST),
        one("send: internal not a bool", _wrong_type(bool), "internal", BAD_REQUEST),
        one(
            "send: reply_to not a seq",
            bad_seqs().filter(lambda v: v is not None),
            "reply_to",
            BAD_REQUEST,
        ),
        one(
            "send: reply_to beyond the last message",
            st.integers(1, MAX_SEQ - 10**7).map(lambda n: ids.last_seq + n),
            "reply_to",
            BAD_REQUEST,
            "service",
        ),
        one("send: mentions not a list", _wrong_type(list, type(None)), "mentions", BAD_REQUEST),
        one(
            "send: mention not a token",
            st.lists(_wrong_type(str), min_size=1, max_size=3),
            "mentions",
            BAD_REQUEST,
            "service",
        ),
        one(
            "send: mention of a non-member",
            st.sampled_from(
                [
                    [ids.outsider],
                    [f"@{ids.outsider_username}"],
                    ["@janitor"],
                    ["u_nobody00000000000000"],
                    [ids.watcher, ""],
                ]
            ),
            "mentions",
            BAD_REQUEST,
            "service",
        ),
        one(
            "send: over 100 mentions",
            st.integers(MAX_MENTIONS + 1, 300).map(lambda n: [ids.watcher] * n),
            "mentions",
            BAD_REQUEST,
        ),
        one(
            "send: text with attachments",
            st.sampled_from([[ids.spare_upload], [{"id": ids.spare_upload}], ["x"]]),
            "attachments",
            BAD_REQUEST,
        ),
        one(
            "send: attachments not a list",
            _wrong_type(list, type(None)),
            "attachments",
            BAD_REQUEST,
        ),
        one("send: not a member", st.just(ids.other_conv), "conv", FORBIDDEN, "service"),
        one("send: no such conversation", unknown_convs(ids), "conv", NOT_FOUND, "service"),
    ]


def _long_texts() -> st.SearchStrategy[str]:
    """Over 10,000 characters, up to a frame just under the 1 MiB limit."""
    return st.one_of(
        st.integers(MAX_TEXT + 1, MAX_TEXT + 5000).map(lambda n: "x" * n),
        st.integers(MAX_TEXT + 1, 20_000).map(lambda n: "货" * n),
        st.just("y" * 1_000_000),
    )


def _bad_file_send(ids: Ids, base: Frame) -> list[st.SearchStrategy[Bad]]:
    """A file message (`base`, carrying the spare upload) with one thing wrong."""

    def atts(label: str, value: object, codes: frozenset[str], stage: Stage = "decode") -> Bad:
        return _bad(label, _set(base, "attachments", value), codes, stage)

    not_uploads = st.text(min_size=1, max_size=MAX_ID).filter(
        lambda s: (
            s
            not in (
                ids.spare_upload,
                ids.others_upload,
                ids.unfinished_upload,
                ids.foreign_upload,
                ids.sent_upload,
            )
        )
    )
    return [
        not_uploads.map(lambda u: atts("file: not an upload", [{"id": u}], NOT_FOUND, "service")),
        st.just(
            atts("file: someone else's upload", [{"id": ids.others_upload}], FORBIDDEN, "service")
        ),
        st.just(atts("file: unfinished upload", [ids.unfinished_upload], CONFLICT, "service")),
        st.just(atts("file: upload already sent", [ids.sent_upload], CONFLICT, "service")),
        st.just(
            atts(
                "file: upload for another conversation",
                [ids.foreign_upload],
                BAD_REQUEST,
                "service",
            )
        ),
        st.just(
            atts(
                "file: upload listed twice",
                [ids.spare_upload, {"id": ids.spare_upload}],
                BAD_REQUEST,
            )
        ),
        st.sampled_from([[], None]).map(lambda v: atts("file: no attachments", v, BAD_REQUEST)),
        st.just(_bad("file: no attachments", _without(base, "attachments"), BAD_REQUEST, "decode")),
        st.lists(
            st.one_of(
                _wrong_type(str, dict),
                st.just(""),
                st.just({}),
                st.text(min_size=MAX_ID + 1, max_size=100),
                _wrong_type(str).map(lambda v: {"id": v}),
            ),
            min_size=1,
            max_size=3,
        ).map(lambda v: atts("file: attachment not an upload id", v, BAD_REQUEST)),
        st.integers(MAX_ATTACHMENTS + 1, 40).map(
            lambda n: atts("file: over 20 attachments", [f"up_{i}" for i in range(n)], BAD_REQUEST)
        ),
        st.sampled_from(["image", "voice", "video"]).map(
            lambda k: _bad(
                "file: kind refuses the file's type", _set(base, "kind", k), BAD_REQUEST, "service"
            )
        ),
        _wrong_type(str, type(None)).map(
            lambda v: _bad(
                "file: caption not a string", _set(base, "text", v), BAD_REQUEST, "decode"
            )
        ),
        _long_texts().map(
            lambda v: _bad("file: caption too long", _set(base, "text", v), TOO_LARGE, "decode")
        ),
        st.just(
            _bad("file: not a member", _set(base, "conv", ids.other_conv), FORBIDDEN, "service")
        ),
    ]


def _bad_read(ids: Ids, base: Frame) -> list[st.SearchStrategy[Bad]]:
    return [
        bad_seqs().map(
            lambda v: _bad("read: seq not a seq", _set(base, "seq", v), BAD_REQUEST, "decode")
        ),
        st.sampled_from(["conv", "seq"]).map(
            lambda k: _bad(f"read: no {k}", _without(base, k), BAD_REQUEST, "decode")
        ),
        bad_conv_values().map(
            lambda v: _bad("read: conv not an id", _set(base, "conv", v), BAD_REQUEST, "decode")
        ),
        st.integers(1, MAX_SEQ - 10**7).map(
            lambda n: _bad(
                "read: beyond the last message",
                _set(base, "seq", ids.last_seq + n),
                BAD_REQUEST,
                "service",
            )
        ),
        st.just(
            _bad("read: not a member", _set(base, "conv", ids.other_conv), FORBIDDEN, "service")
        ),
        unknown_convs(ids).map(
            lambda c: _bad(
                "read: no such conversation", _set(base, "conv", c), NOT_FOUND, "service"
            )
        ),
    ]


def _bad_recall(ids: Ids, base: Frame) -> list[st.SearchStrategy[Bad]]:
    ref = base["ref"]
    return [
        bad_refs().map(
            lambda v: Bad(
                "recall: bad ref",
                dumps(_set(base, "ref", v)),
                BAD_REQUEST,
                None,
                "decode",
                "recall",
            )
        ),
        st.sampled_from(["ref", "conv", "seq"]).map(
            lambda k: Bad(
                f"recall: no {k}",
                dumps(_without(base, k)),
                BAD_REQUEST,
                ref if k != "ref" else None,
                "decode",
                "recall",
            )
        ),
        bad_seqs().map(
            lambda v: _bad("recall: seq not a seq", _set(base, "seq", v), BAD_REQUEST, "decode")
        ),
        bad_conv_values().map(
            lambda v: _bad("recall: conv not an id", _set(base, "conv", v), BAD_REQUEST, "decode")
        ),
        st.sampled_from(ids.others_seqs).map(
            lambda s: _bad(
                "recall: someone else's message", _set(base, "seq", s), FORBIDDEN, "service"
            )
        ),
        st.integers(1, MAX_SEQ - 10**7).map(
            lambda n: _bad(
                "recall: no such message", _set(base, "seq", ids.last_seq + n), NOT_FOUND, "service"
            )
        ),
        st.just(
            _bad("recall: not a member", _set(base, "conv", ids.other_conv), FORBIDDEN, "service")
        ),
        unknown_convs(ids).map(
            lambda c: _bad(
                "recall: no such conversation", _set(base, "conv", c), NOT_FOUND, "service"
            )
        ),
    ]


def _bad_edit(ids: Ids, base: Frame) -> list[st.SearchStrategy[Bad]]:
    ref = base["ref"]
    return [
        bad_refs().map(
            lambda v: Bad(
                "edit: bad ref", dumps(_set(base, "ref", v)), BAD_REQUEST, None, "decode", "edit"
            )
        ),
        st.sampled_from(["ref", "conv", "seq", "text"]).map(
            lambda k: Bad(
                f"edit: no {k}",
                dumps(_without(base, k)),
                BAD_REQUEST,
                ref if k != "ref" else None,
                "decode",
                "edit",
            )
        ),
        bad_seqs().map(
            lambda v: _bad("edit: seq not a seq", _set(base, "seq", v), BAD_REQUEST, "decode")
        ),
        bad_conv_values().map(
            lambda v: _bad("edit: conv not an id", _set(base, "conv", v), BAD_REQUEST, "decode")
        ),
        _wrong_type(str).map(
            lambda v: _bad("edit: text not a string", _set(base, "text", v), BAD_REQUEST, "decode")
        ),
        _long_texts().map(
            lambda v: _bad("edit: text too long", _set(base, "text", v), TOO_LARGE, "decode")
        ),
        st.sampled_from(ids.others_seqs).map(
            lambda s: _bad(
                "edit: someone else's message", _set(base, "seq", s), FORBIDDEN, "service"
            )
        ),
        st.integers(1, MAX_SEQ - 10**7).map(
            lambda n: _bad(
                "edit: no such message", _set(base, "seq", ids.last_seq + n), NOT_FOUND, "service"
            )
        ),
        st.just(
            _bad("edit: not a member", _set(base, "conv", ids.other_conv), FORBIDDEN, "service")
        ),
        unknown_convs(ids).map(
            lambda c: _bad(
                "edit: no such conversation", _set(base, "conv", c), NOT_FOUND, "service"
            )
        ),
    ]


def _bad_forward(ids: Ids, base: Frame) -> list[st.SearchStrategy[Bad]]:
    source = base["forward"]

    def forwarding(label: str, value: object, codes: frozenset[str], stage: Stage) -> Bad:
        return _bad(label, _set(base, "forward", value), codes, stage)

    return [
        st.one_of(_wrong_type(dict, type(None)), st.just({})).map(
            lambda v: forwarding("forward: not a message", v, BAD_REQUEST, "decode")
        ),
        bad_seqs().map(
            lambda v: forwarding(
                "forward: seq not a seq", {**source, "seq": v}, BAD_REQUEST, "decode"
            )
        ),
        bad_conv_values().map(
            lambda v: forwarding(
                "forward: conv not an id", {**source, "conv": v}, BAD_REQUEST, "decode"
            )
        ),
        st.sampled_from(["text", "attachments", "reply_to"]).map(
            lambda k: _bad(
                f"forward: with {k} of its own",
                _set(base, k, {"text": "x", "attachments": ["up_x"], "reply_to": 1}[k]),
                BAD_REQUEST,
                "decode",
            )
        ),
        st.just(
            forwarding(
                "forward: from a conversation one is not in",
                {"conv": ids.other_conv, "seq": 1},
                NOT_FOUND,
                "service",
            )
        ),
        st.integers(1, MAX_SEQ - 10**7).map(
            lambda n: forwarding(
                "forward: no such message",
                {**source, "seq": ids.last_seq + n},
                NOT_FOUND,
                "service",
            )
        ),
        unknown_convs(ids).map(
            lambda c: forwarding(
                "forward: from no such conversation", {"conv": c, "seq": 1}, NOT_FOUND, "service"
            )
        ),
        st.just(
            _bad(
                "forward: into a conversation one is not in",
                _set(base, "conv", ids.other_conv),
                FORBIDDEN,
                "service",
            )
        ),
    ]


def _bad_typing(ids: Ids, base: Frame) -> list[st.SearchStrategy[Bad]]:
    return [
        st.just(_bad("typing: no conv", _without(base, "conv"), BAD_REQUEST, "decode")),
        bad_conv_values().map(
            lambda v: _bad("typing: conv not an id", _set(base, "conv", v), BAD_REQUEST, "decode")
        ),
        st.just(
            _bad("typing: not a member", _set(base, "conv", ids.other_conv), FORBIDDEN, "service")
        ),
        unknown_convs(ids).map(
            lambda c: _bad(
                "typing: no such conversation", _set(base, "conv", c), NOT_FOUND, "service"
            )
        ),
    ]


def _bad_hello(ids: Ids, base: Frame) -> list[st.SearchStrategy[Bad]]:
    """A hello that fails by itself (before a hello: bad_request)."""
    return [
        st.sampled_from(["token", "device"]).map(
            lambda k: _bad(f"hello: no {k}", _without(base, k), BAD_REQUEST, "decode")
        ),
        _wrong_type(str).map(
            lambda v: _bad(
                "hello: token not a string", _set(base, "token", v), BAD_REQUEST, "decode"
            )
        ),
        st.one_of(st.just(""), st.text(min_size=257, max_size=400)).map(
            lambda v: _bad(
                "hello: token empty or too long", _set(base, "token", v), BAD_REQUEST, "decode"
            )
        ),
        st.one_of(st.just(""), st.text(min_size=MAX_ID + 1, max_size=200), _wrong_type(str)).map(
            lambda v: _bad("hello: bad device", _set(base, "device", v), BAD_REQUEST, "decode")
        ),
        _wrong_type(str, type(None)).map(
            lambda v: _bad(
                "hello: cursor not a string", _set(base, "cursor", v), BAD_REQUEST, "decode"
            )
        ),
    ]


def second_hellos(ids: Ids) -> st.SearchStrategy[Bad]:
    """A well-formed hello on a connection that already said hello."""
    return hello_frames(ids).map(lambda f: _bad("hello twice", f, BAD_REQUEST, "state")) | st.text(
        min_size=1, max_size=100
    ).map(
        lambda t: _bad(
            "hello twice (unknown token)",
            {"op": "hello", "token": t, "device": "d", "cursor": None},
            BAD_REQUEST,
            "state",
        )
    )


# --- bad frames that are not frames -------------------------------------------------


def malformed_json(ids: Ids) -> st.SearchStrategy[Bad]:
    """Text that is not a JSON document: cut frames, trailing junk, JSON's near misses."""
    cut = st.tuples(valid_frames(ids), st.floats(0, 1, exclude_max=True)).map(
        lambda t: dumps(t[0])[: int(len(dumps(t[0])) * t[1])]
    )
    near_misses = st.sampled_from(
        [
            "",
            " ",
            "{",
            "}",
            "{'op': 'ping'}",
            '{"op": "ping",}',
            '{"op": ping}',
            '{"op": "ping"} x',
            '{"op": "ping"}{"op": "ping"}',
            '{"op": NaN}',
            '{"op": "ping"',
            '{"seq": 01}',
            '{"op": "send", "ref": "r", "text": "\\x41"}',
            '\ufeff{"op": "ping"}',
            '{"op": "ping" /* comment */}',
            "[",
            "nul",
            "tru",
        ]
    )
    garbage = st.text(max_size=100)
    return (
        st.one_of(cut, near_misses, garbage)
        .filter(_not_a_json_object)
        .map(lambda text: Bad("malformed JSON", text, BAD_REQUEST, None, "decode"))
    )


def unparsable_json(ids: Ids) -> st.SearchStrategy[Bad]:
    """Valid JSON by RFC 8259's grammar that the server's parser refuses: numbers out of
    a double's range and lone surrogates. The error may carry the ref or not."""
    return st.tuples(
        refs(),
        st.sampled_from(
            ['"seq": 1e400', '"seq": -1e999', '"text": "\\ud800"', '"text": "a\\udfff"']
        ),
    ).map(
        lambda t: Bad(
            "JSON the parser refuses",
            f'{{"op": "send", "ref": {json.dumps(t[0])}, "conv": {json.dumps(ids.conv)}, {t[1]}}}',
            BAD_REQUEST,
            t[0],
            "decode",
            "send",
            ref_optional=True,
        )
    )


def _not_a_json_object(text: str | bytes) -> bool:
    try:
        return not isinstance(orjson.loads(text), dict)
    except orjson.JSONDecodeError:
        return True


def non_objects(ids: Ids) -> st.SearchStrategy[Bad]:
    """JSON documents that are not objects, frames in an array among them."""
    values = st.one_of(
        JSON_VALUES.filter(lambda v: not isinstance(v, dict)),
        st.lists(valid_frames(ids), min_size=1, max_size=2),
    )
    return values.map(lambda v: Bad("not an object", dumps(v), BAD_REQUEST, None, "decode"))


def unknown_ops() -> st.SearchStrategy[Bad]:
    """Objects whose op is missing, not a string, or not an op; a usable ref is echoed."""
    ops = st.one_of(
        st.text(max_size=20).filter(lambda o: o not in OPS),
        st.sampled_from(["HELLO", "Send", "send ", "ack", "welcome", "message", "error", "pong"]),
        _wrong_type(str),
        st.sampled_from([["send"], {"op": "send"}]),
    )

    def build(op: object, ref: object, rest: dict[str, Any], has_op: bool) -> Bad:
        frame: Frame = {**rest}
        if has_op:
            frame["op"] = op
        else:
            frame.pop("op", None)
        frame["ref"] = ref
        usable = ref if is_usable_ref(ref) else None
        return Bad("unknown op", dumps(frame), BAD_REQUEST, usable, "decode")

    return st.builds(
        build,
        ops,
        st.one_of(refs(), bad_refs()),
        st.dictionaries(
            st.text(max_size=8).filter(lambda k: k not in ("op", "ref")), JSON_VALUES, max_size=3
        ),
        st.booleans(),
    )


def as_binary(bad: Bad) -> Bad:
    """The same bad frame in a binary WebSocket frame: the server answers it the same."""
    payload = bad.payload if isinstance(bad.payload, bytes) else bad.payload.encode()
    return Bad(
        f"binary {bad.label}", payload, bad.codes, bad.ref, bad.stage, bad.op, bad.ref_optional
    )


def binary_junk() -> st.SearchStrategy[Bad]:
    """Binary frames that are not JSON at all, UTF-8 or not."""
    return (
        st.binary(min_size=1, max_size=64)
        .filter(_not_a_json_object)
        .map(lambda data: Bad("binary junk", data, BAD_REQUEST, None, "decode"))
    )


Family = Callable[[Ids, Frame], list[st.SearchStrategy[Bad]]]
# Enough of a frame for a family to say how many ways it breaks one.
_ANY_BASE: Frame = {
    "op": "send", "ref": "r", "conv": "c", "text": "t", "seq": 1, "forward": {"conv": "c", "seq": 1}
}  # fmt: skip


def _leaves(
    ids: Ids, bases: st.SearchStrategy[Frame], family: Family
) -> list[st.SearchStrategy[Bad]]:
    """One strategy per way `family` breaks a frame drawn from `bases`."""
    count = len(family(ids, _ANY_BASE))
    return [bases.flatmap(lambda f, i=i: family(ids, f)[i]) for i in range(count)]


def mutated_frames(ids: Ids) -> list[st.SearchStrategy[Bad]]:
    """A valid frame of every op with one thing broken: one strategy per way."""
    return [
        leaf(ids) for name, leaf in bad_frame_kinds().items() if name.rsplit("-", 1)[-1].isdigit()
    ]


def bad_frames(ids: Ids, *, after_hello: bool = True) -> st.SearchStrategy[Bad]:
    """Every kind of bad frame, each way of breaking a frame as likely as any other;
    one in four goes as a binary frame. `after_hello` adds a second hello."""
    text_frames = st.one_of(
        malformed_json(ids),
        unparsable_json(ids),
        non_objects(ids),
        unknown_ops(),
        *mutated_frames(ids),
        *([second_hellos(ids)] if after_hello else []),
        binary_junk(),
    )
    return st.tuples(text_frames, st.integers(0, 3)).map(
        lambda t: as_binary(t[0]) if t[1] == 0 else t[0]
    )


def failed_hellos(ids: Ids) -> st.SearchStrategy[Bad]:
    """Well-formed hellos the server turns down: tokens it never issued, cursors it
    cannot serve. The connection stays open for another hello."""
    tokens = st.text(min_size=1, max_size=256).filter(lambda t: t != ids.token)
    bad_token = st.builds(
        lambda token, cursor: Bad(
            "hello: unknown token",
            dumps({"op": "hello", "token": token, "device": "fuzz", "cursor": cursor}),
            frozenset({"unauthorized"}),
            None,
            "service",
            "hello",
        ),
        tokens,
        st.one_of(st.none(), st.just(ids.cursor)),
    )
    cursors = st.one_of(
        st.text(max_size=MAX_ID).filter(lambda c: not c.startswith("v1.")),
        st.text(max_size=20)
        .filter(lambda c: not (c.isdigit() and len(c) <= 18))
        .map(lambda c: f"v1.{c}"),
        st.integers(10**15, 10**18 - 1).map(lambda n: f"v1.{n}"),  # ahead of the stream
    )
    # Any string is a cursor to the codec; one too long for the server to have
    # issued is one it cannot serve (§5.1, §12).
    long_cursors = st.text(min_size=MAX_ID + 1, max_size=300)
    bad_cursor = st.one_of(
        cursors.map(lambda c: (c, frozenset({"cursor_expired"}))),
        long_cursors.map(lambda c: (c, frozenset({"cursor_expired"}))),
    ).map(
        lambda pair: Bad(
            "hello: cursor the server cannot serve",
            dumps({"op": "hello", "token": ids.token, "device": "fuzz", "cursor": pair[0]}),
            pair[1],
            None,
            "service",
            "hello",
        )
    )
    return st.one_of(bad_token, bad_cursor)


def frames_before_hello(ids: Ids) -> st.SearchStrategy[Bad]:
    """What a connection may get wrong before its hello: every bad frame, every frame
    that needs a hello (unauthorized, with the ref of a send or recall), failed hellos."""
    needs_hello = st.one_of(
        send_text_frames(ids), read_frames(ids), recall_frames(ids), typing_frames(ids)
    ).map(lambda f: _bad(f"{f['op']} before hello", f, frozenset({"unauthorized"}), "service"))
    return st.one_of(bad_frames(ids, after_hello=False), needs_hello, failed_hellos(ids))


def batches(ids: Ids) -> st.SearchStrategy[list[Bad]]:
    """A few different bad frames, or one sent again and again as a retrying client
    does: repeats reach the limits that only count, such as the typing rate limit."""
    bad = bad_frames(ids)
    return st.one_of(
        st.lists(bad, min_size=1, max_size=4),
        st.tuples(bad, st.integers(2, 8)).map(lambda t: [t[0]] * t[1]),
    )


# --- one strategy per way a frame can be bad, by name ---------------------------------

_DUMMY_IDS = Ids(
    token="t", user="u_a", conv="c_a", other_conv="c_b", missing_conv="c_c", watcher="u_b",
    watcher_username="b", outsider="u_c", outsider_username="c", own_seqs=[1],
    others_seqs=[2], last_seq=2, spare_upload="up_a", others_upload="up_b",
    unfinished_upload="up_c", foreign_upload="up_d", sent_upload="up_e", cursor="v1.1",
)  # fmt: skip


def _spare_file_frames(ids: Ids) -> st.SearchStrategy[Frame]:
    spare = [{"id": ids.spare_upload}]
    return send_file_frames(ids).map(lambda f: _set(f, "attachments", spare))


_FAMILIES: dict[str, tuple[Callable[[Ids], st.SearchStrategy[Frame]], Family]] = {
    "send": (send_text_frames, _bad_send),
    "file": (_spare_file_frames, _bad_file_send),
    "read": (read_frames, _bad_read),
    "recall": (recall_frames, _bad_recall),
    "edit": (edit_frames, _bad_edit),
    "forward": (forward_frames, _bad_forward),
    "typing": (typing_frames, _bad_typing),
    "hello": (hello_frames, _bad_hello),
}


def _leaf(
    bases: Callable[[Ids], st.SearchStrategy[Frame]], family: Family, index: int
) -> Callable[[Ids], st.SearchStrategy[Bad]]:
    return lambda ids: bases(ids).flatmap(lambda f: family(ids, f)[index])


def bad_frame_kinds() -> dict[str, Callable[[Ids], st.SearchStrategy[Bad]]]:
    """Every way a frame can be bad after hello, each a strategy of its own, by a
    stable name: for a test that tries each of them, not only those a random mix hits."""
    kinds: dict[str, Callable[[Ids], st.SearchStrategy[Bad]]] = {
        "malformed-json": malformed_json,
        "unparsable-json": unparsable_json,
        "not-an-object": non_objects,
        "unknown-op": lambda ids: unknown_ops(),
        "hello-twice": second_hellos,
        "binary-junk": lambda ids: binary_junk(),
    }
    for name, (bases, family) in _FAMILIES.items():
        for index in range(len(family(_DUMMY_IDS, _ANY_BASE))):
            kinds[f"{name}-{index + 1}"] = _leaf(bases, family, index)
    return kinds
