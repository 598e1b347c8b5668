from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server per test module, with rate limits off so tests can go fast."""
    proc = ServerProcess(tmp_path_factory.mktemp("server"), ("--rate-limits", "off"))
    proc.start()
    proc.create_admin()
    yield proc
    proc.stop()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of the test's own, for tests that kill or reconfigure it."""
    proc = ServerProcess(tmp_path, ("--rate-limits", "off"))
    yield proc
    proc.kill()
