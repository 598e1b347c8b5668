"""HTTP routes: this device's web push, a person's notification choices, the urgent
ladder's record, the admin's webhook endpoints, and one-click unsubscribe links."""

from __future__ import annotations

import html
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict

from orderchat.api.openapi import WholeNumber, errors, rule
from orderchat.api.responses import Json
from orderchat.api.routes.web import SECURITY_HEADERS
from orderchat.api.runtime import AuthDep, RuntimeDep
from orderchat.core.notify import (
    Channel,
    Occasion,
    Preferences,
    QuietHours,
    Topic,
    parse_off,
    quiet_hours,
)
from orderchat.core.texts import LANGUAGES, say
from orderchat.core.webhook_formats import Format
from orderchat.services.notify.service import EMAIL_PATTERN, Endpoint, NewEndpoint

router = APIRouter(prefix="/api", tags=["notifications"])
pages = APIRouter(include_in_schema=False)

Base64Url = Annotated[str, rule(minLength=1, maxLength=128, pattern=r"^[A-Za-z0-9_-]+=*$")]
Url = Annotated[str, rule(minLength=1, maxLength=2048)]
# An https URL on a named host: what every server takes (an address literal may be a
# private one, refused unless --allow-private-targets; the schema cannot say which).
HookUrl = Annotated[
    str,
    rule(
        maxLength=2048,
        pattern=r"^https://[A-Za-z0-9-]*[A-Za-z][A-Za-z0-9.-]*(:[1-9][0-9]{0,3})?(/[!-~]*)?$",
    ),
]
# An address, or "" (or null) for none.
Email = Annotated[str | None, rule(maxLength=200, pattern=f"^$|{EMAIL_PATTERN}")]
Hhmm = Annotated[str, rule(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
OccasionName = Annotated[str, rule(enum=[o.value for o in Occasion])]
ChannelName = Annotated[str, rule(enum=[Channel.PUSH.value, Channel.EMAIL.value])]


class Keys(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    p256dh: Base64Url
    auth: Base64Url


class SubscriptionBody(BaseModel):
    """What the browser's `PushSubscription.toJSON()` gives (its expiry is ignored)."""

    model_config = ConfigDict(strict=True, extra="ignore")
    endpoint: Url
    keys: Keys


class EndpointOnly(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")
    endpoint: Url


@router.get("/push/key", responses=errors(401))
async def push_key(auth: AuthDep, runtime: RuntimeDep) -> Json:
    """The server's VAPID public key: the browser's `applicationServerKey`."""
    return Json({"public_key": runtime.notifications.keys.public_key})


@router.post("/push/subscriptions", status_code=201, responses=errors(400, 401))
async def subscribe(body: SubscriptionBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    """This device takes web push; signing it out ends that."""
    sub = await runtime.notifications.subscribe(
        auth.user, auth.session.id, body.endpoint, body.keys.p256dh, body.keys.auth
    )
    return Json({"id": sub.id, "created_ts": sub.created_at_ms}, status_code=201)


@router.delete("/push/subscriptions", status_code=204, responses=errors(400, 401, 404))
async def unsubscribe(body: EndpointOnly, auth: AuthDep, runtime: RuntimeDep) -> None:
    await runtime.notifications.unsubscribe(auth.user, body.endpoint)


@router.get("/me/devices", responses=errors(401))
async def devices(auth: AuthDep, runtime: RuntimeDep) -> Json:
    """The person's signed-in devices, and which of them take web push."""
    found = await runtime.notifications.devices(auth.user)
    return Json(
        {
            "devices": [
                {
                    "session": d["id"],
                    "device": d["device"],
                    "created_ts": d["created_at_ms"],
                    "current": d["id"] == auth.session.id,
                    "push": bool(d["push"]),
                }
                for d in found
            ]
        }
    )


class QuietBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    start: Hhmm
    end: Hhmm
    utc_offset_min: Annotated[WholeNumber, rule(minimum=-840, maximum=840)]


class PreferencesBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    email: Email = None
    language: Annotated[str | None, rule(enum=[*LANGUAGES, None])] = None
    off: dict[OccasionName, list[ChannelName]] = {}
    quiet: QuietBody | None = None


def _quiet_view(quiet: QuietHours | None) -> dict[str, Any] | None:
    if quiet is None:
        return None
    return {
        "start": f"{quiet.start_min // 60:02d}:{quiet.start_min % 60:02d}",
        "end": f"{quiet.end_min // 60:02d}:{quiet.end_min % 60:02d}",
        "utc_offset_min": quiet.utc_offset_min,
    }


def _preferences_view(prefs: Preferences, address: str | None) -> dict[str, Any]:
    return {
        "email": prefs.email,
        "language": prefs.language,
        "off": {o.value: sorted(c.value for c in chans) for o, chans in prefs.off.items()},
        "quiet": _quiet_view(prefs.quiet),
        "mail_goes_to": address,
    }


@router.get("/me/notifications", responses=errors(401))
async def get_preferences(auth: AuthDep, runtime: RuntimeDep) -> Json:
    prefs, address = await runtime.notifications.preferences(auth.user)
    return Json(_preferences_view(prefs, address))


@router.put("/me/notifications", responses=errors(400, 401))
async def put_preferences(body: PreferencesBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    """Replace the person's choices: what is switched off, quiet hours, their address."""
    quiet = None
    if body.quiet is not None:
        quiet = quiet_hours(body.quiet.start, body.quiet.end, body.quiet.utc_offset_min)
    prefs = Preferences(
        off=parse_off(body.off), quiet=quiet, email=body.email or None, language=body.language
    )
    await runtime.notifications.set_preferences(auth.user, prefs)
    saved, address = await runtime.notifications.preferences(auth.user)
    return Json(_preferences_view(saved, address))


@router.get(
    "/conversations/{conv_id}/messages/{seq}/reminders", responses=errors(400, 401, 403, 404)
)
async def reminders(
    conv_id: str, seq: Annotated[int, rule(minimum=1)], auth: AuthDep, runtime: RuntimeDep
) -> Json:
    """An urgent message's ladder: per recipient, read or not, and what went out where."""
    rows = await runtime.notifications.reminders(auth.user, conv_id, seq)
    by_person: dict[str, dict[str, Any]] = {}
    for row in rows:
        person = by_person.setdefault(
            row["recipient"], {"user": row["recipient"], "read": row["read"], "deliveries": []}
        )
        person["deliveries"].append(
            {
                "channel": row["channel"],
                "step": row["step"],
                "state": row["state"],
                "due_ts": row["first_due_ms"],
                "done_ts": row["done_at_ms"],
                "attempts": row["attempts"],
                "outcome": row["outcome"],
            }
        )
    return Json({"recipients": list(by_person.values())})


# --- webhook endpoints (admins) ---------------------------------------------------------

TopicName = Annotated[str, rule(enum=[t.value for t in Topic])]


class EndpointBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    url: HookUrl
    topics: Annotated[list[TopicName], rule(minItems=1)]
    format: Annotated[str, rule(enum=[f.value for f in Format])] = Format.ORDERCHAT.value
    language: Annotated[str, rule(enum=list(LANGUAGES))] = "zh-CN"
    description: Annotated[str, rule(maxLength=200)] = ""
    secret: Annotated[str | None, rule(pattern=r"^[\x21-\x7e]{16,128}$")] = None
    enabled: bool = True

    def as_new(self) -> NewEndpoint:
        return NewEndpoint(
            url=self.url,
            topics=list(self.topics),
            format=self.format,
            language=self.language,
            description=self.description,
            secret=self.secret,
            enabled=self.enabled,
        )


def endpoint_view(endpoint: Endpoint, *, with_secret: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": endpoint.id,
        "url": endpoint.url,
        "topics": sorted(endpoint.topics),
        "format": endpoint.format,
        "language": endpoint.language,
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "created_ts": endpoint.created_at_ms,
    }
    if with_secret:
        view["secret"] = endpoint.secret
    return view


@router.get("/admin/webhooks", responses=errors(401, 403))
async def list_endpoints(auth: AuthDep, runtime: RuntimeDep) -> Json:
    found = await runtime.notifications.endpoints(auth.user)
    return Json({"webhooks": [endpoint_view(e) for e in found]})


@router.post("/admin/webhooks", status_code=201, responses=errors(400, 401, 403))
async def add_endpoint(body: EndpointBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    """Register an endpoint; its secret is shown this once."""
    endpoint = await runtime.notifications.add_endpoint(auth.user, body.as_new())
    return Json(endpoint_view(endpoint, with_secret=True), status_code=201)


@router.put("/admin/webhooks/{endpoint_id}", responses=errors(400, 401, 403, 404))
async def change_endpoint(
    endpoint_id: str, body: EndpointBody, auth: AuthDep, runtime: RuntimeDep
) -> Json:
    endpoint = await runtime.notifications.change_endpoint(auth.user, endpoint_id, body.as_new())
    return Json(endpoint_view(endpoint))


@router.delete("/admin/webhooks/{endpoint_id}", status_code=204, responses=errors(401, 403, 404))
async def remove_endpoint(endpoint_id: str, auth: AuthDep, runtime: RuntimeDep) -> None:
    await runtime.notifications.remove_endpoint(auth.user, endpoint_id)


@router.get("/admin/webhooks/{endpoint_id}/deliveries", responses=errors(400, 401, 403, 404))
async def endpoint_deliveries(
    endpoint_id: str,
    auth: AuthDep,
    runtime: RuntimeDep,
    before: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Json:
    """The endpoint's delivery log, newest first: each try's outcome, retries, give-ups."""
    rows = await runtime.notifications.deliveries(auth.user, endpoint_id, before, limit)
    return Json(
        {
            "deliveries": [
                {
                    "id": row["dedupe"],
                    "topic": row["occasion"],
                    "state": row["state"],
                    "attempts": row["attempts"],
                    "outcome": row["outcome"],
                    "created_ts": row["created_at_ms"],
                    "next_try_ts": row["next_try_ms"] if row["state"] == "pending" else None,
                    "done_ts": row["done_at_ms"],
                    "payload": row["payload"],
                }
                for row in rows
            ]
        }
    )


# --- one-click unsubscribe (RFC 8058), from a mail, without signing in -------------------


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head><body>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=SECURITY_HEADERS)


@pages.get("/unsubscribe")
async def unsubscribe_page(t: Annotated[str, Query(max_length=200)] = "") -> HTMLResponse:
    """A button, not the deed: mail scanners open links, people press buttons."""
    title = say("notify.unsubscribe_title").render("zh-CN")
    ask = " / ".join(say("notify.unsubscribe_ask").render(lang) for lang in LANGUAGES)
    button = " / ".join(say("notify.unsubscribe_button").render(lang) for lang in LANGUAGES)
    form = (
        f'<form method="post" action="/unsubscribe?t={html.escape(t, quote=True)}">'
        f'<p>{html.escape(ask)}</p><button type="submit">{html.escape(button)}</button></form>'
    )
    return _page(title, form)


@pages.post("/unsubscribe")
async def unsubscribe_now(
    runtime: RuntimeDep, t: Annotated[str, Query(max_length=200)] = ""
) -> HTMLResponse:
    await runtime.notifications.unsubscribe_by_link(t)
    done = " / ".join(say("notify.unsubscribed").render(lang) for lang in LANGUAGES)
    return _page(done, f"<p>{html.escape(done)}</p>")
