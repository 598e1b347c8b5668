"""The staff directory, and adding staff (admins only)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from orderchat.api.responses import Json
from orderchat.api.routes.views import user_view
from orderchat.api.runtime import AuthDep, RuntimeDep
from orderchat.core.permissions import require_staff

router = APIRouter(prefix="/api", tags=["users"])


class NewUserBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    username: str
    password: str
    roles: list[str]
    display_name: str | None = None


@router.get("/users")
async def list_users(auth: AuthDep, runtime: RuntimeDep) -> Json:
    require_staff(auth.user)
    return Json({"users": [user_view(u) for u in await runtime.accounts.list_staff()]})


@router.post("/users", status_code=201)
async def create_user(body: NewUserBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    runtime.accounts.require_admin(auth.user)
    user = await runtime.accounts.create_user(
        body.username, body.password, body.roles, body.display_name
    )
    return Json(user_view(user), status_code=201)
