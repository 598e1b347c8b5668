"""Schemathesis tries every operation of `/openapi.json` against a real server.

For each identity (an admin, a staff member of every role, a customer signed
in through an invitation link) the fuzzer sends schema-valid and schema-invalid
requests with every check on: no 5xx, every answer matches its documented
schema, status and content type, undeclared methods answer 405 with Allow,
and a request the schema calls valid is not refused as bad input.

Each identity gets a server of its own, seeded with `--demo` data: the fuzzer
may remove members, move orders or create users, and nothing it does as one
identity can take away another identity's conversations or orders. The demo
data gives every path parameter real ids to hit, next to generated ones.

`ORDERCHAT_FUZZ_EXAMPLES` sets the examples per operation (`make fuzz` runs
many more than the bounded default).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema

from tests.support import ServerProcess

BOUNDED_EXAMPLES = 5
EXAMPLES = int(os.environ.get("ORDERCHAT_FUZZ_EXAMPLES", BOUNDED_EXAMPLES))
# The coverage phase tries each operation's edge cases (undeclared methods,
# missing headers, boundary values); they hardly depend on who asks, so the
# bounded run tries them as the admin and the customer only, on SQLite.
COVERAGE_IDENTITIES = ("admin", "customer")
# Everyone else tries every operation with fewer examples in a bounded run: a staff
# role differs from another in what it may do, which a few requests of each operation
# show; the PostgreSQL leg's contract does not depend on the store, and what reaches
# the store a few show too.
FEW_EXAMPLES = EXAMPLES if "ORDERCHAT_FUZZ_EXAMPLES" in os.environ else 2

pytestmark = pytest.mark.timeout(120 + EXAMPLES * 60)

# Who signs in for each identity: the staff `serve --demo` seeds (password orderchat-demo).
DEMO_PASSWORD = "orderchat-demo"
DEMO_STAFF = {
    "admin": "boss",
    "customer_service": "amy",
    "sales": "sam",
    "purchasing": "pat",
    "warehouse": "wes",
    "logistics": "leo",
    "finance": "fay",
    "production": "pete",
    "qc": "quinn",
}
CUSTOMER_ORDER = "OD-10041"
IDENTITIES = (*DEMO_STAFF, "customer")
# Whose requests the PostgreSQL leg tries: the roles differ in what they may do, which
# the SQLite leg covers; these three reach every kind of write the store takes.
PG_IDENTITIES = ("admin", "customer_service", "customer")

# Signing out ends the very session the fuzzer goes on with; the sign-out
# routes are tried by tests/integration/test_auth.py instead.
EXCLUDED_PATHS = "^/api/auth/logout"

# A request can be valid by the schema and still name something that does not
# exist (a user id in `members`, a SKU in an order's items, a conversation in
# the upload metadata) or break a rule across the shop's present data; those
# answers are 400, and the schema cannot say which names exist.
NAMES_THAT_MUST_EXIST = (
    "POST /api/conversations",
    "POST /api/conversations/{conv_id}/members",
    "POST /api/orders",
    "PATCH /api/orders/{order_id}",
    "POST /api/orders/{order_id}/issues",
    "POST /api/orders/{order_id}/issues/{issue_id}/settle",
    "POST /api/stock/movements",
    "POST /api/skus/import",
    "POST /api/skus/import/preview",
    "POST /api/uploads",
    # The sku must keep a name in one language, whatever the change leaves.
    "PATCH /api/skus/{sku}",
    # The issue named must be this order's open address change.
    "POST /api/orders/{order_id}/address",
    # `after` and `before` are each valid, but not together (OpenAPI has no
    # way to relate two query parameters).
    "GET /api/conversations/{conv_id}/messages",
    # Schemathesis 4.32's coverage phase sends `Upload-Checksum: 0` as a valid
    # value, though the header's pattern (and example) say otherwise.
    "PATCH /api/uploads/{upload_id}",
    # The password policy also refuses the username, one repeated character and
    # common passwords, which a schema cannot say; its length it does say.
    "POST /api/users",
    "POST /api/admin/staff",
    # Attachments are opaque JSON, and JSON parses what cannot be stored: a lone
    # surrogate, an integer past 64 bits. No schema keyword can exclude them.
    "POST /api/confirmations/{item_id}/versions",
    # A push endpoint's host must resolve to a public address, and its key must be a
    # point on P-256: a browser's subscription always is, a generated one seldom.
    "POST /api/push/subscriptions",
    # A consult's order is a new order's body: its workflow and SKUs must exist, its
    # quantities be whole (JSON Schema's integer takes 3.0).
    "POST /api/consults/{consult_id}/order",
    # A transfer names a colleague or a role: one of the two, which JSON Schema's oneOf
    # with two optional keys cannot make a generator keep to.
    "POST /api/consults/{consult_id}/transfer",
    # A product picture must be a picture, and its options a list of names and values.
    "PUT /api/products/{sku}/picture",
    "PUT /api/products/{sku}/options",
    # A visitor's name must say something once trimmed (a pattern says "not blank", which
    # a generator meets with a lone control character).
    "POST /api/consults/start",
    # A link's token is random: a made-up one is not valid (404), as it must be.
    "POST /api/staff-links/check",
    "POST /api/staff-links/accept",
    # A query must hold a word to search for (punctuation alone does not), and a
    # cursor belongs to the sort that made it: a schema can say neither.
    "GET /api/search",
    # An audited action is named, or a family of them (`staff.*`); the names are
    # the server's, kept in one place (core/audit.py), not repeated in the schema.
    "GET /api/admin/audit",
    "GET /api/admin/audit.csv",
)
# Text over its limit is refused as too_large (413), as the wire contract says.
REFUSALS = ["400", "401", "403", "404", "405", "409", "413", "415"]
TUS_REFUSALS = ["400", "401", "403", "404", "405", "409", "412", "413", "415"]


def _signed_in(server: ServerProcess, identity: str) -> str:
    if identity != "customer":
        return str(server.login(DEMO_STAFF[identity], DEMO_PASSWORD)["token"])
    staff = server.login(DEMO_STAFF["customer_service"], DEMO_PASSWORD)["token"]
    with server.http(staff) as client:
        orders = client.get("/api/orders", params={"limit": 500}).json()["orders"]
        order = next(o for o in orders if o["number"] == CUSTOMER_ORDER)
        link = client.post(f"/api/orders/{order['id']}/invitations").json()["token"]
    signed = httpx.post(f"{server.base_url}/api/auth/invitation", json={"token": link}, timeout=10)
    signed.raise_for_status()
    return str(signed.json()["token"])


def _real_ids(server: ServerProcess, token: str) -> dict[str, list[Any]]:
    """Ids of the demo data, by path parameter name, as an admin sees them."""
    with server.http(token) as client:
        convs = client.get("/api/conversations").json()["conversations"]
        orders = client.get("/api/orders", params={"limit": 500}).json()["orders"]
        skus = client.get("/api/skus", params={"limit": 500}).json()["skus"]
        users = client.get("/api/users").json()["users"]
        files: list[dict[str, Any]] = []
        for conv in convs:
            files.extend(client.get(f"/api/conversations/{conv['id']}/files").json()["files"])
        items = []
        for order in orders[:5]:
            found = client.get(f"/api/orders/{order['id']}/confirmations").json()["items"]
            items.extend(i["id"] for i in found)
    return {
        "conv_id": [c["id"] for c in convs],
        "order_id": [o["id"] for o in orders],
        "customer_id": sorted({o["customer"] for o in orders if o.get("customer")}),
        "sku": [s["sku"] for s in skus],
        "user_id": [u["id"] for u in users],
        "media_id": [f["id"] for f in files],
        "item_id": items,
        "seq": [1, 2, 3],
        "number": [1, 2],
    }


def _config(token: str, *, coverage: bool, examples: int) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "headers": {"Authorization": f"Bearer {token}"},
            "checks": {
                "enabled": True,
                "negative_data_rejection": {"expected-statuses": REFUSALS},
            },
            "generation": {
                "max-examples": examples,
                "deterministic": True,
                "database": "none",
            },
            "phases": {"stateful": {"enabled": False}, "coverage": {"enabled": coverage}},
            "operations": [
                {
                    # tus answers a version it does not speak with 412 (tus 1.0 §Tus-Resumable).
                    "include-path-regex": "^/api/uploads",
                    "checks": {
                        "negative_data_rejection": {"expected-statuses": TUS_REFUSALS},
                        "missing_required_header": {"expected-statuses": TUS_REFUSALS},
                    },
                },
                {
                    "include-name": list(NAMES_THAT_MUST_EXIST),
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": ["2XX", "400", "401", "403", "404", "409"]
                        }
                    },
                },
            ],
        }
    )


def _failures(schema: Any) -> list[str]:
    found: dict[tuple[str, str, str], str] = {}
    for event in from_schema(schema).execute():
        if isinstance(event, events.FatalError):
            raise event.exception
        if isinstance(event, events.NonFatalError):
            found[(event.label, "error", str(event.value))] = ""
        if not isinstance(event, events.ScenarioFinished):
            continue
        for case_id, nodes in event.recorder.checks.items():
            for node in nodes:
                if node.status is Status.FAILURE and node.failure_info is not None:
                    failure = node.failure_info.failure
                    key = (event.recorder.label, failure.title, failure.message)
                    found.setdefault(key, _sample(event.recorder, case_id, node.failure_info))
    return [
        f"{label}: {title}: {message}\n    {sample}"
        for (label, title, message), sample in sorted(found.items())
    ]


def _sample(recorder: Any, case_id: str, info: Any) -> str:
    interaction = recorder.interactions.get(case_id)
    response = None if interaction is None else interaction.response
    answer = "" if response is None else f" -> {response.status_code} {response.content[:200]!r}"
    return f"{info.code_sample[:600]}{answer}"


@pytest.fixture(scope="module")
def seeded_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory the demo was seeded into once, by a server stopped since: each
    SQLite identity starts from a copy of it rather than seeding the demo again."""
    seeded = tmp_path_factory.mktemp("seeded-demo")
    proc = ServerProcess(seeded, ("--demo", "--rate-limits", "off"))
    proc.start()
    proc.stop()
    return seeded


@pytest.fixture
def demo_server(
    tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> Iterator[ServerProcess]:
    data_dir = tmp_path / "data"
    if store == "sqlite":
        template: Path = request.getfixturevalue("seeded_demo")
        shutil.copytree(template, data_dir, ignore=shutil.ignore_patterns("server-*.log"))
    proc = ServerProcess(data_dir, ("--demo", "--rate-limits", "off"), store=store)
    proc.start()
    yield proc
    proc.stop()


@pytest.mark.parametrize(
    "identity",
    [
        pytest.param(who, marks=() if who in PG_IDENTITIES else pytest.mark.sqlite_only)
        for who in IDENTITIES
    ],
)
def test_every_operation_keeps_its_contract(demo_server: ServerProcess, identity: str) -> None:
    admin = demo_server.login(DEMO_STAFF["admin"], DEMO_PASSWORD)["token"]
    ids = _real_ids(demo_server, admin)
    token = _signed_in(demo_server, identity)
    thorough = identity in COVERAGE_IDENTITIES and demo_server.store == "sqlite"
    schema = schemathesis.openapi.from_url(
        f"{demo_server.base_url}/openapi.json",
        config=_config(
            token,
            coverage=EXAMPLES > BOUNDED_EXAMPLES or thorough,
            examples=EXAMPLES if thorough else FEW_EXAMPLES,
        ),
    ).exclude(path_regex=EXCLUDED_PATHS)

    @schema.hook
    def flatmap_path_parameters(
        context: Any, path_parameters: dict[str, Any] | None
    ) -> st.SearchStrategy[dict[str, Any] | None]:
        """Half the time a real id of the demo data, so calls reach objects, not only 404s."""
        if not path_parameters:
            return st.just(path_parameters)
        options = {
            name: st.sampled_from(ids[name]) | st.just(value) if ids.get(name) else st.just(value)
            for name, value in path_parameters.items()
        }
        return st.fixed_dictionaries(options)

    failures = _failures(schema)
    assert not failures, f"{len(failures)} findings as {identity}:\n" + "\n".join(failures)


def test_identities_cover_every_role() -> None:
    from orderchat.core.model import Role

    assert set(DEMO_STAFF) == {r.value for r in Role}


@schemathesis.serializer("application/offset+octet-stream", "text/csv")
def _raw_bytes(context: Any, value: Any) -> bytes:
    """Upload chunks and CSV imports go as they are generated: bytes, or text as UTF-8."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value).encode()  # a wrong-typed value, sent as its JSON text
