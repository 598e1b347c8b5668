"""The staff directory, and adding staff (admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from orderchat.api.openapi import errors, rule
from orderchat.api.responses import Json
from orderchat.api.routes.views import user_view
from orderchat.api.runtime import AuthDep, RuntimeDep
from orderchat.core.errors import Forbidden
from orderchat.core.ids import UserId
from orderchat.core.model import (
    MAX_DISPLAY_NAME_CHARS,
    MAX_PASSWORD_CHARS,
    Role,
    UserKind,
    parse_new_staff,
)
from orderchat.core.passwords import MIN_PASSWORD_CHARS
from orderchat.core.texts import say

router = APIRouter(prefix="/api", tags=["users"])


class NewUserBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    username: Annotated[str, rule(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
    password: Annotated[str, rule(minLength=MIN_PASSWORD_CHARS, maxLength=MAX_PASSWORD_CHARS)]
    roles: Annotated[list[str], rule(minItems=1, items={"enum": [r.value for r in Role]})]
    display_name: Annotated[
        str | None, rule(maxLength=MAX_DISPLAY_NAME_CHARS, pattern=r"^$|\S")
    ] = None


@router.get("/users", responses=errors(401))
async def list_users(auth: AuthDep, runtime: RuntimeDep) -> Json:
    """Staff get the staff directory; a customer, the names of the people they talk to."""
    found = await runtime.accounts.directory(auth.user)
    if auth.user.kind is UserKind.STAFF:
        return Json({"users": [user_view(u) for u in found]})
    # A customer needs names to read the chat, not the login names of the staff.
    return Json(
        {"users": [{k: v for k, v in user_view(u).items() if k != "username"} for u in found]}
    )


@router.post("/users", status_code=201, responses=errors(400, 401, 403, 409))
async def create_user(body: NewUserBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    runtime.accounts.require_admin(auth.user)
    new = parse_new_staff(body.username, body.password, body.roles, body.display_name)
    user = await runtime.staff.add(auth.user, new)
    return Json(user_view(user), status_code=201)


MAX_PRESENCE_USERS = 200
_ONE_ID = "[0-9A-Za-z_-]{1,64}"
PRESENCE_IDS = rf"^{_ONE_ID}(,{_ONE_ID}){{0,{MAX_PRESENCE_USERS - 1}}}$"


@router.get("/presence", responses=errors(400, 401, 403))
async def presence(
    auth: AuthDep,
    runtime: RuntimeDep,
    users: Annotated[str, Query(pattern=PRESENCE_IDS)],
) -> Json:
    """Staff see which devices of these people (comma-separated ids) are connected now.

    The pattern bounds the count in the schema itself, so a client generated from
    the schema never builds an ask the server refuses; a repeated id is answered once.
    """
    if auth.user.kind is not UserKind.STAFF:
        raise Forbidden(say("users.presence_is_for_staff"))
    wanted = list(dict.fromkeys(users.split(",")))
    found = await runtime.presence.devices([UserId(u) for u in wanted])
    return Json(
        {
            "presence": {
                user: [{"device": d.device, "since_ts": d.since_ms} for d in devices]
                for user, devices in found.items()
            }
        }
    )
