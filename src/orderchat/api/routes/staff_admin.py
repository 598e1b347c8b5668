"""The admin console's API: the staff list, adding and inviting people, roles,
disabling, password-reset links and signing someone out; and the two calls the
person opening a staff link makes (no session yet).

Every admin route answers 403 to anyone else before it looks at anything.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from orderchat.api.openapi import errors, rule
from orderchat.api.responses import Json
from orderchat.api.routes.views import user_view
from orderchat.api.runtime import AuthDep, RuntimeDep
from orderchat.core.model import (
    MAX_DISPLAY_NAME_CHARS,
    MAX_PASSWORD_CHARS,
    Role,
    parse_new_staff,
    parse_roles,
)
from orderchat.core.passwords import MIN_PASSWORD_CHARS
from orderchat.services.staff import Invite, IssuedLink, StaffEntry, StaffLink

router = APIRouter(prefix="/api", tags=["staff admin"])

Username = Annotated[str, rule(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
Roles = Annotated[list[str], rule(minItems=1, items={"enum": [r.value for r in Role]})]
DisplayName = Annotated[str | None, rule(maxLength=MAX_DISPLAY_NAME_CHARS, pattern=r"^$|\S")]
Password = Annotated[str, rule(minLength=MIN_PASSWORD_CHARS, maxLength=MAX_PASSWORD_CHARS)]
Token = Annotated[str, rule(minLength=1, maxLength=256)]


def entry_view(entry: StaffEntry) -> dict[str, Any]:
    return {
        **user_view(entry.user),
        "disabled": entry.disabled,
        "active_sessions": entry.active_sessions,
        "last_sign_in_ts": entry.last_sign_in_ms,
    }


def link_view(link: StaffLink) -> dict[str, Any]:
    return {
        "kind": link.kind,
        "username": link.username,
        "display_name": link.display_name,
        "roles": [r.value for r in link.roles],
        "expires_ts": link.expires_at_ms,
    }


def issued_view(issued: IssuedLink) -> dict[str, Any]:
    return {**link_view(issued.link), "token": issued.token, "path": issued.path}


@router.get("/admin/staff", responses=errors(401, 403))
async def list_staff(auth: AuthDep, runtime: RuntimeDep) -> Json:
    """Everyone on the staff, disabled people too, with their live sessions."""
    entries = await runtime.staff.list_staff(auth.user)
    return Json({"staff": [entry_view(e) for e in entries]})


class AddBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    username: Username
    password: Password
    roles: Roles
    display_name: DisplayName = None


@router.post("/admin/staff", status_code=201, responses=errors(400, 401, 403, 409))
async def add_staff(body: AddBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    """Add a person; they join their roles' channels and open order threads at once."""
    runtime.accounts.require_admin(auth.user)
    new = parse_new_staff(body.username, body.password, body.roles, body.display_name)
    user = await runtime.staff.add(auth.user, new)
    return Json(user_view(user), status_code=201)


class InviteBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    username: Username
    roles: Roles
    display_name: DisplayName = None


@router.post("/admin/invitations", status_code=201, responses=errors(400, 401, 403, 409))
async def invite(body: InviteBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    """A one-time link (valid 7 days) with which the person sets their own password."""
    runtime.accounts.require_admin(auth.user)
    roles = parse_roles(body.roles)
    shown = (body.display_name or "").strip() or None
    issued = await runtime.staff.invite(auth.user, Invite(body.username, roles, shown))
    return Json(issued_view(issued), status_code=201)


class RolesBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    roles: Roles


@router.put("/admin/staff/{username}/roles", responses=errors(400, 401, 403, 404, 409))
async def set_roles(username: str, body: RolesBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    runtime.accounts.require_admin(auth.user)
    user = await runtime.staff.set_roles(auth.user, username, parse_roles(body.roles))
    return Json(user_view(user))


@router.post("/admin/staff/{username}/disable", responses=errors(401, 403, 404, 409))
async def disable(username: str, auth: AuthDep, runtime: RuntimeDep) -> Json:
    """Their sessions end and their open connections close at once."""
    ended = await runtime.staff.set_disabled(auth.user, username, True)
    return Json({"username": username, "disabled": True, "ended_sessions": ended})


@router.post("/admin/staff/{username}/enable", responses=errors(401, 403, 404))
async def enable(username: str, auth: AuthDep, runtime: RuntimeDep) -> Json:
    await runtime.staff.set_disabled(auth.user, username, False)
    return Json({"username": username, "disabled": False, "ended_sessions": 0})


@router.post(
    "/admin/staff/{username}/password-reset",
    status_code=201,
    responses=errors(401, 403, 404, 409),
)
async def password_reset(username: str, auth: AuthDep, runtime: RuntimeDep) -> Json:
    """A one-time link (valid 24 hours) with which the person sets a new password."""
    issued = await runtime.staff.reset_link(auth.user, username)
    return Json(issued_view(issued), status_code=201)


@router.post("/admin/staff/{username}/sign-out", responses=errors(401, 403, 404))
async def sign_out(username: str, auth: AuthDep, runtime: RuntimeDep) -> Json:
    """End every session of the person: their devices are signed out at once."""
    ended = await runtime.staff.sign_out_everywhere(auth.user, username)
    return Json({"username": username, "ended_sessions": ended})


class LinkBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    token: Token


@router.post("/staff-links/check", responses=errors(400, 404, 409))
async def check_link(body: LinkBody, runtime: RuntimeDep) -> Json:
    """What a link is for, so its page can say so; nothing changes."""
    return Json(link_view(await runtime.staff.check_link(body.token)))


class AcceptBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    token: Token
    password: Annotated[str, rule(minLength=1, maxLength=MAX_PASSWORD_CHARS)]
    display_name: DisplayName = None
    device: Annotated[str | None, rule(minLength=1, maxLength=64)] = None


@router.post("/staff-links/accept", responses=errors(400, 404, 409, 429))
async def accept_link(body: AcceptBody, request: Request, runtime: RuntimeDep) -> Json:
    """Set a password through the link, and be signed in (the answer is a sign-in's)."""
    address = request.client.host if request.client else "unknown"
    signed = await runtime.staff.accept_link(
        body.token, body.password, body.display_name, address, body.device
    )
    return Json(
        {"token": signed.token, "user": user_view(signed.user), "expires_ts": signed.expires_at_ms}
    )
