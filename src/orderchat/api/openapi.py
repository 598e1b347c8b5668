"""What `/openapi.json` says about answers: success and error bodies, and which statuses.

Routes declare their error statuses with `errors(...)`; the document then
lists those and nothing else. FastAPI would add a 422 to every route that
takes input, but this server never answers 422 (`api/errors.py` turns a
validation failure into 400 `bad_request`), so `install` takes it out again.

The routes answer with plain dicts, which FastAPI documents as "any JSON";
`install` writes each success's real body in from `api.response_schemas`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import FastAPI
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from orderchat.api import response_schemas
from orderchat.core.errors import ErrorCode

ERROR_SCHEMA_REF = "#/components/schemas/ErrorBody"

DESCRIPTIONS: dict[int, str] = {
    400: "bad_request: the request breaks a rule the message names",
    401: "unauthorized: no session token, or an unknown, expired or signed-out one",
    403: "forbidden: signed in, but the caller's roles do not allow it",
    404: "not_found: nothing with that id that the caller may see",
    405: "bad_request: the path does not take this method (see the Allow header)",
    409: "conflict: the object's present state does not allow it",
    412: "bad_request: the Tus-Resumable header names a version this server does not speak",
    413: "too_large: the request or the file is over the limit",
    415: "bad_request: the body is not sent as the content type this route takes",
    416: "bad_request: the Range header asks for bytes the file does not have",
    429: "rate_limited: too many attempts; the Retry-After header says when to try again",
    460: "bad_request: the Upload-Checksum does not match the bytes sent",
}


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: ErrorCode
    message: str = Field(
        description="What went wrong, in the request's language (Accept-Language: zh-CN or en)."
    )
    reason: str = Field(
        description="The stable key of the message's text (docs/texts.md): what went wrong, "
        "for clients that word it themselves."
    )
    params: dict[str, Any] = Field(description="The values the message was worded with.")


class ErrorBody(BaseModel):
    """Every failure's body: `{"error": {"code", "message", "reason", "params"}}`."""

    model_config = ConfigDict(extra="forbid")
    error: ErrorDetail


# Text fields are stripped and must keep a character (`core.model.text_field`).
NON_BLANK = r"\S"


def rule(**schema: Any) -> Any:
    """A rule the service checks, stated in the document only.

    The service stays the one judge of its input (with its own statuses, such
    as 413 for an over-long text); the document tells clients and the fuzzer
    what it will accept.
    """
    return Field(json_schema_extra=schema)


def _whole(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# JSON has one kind of number: 12.0 is the integer 12 (JSON Schema says so too),
# which a strict int field alone would refuse.
WholeNumber = Annotated[int, BeforeValidator(_whole)]


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for these error statuses, each with the error body."""
    return {
        status: {"model": ErrorBody, "description": DESCRIPTIONS[status]} for status in statuses
    }


def error_response_entry(status: int) -> dict[str, Any]:
    """One error status as it stands in the finished document."""
    return {
        "description": DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": ERROR_SCHEMA_REF}}},
    }


_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def _without_validation_errors(schema: dict[str, Any]) -> dict[str, Any]:
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict):
                operation.get("responses", {}).pop("422", None)
    components = schema.get("components", {}).get("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        components.pop(name, None)
    return schema


SUCCESS_DESCRIPTIONS: dict[int, str] = {
    200: "OK",
    201: "created",
    204: "done; no body",
    206: "the bytes the Range header asked for",
    304: "not modified: the ETag in If-None-Match still holds",
}
_COMPONENT_REF = "#/components/schemas/{model}"


def _success_content(
    answer: response_schemas.table.Answer, refs: dict[type[BaseModel], str]
) -> dict[str, Any] | None:
    if isinstance(answer, response_schemas.NoBody):
        return None
    if isinstance(answer, dict):
        return copy.deepcopy(answer)  # later passes may edit the document in place
    return {"application/json": {"schema": {"$ref": refs[answer]}}}


def _success_components(schema: dict[str, Any]) -> dict[type[BaseModel], str]:
    """Add every response model to `components/schemas`; each model's `$ref`."""
    found, defs = models_json_schema(
        [(model, "serialization") for model in response_schemas.models()],
        ref_template=_COMPONENT_REF,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    clash = sorted(set(defs.get("$defs", {})) & set(components))
    if clash:
        raise ValueError(f"response models named like request models: {clash}")
    components.update(defs.get("$defs", {}))
    return {model: ref["$ref"] for (model, _), ref in found.items() if issubclass(model, BaseModel)}


def _with_success_schemas(schema: dict[str, Any]) -> dict[str, Any]:
    """Each success status of each operation in the table, with its body.

    An entry whose operation is gone is skipped here (the document still
    builds) and caught by tests/integration/test_openapi.py.
    """
    refs = _success_components(schema)
    paths = schema.get("paths", {})
    for (method, path), answers in response_schemas.SUCCESSES.items():
        operation = paths.get(path, {}).get(method)
        if operation is None:
            continue
        responses = operation.setdefault("responses", {})
        for status, answer in answers.items():
            entry = responses.setdefault(str(status), {})
            entry.setdefault("description", SUCCESS_DESCRIPTIONS[status])
            content = _success_content(answer, refs)
            if content is None:
                entry.pop("content", None)
            else:
                entry["content"] = content
    return schema


def install(app: FastAPI, *passes: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Build the document once, then run the finishing passes over it.

    FastAPI's documented way to change the schema is to replace `app.openapi`.
    """
    build = app.openapi
    cached: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not cached:
            schema = _without_validation_errors(build())
            schema = _with_success_schemas(schema)
            for finish in passes:
                schema = finish(schema)
            cached.update(schema)
        return cached

    app.openapi = openapi  # type: ignore[method-assign]
