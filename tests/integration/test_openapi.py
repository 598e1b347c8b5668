"""The OpenAPI document lists every HTTP route of the orders API.

Orders and webhooks must be there. The inventory, finance and confirmation
routes are built separately; while one is missing its check is skipped with
the route's name, and it starts counting as soon as the route exists.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from orderchat.api.app import create_app
from orderchat.settings import Settings
from tests.support import ServerProcess

# The document and the router's answers are the same whatever the store.
pytestmark = [pytest.mark.timeout(60), pytest.mark.sqlite_only]

REQUIRED = {
    "orders": [
        ("get", "/api/workflows"),
        ("post", "/api/orders"),
        ("get", "/api/orders"),
        ("get", "/api/orders/{}"),
        ("patch", "/api/orders/{}"),
        ("post", "/api/orders/{}/status"),
        ("post", "/api/orders/{}/issues"),
        ("post", "/api/orders/{}/issues/{}/settle"),
        ("post", "/api/orders/{}/address"),
        ("post", "/api/orders/{}/invitations"),
        ("post", "/api/auth/invitation"),
        ("get", "/api/customers/{}"),
    ],
    "webhooks": [("post", "/api/webhooks/orders")],
}
EXPECTED = {
    "inventory": [
        ("post", "/api/skus"),
        ("get", "/api/skus"),
        ("get", "/api/skus/{}"),
        ("post", "/api/skus/import"),
        ("get", "/api/skus/export"),
        ("post", "/api/stock/movements"),
        ("get", "/api/stock/movements"),
        ("get", "/api/stock"),
    ],
    "finance": [
        ("post", "/api/orders/{}/payments"),
        ("post", "/api/orders/{}/refunds"),
        ("post", "/api/orders/{}/ship-approval"),
        ("post", "/api/orders/{}/invoice"),
        ("post", "/api/orders/{}/invoice/issue"),
        ("get", "/api/finance/digest"),
    ],
    "confirmations": [
        ("post", "/api/orders/{}/confirmations"),
        ("get", "/api/orders/{}/confirmations"),
        ("post", "/api/confirmations/{}/versions"),
        ("post", "/api/confirmations/{}/versions/{}/decision"),
    ],
}


def _shape(path: str) -> str:
    """A path with its parameters' names dropped: `{order_id}` and `{id}` are the same route."""
    return re.sub(r"\{[^}]+\}", "{}", path)


@pytest.fixture(scope="module")
def schema(server: ServerProcess) -> dict[str, Any]:
    resp = httpx.get(server.base_url + "/openapi.json", timeout=10)
    assert resp.status_code == 200, resp.text
    document: dict[str, Any] = resp.json()
    return document


@pytest.fixture(scope="module")
def operations(schema: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, _shape(path))
        for path, item in schema["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }


def _cases(groups: dict[str, list[tuple[str, str]]]) -> list[Any]:
    return [
        pytest.param(group, method, path, id=f"{group}:{method.upper()} {path}")
        for group, routes in groups.items()
        for method, path in routes
    ]


@pytest.mark.parametrize(("group", "method", "path"), _cases(REQUIRED))
def test_order_and_webhook_routes_are_documented(
    operations: set[tuple[str, str]], group: str, method: str, path: str
) -> None:
    assert (method, path) in operations, f"{group}: {method.upper()} {path} is not in the document"


@pytest.mark.parametrize(("group", "method", "path"), _cases(EXPECTED))
def test_routes_built_elsewhere_are_documented_once_they_exist(
    operations: set[tuple[str, str]], group: str, method: str, path: str
) -> None:
    if (method, path) not in operations:
        pytest.skip(f"{group}: {method.upper()} {path} is not built yet")


def test_webhook_documents_its_signature_headers_and_body(schema: dict[str, Any]) -> None:
    operation = schema["paths"]["/api/webhooks/orders"]["post"]
    headers = {p["name"].lower() for p in operation["parameters"] if p["in"] == "header"}
    assert {"x-orderchat-timestamp", "x-orderchat-signature"} <= headers
    assert "idempotency-key" not in headers
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    events = {option["properties"]["event"]["const"] for option in body["oneOf"]}
    assert events == {"order.created", "order.status"}


def test_every_http_route_is_in_the_document(tmp_path: Path, schema: dict[str, Any]) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    documented = {(m, _shape(p)) for p, item in schema["paths"].items() for m in item}
    missing = [
        f"{method} {route.path}"
        for route in app.routes
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in sorted(route.methods or ())
        if (method.lower(), _shape(route.path)) not in documented
    ]
    assert not missing


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    ]


def test_no_operation_documents_a_status_the_server_never_answers(schema: dict[str, Any]) -> None:
    """Bad input is 400 here; FastAPI's default 422 and its body are gone from the document."""
    documented_422 = [f"{m} {p}" for m, p, op in _operations(schema) if "422" in op["responses"]]
    assert not documented_422
    assert "HTTPValidationError" not in schema["components"]["schemas"]


def test_every_error_status_documents_the_error_body(schema: dict[str, Any]) -> None:
    body = schema["components"]["schemas"]["ErrorBody"]
    assert body["required"] == ["error"]
    wrong = [
        f"{method} {path} {status}"
        for method, path, operation in _operations(schema)
        for status, response in operation["responses"].items()
        if int(status) >= 400
        and response["content"]["application/json"]["schema"]
        != {"$ref": "#/components/schemas/ErrorBody"}
    ]
    assert not wrong


def test_every_signed_in_operation_documents_401(schema: dict[str, Any]) -> None:
    public = {("get", "/healthz"), ("post", "/api/auth/login"), ("post", "/api/auth/invitation")}
    public |= {("post", "/api/webhooks/orders"), ("options", "/api/uploads")}
    # A staff link is opened by someone who has no session yet.
    public |= {("post", "/api/staff-links/check"), ("post", "/api/staff-links/accept")}
    # A visitor starts a consult before they have a session; product photos are public.
    public |= {("post", "/api/consults/start"), ("get", "/api/products/{sku}/picture")}
    missing = [
        f"{method} {path}"
        for method, path, operation in _operations(schema)
        if (method, path) not in public and "401" not in operation["responses"]
    ]
    assert not missing


def test_a_method_the_path_does_not_take_gets_405_with_allow(server: ServerProcess) -> None:
    resp = httpx.request("TRACE", f"{server.base_url}/api/skus/some-sku", timeout=10)
    assert resp.status_code == 405
    assert resp.headers["allow"] == "GET, PATCH"
    assert resp.json() == {
        "error": {
            "code": "bad_request",
            "message": "该地址不支持此请求方法",
            "reason": "request.method_not_allowed",
            "params": {},
        }
    }


def test_a_keyed_method_the_path_does_not_take_gets_405_not_409(server: ServerProcess) -> None:
    assert server.admin is not None
    headers = {**server.auth(server.admin.token), "Idempotency-Key": "k-405"}
    for _ in range(2):
        resp = httpx.patch(f"{server.base_url}/api/conversations", headers=headers, timeout=10)
        assert resp.status_code == 405, resp.text
        assert resp.headers["allow"] == "GET, POST"


# Statuses that carry no body, and HEAD, whose answers never do.
BODILESS_STATUSES = {"204", "304"}


def _success_is_described(method: str, status: str, response: dict[str, Any]) -> bool:
    content = response.get("content")
    if not content:
        return status in BODILESS_STATUSES or method == "head"
    return all(
        media.get("schema") not in (None, {})
        and (kind != "application/json" or "$ref" in media["schema"])
        for kind, media in content.items()
    )


def test_every_operation_describes_its_success_bodies(schema: dict[str, Any]) -> None:
    """A new route cannot slip in as "any JSON": each success names its body or its type."""
    undescribed = []
    for method, path, operation in _operations(schema):
        successes = {s: r for s, r in operation["responses"].items() if int(s) < 400}
        wrong = [s for s, r in successes.items() if not _success_is_described(method, s, r)]
        if not successes or wrong:
            undescribed.append(f"{method.upper()} {path} {wrong or 'no success status'}")
    assert not undescribed, "add them to api/response_schemas/table.py"


def test_every_success_table_entry_names_a_documented_operation(schema: dict[str, Any]) -> None:
    from orderchat.api.response_schemas import SUCCESSES

    stale = [
        f"{method.upper()} {path}"
        for method, path in SUCCESSES
        if method not in schema["paths"].get(path, {})
    ]
    assert not stale


def test_success_bodies_are_component_schemas(schema: dict[str, Any]) -> None:
    operation = schema["paths"]["/api/orders/{order_id}"]["get"]
    body = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/OrderDetail"}
    detail = schema["components"]["schemas"]["OrderDetail"]
    assert detail["additionalProperties"] is False
    assert {"id", "status", "allowed", "workflow_detail"} <= set(detail["required"])
    assert "ship_approved" not in detail["required"]


def test_an_empty_kind_filter_is_documented_as_the_server_answers_it(
    schema: dict[str, Any],
) -> None:
    """`?kind=` lists every file: the document's pattern must let the fuzzer send it."""
    pattern = next(
        p["schema"]["pattern"]
        for p in schema["paths"]["/api/conversations/{conv_id}/files"]["get"]["parameters"]
        if p["name"] == "kind"
    )
    assert re.fullmatch(pattern, "") and re.fullmatch(pattern, "image,file")
    assert not re.fullmatch(pattern, "image,")
