"""Stock rules, with no I/O: what a movement does to the levels, how much an
order may hold, when a SKU crosses into low stock, and the catalogue's CSV form.

Levels are kept per (SKU, location). `on_hand` is what is on the shelf,
`reserved` what open orders hold of it, and `available = on_hand - reserved`
what can still be promised. The rules:

- Every quantity is a positive whole number. The kind of movement says which
  way stock goes (for an adjustment, the location it names: `from_location`
  writes stock off, `to_location` adds found stock).
- No movement but an adjustment may take more than is available: not below
  zero on the shelf, and not what other orders hold. An adjustment records what
  a stock count found, which is the truth whatever the books said, so it is
  the one kind allowed to leave a level short.
- An order's reservation is recorded in the movement ledger as `reserve` and
  `release` entries that carry the order id. What an order holds is the sum of
  its entries, never guessed from the order's status, so a partial reservation
  (stock ran short) is released or shipped exactly.

Storage reads levels and ledgers; the services call these functions and write
what they return.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from orderchat.core.errors import BadRequest, Conflict, DomainError, TooLarge
from orderchat.core.ids import MovementId, OrderId, SkuCode, UserId
from orderchat.core.model import text_field
from orderchat.core.orders import OrderItem, cents
from orderchat.core.texts import LANGUAGES, say

DEFAULT_LOCATION = "main"  # where orders reserve and ship from
MAX_QUANTITY = 1_000_000_000
MAX_REASON_CHARS = 500
MAX_NAME_CHARS = 200
MAX_CATEGORY_CHARS = 64
MAX_LOCATION_CHARS = 64
MAX_IMPORT_ROWS = 50_000

# Codes appear in URLs (`/api/skus/{sku}`) and CSV files: no '/', no spaces, no commas.
_SKU_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_WHOLE = re.compile(r"[0-9]{1,19}")


class MovementKind(StrEnum):
    PURCHASE_IN = "purchase_in"
    RETURN_IN = "return_in"
    SALE_OUT = "sale_out"
    TRANSFER = "transfer"
    ADJUSTMENT = "adjustment"
    # Ledger entries the order workflow writes; they move `reserved`, not `on_hand`.
    RESERVE = "reserve"
    RELEASE = "release"


# The kinds a person records; reservations are only made by orders.
RECORDABLE_KINDS = (
    MovementKind.PURCHASE_IN,
    MovementKind.RETURN_IN,
    MovementKind.SALE_OUT,
    MovementKind.TRANSFER,
    MovementKind.ADJUSTMENT,
)
_INWARD = frozenset({MovementKind.PURCHASE_IN, MovementKind.RETURN_IN})


@dataclass(frozen=True, slots=True)
class Sku:
    sku: SkuCode
    name_zh: str
    name_en: str
    category: str
    unit_price_cents: int
    low_stock_threshold: int
    active: bool = True

    def name(self, language: str = "zh-CN") -> str:
        """The name in `language`, falling back to the other one."""
        if language == "en":
            return self.name_en or self.name_zh
        return self.name_zh or self.name_en


@dataclass(frozen=True, slots=True)
class StockLevel:
    sku: SkuCode
    location: str
    on_hand: int = 0
    reserved: int = 0

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True, slots=True)
class Movement:
    """One ledger entry: who moved how much of what, from where to where, and why."""

    id: MovementId
    sku: SkuCode
    kind: MovementKind
    from_location: str | None
    to_location: str | None
    quantity: int
    order_id: OrderId | None
    reason: str
    by: UserId
    ts_ms: int


@dataclass(frozen=True, slots=True)
class MovementRequest:
    """A movement someone asked for, checked for shape but not yet against stock."""

    sku: SkuCode
    kind: MovementKind
    from_location: str | None
    to_location: str | None
    quantity: int
    reason: str
    order_id: OrderId | None = None


# --- checking input -------------------------------------------------------------


def validate_sku_code(raw: object) -> SkuCode:
    if not isinstance(raw, str) or not _SKU_CODE.fullmatch(raw.strip()):
        raise BadRequest(say("stock.sku_must_1_64_letters"))
    return SkuCode(raw.strip())


def validate_location(raw: object, what: str = "location") -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise BadRequest(say("stock.must_non_empty_string", what=what))
    location = raw.strip()
    if len(location) > MAX_LOCATION_CHARS or not location.isprintable():
        raise BadRequest(
            say(
                "stock.must_at_most_printable_characters",
                what=what,
                max_location_chars=MAX_LOCATION_CHARS,
            )
        )
    return location


def quantity(raw: object, what: str = "quantity", *, zero: bool = False) -> int:
    """A count of items: a whole number, positive (or zero when `zero`), not absurd."""
    low = 0 if zero else 1
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < low:
        kind = say("stock.zero_or_more") if zero else say("stock.a_positive_whole_number")
        raise BadRequest(say("stock.must_be_kind", what=what, kind=kind, raw=raw))
    if raw > MAX_QUANTITY:
        raise BadRequest(say("stock.larger_than", what=what, max_quantity=MAX_QUANTITY))
    return raw


def validate_sku(raw: Mapping[str, object]) -> Sku:
    """A catalogue entry from its fields (JSON body or CSV row)."""
    code = validate_sku_code(raw.get("sku"))
    name_zh = text_field(raw.get("name_zh"), "name_zh", MAX_NAME_CHARS, required=False)
    name_en = text_field(raw.get("name_en"), "name_en", MAX_NAME_CHARS, required=False)
    if not name_zh and not name_en:
        raise BadRequest(say("stock.sku_needs_name_give_name", code=code))
    active = raw.get("active", True)
    if not isinstance(active, bool):
        raise BadRequest(say("stock.active_must_true_false"))
    return Sku(
        sku=code,
        name_zh=name_zh,
        name_en=name_en,
        category=text_field(raw.get("category"), "category", MAX_CATEGORY_CHARS, required=False),
        unit_price_cents=cents(raw.get("unit_price_cents"), "unit_price_cents"),
        low_stock_threshold=quantity(
            raw.get("low_stock_threshold", 0), "low_stock_threshold", zero=True
        ),
        active=active,
    )


@dataclass(frozen=True, slots=True)
class SkuChanges:
    """Catalogue fields to change, each checked; None keeps the SKU's value.

    A name or category given as null clears it (""): a SKU keeps a name in at
    least one language, which only the SKU with the changes applied can show.
    """

    sku: SkuCode | None = None
    name_zh: str | None = None
    name_en: str | None = None
    category: str | None = None
    unit_price_cents: int | None = None
    low_stock_threshold: int | None = None
    active: bool | None = None


def parse_sku_changes(raw: Mapping[str, object]) -> SkuChanges:
    """The changes a request asks for; a field left out stays as it is."""
    active = raw.get("active")
    if "active" in raw and not isinstance(active, bool):
        raise BadRequest(say("stock.active_must_true_false"))

    def text(name: str, max_chars: int) -> str | None:
        return text_field(raw[name], name, max_chars, required=False) if name in raw else None

    return SkuChanges(
        sku=SkuCode(str(raw["sku"])) if "sku" in raw else None,
        name_zh=text("name_zh", MAX_NAME_CHARS),
        name_en=text("name_en", MAX_NAME_CHARS),
        category=text("category", MAX_CATEGORY_CHARS),
        unit_price_cents=(
            cents(raw["unit_price_cents"], "unit_price_cents")
            if "unit_price_cents" in raw
            else None
        ),
        low_stock_threshold=(
            quantity(raw["low_stock_threshold"], "low_stock_threshold", zero=True)
            if "low_stock_threshold" in raw
            else None
        ),
        active=active if isinstance(active, bool) else None,
    )


def changed_sku(current: Sku, changes: SkuChanges) -> Sku:
    """`current` with `changes` applied and checked again; the code never changes."""
    if changes.sku is not None and changes.sku != current.sku:
        raise BadRequest(say("stock.sku_s_code_cannot_change"))

    def pick(new: object, old: object) -> object:
        return old if new is None else new

    return validate_sku(
        {
            "sku": current.sku,
            "name_zh": pick(changes.name_zh, current.name_zh),
            "name_en": pick(changes.name_en, current.name_en),
            "category": pick(changes.category, current.category),
            "unit_price_cents": pick(changes.unit_price_cents, current.unit_price_cents),
            "low_stock_threshold": pick(changes.low_stock_threshold, current.low_stock_threshold),
            "active": pick(changes.active, current.active),
        }
    )


def parse_movement(raw: Mapping[str, object]) -> MovementRequest:
    """Check a movement's shape: kind, quantity, reason, and which locations it names.

    In-movements go to `main` and sale_out comes from `main` unless a location
    is given; a transfer names both ends; an adjustment names exactly one.
    """
    code = validate_sku_code(raw.get("sku"))
    kind = next((k for k in RECORDABLE_KINDS if k.value == raw.get("kind")), None)
    if kind is None:
        known = ", ".join(k.value for k in RECORDABLE_KINDS)
        raise BadRequest(say("stock.kind_must_one", known=known))
    order_id = raw.get("order_id")
    if order_id is not None and (not isinstance(order_id, str) or not 0 < len(order_id) <= 32):
        raise BadRequest(say("stock.order_id_must_order_s"))
    source, target = _locations(kind, raw.get("from_location"), raw.get("to_location"))
    return MovementRequest(
        sku=code,
        kind=kind,
        from_location=source,
        to_location=target,
        quantity=quantity(raw.get("quantity")),
        reason=text_field(raw.get("reason"), "reason", MAX_REASON_CHARS, required=True),
        order_id=None if order_id is None else OrderId(order_id),
    )


def _locations(kind: MovementKind, source: object, target: object) -> tuple[str | None, str | None]:
    has_source, has_target = source is not None, target is not None
    if kind in _INWARD:
        if has_source:
            raise BadRequest(say("stock.brings_stock_in_give_location", value=kind.value))
        return None, validate_location(target if has_target else DEFAULT_LOCATION, "to_location")
    if kind is MovementKind.SALE_OUT:
        if has_target:
            raise BadRequest(say("stock.sale_out_takes_stock_out"))
        return validate_location(source if has_source else DEFAULT_LOCATION, "from_location"), None
    if kind is MovementKind.TRANSFER:
        if not (has_source and has_target):
            raise BadRequest(say("stock.transfer_needs_both_from_location"))
        pair = validate_location(source, "from_location"), validate_location(target, "to_location")
        if pair[0] == pair[1]:
            raise BadRequest(say("stock.transfer_needs_two_different_locations"))
        return pair
    if has_source == has_target:
        raise BadRequest(say("stock.adjustment_names_one_location_from"))
    if has_source:
        return validate_location(source, "from_location"), None
    return None, validate_location(target, "to_location")


# --- stock math -----------------------------------------------------------------


def level_at(levels: Mapping[str, StockLevel], sku: SkuCode, location: str) -> StockLevel:
    """The level at `location`; a location never stocked holds nothing."""
    return levels.get(location) or StockLevel(sku, location)


def apply_movement(request: MovementRequest, levels: Mapping[str, StockLevel]) -> list[StockLevel]:
    """The SKU's levels the movement changes, after it; `levels` are by location.

    Raises:
        Conflict: the movement would take more than is available (adjustments excepted).
    """
    changed: list[StockLevel] = []
    if request.from_location is not None:
        source = level_at(levels, request.sku, request.from_location)
        if request.kind is not MovementKind.ADJUSTMENT:
            check_can_take(source, request.quantity)
        changed.append(replace(source, on_hand=source.on_hand - request.quantity))
    if request.to_location is not None:
        target = level_at(levels, request.sku, request.to_location)
        changed.append(replace(target, on_hand=target.on_hand + request.quantity))
    return changed


def check_can_take(level: StockLevel, wanted: int) -> None:
    """Refuse to take more than is available: not below zero, nor what orders hold."""
    if wanted <= level.available:
        return
    held = say("stock.held_for_open_orders", reserved=level.reserved) if level.reserved else ""
    raise Conflict(
        say(
            "stock.only_available_at_on_hand",
            available=max(level.available, 0),
            sku=level.sku,
            location=level.location,
            on_hand=level.on_hand,
            held=held,
            wanted=wanted,
        )
    )


def reservable(level: StockLevel, wanted: int) -> int:
    """How much of `wanted` can be held now: all of it, or what is available."""
    return max(0, min(wanted, level.available))


def shipped(level: StockLevel, wanted: int, held: int) -> StockLevel:
    """The level after `wanted` leaves for an order that holds `held` here.

    The order's whole reservation is used up (or given back, if it held more
    than it ships); what it did not hold must come from available stock.

    Raises:
        Conflict: not enough stock to ship.
    """
    held = min(held, level.reserved)
    unheld = max(wanted - held, 0)
    if unheld > max(level.available, 0) or wanted > level.on_hand:
        raise Conflict(
            say(
                "stock.cannot_ship_on_hand_at",
                wanted=wanted,
                sku=level.sku,
                on_hand=level.on_hand,
                location=level.location,
                held=held,
                available=max(level.available, 0),
            )
        )
    return replace(level, on_hand=level.on_hand - wanted, reserved=level.reserved - held)


def released(level: StockLevel, held: int) -> StockLevel:
    return replace(level, reserved=level.reserved - min(held, level.reserved))


def order_needs(items: Iterable[OrderItem]) -> dict[SkuCode, int]:
    """Quantity per SKU; an order may list one SKU on several lines."""
    needs: dict[SkuCode, int] = {}
    for item in items:
        needs[item.sku] = needs.get(item.sku, 0) + item.quantity
    return needs


def held_by_order(ledger: Iterable[Movement]) -> dict[SkuCode, int]:
    """What an order still holds per SKU, from its reserve/release entries."""
    return _net(ledger, MovementKind.RESERVE, MovementKind.RELEASE)


def out_with_order(ledger: Iterable[Movement]) -> dict[SkuCode, int]:
    """What an order shipped per SKU and has not had back yet."""
    return _net(ledger, MovementKind.SALE_OUT, MovementKind.RETURN_IN)


def _net(ledger: Iterable[Movement], plus: MovementKind, minus: MovementKind) -> dict[SkuCode, int]:
    net: dict[SkuCode, int] = {}
    for entry in ledger:
        sign = 1 if entry.kind is plus else -1 if entry.kind is minus else 0
        net[entry.sku] = net.get(entry.sku, 0) + sign * entry.quantity
    return {sku: n for sku, n in net.items() if n > 0}


def total_available(levels: Iterable[StockLevel]) -> int:
    return sum(level.available for level in levels)


def crossed_low(before: int, after: int, threshold: int) -> bool:
    """Whether available stock just went below the threshold (alert once, not on every move)."""
    return after < threshold <= before


# --- the catalogue as CSV ------------------------------------------------------------

CSV_COLUMNS = (
    "sku",
    "name_zh",
    "name_en",
    "category",
    "unit_price_cents",
    "low_stock_threshold",
)
CSV_STOCK_COLUMNS = ("location", "on_hand")


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One CSV line: the catalogue entry and, optionally, the stock counted at a location."""

    line: int
    sku: Sku
    location: str | None
    on_hand: int | None


def parse_catalogue_csv(text: str) -> list[ImportRow]:
    """Every row of a catalogue CSV, checked; the first problem is named by its line.

    A SKU may appear on several lines (one per location) if its catalogue
    fields agree; a (SKU, location) pair only once.

    Raises:
        BadRequest: a malformed file or row; nothing should be imported.
        TooLarge: more than MAX_IMPORT_ROWS rows.
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = csv_header(next(reader, None))
        rows: list[ImportRow] = []
        for raw in reader:
            if not any(cell.strip() for cell in raw):
                continue
            if len(rows) == MAX_IMPORT_ROWS:
                raise TooLarge(
                    say("stock.more_than_rows_split_file", max_import_rows=MAX_IMPORT_ROWS)
                )
            rows.append(_row(reader.line_num, header, raw))
    except csv.Error as exc:
        raise BadRequest(say("stock.problem_on_line", line=reader.line_num, reason=exc)) from exc
    if not rows:
        raise BadRequest(say("stock.csv_has_no_rows_under"))
    _check_repeats(rows)
    return rows


def csv_header(raw: list[str] | None) -> list[str]:
    if raw is None:
        raise BadRequest(say("stock.csv_empty_line_1_must"))
    header = [cell.strip().lower() for cell in raw]
    problems = [say("stock.header_missing", column=c) for c in CSV_COLUMNS if c not in header]
    problems += [
        say("stock.header_unknown", column=c)
        for c in header
        if c not in CSV_COLUMNS + CSV_STOCK_COLUMNS
    ]
    problems += [
        say("stock.header_twice", column=c) for c in sorted(set(header)) if header.count(c) > 1
    ]
    if ("location" in header) != ("on_hand" in header):
        problems.append(say("stock.header_location_with_on_hand"))
    if problems:
        expected = ",".join(CSV_COLUMNS) + "[," + ",".join(CSV_STOCK_COLUMNS) + "]"
        listed = {
            language: "; ".join(p.render(language) for p in problems) for language in LANGUAGES
        }
        raise BadRequest(say("stock.line_1_columns_must", expected=expected, problems=listed))
    return header


def _row(line: int, header: list[str], raw: list[str]) -> ImportRow:
    if len(raw) != len(header):
        raise BadRequest(
            say("stock.line_expected_fields_found", line=line, expected=len(header), found=len(raw))
        )
    cells = {name: value.strip() for name, value in zip(header, raw, strict=True)}
    try:
        sku = validate_sku(
            {
                **cells,
                "unit_price_cents": whole_number(cells["unit_price_cents"], "unit_price_cents"),
                "low_stock_threshold": whole_number(
                    cells["low_stock_threshold"], "low_stock_threshold"
                ),
            }
        )
        location, on_hand = cells.get("location", ""), cells.get("on_hand", "")
        if not on_hand:
            if location:
                raise BadRequest(say("stock.location_given_without_on_hand", location=location))
            return ImportRow(line, sku, None, None)
        # A level below zero is what export prints after an adjustment wrote off
        # more than the books had; importing that file again must not fail.
        sign = -1 if on_hand[0] == "-" else 1
        count = whole_number(on_hand.removeprefix("-"), "on_hand") * sign
        if abs(count) > MAX_QUANTITY:
            raise BadRequest(say("stock.on_hand_larger_than", max_quantity=MAX_QUANTITY))
        return ImportRow(line, sku, validate_location(location or DEFAULT_LOCATION), count)
    except DomainError as exc:
        raise BadRequest(say("stock.problem_on_line", line=line, reason=exc.text)) from exc


def whole_number(cell: str, what: str) -> int:
    if not _WHOLE.fullmatch(cell):
        raise BadRequest(say("stock.must_whole_number_got", what=what, cell=cell))
    return int(cell)


def _check_repeats(rows: list[ImportRow]) -> None:
    first: dict[str, ImportRow] = {}
    places: dict[tuple[str, str], int] = {}
    for row in rows:
        seen = first.setdefault(row.sku.sku, row)
        if seen.sku != row.sku:
            raise BadRequest(
                say(
                    "stock.line_sku_on_line_too",
                    line=row.line,
                    sku=row.sku.sku,
                    seen_line=seen.line,
                )
            )
        if row.location is not None:
            where = places.setdefault((row.sku.sku, row.location), row.line)
            if where != row.line:
                raise BadRequest(
                    say(
                        "stock.line_sku_at_on_line",
                        line=row.line,
                        sku=row.sku.sku,
                        location=row.location,
                        where=where,
                    )
                )


def format_catalogue_csv(entries: Iterable[tuple[Sku, list[StockLevel]]]) -> str:
    """The catalogue as CSV, one line per (SKU, location); importing it changes nothing."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS + CSV_STOCK_COLUMNS)
    for sku, levels in entries:
        fields = [
            sku.sku,
            sku.name_zh,
            sku.name_en,
            sku.category,
            sku.unit_price_cents,
            sku.low_stock_threshold,
        ]
        if not levels:
            writer.writerow([*fields, "", ""])
        for level in levels:
            writer.writerow([*fields, level.location, level.on_hand])
    return out.getvalue()
