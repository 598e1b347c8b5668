"""Sign in, sign out, and who am I."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict

from orderchat.api.openapi import errors, rule
from orderchat.api.responses import Json
from orderchat.api.routes.views import user_view
from orderchat.api.runtime import (
    MEDIA_COOKIE,
    MEDIA_COOKIE_PATH,
    AuthDep,
    RuntimeDep,
    bearer_token,
)

router = APIRouter(prefix="/api", tags=["auth"])

Device = Annotated[str | None, rule(minLength=1, maxLength=64)]


class LoginBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    username: str
    password: str
    device: Device = None


@router.post("/auth/login", responses=errors(400, 401, 429))
async def login(body: LoginBody, request: Request, runtime: RuntimeDep) -> Json:
    address = request.client.host if request.client else "unknown"
    signed = await runtime.accounts.login(body.username, body.password, address, body.device)
    return Json(
        {"token": signed.token, "user": user_view(signed.user), "expires_ts": signed.expires_at_ms}
    )


class InvitationBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    token: Annotated[str, rule(minLength=1, maxLength=256)]
    device: Device = None


@router.post("/auth/invitation", responses=errors(400, 401, 429))
async def sign_in_with_invitation(
    body: InvitationBody, request: Request, runtime: RuntimeDep
) -> Json:
    """A customer opens the link the shop sent: a session of their own, for their orders."""
    address = request.client.host if request.client else "unknown"
    signed = await runtime.accounts.sign_in_with_invitation(body.token, address, body.device)
    return Json(
        {
            "token": signed.token,
            "user": user_view(signed.user),
            "expires_ts": signed.expires_at_ms,
            "order": signed.order_id,
        }
    )


@router.post("/auth/cookie", status_code=204, responses=errors(401))
async def set_media_cookie(auth: AuthDep, request: Request, runtime: RuntimeDep) -> Response:
    """Let a browser's <img>, <video> and <audio> fetch this session's media.

    Those elements cannot send an Authorization header, and a token in their
    URLs would end up in histories and logs; the cookie goes to the media
    routes only, and only from this site's own pages.
    """
    response = Response(status_code=204)
    left_s = (auth.session.expires_at_ms - runtime.clock.now_ms()) // 1000
    response.set_cookie(
        MEDIA_COOKIE,
        bearer_token(request.headers.get("authorization")),
        max_age=max(int(left_s), 0),
        path=MEDIA_COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


def _forget_media_cookie(response: Response) -> None:
    response.delete_cookie(MEDIA_COOKIE, path=MEDIA_COOKIE_PATH, httponly=True, samesite="strict")


@router.post("/auth/logout", status_code=204, responses=errors(401))
async def logout(auth: AuthDep, runtime: RuntimeDep) -> Response:
    await runtime.accounts.logout(auth)
    response = Response(status_code=204)
    _forget_media_cookie(response)
    return response


@router.post("/auth/logout-all", responses=errors(401))
async def logout_everywhere(auth: AuthDep, runtime: RuntimeDep) -> Json:
    response = Json({"revoked": await runtime.accounts.logout_everywhere(auth)})
    _forget_media_cookie(response)
    return response


@router.get("/me", responses=errors(401))
async def me(auth: AuthDep) -> Json:
    return Json(user_view(auth.user))
