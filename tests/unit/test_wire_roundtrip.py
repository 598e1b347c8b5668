"""Every frame and event survives encode -> decode unchanged, with its optional fields
set and unset.

Strategies are derived from each dataclass's own fields, so a field added to a
frame is generated at once: if the encoder or the decoder forgets it, the round
trip loses it and a test fails. A field of a type nobody taught the strategies
fails loudly too, rather than going untested.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderchat.core.model import CLIENT_KINDS, MessageKind
from orderchat.protocol import events
from orderchat.protocol.calls import (
    CallAdd,
    CallDecline,
    CallInvite,
    CallMedia,
    CallMediaChange,
    CallParty,
    CallSignalOut,
    SignalKind,
)
from orderchat.protocol.codec import client_frame_json, decode_client_frame, encode_client_frame
from orderchat.protocol.events import OP_OF, DurableEvent, MessageReceived, ServerFrame
from orderchat.protocol.frames import (
    CLIENT_OP_OF,
    ClientFrame,
    EditMessage,
    ForwardOf,
    Hello,
    PostMessage,
)
from orderchat.protocol.reference import BEGIN_MARK, END_MARK, render
from orderchat.protocol.server_codec import (
    DURABLE_OPS,
    decode_event,
    decode_server_frame,
    encode_event,
    encode_server_frame,
    event_payload,
    frame_json,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text without lone surrogates: JSON cannot carry them, and no client can type them.
# Any character a person may write: not a lone surrogate, and not U+0000, which the
# model refuses in every text (so a frame with one never gets to round-trip).
written = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
text = st.text(written, max_size=40)
words = st.text(written, min_size=1, max_size=20)
ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=24)
ints = st.integers(min_value=0, max_value=2**53)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(words, inner, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(words, json_values, max_size=4)
orders = st.fixed_dictionaries({"number": words, "status": words}, optional={"note": text}).map(
    lambda order: {**order, **{"id": "o_1"}}
)
cursors = ints.map(lambda pos: f"v1.{pos}")

# Strategies by the annotation a field is declared with.
BY_TYPE: dict[str, st.SearchStrategy[Any]] = {
    "str": words,
    "str | None": st.none() | words,
    "int": ints,
    "int | None": st.none() | ints,
    "bool": st.booleans(),
    "float | None": st.none() | st.floats(0, 1e6, allow_nan=False, allow_infinity=False),
    "UserId": ids,
    "UserId | None": st.none() | ids,
    "ConversationId": ids,
    "MessageId": ids,
    "tuple[str, ...]": st.lists(words, max_size=3).map(tuple),
    "tuple[UserId, ...]": st.lists(ids, max_size=3).map(tuple),
    "tuple[object, ...]": st.lists(json_objects, max_size=3).map(tuple),
    "Mapping[str, object]": json_objects,
    "Mapping[str, object] | None": st.none() | json_objects,
    "tuple[Mapping[str, object], ...]": st.lists(json_objects, max_size=3).map(tuple),
    "tuple[CallParty, ...]": st.lists(st.builds(CallParty), max_size=4).map(tuple),
    "tuple[Mapping[str, object], ...] | None": st.none()
    | st.lists(json_objects, max_size=3).map(tuple),
}
# Fields whose contract is narrower than their type.
BY_FIELD: dict[tuple[str, str], st.SearchStrategy[Any]] = {
    ("OrderChanged", "order"): orders,
    ("Welcome", "cursor"): cursors,
    ("Synced", "cursor"): cursors,
    ("Message", "text"): text,
}


def value_of(cls: type) -> st.SearchStrategy[Any]:
    """Instances of a dataclass, each field drawn from its declared type."""
    fields = {}
    for field in dataclasses.fields(cls):
        key = (cls.__name__, field.name)
        if key in BY_FIELD:
            fields[field.name] = BY_FIELD[key]
        elif str(field.type) in BY_TYPE:
            fields[field.name] = BY_TYPE[str(field.type)]
        else:
            fields[field.name] = _nested(str(field.type))
    return st.builds(cls, **fields)


def _nested(annotation: str) -> st.SearchStrategy[Any]:
    name, _, optional = annotation.partition(" | ")
    cls = getattr(events, name, None)
    if cls is None or not dataclasses.is_dataclass(cls):
        raise AssertionError(f"no strategy for a field of type {annotation!r}: teach BY_TYPE")
    strategy = value_of(cls)
    return st.none() | strategy if optional == "None" else strategy


def server_frame(cls: type) -> st.SearchStrategy[Any]:
    strategy = value_of(cls)
    if OP_OF[cls] in DURABLE_OPS:  # on the wire a durable event always has its cursor
        strategy = strategy.flatmap(
            lambda e: cursors.map(lambda c: dataclasses.replace(e, cursor=c))
        )
    return strategy


ALL_SERVER_FRAMES = st.one_of([server_frame(cls) for cls in OP_OF])
# As services build them: without a cursor until the writer gives them a position.
DURABLE_EVENTS = st.one_of(
    [value_of(cls) for cls, op in OP_OF.items() if op in DURABLE_OPS and cls is not MessageReceived]
).map(lambda event: dataclasses.replace(event, cursor=None))

refs = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=64)
ascii_ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=64)
sentences = st.text(st.characters(exclude_categories=("Cs", "Z", "C")), min_size=1, max_size=60)
seqs = st.integers(min_value=1, max_value=2**62)
upload_ids = st.lists(ascii_ids, min_size=1, max_size=5, unique=True)


@st.composite
def post_messages(draw: st.DrawFn) -> PostMessage:
    kind = draw(st.sampled_from(sorted(CLIENT_KINDS, key=lambda k: k.value)))
    is_text = kind is MessageKind.TEXT
    return PostMessage(
        ref=draw(refs),
        conv=draw(ascii_ids),
        kind=kind,
        text=draw(sentences) if is_text else draw(st.just("") | sentences),
        attachments=()
        if is_text
        else tuple(draw(st.lists(ascii_ids, min_size=1, max_size=5, unique=True))),
        mentions=tuple(draw(st.lists(words, max_size=3))),
        reply_to=draw(st.none() | seqs),
        internal=draw(st.booleans()),
        urgent=draw(st.booleans()),
    )


forwards = st.builds(
    PostMessage,
    ref=refs,
    conv=ascii_ids,
    kind=st.just(MessageKind.TEXT),
    text=st.just(""),
    attachments=st.just(()),
    mentions=st.just(()),
    reply_to=st.none(),
    internal=st.booleans(),
    urgent=st.just(False),
    forward=st.builds(ForwardOf, conv=ascii_ids, seq=seqs),
)


CLIENT_STRATEGIES: dict[type, st.SearchStrategy[Any]] = {
    Hello: st.builds(
        Hello,
        token=st.text("abcdefghij-_.0123456789", min_size=1, max_size=256),
        device=ascii_ids,
        cursor=st.none() | cursors,
    ),
    PostMessage: post_messages() | forwards,
    EditMessage: st.builds(
        EditMessage, ref=refs, conv=ascii_ids, seq=seqs, text=st.just("") | text
    ),
    CallInvite: st.builds(
        CallInvite,
        ref=refs,
        conv=ascii_ids,
        media=st.sampled_from(CallMedia),
        users=st.none() | st.lists(ascii_ids, min_size=1, max_size=5).map(tuple),
        internal=st.booleans(),
    ),
    CallAdd: st.builds(
        CallAdd,
        ref=refs,
        call=ascii_ids,
        users=st.lists(ascii_ids, min_size=1, max_size=5).map(tuple),
    ),
    CallDecline: st.builds(CallDecline, ref=refs, call=ascii_ids, busy=st.booleans()),
    CallMediaChange: st.builds(CallMediaChange, call=ascii_ids),
    CallSignalOut: st.builds(
        CallSignalOut,
        call=ascii_ids,
        to=ascii_ids,
        kind=st.sampled_from([SignalKind.OFFER, SignalKind.ANSWER]),
        sdp=text.map(lambda extra: f"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\nm=audio 9 {extra}"),
    )
    | st.builds(
        CallSignalOut,
        call=ascii_ids,
        to=ascii_ids,
        kind=st.just(SignalKind.ICE),
        candidate=st.fixed_dictionaries(
            {
                "candidate": st.just("") | text.map(lambda t: "candidate:" + t),
                "sdpMid": st.none() | ids,
                "sdpMLineIndex": st.none() | st.integers(0, 63),
                "usernameFragment": st.none() | ids,
            }
        ),
    ),
}


def client_frame(cls: type) -> st.SearchStrategy[Any]:
    if cls in CLIENT_STRATEGIES:
        return CLIENT_STRATEGIES[cls]
    overrides = {
        f.name: {"ref": refs, "conv": ascii_ids, "seq": seqs, "call": ascii_ids}[f.name]
        for f in dataclasses.fields(cls)
    }
    return st.builds(cls, **overrides)


ALL_CLIENT_FRAMES = st.one_of([client_frame(cls) for cls in CLIENT_OP_OF])


@EXAMPLES
@given(ALL_SERVER_FRAMES)
def test_every_server_frame_round_trips(frame: ServerFrame) -> None:
    assert decode_server_frame(encode_server_frame(frame)) == frame


@EXAMPLES
@given(ALL_CLIENT_FRAMES)
def test_every_client_frame_round_trips(frame: ClientFrame) -> None:
    assert decode_client_frame(encode_client_frame(frame)) == frame


@EXAMPLES
@given(DURABLE_EVENTS, st.integers(1, 2**53))
def test_stored_events_replay_as_they_were_sent(event: DurableEvent, pos: int) -> None:
    """What the writer stores (`event_payload`) decodes back to the event it delivered."""
    stored = orjson.loads(orjson.dumps(event_payload(event)))
    replayed = decode_event(OP_OF[type(event)].value, stored, None)
    assert replayed == event
    assert encode_event(replayed, pos) == encode_event(event, pos)


@EXAMPLES
@given(ALL_SERVER_FRAMES)
def test_a_field_left_at_its_default_is_left_off_the_wire(frame: ServerFrame) -> None:
    """Optional fields cost nothing while unused: adding one never changes old frames."""
    sent = frame_json(frame)
    values = frame.message if isinstance(frame, MessageReceived) else frame
    for field in dataclasses.fields(values):
        if field.default is dataclasses.MISSING or field.name == "cursor":
            continue
        unset = getattr(values, field.name) == field.default
        if field.default is None or field.default is False:
            assert (field.name in sent) != unset, field.name


def test_every_frame_class_has_an_op_and_a_strategy() -> None:
    assert set(OP_OF) == set(ServerFrame.__args__)  # type: ignore[attr-defined]  # a union
    assert set(CLIENT_OP_OF) == set(ClientFrame.__args__)  # type: ignore[attr-defined]
    for cls in OP_OF:
        server_frame(cls).validate()
    for client_cls in CLIENT_OP_OF:
        client_frame(client_cls).validate()


def test_the_client_encoder_writes_every_field() -> None:
    """The SDK once dropped `urgent`: every PostMessage field must reach the JSON."""
    frame = PostMessage("r", "c", MessageKind.TEXT, "t", (), ("u_1",), 2, True, True)
    sent = client_frame_json(frame)
    # `forward` makes another shape of send, checked below.
    names = {f.name for f in dataclasses.fields(PostMessage)} - {"forward"}
    assert names <= set(sent)
    assert sent["urgent"] is True and sent["internal"] is True
    forward = PostMessage(
        "r", "c", MessageKind.TEXT, "", (), (), None, True, forward=ForwardOf("d", 3)
    )
    assert client_frame_json(forward)["forward"] == {"conv": "d", "seq": 3}
    assert client_frame_json(forward)["internal"] is True


def test_docs_show_the_frames_as_defined() -> None:
    """docs/protocol.md carries the rendered reference; `python scripts/protocol_docs.py`
    rewrites it after a change to the frames."""
    document = DOCS.read_text(encoding="utf-8")
    start = document.index(BEGIN_MARK)
    end = document.index(END_MARK) + len(END_MARK)
    assert document[start:end] == render()
