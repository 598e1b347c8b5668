"""A fresh install is set up from the browser: the server logs a link that makes the first admin."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.support import ServerProcess

LINK = re.compile(r"no admin yet: open (http://\S+/#/join/(\S+)) to create the first one")
STRONG = "lantern-river-47"


def _links(server: ServerProcess) -> list[str]:
    assert server.log_path is not None
    return [m.group(2) for m in LINK.finditer(server.log_path.read_text(encoding="utf-8"))]


def _accept(server: ServerProcess, token: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/api/staff-links/accept",
        json={"token": token, "password": STRONG, "display_name": "店主"},
        headers={"Accept-Language": "en"},
        timeout=10,
    )


def test_a_fresh_install_logs_a_link_that_makes_the_first_admin_once(
    tmp_path: Path, store: str
) -> None:
    (tmp_path / "shop").mkdir()
    server = ServerProcess(tmp_path / "shop", store=store)
    server.start()
    try:
        (first,) = _links(server)
        # Each start without an admin issues a new link, and the newer one replaces the older.
        server.restart()
        (token,) = _links(server)
        assert token != first
        stale = _accept(server, first)
        assert stale.status_code == 409, stale.text
        assert stale.json()["error"]["reason"] == "staff.link_replaced"

        made = _accept(server, token)
        assert made.status_code == 200, made.text
        assert made.json()["user"]["roles"] == ["admin"]
        session = server.login("admin", STRONG)
        staff = httpx.get(
            f"{server.base_url}/api/admin/staff", headers=server.auth(session["token"]), timeout=10
        )
        assert staff.status_code == 200 and [s["username"] for s in staff.json()["staff"]] == [
            "admin"
        ]
        # Once there is an admin, a restart offers no link, and the used one stays used.
        server.restart()
        assert _links(server) == []
        again = _accept(server, token)
        assert again.status_code == 409 and again.json()["error"]["reason"] == "staff.link_used"
    finally:
        server.stop()


def test_a_shop_that_has_an_admin_is_offered_no_link(tmp_path: Path, store: str) -> None:
    (tmp_path / "shop").mkdir()
    server = ServerProcess(tmp_path / "shop", store=store)
    server.start()
    try:
        server.create_admin()
        server.restart()
        assert _links(server) == []
    finally:
        server.stop()
