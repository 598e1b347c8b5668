"""The run's shared services, and the store every storage test is run on.

`store` is a session-wide parameter: tests that ask for it (through `server`,
`own_server`, `order_shop`, or directly) run once per store, with ids `[sqlite]` and
`[postgres]`. A test marked `sqlite_only` keeps its SQLite leg alone; one marked
`pg_sample(n)` runs n of its cases on PostgreSQL and all of them on SQLite.
"""

from __future__ import annotations

import os

import pytest

from tests.stores import STORES, RunServices, postgres_unavailable

_services: RunServices | None = None


def _only_unit_tests(config: pytest.Config) -> bool:
    """Unit tests start no server, so a run of them alone needs no services."""
    args = [a for a in config.args if not a.startswith("-")]
    return bool(args) and all(a.split("::")[0].startswith("tests/unit") for a in args)


def pytest_configure(config: pytest.Config) -> None:
    global _services
    # The run's throwaway passwords are hashed at Argon2's cheapest setting, in every
    # server and command it starts: thousands of sign-ins, each 0.2 s of CPU at the
    # recommended cost. tests/integration/test_password_cost.py runs that cost.
    os.environ.setdefault("ORDERCHAT_PASSWORD_TIME_COST", "1")
    os.environ.setdefault("ORDERCHAT_PASSWORD_MEMORY_KIB", "1024")
    config.addinivalue_line(
        "markers",
        "sqlite_only: no PostgreSQL leg: about the SQLite file itself, or not about storage",
    )
    config.addinivalue_line(
        "markers",
        "pg_sample(n): of a long list of refusals, the PostgreSQL leg runs n spread over"
        " the list; the SQLite leg runs them all",
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


def _on_postgres(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("store") == "postgres"


def _sampled_out(items: list[pytest.Item]) -> set[int]:
    """The PostgreSQL cases a `pg_sample(n)` mark leaves out: n evenly spread are kept."""
    cases: dict[tuple[str, str], list[pytest.Item]] = {}
    for item in items:
        if _on_postgres(item) and item.get_closest_marker("pg_sample") is not None:
            key = (item.nodeid.split("::")[0], getattr(item, "originalname", item.name))
            cases.setdefault(key, []).append(item)
    out: set[int] = set()
    for group in cases.values():
        marker = group[0].get_closest_marker("pg_sample")
        assert marker is not None
        wanted = min(int(marker.args[0]), len(group))
        keep = {round(i * (len(group) - 1) / max(wanted - 1, 1)) for i in range(wanted)}
        out.update(id(item) for index, item in enumerate(group) if index not in keep)
    return out


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the PostgreSQL leg of tests marked sqlite_only, and the cases pg_sample leaves."""
    sampled_out = _sampled_out(items)
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        sqlite_only = item.get_closest_marker("sqlite_only") is not None
        if _on_postgres(item) and (sqlite_only or id(item) in sampled_out):
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
