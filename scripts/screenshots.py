"""Screenshots of the web app for the README, taken from a fresh demo shop.

    python scripts/screenshots.py [--out docs/screenshots] [--lang zh-CN|en]

Starts its own `orderchat serve --demo` on a free loopback port with a throwaway
data directory, signs in as the sales rep of the Maison Lune handbag order
(PO-2026-031, which has confirmations waiting for the client), and writes:

- staff-desktop.png   1440 × 900, the order's conversation with its order panel
- staff-phone.png     390 × 844, the same conversation on a phone
- customer-desktop.png, customer-phone.png: the client's page, opened from an
  invitation link, with a confirmation pending

The demo data is fixed, so re-running gives the same pictures apart from the
times shown. The server is stopped at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]
STAFF_USER = "lily"
PASSWORD = "orderchat-demo"
ORDER_NUMBER = "PO-2026-031"
TIMEOUT_MS = 20_000
# Every picture in view has loaded and no font is still loading. (Pictures out of
# view load lazily, so they are never waited for.)
SETTLED = """() => document.fonts.status === "loaded" &&
  [...document.images].every((img) => {
    const r = img.getBoundingClientRect();
    const inView = r.width > 0 && r.bottom > 0 && r.top < innerHeight;
    return !inView || img.complete;
  })"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def demo_server() -> Iterator[str]:
    """A demo shop on a free loopback port; its base URL. Stopped and wiped afterwards."""
    data_dir = Path(tempfile.mkdtemp(prefix="orderchat-screenshots-"))
    port = free_port()
    log = (data_dir / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orderchat",
            "serve",
            "--demo",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--rate-limits",
            "off",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the server stopped:\n{(data_dir / 'server.log').read_text()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start within 60 s")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(data_dir, ignore_errors=True)


def api(base: str, token: str, method: str, path: str) -> Any:
    resp = httpx.request(
        method, base + path, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    resp.raise_for_status()
    return resp.json()


def invitation(base: str) -> tuple[str, str]:
    """(the order's conversation, a fresh invitation link's path) for the demo order."""
    login = httpx.post(
        f"{base}/api/auth/login",
        json={"username": STAFF_USER, "password": PASSWORD, "device": "screenshots"},
        timeout=10,
    )
    login.raise_for_status()
    token = login.json()["token"]
    orders = api(base, token, "GET", "/api/orders?limit=200")["orders"]
    order = next(o for o in orders if o["number"] == ORDER_NUMBER)
    link = api(base, token, "POST", f"/api/orders/{order['id']}/invitations")["url"]
    return order["conv"], link


def settle(page: Page) -> None:
    page.wait_for_load_state("networkidle")
    page.wait_for_function(SETTLED)


def new_page(browser: Browser, base: str, lang: str, phone: bool) -> Page:
    """A page in a context of its own: a 1440 × 900 desktop or a 390 × 844 phone."""
    device: dict[str, Any] = (
        {
            "viewport": {"width": 390, "height": 844},
            "device_scale_factor": 2,
            "is_mobile": True,
            "has_touch": True,
        }
        if phone
        else {"viewport": {"width": 1440, "height": 900}}
    )
    context = browser.new_context(
        base_url=base,
        locale=lang,
        timezone_id="Asia/Shanghai",
        color_scheme="light",
        reduced_motion="reduce",
        **device,
    )
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


def staff(browser: Browser, base: str, conv: str, out: Path, lang: str, phone: bool) -> None:
    page = new_page(browser, base, lang, phone)
    page.goto("/")
    page.get_by_test_id("login-username").fill(STAFF_USER)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.locator('[data-testid="connection"][data-state="online"]').wait_for()
    page.locator(f'[data-testid="conv-item"][data-conv-id="{conv}"]').click()
    page.locator(f'[data-testid="conv-view"][data-conv-id="{conv}"]').wait_for()
    page.get_by_test_id("msg").last.wait_for()
    if not phone:
        page.get_by_test_id("order-panel").wait_for()
    settle(page)
    name = "staff-phone.png" if phone else "staff-desktop.png"
    page.screenshot(path=out / name, animations="disabled", caret="hide")
    page.context.close()


def customer(browser: Browser, base: str, link: str, out: Path, lang: str, phone: bool) -> None:
    page = new_page(browser, base, lang, phone)
    page.goto(link)
    page.get_by_test_id("customer-page").wait_for()
    page.locator('[data-testid="connection"][data-state="online"]').wait_for()
    page.locator('[data-testid="confirmation-version"][data-state="proposed"]').first.wait_for()
    settle(page)
    name = "customer-phone.png" if phone else "customer-desktop.png"
    page.screenshot(path=out / name, animations="disabled", caret="hide")
    page.context.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--lang", choices=["zh-CN", "en"], default="zh-CN")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    launch: dict[str, Any] = {"args": CHROMIUM_ARGS}
    if CHROMIUM.exists():
        launch["executable_path"] = str(CHROMIUM)
    with demo_server() as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(**launch)
        try:
            for phone in (False, True):
                # One link per device, as a shop would send it.
                conv, link = invitation(base)
                staff(browser, base, conv, out, args.lang, phone)
                customer(browser, base, link, out, args.lang, phone)
        finally:
            browser.close()
    for name in ("staff-desktop", "staff-phone", "customer-desktop", "customer-phone"):
        print(out / f"{name}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
