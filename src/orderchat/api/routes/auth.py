"""Sign in, sign out, and who am I."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict

from orderchat.api.responses import Json
from orderchat.api.routes.views import user_view
from orderchat.api.runtime import AuthDep, RuntimeDep

router = APIRouter(prefix="/api", tags=["auth"])


class LoginBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    username: str
    password: str
    device: str | None = None


@router.post("/auth/login")
async def login(body: LoginBody, request: Request, runtime: RuntimeDep) -> Json:
    address = request.client.host if request.client else "unknown"
    signed = await runtime.accounts.login(body.username, body.password, address, body.device)
    return Json(
        {"token": signed.token, "user": user_view(signed.user), "expires_ts": signed.expires_at_ms}
    )


class InvitationBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    token: str
    device: str | None = None


@router.post("/auth/invitation")
async def sign_in_with_invitation(
    body: InvitationBody, request: Request, runtime: RuntimeDep
) -> Json:
    """A customer opens the link the shop sent: a session of their own, for their orders."""
    address = request.client.host if request.client else "unknown"
    signed = await runtime.accounts.sign_in_with_invitation(body.token, address, body.device)
    return Json(
        {"token": signed.token, "user": user_view(signed.user), "expires_ts": signed.expires_at_ms}
    )


@router.post("/auth/logout", status_code=204)
async def logout(auth: AuthDep, runtime: RuntimeDep) -> Response:
    await runtime.accounts.logout(auth)
    return Response(status_code=204)


@router.post("/auth/logout-all")
async def logout_everywhere(auth: AuthDep, runtime: RuntimeDep) -> Json:
    return Json({"revoked": await runtime.accounts.logout_everywhere(auth)})


@router.get("/me")
async def me(auth: AuthDep) -> Json:
    return Json(user_view(auth.user))
