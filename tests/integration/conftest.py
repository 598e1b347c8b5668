from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.order_support import Shop
from tests.support import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, store: str) -> Iterator[ServerProcess]:
    """One server per test module and store, with rate limits off so tests can go fast."""
    proc = ServerProcess(tmp_path_factory.mktemp("server"), ("--rate-limits", "off"), store=store)
    proc.start()
    proc.create_admin()
    yield proc
    proc.stop()


@pytest.fixture
def own_server(tmp_path: Path, store: str) -> Iterator[ServerProcess]:
    """A server of the test's own, for tests that kill or reconfigure it."""
    proc = ServerProcess(tmp_path, ("--rate-limits", "off"), store=store)
    yield proc
    proc.kill()


@pytest.fixture(scope="session")
def order_shop(tmp_path_factory: pytest.TempPathFactory, store: str) -> Iterator[Shop]:
    """One server per store with a staff user for every role, shared by the order modules.

    Signing staff in costs two password hashes each; doing it once for all the
    order modules keeps them fast. Every order test makes orders of its own.
    """
    proc = ServerProcess(tmp_path_factory.mktemp("orders"), ("--rate-limits", "off"), store=store)
    proc.start()
    proc.create_admin()
    shop = Shop.open(proc)
    yield shop
    shop.close()
    proc.stop()
