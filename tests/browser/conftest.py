"""The web app in a real Chromium, against a real `orderchat serve --demo`.

One browser for the whole session and one demo server shared by the modules
(every test uses conversations and orders of its own); a fresh browser context
per user. Tests that kill the server start one of their own.

Chromium is the Debian package at /usr/bin/chromium, which `make test` installs.
Without it these tests fail, unless ORDERCHAT_BROWSER_OPTIONAL=1 says a machine
may run the rest of the suite without a browser.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

OPTIONAL = os.environ.get("ORDERCHAT_BROWSER_OPTIONAL") == "1"
HAVE_PLAYWRIGHT = importlib.util.find_spec("playwright") is not None

if not HAVE_PLAYWRIGHT and OPTIONAL:
    # Nothing here can even be imported; the session fixture explains why below.
    collect_ignore_glob = ["test_*.py"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives the web app in Chromium")


if HAVE_PLAYWRIGHT:
    from playwright.sync_api import Browser, expect, sync_playwright

    from tests.browser.helpers import (
        CHROMIUM,
        CHROMIUM_ARGS,
        TIMEOUT_MS,
        Pages,
        ShopApi,
        watched_pages,
    )
    from tests.support import ServerProcess

    expect.set_options(timeout=TIMEOUT_MS)

    @pytest.fixture(scope="package")
    def browser() -> Iterator[Browser]:
        if not CHROMIUM.exists():
            reason = f"{CHROMIUM} is missing (Debian package `chromium`; `make test` installs it)"
            if OPTIONAL:
                pytest.skip(reason + "; ORDERCHAT_BROWSER_OPTIONAL=1 allows running without it")
            pytest.fail(reason, pytrace=False)
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield launched
            launched.close()

    @pytest.fixture(scope="package")
    def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
        """The demo shop, shared: each test makes its own conversations and orders."""
        proc = ServerProcess(
            tmp_path_factory.mktemp("web-demo"), ("--demo", "--rate-limits", "off")
        )
        proc.start()
        yield proc
        proc.stop()

    @pytest.fixture(scope="package")
    def shop(demo: ServerProcess) -> ShopApi:
        return ShopApi(demo)

    @pytest.fixture
    def own_demo(tmp_path: Path) -> Iterator[ServerProcess]:
        """A demo server of the test's own, for tests that kill it."""
        proc = ServerProcess(tmp_path, ("--demo", "--rate-limits", "off"))
        proc.start()
        yield proc
        proc.kill()

    @pytest.fixture
    def pages(browser: Browser, demo: ServerProcess) -> Iterator[Pages]:
        """Browser contexts on the shared demo server; any uncaught error in the app
        fails the test that caused it."""
        yield from watched_pages(browser, demo)

    @pytest.fixture
    def own_pages(browser: Browser, own_demo: ServerProcess) -> Iterator[Pages]:
        yield from watched_pages(browser, own_demo)
