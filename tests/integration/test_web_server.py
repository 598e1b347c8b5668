"""What the server does for the browser app: its pages, their policy, the media cookie.

The app itself is tested in a real browser under tests/browser; these tests
pin the server's side of the bargain over plain HTTP.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.media_samples import png
from tests.media_support import tus_upload
from tests.order_support import Shop, assert_unchanged, load_workflow
from tests.support import ServerProcess

WEB = Path(__file__).resolve().parents[2] / "src" / "orderchat" / "web"


def _policy(resp: httpx.Response) -> dict[str, str]:
    header = resp.headers["content-security-policy"]
    return {d.split()[0]: " ".join(d.split()[1:]) for d in header.split("; ")}


@pytest.mark.sqlite_only  # static files: no store involved
@pytest.mark.parametrize(("path", "page"), [("/", "index.html"), ("/c", "c.html")])
def test_pages_are_served_under_a_strict_policy(
    server: ServerProcess, path: str, page: str
) -> None:
    resp = httpx.get(server.base_url + path)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert resp.content == (WEB / page).read_bytes()
    policy = _policy(resp)
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in resp.headers["content-security-policy"]
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["referrer-policy"] == "no-referrer"


def test_pages_have_no_inline_code() -> None:
    """The policy would block inline code; the pages must not depend on any."""
    for page in WEB.glob("*.html"):
        html = page.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), page.name
        assert not re.search(r"\son[a-z]+\s*=", html, re.IGNORECASE), page.name
        assert "style=" not in html, page.name
        assert "<style" not in html, page.name
        assert "http://" not in html and "https://" not in html, page.name


@pytest.mark.sqlite_only  # static files: no store involved
def test_every_module_is_served_with_its_type_and_revalidated(server: ServerProcess) -> None:
    modules = sorted((WEB / "assets" / "js").rglob("*.js"))
    assert len(modules) >= 8
    with httpx.Client(base_url=server.base_url) as client:
        for module in modules:
            path = "/assets/" + module.relative_to(WEB / "assets").as_posix()
            resp = client.get(path)
            assert resp.status_code == 200, path
            assert resp.headers["content-type"].startswith("text/javascript"), path
            assert resp.headers["cache-control"] == "no-cache"
            assert "unsafe" not in resp.headers["content-security-policy"]
            again = client.get(path, headers={"If-None-Match": resp.headers["etag"]})
            assert again.status_code == 304, path


def test_nothing_is_loaded_from_elsewhere() -> None:
    """No build step, no CDN: every import is relative, and no file reaches out."""
    for source in (WEB / "assets").rglob("*"):
        if source.suffix not in (".js", ".css"):
            continue
        text = source.read_text()
        assert not re.search(r"""(?:import|from)\s*\(?\s*["'](?:https?:)?//""", text), source
        assert not re.search(r"url\(\s*[\"']?(?:https?:)?//", text), source
        assert ".innerHTML" not in text, source
        assert "eval(" not in text and "new Function" not in text, source


@pytest.mark.sqlite_only  # static files: no store involved
@pytest.mark.parametrize(
    "path", ["/assets/../pyproject.toml", "/assets/%2e%2e/%2e%2e/api/app.py", "/assets/nope.js"]
)
def test_nothing_outside_the_assets_is_served(server: ServerProcess, path: str) -> None:
    resp = httpx.get(server.base_url + path)
    assert resp.status_code == 404


def _cookie_of(resp: httpx.Response) -> str:
    header = resp.headers["set-cookie"]
    assert header.startswith("orderchat_media=")
    return header


def test_the_media_cookie_opens_media_and_nothing_else(order_shop: Shop) -> None:
    server = order_shop.server
    sam = order_shop.staff["sales"]
    conv = server.conversation(sam, "channel", [order_shop.staff["customer_service"]], "pics")
    media_id = tus_upload(server, sam.token, conv["id"], png(40, 30), "a.png", "image/png")

    with server.http() as anonymous:
        refused = anonymous.post("/api/auth/cookie")
        assert refused.status_code == 401
        assert "set-cookie" not in refused.headers
    with server.http(sam.token) as client:
        resp = client.post("/api/auth/cookie")
    assert resp.status_code == 204
    header = _cookie_of(resp)
    attributes = {a.strip().split("=")[0].lower() for a in header.split(";")[1:]}
    assert {"httponly", "path", "samesite", "max-age"} <= attributes
    assert "Path=/api/media" in header
    assert "SameSite=strict" in header or "SameSite=Strict" in header
    cookie = {"orderchat_media": sam.token}

    with httpx.Client(base_url=server.base_url, cookies=cookie) as browser:
        original = browser.get(f"/api/media/{media_id}")
        assert original.status_code == 200
        assert original.content == png(40, 30)
        # The cookie is good for reading media, and for nothing else.
        assert browser.get("/api/me").status_code == 401
        assert browser.get(f"/api/media/{media_id}/info").status_code == 401
        assert browser.get(f"/api/conversations/{conv['id']}/files").status_code == 401
        before = server.db_snapshot()
        forged = browser.post(
            "/api/uploads",
            headers={"Tus-Resumable": "1.0.0", "Upload-Length": "10"},
        )
        assert forged.status_code == 401
        assert forged.json()["error"]["code"] == "unauthorized"
        assert_unchanged(before, server.db_snapshot())

    with httpx.Client(base_url=server.base_url, cookies={"orderchat_media": "forged"}) as forger:
        resp = forger.get(f"/api/media/{media_id}")
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "unauthorized"


def test_signing_out_ends_the_media_cookie(order_shop: Shop) -> None:
    server = order_shop.server
    staff = server.user("customer_service")
    conv = server.conversation(staff, "channel", [order_shop.staff["sales"]], "pics")
    media_id = tus_upload(server, staff.token, conv["id"], png(8, 8), "b.png", "image/png")
    with server.http(staff.token) as client:
        assert client.post("/api/auth/cookie").status_code == 204
        bye = client.post("/api/auth/logout")
    assert bye.status_code == 204
    cleared = _cookie_of(bye)
    assert "Max-Age=0" in cleared or "expires=Thu, 01 Jan 1970" in cleared
    with httpx.Client(base_url=server.base_url, cookies={"orderchat_media": staff.token}) as old:
        assert old.get(f"/api/media/{media_id}").status_code == 401


def test_an_order_says_what_its_reader_may_do(order_shop: Shop) -> None:
    order = order_shop.create_order("retail")
    workflow = order_shop.get_order(order["id"])

    def allowed(who: str) -> dict[str, object]:
        found: dict[str, object] = order_shop.get_order(order["id"], who)["allowed"]
        return found

    admin = allowed("admin")
    assert {t["to"] for t in admin["transitions"]} == set(workflow["next"])  # type: ignore[union-attr]
    finance = allowed("finance")
    assert "record_payment" in finance["actions"]  # type: ignore[operator]
    assert "move_stock" not in finance["actions"]  # type: ignore[operator]
    warehouse = allowed("warehouse")
    assert "record_payment" not in warehouse["actions"]  # type: ignore[operator]
    assert "out_of_stock" in warehouse["issue_kinds"]  # type: ignore[operator]
    # Each role is offered exactly the moves the workflow gives that role from here.
    rules = load_workflow("retail")
    for role in ("customer_service", "warehouse", "finance", "logistics"):
        offered = allowed(role)["transitions"]
        expected = [
            t.target
            for t in rules.transitions
            if workflow["status"] in t.sources and role in {r.value for r in t.roles}
        ]
        assert [m["to"] for m in offered] == expected, role  # type: ignore[attr-defined]
        for move in offered:  # type: ignore[attr-defined]
            assert move["label"]["zh-CN"] and move["label"]["en"]
    customer = order_shop.customer(order)
    seen = order_shop.get_order(order["id"], customer)["allowed"]
    assert seen["transitions"] == [] and seen["issue_kinds"] == []
    assert "decide_version" in seen["actions"]
    assert "record_payment" not in seen["actions"]
