"""Bodies about notifications: push keys and devices, a person's choices, the urgent
ladder's record, webhook endpoints and their delivery log."""

from __future__ import annotations

from typing import Literal

from orderchat.api.response_schemas._base import Body, omitted

State = Literal["pending", "sent", "cancelled", "dead"]


class PushKey(Body):
    public_key: str  # base64url, uncompressed P-256: the browser's applicationServerKey


class PushSubscribed(Body):
    id: str
    created_ts: int


class Device(Body):
    session: str
    device: str
    created_ts: int
    current: bool  # the device asking
    push: bool  # takes web push


class Devices(Body):
    devices: list[Device]


class Quiet(Body):
    start: str  # HH:MM, local to utc_offset_min
    end: str
    utc_offset_min: int


class Preferences(Body):
    email: str | None  # the person's own address for mails
    language: Literal["zh-CN", "en"] | None
    off: dict[str, list[Literal["push", "email"]]]  # occasion -> channels switched off
    quiet: Quiet | None
    mail_goes_to: str | None  # their own address, else the one the shop has for them


class LadderStep(Body):
    channel: Literal["push", "email", "webhook"]
    step: int  # 0: the first word; 1..: reminders
    state: State
    due_ts: int
    done_ts: int | None
    attempts: int
    outcome: str | None


class Recipient(Body):
    user: str
    read: bool
    deliveries: list[LadderStep]


class Reminders(Body):
    recipients: list[Recipient]


class Webhook(Body):
    id: str
    url: str
    topics: list[str]
    format: Literal["orderchat", "wecom", "dingtalk"]
    language: Literal["zh-CN", "en"]
    description: str
    enabled: bool
    created_ts: int
    secret: str = omitted()  # only in the answer that creates it


class WebhookList(Body):
    webhooks: list[Webhook]


class WebhookDelivery(Body):
    id: str  # the delivery id receivers deduplicate with
    topic: str
    state: State
    attempts: int
    outcome: str | None
    created_ts: int
    next_try_ts: int | None
    done_ts: int | None
    payload: str | None  # the event, as the orderchat format sends it


class WebhookDeliveries(Body):
    deliveries: list[WebhookDelivery]


# --- calls (docs/calls.md) -----------------------------------------------------------


class IceServer(Body):
    urls: list[str]
    username: str = omitted()  # TURN only: EXPIRY:USER[:CALL]
    credential: str = omitted()


class IceServers(Body):
    ice_servers: list[IceServer]
    ttl_s: int
    ice_transport_policy: Literal["all", "relay"]


class CallParty(Body):
    user: str
    state: Literal["ringing", "joined", "away", "left", "declined", "busy", "missed"]
    conn: str | None
    audio: bool
    video: bool
    screen: bool


class Call(Body):
    call: str
    conv: str
    media: Literal["audio", "video"]
    internal: bool
    state: Literal["ringing", "active", "ended"]
    caller: str
    started_ts: int
    answered_ts: int = omitted()
    ended_ts: int = omitted()
    outcome: Literal["answered", "missed", "declined", "busy", "cancelled"] = omitted()
    parties: list[CallParty]
