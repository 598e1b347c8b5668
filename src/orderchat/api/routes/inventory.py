"""HTTP routes: the SKU catalogue (JSON and CSV), stock levels and movements."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict
from pydantic.config import JsonDict

from orderchat.api.errors import reader_language
from orderchat.api.openapi import NON_BLANK, WholeNumber, errors, rule
from orderchat.api.responses import Json
from orderchat.api.runtime import AuthDep, RuntimeDep
from orderchat.core.catalogue_import import (
    MAX_IMPORT_BYTES,
    ImportPreview,
    RowAction,
    RowError,
    decode_catalogue_csv,
)
from orderchat.core.errors import TooLarge
from orderchat.core.ids import OrderId, SkuCode
from orderchat.core.orders import MAX_PRICE_CENTS
from orderchat.core.permissions import Action, check
from orderchat.core.stock import (
    MAX_CATEGORY_CHARS,
    MAX_LOCATION_CHARS,
    MAX_NAME_CHARS,
    MAX_QUANTITY,
    MAX_REASON_CHARS,
    RECORDABLE_KINDS,
    Movement,
    MovementKind,
    StockLevel,
    parse_movement,
    parse_sku_changes,
    validate_sku,
)
from orderchat.core.texts import say
from orderchat.services.stock.ledger import SkuStock

router = APIRouter(prefix="/api", tags=["inventory"])

# A body is parsed here into the core value the use case takes. Who may make the
# change is checked first (the use case checks again), so a caller who may not
# learns nothing about the rules of the body.

MAX_SKU_PAGE = 500
MAX_SKU_OFFSET = 1_000_000
MAX_LEVEL_PAGE = 5000
MAX_MOVEMENT_PAGE = 1000


SKU_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
SkuCodeField = Annotated[str, rule(pattern=SKU_CODE_PATTERN)]
Name = Annotated[str, rule(maxLength=MAX_NAME_CHARS)]
Category = Annotated[str, rule(maxLength=MAX_CATEGORY_CHARS)]
Price = Annotated[WholeNumber, rule(minimum=0, maximum=MAX_PRICE_CENTS)]
Threshold = Annotated[WholeNumber, rule(minimum=0, maximum=MAX_QUANTITY)]
Location = Annotated[
    str | None, rule(maxLength=MAX_LOCATION_CHARS, pattern=r"^[^\x00-\x1f\x7f]*\S")
]
# A SKU needs a name in at least one language.
_NAMED: JsonDict = {
    "anyOf": [
        {
            "properties": {"name_zh": {"type": "string", "pattern": NON_BLANK}},
            "required": ["name_zh"],
        },
        {
            "properties": {"name_en": {"type": "string", "pattern": NON_BLANK}},
            "required": ["name_en"],
        },
    ]
}


class NewSkuBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", json_schema_extra=_NAMED)
    sku: SkuCodeField
    name_zh: Name = ""
    name_en: Name = ""
    category: Category = ""
    unit_price_cents: Price
    low_stock_threshold: Threshold = 0
    active: bool = True


class SkuChangesBody(BaseModel):
    """Only the fields given change; a SKU keeps a name in at least one language."""

    model_config = ConfigDict(strict=True, extra="forbid")
    name_zh: Annotated[str | None, rule(maxLength=MAX_NAME_CHARS)] = None
    name_en: Annotated[str | None, rule(maxLength=MAX_NAME_CHARS)] = None
    category: Annotated[str | None, rule(maxLength=MAX_CATEGORY_CHARS)] = None
    # Unset fields stay out of the changes (exclude_unset); these take no null.
    unit_price_cents: Price = 0
    low_stock_threshold: Threshold = 0
    active: bool = True


class MovementBody(BaseModel):
    """Which locations a movement names depends on its kind (see `core.stock.parse_movement`)."""

    model_config = ConfigDict(strict=True, extra="forbid")
    sku: SkuCodeField
    kind: Annotated[str, rule(enum=[k.value for k in RECORDABLE_KINDS])]
    quantity: Annotated[WholeNumber, rule(minimum=1, maximum=MAX_QUANTITY)]
    reason: Annotated[str, rule(maxLength=MAX_REASON_CHARS, pattern=NON_BLANK)]
    from_location: Location = None
    to_location: Location = None
    order_id: Annotated[str | None, rule(minLength=1, maxLength=32)] = None


def level_view(level: StockLevel) -> dict[str, Any]:
    return {
        "sku": level.sku,
        "location": level.location,
        "on_hand": level.on_hand,
        "reserved": level.reserved,
        "available": level.available,
    }


def sku_view(stock: SkuStock) -> dict[str, Any]:
    sku = stock.sku
    return {
        "sku": sku.sku,
        "name_zh": sku.name_zh,
        "name_en": sku.name_en,
        "category": sku.category,
        "unit_price_cents": sku.unit_price_cents,
        "low_stock_threshold": sku.low_stock_threshold,
        "active": sku.active,
        "on_hand": stock.on_hand,
        "reserved": stock.reserved,
        "available": stock.available,
        "levels": [level_view(level) for level in stock.levels],
    }


def movement_view(movement: Movement) -> dict[str, Any]:
    return {
        "id": movement.id,
        "sku": movement.sku,
        "kind": movement.kind.value,
        "from_location": movement.from_location,
        "to_location": movement.to_location,
        "quantity": movement.quantity,
        "order_id": movement.order_id,
        "reason": movement.reason,
        "by": movement.by,
        "ts": movement.ts_ms,
    }


@router.post("/skus", status_code=201, responses=errors(400, 401, 403, 409, 413))
async def create_sku(body: NewSkuBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    check(auth.user, Action.MANAGE_CATALOGUE)
    stock = await runtime.inventory.create_sku(auth.user, validate_sku(body.model_dump()))
    return Json(sku_view(stock), status_code=201)


@router.get("/skus", responses=errors(400, 401, 403))
async def list_skus(
    auth: AuthDep,
    runtime: RuntimeDep,
    q: Annotated[str, Query(max_length=200)] = "",
    category: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_SKU_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_SKU_OFFSET)] = 0,
) -> Json:
    """A page of the SKUs matching `q`, and how many match in all (`total`)."""
    found, total = await runtime.inventory.list_skus(auth.user, q, category, limit, offset)
    return Json({"skus": [sku_view(s) for s in found], "total": total})


@router.get(
    "/skus/export",
    response_class=Response,
    responses={
        200: {
            "description": "the whole catalogue as CSV, the columns the import takes",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **errors(401, 403),
    },
)
async def export_skus(auth: AuthDep, runtime: RuntimeDep) -> Response:
    text = await runtime.inventory.export_csv(auth.user)
    return Response(
        text.encode(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="skus.csv"'},
    )


_CSV_BODY = {
    "requestBody": {
        "required": True,
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


@router.post("/skus/import/preview", responses=errors(400, 401, 403, 413), openapi_extra=_CSV_BODY)
async def preview_import(request: Request, auth: AuthDep, runtime: RuntimeDep) -> Json:
    """What importing this CSV (text/csv body) would do, row by row; nothing is written.

    Apply it with `POST /api/skus/import?token=…` and the same body.
    """
    check(auth.user, Action.MANAGE_CATALOGUE)
    preview = await runtime.inventory.preview_import(auth.user, await _csv_text(request))
    return Json(preview_view(preview, await reader_language(request)))


@router.post(
    "/skus/import",
    responses=errors(400, 401, 403, 409, 413),
    openapi_extra=_CSV_BODY,
)
async def import_skus(
    request: Request,
    auth: AuthDep,
    runtime: RuntimeDep,
    token: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            description="the preview's token: refuse (409) if the catalogue changed since",
        ),
    ] = None,
) -> Json:
    """Import a catalogue CSV (text/csv body): all rows, or none and a 400 naming the line."""
    check(auth.user, Action.MANAGE_CATALOGUE)
    result = await runtime.inventory.import_csv(auth.user, await _csv_text(request), token)
    return Json(
        {
            "rows": result.rows,
            "created": result.created,
            "updated": result.updated,
            "stock_changes": result.stock_changes,
        }
    )


async def _csv_text(request: Request) -> str:
    """The body, refused before it is read when it says it is too large."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_IMPORT_BYTES:
        raise TooLarge(
            say("api_inventory.csv_larger_than_bytes_split", max_import_bytes=MAX_IMPORT_BYTES)
        )
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_IMPORT_BYTES:
            raise TooLarge(
                say("api_inventory.csv_larger_than_bytes_split", max_import_bytes=MAX_IMPORT_BYTES)
            )
    return decode_catalogue_csv(bytes(raw))


def preview_view(preview: ImportPreview, language: str) -> dict[str, Any]:
    """The preview, its reasons worded in the reader's language."""
    rows = preview.rows
    return {
        "token": preview.token,
        "valid": preview.valid,
        "summary": {
            "rows": len(rows),
            **{action.value: preview.count(action) for action in RowAction},
            "stock_changes": len(preview.plan.levels),
        },
        "rows": [
            {
                "line": row.line,
                "sku": row.sku,
                "action": row.action.value,
                "changes": [
                    {"field": c.field, "old": c.old, "new": c.new, "location": c.location}
                    for c in row.changes
                ],
                "errors": [error_view(e, language) for e in row.errors],
            }
            for row in rows
        ],
        "errors": [error_view(e, language) for e in preview.errors],
    }


def error_view(error: RowError, language: str) -> dict[str, Any]:
    reason = error.reason.render(language)
    return {"line": error.line, "column": error.column, "reason": reason, "key": error.reason.key}


@router.get("/skus/{sku}", responses=errors(401, 403, 404))
async def get_sku(sku: SkuCode, auth: AuthDep, runtime: RuntimeDep) -> Json:
    return Json(sku_view(await runtime.inventory.get_sku(auth.user, sku)))


@router.patch("/skus/{sku}", responses=errors(400, 401, 403, 404, 413))
async def update_sku(
    sku: SkuCode, body: SkuChangesBody, auth: AuthDep, runtime: RuntimeDep
) -> Json:
    check(auth.user, Action.MANAGE_CATALOGUE)
    changes = parse_sku_changes(body.model_dump(exclude_unset=True))
    stock = await runtime.inventory.update_sku(auth.user, sku, changes)
    return Json(sku_view(stock))


@router.post("/stock/movements", status_code=201, responses=errors(400, 401, 403, 409, 413))
async def record_movement(body: MovementBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    check(auth.user, Action.MOVE_STOCK)
    result = await runtime.inventory.record_movement(auth.user, parse_movement(body.model_dump()))
    return Json(
        {
            "movement": movement_view(result.movement),
            "sku": sku_view(result.stock),
            "levels": [level_view(level) for level in result.stock.levels],
        },
        status_code=201,
    )


@router.get("/stock/movements", responses=errors(400, 401, 403))
async def list_movements(
    auth: AuthDep,
    runtime: RuntimeDep,
    sku: Annotated[
        SkuCode | None, Query(max_length=64, json_schema_extra={"pattern": SKU_CODE_PATTERN})
    ] = None,
    order_id: Annotated[OrderId | None, Query(max_length=32)] = None,
    kind: Annotated[
        str | None,
        Query(max_length=16, json_schema_extra={"enum": [k.value for k in MovementKind]}),
    ] = None,
    before: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_MOVEMENT_PAGE)] = 100,
) -> Json:
    found = await runtime.inventory.list_movements(
        auth.user, sku=sku, order_id=order_id, kind=kind, before=before, limit=limit
    )
    return Json({"movements": [movement_view(m) for m in found]})


@router.get("/stock", responses=errors(400, 401, 403))
async def list_levels(
    auth: AuthDep,
    runtime: RuntimeDep,
    sku: Annotated[SkuCode | None, Query(max_length=64)] = None,
    location: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LEVEL_PAGE)] = 500,
) -> Json:
    found = await runtime.inventory.list_levels(auth.user, sku, location, limit)
    return Json({"levels": [level_view(level) for level in found]})
