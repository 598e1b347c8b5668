"""The run's shared services, and the store every storage test is run on.

`store` is a session-wide parameter: tests that ask for it (through `server`,
`own_server`, `order_shop`, or directly) run once per store, with ids `[sqlite]` and
`[postgres]`. A test marked `sqlite_only` keeps its SQLite leg alone.
"""

from __future__ import annotations

import pytest

from tests.stores import STORES, RunServices, postgres_unavailable

_services: RunServices | None = None


def _only_unit_tests(config: pytest.Config) -> bool:
    """Unit tests start no server, so a run of them alone needs no services."""
    args = [a for a in config.args if not a.startswith("-")]
    return bool(args) and all(a.split("::")[0].startswith("tests/unit") for a in args)


def pytest_configure(config: pytest.Config) -> None:
    global _services
    config.addinivalue_line(
        "markers",
        "sqlite_only: no PostgreSQL leg: about the SQLite file itself, or not about storage",
    )
    if hasattr(config, "workerinput") or _only_unit_tests(config):
        return  # an xdist worker uses what the controller started
    _services = RunServices()
    _services.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    global _services
    if _services is not None:
        _services.stop()
        _services = None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the PostgreSQL leg of tests marked sqlite_only."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("store") == "postgres"
        if on_postgres and item.get_closest_marker("sqlite_only") is not None:
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session", params=STORES)
def store(request: pytest.FixtureRequest) -> str:
    """The store a test's servers use; the PostgreSQL leg is skipped when it cannot run."""
    name: str = request.param
    if name == "postgres" and (reason := postgres_unavailable()):
        pytest.skip(reason)
    return name
