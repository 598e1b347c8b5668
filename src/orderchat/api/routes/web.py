"""The browser app: two pages and their static ES modules, under a strict policy.

There is no build step: the files under `orderchat/web` are what the browser
runs. Every page and asset carries a Content-Security-Policy that allows
scripts, styles and connections from this origin only and no inline code at
all, so a message that smuggles markup past the app's escaping still cannot run.

The service worker (docs/app-install.md) is served from the root so that its
scope covers both pages, with the list of the app shell's files and a version
made from their contents written into it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Final

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from orderchat.api.runtime import RuntimeDep

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


def framed_by(origins: tuple[str, ...]) -> dict[str, str]:
    """The app's headers for a page that other sites may show in a frame (the widget):
    the listed origins, or any when none are listed; nothing else is loosened."""
    ancestors = " ".join(origins) if origins else "*"
    policy = CONTENT_SECURITY_POLICY.replace(
        "frame-ancestors 'none'", f"frame-ancestors 'self' {ancestors}"
    )
    headers = {k: v for k, v in SECURITY_HEADERS.items() if k != "X-Frame-Options"}
    return {**headers, "Content-Security-Policy": policy}


@router.get("/chat")
async def visitor_page(runtime: RuntimeDep) -> FileResponse:
    """Pre-sales chat for visitors without an order: the page, the widget's frame, the QR
    code's target (docs/consults.md)."""
    headers = framed_by(runtime.settings.widget_origins)
    return FileResponse(WEB_DIR / "chat.html", media_type="text/html", headers=headers)


@router.get("/widget.js")
def widget_script() -> FileResponse:
    """The script a shop's own site includes; it runs there, so it is served to any
    origin and cached briefly."""
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "public, max-age=300",
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    return FileResponse(WEB_DIR / "widget.js", media_type="text/javascript", headers=headers)


SERVICE_WORKER: Final = WEB_DIR / "sw.js"
# The line of sw.js the served copy replaces with the real shell.
SHELL_PLACEHOLDER: Final = 'const SHELL = { version: "unversioned", files: ["/", "/c"] };'
PAGES: Final = {"/": "index.html", "/c": "c.html", "/chat": "chat.html"}


def shell_files() -> list[tuple[str, Path]]:
    """What an installed app needs to open without a network: the pages and every asset."""
    assets = sorted(p for p in (WEB_DIR / "assets").rglob("*") if p.is_file())
    return [(url, WEB_DIR / name) for url, name in PAGES.items()] + [
        ("/assets/" + p.relative_to(WEB_DIR / "assets").as_posix(), p) for p in assets
    ]


def service_worker_source() -> str:
    """sw.js with the shell written in. The version changes with any file's content, so
    an upgraded server gives browsers a new worker and a fresh cache."""
    files = shell_files()
    digest = hashlib.sha256()
    for url, path in files:
        digest.update(url.encode() + b"\0" + path.read_bytes() + b"\0")
    shell = {"version": digest.hexdigest()[:16], "files": [url for url, _ in files]}
    source = SERVICE_WORKER.read_text(encoding="utf-8")
    if SHELL_PLACEHOLDER not in source:
        raise RuntimeError("sw.js lost the line the server writes the shell into")
    return source.replace(SHELL_PLACEHOLDER, f"const SHELL = {json.dumps(shell)};")


@router.get("/sw.js")
def service_worker() -> Response:
    """Revalidated like every asset; browsers also check it for updates on their own."""
    return Response(
        service_worker_source(),
        media_type="text/javascript",
        headers={**SECURITY_HEADERS, "Service-Worker-Allowed": "/"},
    )


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
