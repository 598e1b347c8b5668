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


# The files that take longest, longest first: as a loaded run measured them, both
# store legs together, the consult files placed by their own runs. `make test` hands
# each file whole to one of two workers (--dist loadfile: a module's servers start
# once, not once per worker); handing out the longest first keeps the run from ending
# with one worker busy on a long file and the other idle. The rest follow in name
# order, then the unit tests, the quickest.
LONG_FIRST = (
    "tests/integration/test_api_fuzz.py",
    "tests/integration/test_cli_skus.py",
    "tests/integration/test_bench_scaleout.py",
    "tests/integration/test_cli_users.py",
    "tests/integration/test_outbound_webhooks.py",
    "tests/browser/test_calls.py",
    "tests/integration/test_consults.py",
    "tests/integration/test_order_extras.py",
    "tests/integration/test_password_cost.py",
    "tests/browser/test_consults_staff.py",
    "tests/adversity/test_kill_and_stall.py",
    "tests/cluster/test_faults.py",
    "tests/browser/test_consult_visitor.py",
    "tests/integration/test_bench_search.py",
    "tests/browser/test_connection_state.py",
    "tests/integration/test_dossier.py",
    "tests/integration/test_chat_cli.py",
    "tests/integration/test_bench_notify.py",
    "tests/integration/test_upload_expiry.py",
    "tests/integration/test_uploads.py",
    "tests/cluster/test_cluster.py",
    "tests/integration/test_auth.py",
    "tests/browser/test_orders.py",
    "tests/integration/test_bench_load.py",
    "tests/integration/test_finance.py",
    "tests/browser/test_conversations.py",
    "tests/browser/test_dossier.py",
    "tests/browser/test_one_app.py",
    "tests/integration/test_staff_admin.py",
    "tests/integration/test_media_messages.py",
    "tests/integration/test_first_admin.py",
    "tests/integration/test_bench_consults.py",
    "tests/integration/test_step_photos.py",
    "tests/integration/test_notify_mail.py",
    "tests/integration/test_client_sdk.py",
    "tests/browser/test_language_and_phone.py",
    "tests/integration/test_urgent.py",
    "tests/integration/test_ladder_clock.py",
    "tests/browser/test_pwa.py",
    "tests/integration/test_calls.py",
    "tests/integration/test_notify_push.py",
    "tests/browser/test_composing.py",
    "tests/browser/test_catalogue.py",
    "tests/integration/test_search.py",
    "tests/integration/test_conversation_attention.py",
    "tests/browser/test_resilience.py",
    "tests/browser/test_notify_ui.py",
    "tests/integration/test_frame_fuzz.py",
    "tests/browser/test_message_actions.py",
    "tests/browser/test_composer_basics.py",
    "tests/integration/test_inventory.py",
    "tests/integration/test_cluster.py",
    "tests/integration/test_bench_workloads.py",
    "tests/integration/test_group_chats.py",
    "tests/browser/test_evidence_admin.py",
    "tests/browser/test_search.py",
    "tests/integration/test_retention.py",
    "tests/integration/test_demo_role_channels.py",
)


# The browser tests share a browser and a demo server per package: a worker that left
# the package for another file would start both again when it came back. So the
# package's files go out together, where its longest file would go.
TOGETHER = "tests/browser/"
_TOGETHER_AT = min(i for i, path in enumerate(LONG_FIRST) if path.startswith(TOGETHER))


def _run_order(item: pytest.Item) -> tuple[int, int, int]:
    path = item.nodeid.split("::")[0]
    rank = LONG_FIRST.index(path) if path in LONG_FIRST else len(LONG_FIRST)
    if path.startswith(TOGETHER):
        return (0, _TOGETHER_AT, rank)
    if path in LONG_FIRST:
        return (0, rank, 0)
    return (2, 0, 0) if path.startswith("tests/unit/") else (1, 0, 0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the PostgreSQL leg of tests marked sqlite_only, and the cases pg_sample leaves;
    then the long files first and the unit tests, the quickest, last (a stable sort:
    within a file the order stays)."""
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
    items[:] = sorted(kept, key=_run_order)


@pytest.fixture(scope="session", params=STORES)
def store(request: pytest.FixtureRequest) -> str:
    """The store a test's servers use; the PostgreSQL leg is skipped when it cannot run."""
    name: str = request.param
    if name == "postgres" and (reason := postgres_unavailable()):
        pytest.skip(reason)
    return name
