"""A catalogue CSV checked row by row and compared with the catalogue, with no I/O.

An import happens in two steps so that nothing is written before the owner
has seen what it will do:

1. preview: every row is checked and compared with the SKUs and levels it
   names, giving per row `create`, `update` (each changed field, old -> new),
   `unchanged` or `error` (line, column, reason). Nothing is written.
2. apply: the same file is planned again inside the write transaction, from
   the state read there. The preview's token is a digest of the file *and* of
   that state, so a token that no longer matches means someone changed the
   catalogue or the stock in between, and the apply is refused rather than
   doing something the owner did not see. A file with any error row is never
   applied: the owner fixes it and previews again.

A malformed file (not CSV, wrong header) has no rows to report on and is
refused whole, as `BadRequest` naming line 1 or the broken line.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TypeVar

from orderchat.core.errors import BadRequest, DomainError, TooLarge
from orderchat.core.ids import SkuCode
from orderchat.core.model import text_field
from orderchat.core.orders import cents
from orderchat.core.stock import (
    DEFAULT_LOCATION,
    MAX_CATEGORY_CHARS,
    MAX_IMPORT_ROWS,
    MAX_NAME_CHARS,
    MAX_QUANTITY,
    ImportRow,
    Sku,
    StockLevel,
    csv_header,
    level_at,
    quantity,
    validate_location,
    validate_sku_code,
    whole_number,
)
from orderchat.core.texts import Text, say

T = TypeVar("T")

# A catalogue of 50,000 SKUs with long bilingual names fits well inside this.
MAX_IMPORT_BYTES = 20 * 1024 * 1024

# The catalogue fields an import compares and writes; `active` is left alone.
COMPARED_FIELDS = (
    "name_zh",
    "name_en",
    "category",
    "unit_price_cents",
    "low_stock_threshold",
)


class RowAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    column: str | None  # None: the row as a whole (a repeat, the field count)
    reason: Text


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field a row changes; `location` is set for an `on_hand` change."""

    field: str
    old: str | int | None
    new: str | int
    location: str | None = None


@dataclass(frozen=True, slots=True)
class PreviewRow:
    line: int
    sku: str
    action: RowAction
    changes: tuple[FieldChange, ...] = ()
    errors: tuple[RowError, ...] = ()


@dataclass(frozen=True, slots=True)
class CatalogueCsv:
    """A parsed file: the rows that passed their own checks and the errors of the others."""

    text: str
    rows: tuple[ImportRow, ...]
    errors: tuple[RowError, ...]
    # The code each line names, error rows included where the code itself was readable.
    codes: Mapping[int, str]


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """What applying the file writes: SKUs to insert and rewrite, levels and their deltas."""

    new: tuple[Sku, ...]
    edited: tuple[Sku, ...]
    levels: tuple[tuple[StockLevel, int], ...]  # the level after, and on_hand's change


@dataclass(frozen=True, slots=True)
class ImportPreview:
    token: str
    rows: tuple[PreviewRow, ...]
    plan: ImportPlan

    @property
    def errors(self) -> list[RowError]:
        return [error for row in self.rows for error in row.errors]

    @property
    def valid(self) -> bool:
        return all(row.action is not RowAction.ERROR for row in self.rows)

    def count(self, action: RowAction) -> int:
        return sum(1 for row in self.rows if row.action is action)


# --- reading the file ------------------------------------------------------------------


def decode_catalogue_csv(raw: bytes) -> str:
    """UTF-8 (with or without a BOM), or GB18030, which Excel in Chinese saves CSV as."""
    if len(raw) > MAX_IMPORT_BYTES:
        raise TooLarge(
            say("api_inventory.csv_larger_than_bytes_split", max_import_bytes=MAX_IMPORT_BYTES)
        )
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise BadRequest(say("api_inventory.csv_must_utf_8_gb18030"))


def read_catalogue_csv(text: str) -> CatalogueCsv:
    """Every row checked on its own and against the rows before it.

    Raises:
        BadRequest: not CSV, a bad header, or no rows at all.
        TooLarge: more than MAX_IMPORT_ROWS rows.
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[ImportRow] = []
    errors: list[RowError] = []
    codes: dict[int, str] = {}
    try:
        header = csv_header(next(reader, None))
        count = 0
        for raw in reader:
            if not any(cell.strip() for cell in raw):
                continue
            count += 1
            if count > MAX_IMPORT_ROWS:
                raise TooLarge(say("catalogue.too_many_rows", max_rows=MAX_IMPORT_ROWS))
            line = reader.line_num
            checked = _check_row(line, header, raw)
            if isinstance(checked, ImportRow):
                rows.append(checked)
                codes[line] = checked.sku.sku
            else:
                errors.extend(checked[0])
                codes[line] = checked[1]
    except csv.Error as exc:
        raise BadRequest(
            say("catalogue.csv_line_unreadable", line=reader.line_num, reason=str(exc))
        ) from exc
    if count == 0:
        raise BadRequest(say("catalogue.csv_has_no_rows"))
    kept, repeats = _without_repeats(rows)
    return CatalogueCsv(text, tuple(kept), tuple(errors + repeats), codes)


def _check_row(
    line: int, header: list[str], raw: list[str]
) -> ImportRow | tuple[list[RowError], str]:
    """The row, or its errors (one per bad column) and the code it names."""
    if len(raw) != len(header):
        at = header.index("sku")
        named = raw[at].strip() if at < len(raw) else ""
        return [
            RowError(line, None, say("catalogue.field_count", expected=len(header), found=len(raw)))
        ], named
    cells = {name: value.strip() for name, value in zip(header, raw, strict=True)}
    errors: list[RowError] = []

    def field(column: str, check: Callable[[str], T]) -> T | None:
        try:
            return check(cells.get(column, ""))
        except DomainError as exc:
            errors.append(RowError(line, column, exc.text))
            return None

    code = field("sku", validate_sku_code)
    name_zh = field("name_zh", lambda v: text_field(v, "name_zh", MAX_NAME_CHARS, required=False))
    name_en = field("name_en", lambda v: text_field(v, "name_en", MAX_NAME_CHARS, required=False))
    if name_zh == "" and name_en == "":
        errors.append(RowError(line, "name_zh", say("catalogue.sku_needs_name")))
    category = field(
        "category", lambda v: text_field(v, "category", MAX_CATEGORY_CHARS, required=False)
    )
    price = field(
        "unit_price_cents",
        lambda v: cents(whole_number(v, "unit_price_cents"), "unit_price_cents"),
    )
    threshold = field(
        "low_stock_threshold",
        lambda v: quantity(
            whole_number(v, "low_stock_threshold"), "low_stock_threshold", zero=True
        ),
    )
    location, on_hand = _stock_cells(line, cells, errors)
    if errors:
        return errors, cells.get("sku", "")
    assert code is not None and name_zh is not None and name_en is not None
    assert category is not None and price is not None and threshold is not None
    sku = Sku(code, name_zh, name_en, category, price, threshold)
    return ImportRow(line, sku, location, on_hand)


def _stock_cells(
    line: int, cells: Mapping[str, str], errors: list[RowError]
) -> tuple[str | None, int | None]:
    location, on_hand = cells.get("location", ""), cells.get("on_hand", "")
    if not on_hand:
        if location:
            errors.append(
                RowError(
                    line, "on_hand", say("catalogue.location_without_on_hand", location=location)
                )
            )
        return None, None
    try:
        # A level below zero is what export prints after an adjustment wrote off
        # more than the books had; importing that file again must not fail.
        sign = -1 if on_hand[0] == "-" else 1
        count = whole_number(on_hand.removeprefix("-"), "on_hand") * sign
        if abs(count) > MAX_QUANTITY:
            raise BadRequest(say("catalogue.on_hand_too_large", max_quantity=MAX_QUANTITY))
    except DomainError as exc:
        errors.append(RowError(line, "on_hand", exc.text))
        count = None
    try:
        place = validate_location(location or DEFAULT_LOCATION)
    except DomainError as exc:
        errors.append(RowError(line, "location", exc.text))
        place = None
    return place, count


def _without_repeats(rows: list[ImportRow]) -> tuple[list[ImportRow], list[RowError]]:
    """A SKU on several lines must agree; a (SKU, location) pair may be counted once."""
    first: dict[str, ImportRow] = {}
    places: dict[tuple[str, str], int] = {}
    kept: list[ImportRow] = []
    errors: list[RowError] = []
    for row in rows:
        seen = first.setdefault(row.sku.sku, row)
        if seen.sku != row.sku:
            errors.append(
                RowError(
                    row.line,
                    None,
                    say("catalogue.sku_repeated_differently", sku=row.sku.sku, other=seen.line),
                )
            )
            continue
        if row.location is not None:
            where = places.setdefault((row.sku.sku, row.location), row.line)
            if where != row.line:
                errors.append(
                    RowError(
                        row.line,
                        "location",
                        say(
                            "catalogue.sku_location_repeated",
                            sku=row.sku.sku,
                            location=row.location,
                            other=where,
                        ),
                    )
                )
                continue
        kept.append(row)
    return kept, errors


# --- comparing with the catalogue ----------------------------------------------------


def plan_import(
    parsed: CatalogueCsv,
    existing: Mapping[SkuCode, Sku],
    levels: Mapping[str, Mapping[str, StockLevel]],
) -> ImportPreview:
    """Each line's outcome against `existing` SKUs and their `levels` (by SKU, then location).

    `levels` must hold every level of every SKU the file counts stock for.
    """
    by_line: dict[int, PreviewRow] = {}
    for error in parsed.errors:
        row = by_line.get(error.line) or PreviewRow(
            error.line, parsed.codes.get(error.line, ""), RowAction.ERROR
        )
        by_line[error.line] = replace(row, errors=(*row.errors, error))
    new: dict[SkuCode, Sku] = {}
    edited: dict[SkuCode, Sku] = {}
    counted: list[tuple[StockLevel, int]] = []
    described: set[str] = set()
    for item in parsed.rows:
        code = item.sku.sku
        old = existing.get(code)
        changes: list[FieldChange] = []
        if code not in described:
            described.add(code)
            changes.extend(_field_changes(old, item.sku))
        if old is None:
            new[code] = item.sku
        elif changes:
            edited[code] = replace(item.sku, active=old.active)
        counts = _count_change(item, levels)
        problem = counts if isinstance(counts, RowError) else None
        if counts is not None and not isinstance(counts, RowError):
            changes.append(counts[0])
            counted.append(counts[1])
        if problem is not None:
            by_line[item.line] = PreviewRow(item.line, code, RowAction.ERROR, errors=(problem,))
            continue
        action = (
            RowAction.CREATE
            if old is None
            else RowAction.UPDATE
            if changes
            else RowAction.UNCHANGED
        )
        by_line[item.line] = PreviewRow(item.line, code, action, tuple(changes))
    plan = ImportPlan(tuple(new.values()), tuple(edited.values()), tuple(counted))
    rows = tuple(by_line[line] for line in sorted(by_line))
    return ImportPreview(import_token(parsed.text, existing, levels), rows, plan)


def _count_change(
    item: ImportRow, levels: Mapping[str, Mapping[str, StockLevel]]
) -> tuple[FieldChange, tuple[StockLevel, int]] | RowError | None:
    """A counted level that differs from the books: the change and the level after.

    A count below what open orders hold at the location is refused: those
    items are promised, and the orders would then ship what is not there.
    """
    if item.location is None or item.on_hand is None:
        return None
    code = item.sku.sku
    level = level_at(levels.get(code, {}), code, item.location)
    if item.on_hand == level.on_hand:
        return None
    if level.reserved and item.on_hand < level.reserved:
        return RowError(
            item.line,
            "on_hand",
            say(
                "catalogue.on_hand_below_reserved",
                on_hand=item.on_hand,
                reserved=level.reserved,
                sku=code,
                location=item.location,
            ),
        )
    change = FieldChange("on_hand", level.on_hand, item.on_hand, item.location)
    return change, (replace(level, on_hand=item.on_hand), item.on_hand - level.on_hand)


def _field_changes(old: Sku | None, new: Sku) -> list[FieldChange]:
    changes: list[FieldChange] = []
    for name in COMPARED_FIELDS:
        after = getattr(new, name)
        before = None if old is None else getattr(old, name)
        if before != after and not (old is None and after == ""):
            changes.append(FieldChange(name, before, after))
    return changes


def import_token(
    text: str,
    existing: Mapping[SkuCode, Sku],
    levels: Mapping[str, Mapping[str, StockLevel]],
) -> str:
    """A digest of the file and of the catalogue state it was compared with.

    Two previews give the same token exactly when they would write the same
    thing, so the apply step compares tokens instead of keeping previews.
    """
    digest = hashlib.sha256()
    digest.update(text.encode("utf-8", "surrogatepass"))
    for code in sorted(existing):
        sku = existing[code]
        fields = (sku.sku, *(str(getattr(sku, f)) for f in COMPARED_FIELDS), str(sku.active))
        digest.update(("\x1e" + "\x1f".join(fields)).encode())
    for counted in sorted(levels):
        for location in sorted(levels[counted]):
            level = levels[counted][location]
            digest.update(
                f"\x1d{counted}\x1f{location}\x1f{level.on_hand}\x1f{level.reserved}".encode()
            )
    return digest.hexdigest()[:32]


def counted_codes(parsed: CatalogueCsv) -> set[str]:
    """The SKUs whose levels the plan needs: those the file counts stock for."""
    return {row.sku.sku for row in parsed.rows if row.location is not None}


def first_error_message(preview: ImportPreview) -> Text:
    """A refusal naming the first bad line and how many there are."""
    errors = preview.errors
    first = errors[0]
    if len(errors) > 1:
        return say(
            "catalogue.first_error_and_more",
            line=first.line,
            reason=first.reason,
            more=len(errors) - 1,
        )
    return say("catalogue.first_error", line=first.line, reason=first.reason)
