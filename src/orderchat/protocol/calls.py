"""The call frames (docs/calls.md): what a client sends about a call, what it is told,
and the checks each needs before it means anything.

Calls are live state: none of these frames is durable. The record of a call is
an ordinary message of kind `call` and travels as one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from orderchat.core.calls import CallMedia
from orderchat.core.errors import BadRequest, TooLarge
from orderchat.core.texts import say
from orderchat.protocol._fields import _bool, _int, _list, _opt_int, _opt_str, _str

JsonObject = dict[str, Any]

MAX_SDP_CHARS = 64 * 1024
MAX_CANDIDATE_CHARS = 1024
_ID_CHARS = 64


class SignalKind(StrEnum):
    OFFER = "offer"
    ANSWER = "answer"
    ICE = "ice"


# --- client frames -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallInvite:
    """Start a call in `conv`; `users` None rings every other member the rules allow."""

    ref: str
    conv: str
    media: CallMedia
    users: tuple[str, ...] | None = None
    internal: bool = False


@dataclass(frozen=True, slots=True)
class CallAdd:
    ref: str
    call: str
    users: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CallAccept:
    ref: str
    call: str


@dataclass(frozen=True, slots=True)
class CallDecline:
    ref: str
    call: str
    busy: bool = False


@dataclass(frozen=True, slots=True)
class CallHangUp:
    ref: str
    call: str


@dataclass(frozen=True, slots=True)
class CallRejoin:
    ref: str
    call: str


@dataclass(frozen=True, slots=True)
class CallMediaChange:
    """What this participant now sends: their microphone, camera and screen."""

    call: str
    audio: bool
    video: bool
    screen: bool
    ref: str | None = None  # names the error, if one comes back


@dataclass(frozen=True, slots=True)
class CallSignalOut:
    """An SDP or an ICE candidate for one other participant, relayed as it is."""

    call: str
    to: str
    kind: SignalKind
    sdp: str | None = None
    candidate: Mapping[str, object] | None = None
    ref: str | None = None  # names the error, if one comes back


CallClientFrame = (
    CallInvite
    | CallAdd
    | CallAccept
    | CallDecline
    | CallHangUp
    | CallRejoin
    | CallMediaChange
    | CallSignalOut
)
# The frames that change the call and are answered with its state (or an error), by ref.
CallRequest = CallInvite | CallAdd | CallAccept | CallDecline | CallHangUp | CallRejoin


def _id(obj: JsonObject, name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not 1 <= len(value) <= _ID_CHARS:
        raise BadRequest(say("codec.must_non_empty_string", name=name))
    return value


def _flag(obj: JsonObject, name: str, default: bool) -> bool:
    value = obj.get(name, default)
    if not isinstance(value, bool):
        raise BadRequest(say("calls.flag_must_be_boolean", name=name))
    return value


def _users(obj: JsonObject, required: bool) -> tuple[str, ...] | None:
    value = obj.get("users")
    if value is None and not required:
        return None
    if not isinstance(value, list) or not value or len(value) > 20:
        raise BadRequest(say("calls.users_must_be_list"))
    if not all(isinstance(u, str) and 1 <= len(u) <= _ID_CHARS for u in value):
        raise BadRequest(say("calls.users_must_be_list"))
    return tuple(value)


def decode_invite(obj: JsonObject, ref: str) -> CallInvite:
    media = obj.get("media")
    if media not in ("audio", "video"):
        raise BadRequest(say("calls.media_audio_or_video"))
    return CallInvite(
        ref, _id(obj, "conv"), CallMedia(media), _users(obj, False), _flag(obj, "internal", False)
    )


def decode_add(obj: JsonObject, ref: str) -> CallAdd:
    users = _users(obj, True)
    assert users is not None
    return CallAdd(ref, _id(obj, "call"), users)


def decode_accept(obj: JsonObject, ref: str) -> CallAccept:
    return CallAccept(ref, _id(obj, "call"))


def decode_decline(obj: JsonObject, ref: str) -> CallDecline:
    return CallDecline(ref, _id(obj, "call"), _flag(obj, "busy", False))


def decode_hang_up(obj: JsonObject, ref: str) -> CallHangUp:
    return CallHangUp(ref, _id(obj, "call"))


def decode_rejoin(obj: JsonObject, ref: str) -> CallRejoin:
    return CallRejoin(ref, _id(obj, "call"))


def decode_media(obj: JsonObject, ref: str | None) -> CallMediaChange:
    return CallMediaChange(
        _id(obj, "call"),
        audio=_flag(obj, "audio", True),
        video=_flag(obj, "video", False),
        screen=_flag(obj, "screen", False),
        ref=ref,
    )


def decode_signal(obj: JsonObject, ref: str | None) -> CallSignalOut:
    kind = obj.get("kind")
    if kind not in ("offer", "answer", "ice"):
        raise BadRequest(say("calls.signal_kind"))
    call, to = _id(obj, "call"), _id(obj, "to")
    if kind == SignalKind.ICE:
        candidate = check_candidate(obj.get("candidate"))
        return CallSignalOut(call, to, SignalKind.ICE, candidate=candidate, ref=ref)
    return CallSignalOut(call, to, SignalKind(kind), sdp=check_sdp(obj.get("sdp")), ref=ref)


def check_sdp(value: object) -> str:
    """A session description, as far as a relay can tell: the browser judges the rest."""
    if not isinstance(value, str):
        raise BadRequest(say("calls.sdp_malformed"))
    if len(value) > MAX_SDP_CHARS:
        raise TooLarge(say("calls.sdp_too_large", max_chars=MAX_SDP_CHARS))
    lines = value.replace("\r\n", "\n").split("\n")
    if lines[0] != "v=0" or not any(line.startswith("m=") for line in lines) or "\0" in value:
        raise BadRequest(say("calls.sdp_malformed"))
    return value


def check_candidate(value: object) -> Mapping[str, object]:
    """An RTCIceCandidateInit; an empty `candidate` string marks the end of candidates."""
    if not isinstance(value, dict):
        raise BadRequest(say("calls.candidate_malformed"))
    text = value.get("candidate")
    mid = value.get("sdpMid")
    index = value.get("sdpMLineIndex")
    fragment = value.get("usernameFragment")
    if (
        not isinstance(text, str)
        or len(text) > MAX_CANDIDATE_CHARS
        or (text and not text.startswith("candidate:"))
        or (mid is not None and (not isinstance(mid, str) or len(mid) > _ID_CHARS))
        or (index is not None and (type(index) is not int or not 0 <= index < 64))
        or (fragment is not None and (not isinstance(fragment, str) or len(fragment) > 256))
    ):
        raise BadRequest(say("calls.candidate_malformed"))
    return {"candidate": text, "sdpMid": mid, "sdpMLineIndex": index, "usernameFragment": fragment}


def call_frame_json(frame: CallClientFrame, op: str) -> JsonObject:
    """The JSON a client sends for a call frame (the SDK's and the tests' way to speak)."""
    out: JsonObject = {"op": op}
    match frame:
        case CallInvite():
            out.update(ref=frame.ref, conv=frame.conv, media=frame.media.value)
            out["internal"] = frame.internal
            if frame.users is not None:
                out["users"] = list(frame.users)
        case CallAdd():
            out.update(ref=frame.ref, call=frame.call, users=list(frame.users))
        case CallDecline():
            out.update(ref=frame.ref, call=frame.call, busy=frame.busy)
        case CallAccept() | CallHangUp() | CallRejoin():
            out.update(ref=frame.ref, call=frame.call)
        case CallMediaChange():
            out.update(call=frame.call, audio=frame.audio, video=frame.video, screen=frame.screen)
            if frame.ref is not None:
                out["ref"] = frame.ref
        case CallSignalOut():
            out.update(call=frame.call, to=frame.to, kind=frame.kind.value)
            if frame.ref is not None:
                out["ref"] = frame.ref
            if frame.sdp is not None:
                out["sdp"] = frame.sdp
            if frame.candidate is not None:
                out["candidate"] = dict(frame.candidate)
    return out


# --- server frames -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallParty:
    user: str
    state: str
    conn: str | None
    audio: bool
    video: bool
    screen: bool


@dataclass(frozen=True, slots=True)
class CallState:
    """A call as it is now. With `ref` it answers that request; `ice_servers` are for
    the connection it answers only (they carry that user's TURN credential)."""

    call: str
    conv: str
    media: str
    internal: bool
    state: str
    caller: str
    started_ts: int
    parties: tuple[CallParty, ...]
    answered_ts: int | None = None
    ended_ts: int | None = None
    outcome: str | None = None
    ref: str | None = None
    ice_servers: tuple[Mapping[str, object], ...] | None = None
    ice_transport_policy: str | None = None  # "all" or "relay", with `ice_servers`


@dataclass(frozen=True, slots=True)
class CallSignal:
    call: str
    sender: str
    kind: str
    sdp: str | None = None
    candidate: Mapping[str, object] | None = None


def write_state(f: CallState, out: JsonObject) -> None:
    out.update(call=f.call, conv=f.conv, media=f.media, internal=f.internal, state=f.state)
    out.update(caller=f.caller, started_ts=f.started_ts)
    for name in ("answered_ts", "ended_ts", "outcome"):
        if (value := getattr(f, name)) is not None:
            out[name] = value
    out["parties"] = [
        {"user": p.user, "state": p.state, "conn": p.conn, "audio": p.audio, "video": p.video,
         "screen": p.screen}
        for p in f.parties
    ]  # fmt: skip
    if f.ref is not None:
        out["ref"] = f.ref
    if f.ice_servers is not None:
        out["ice_servers"] = [dict(server) for server in f.ice_servers]
    if f.ice_transport_policy is not None:
        out["ice_transport_policy"] = f.ice_transport_policy


def write_signal(f: CallSignal, out: JsonObject) -> None:
    out.update(call=f.call, kind=f.kind)
    out["from"] = f.sender
    if f.sdp is not None:
        out["sdp"] = f.sdp
    if f.candidate is not None:
        out["candidate"] = dict(f.candidate)


def read_state(obj: JsonObject, cursor: str | None) -> CallState:
    parties = tuple(
        CallParty(
            user=_str(p, "user"),
            state=_str(p, "state"),
            conn=_opt_str(p, "conn"),
            audio=_bool(p, "audio"),
            video=_bool(p, "video"),
            screen=_bool(p, "screen"),
        )
        for p in _list(obj, "parties")
        if isinstance(p, dict)
    )
    servers = obj.get("ice_servers")
    return CallState(
        call=_str(obj, "call"),
        conv=_str(obj, "conv"),
        media=_str(obj, "media"),
        internal=_bool(obj, "internal"),
        state=_str(obj, "state"),
        caller=_str(obj, "caller"),
        started_ts=_int(obj, "started_ts"),
        parties=parties,
        answered_ts=_opt_int(obj, "answered_ts"),
        ended_ts=_opt_int(obj, "ended_ts"),
        outcome=_opt_str(obj, "outcome"),
        ref=_opt_str(obj, "ref"),
        ice_servers=None if not isinstance(servers, list) else tuple(servers),
        ice_transport_policy=_opt_str(obj, "ice_transport_policy"),
    )


def read_signal(obj: JsonObject, cursor: str | None) -> CallSignal:
    candidate = obj.get("candidate")
    return CallSignal(
        call=_str(obj, "call"),
        sender=_str(obj, "from"),
        kind=_str(obj, "kind"),
        sdp=_opt_str(obj, "sdp"),
        candidate=candidate if isinstance(candidate, dict) else None,
    )
