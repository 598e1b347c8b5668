"""The browser app: two pages and their static ES modules, under a strict policy.

There is no build step: the files under `orderchat/web` are what the browser
runs. Every page and asset carries a Content-Security-Policy that allows
scripts, styles and connections from this origin only and no inline code at
all, so a message that smuggles markup past the app's escaping still cannot run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

WEB_DIR: Final = Path(__file__).resolve().parents[2] / "web"

CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    )
)

SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "microphone=(self), camera=(self), geolocation=()",
    # Revalidate every time: an upgraded server must not run yesterday's modules.
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    return FileResponse(WEB_DIR / name, media_type="text/html", headers=SECURITY_HEADERS)


@router.get("/")
async def staff_workspace() -> FileResponse:
    return _page("index.html")


@router.get("/c")
async def customer_page() -> FileResponse:
    """Where an invitation link lands; its token rides in the fragment, never sent here."""
    return _page("c.html")


class WebAssets(StaticFiles):
    """Static files with the app's security headers on every answer, 304s included."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(SECURITY_HEADERS)
        return response


def assets() -> WebAssets:
    return WebAssets(directory=WEB_DIR / "assets", follow_symlink=False)
