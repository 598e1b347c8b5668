"""Stock rules: movement shapes, what may be taken, reservations, low stock, the CSV form."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from orderchat.core.errors import BadRequest, Conflict, TooLarge
from orderchat.core.ids import UserId
from orderchat.core.orders import OrderItem
from orderchat.core.stock import (
    DEFAULT_LOCATION,
    MAX_QUANTITY,
    Movement,
    MovementKind,
    Sku,
    StockLevel,
    apply_movement,
    changed_sku,
    crossed_low,
    format_catalogue_csv,
    held_by_order,
    order_needs,
    out_with_order,
    parse_catalogue_csv,
    parse_movement,
    parse_sku_changes,
    released,
    reservable,
    shipped,
    total_available,
    validate_sku,
)

TENT = Sku("TENT-1", "双人帐篷", "Two-person tent", "tents", 59900, 5)
HEADER = "sku,name_zh,name_en,category,unit_price_cents,low_stock_threshold"


def _move(**fields: object) -> dict[str, object]:
    return {"sku": "TENT-1", "kind": "purchase_in", "quantity": 3, "reason": "supplier", **fields}


def _levels(*levels: StockLevel) -> Mapping[str, StockLevel]:
    return {level.location: level for level in levels}


def _entry(kind: MovementKind, quantity: int, sku: str = "TENT-1") -> Movement:
    return Movement("mv_1", sku, kind, "main", None, quantity, "o_1", "order", UserId("u_1"), 1)


# --- movement shapes -------------------------------------------------------------


def test_in_movements_go_to_main_unless_told() -> None:
    request = parse_movement(_move())
    assert (request.from_location, request.to_location) == (None, DEFAULT_LOCATION)
    request = parse_movement(_move(kind="return_in", to_location=" shop "))
    assert (request.kind, request.to_location) == (MovementKind.RETURN_IN, "shop")


def test_sale_out_comes_from_main_unless_told() -> None:
    request = parse_movement(_move(kind="sale_out"))
    assert (request.from_location, request.to_location) == (DEFAULT_LOCATION, None)


def test_adjustment_names_exactly_one_location() -> None:
    down = parse_movement(_move(kind="adjustment", from_location="main"))
    up = parse_movement(_move(kind="adjustment", to_location="main"))
    assert (down.from_location, down.to_location) == ("main", None)
    assert (up.from_location, up.to_location) == (None, "main")
    for bad in ({}, {"from_location": "a", "to_location": "b"}):
        with pytest.raises(BadRequest, match="adjustment names one location"):
            parse_movement(_move(kind="adjustment", **bad))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"quantity": -1}, "positive whole number"),
        ({"quantity": 0}, "positive whole number"),
        ({"quantity": 2.5}, "positive whole number"),
        ({"quantity": True}, "positive whole number"),
        ({"quantity": MAX_QUANTITY + 1}, "larger than"),
        ({"kind": "reserve"}, "kind must be one of"),
        ({"kind": "teleport"}, "kind must be one of"),
        ({"reason": "  "}, "reason must not be empty"),
        ({"reason": None}, "reason must be a string"),
        ({"sku": "has space"}, "sku must be"),
        ({"sku": "a/b"}, "sku must be"),
        ({"from_location": "x"}, "give to_location, not from_location"),
        ({"kind": "sale_out", "to_location": "x"}, "give from_location"),
        ({"kind": "transfer", "from_location": "a"}, "both from_location and to_location"),
        ({"kind": "transfer", "from_location": "a", "to_location": "a"}, "two different"),
        ({"to_location": ""}, "to_location must be a non-empty string"),
        ({"order_id": 5}, "order_id"),
    ],
)
def test_bad_movements_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_movement(_move(**fields))


def test_long_reason_is_too_large() -> None:
    with pytest.raises(TooLarge):
        parse_movement(_move(reason="x" * 501))


# --- what a movement does ----------------------------------------------------------


def test_purchase_adds_to_a_location_never_stocked() -> None:
    changed = apply_movement(parse_movement(_move(quantity=7)), {})
    assert changed == [StockLevel("TENT-1", "main", 7, 0)]


def test_transfer_moves_between_locations() -> None:
    request = parse_movement(
        _move(kind="transfer", from_location="main", to_location="shop", quantity=4)
    )
    levels = _levels(StockLevel("TENT-1", "main", 10, 2), StockLevel("TENT-1", "shop", 1, 0))
    assert apply_movement(request, levels) == [
        StockLevel("TENT-1", "main", 6, 2),
        StockLevel("TENT-1", "shop", 5, 0),
    ]


def test_sale_cannot_go_below_zero() -> None:
    request = parse_movement(_move(kind="sale_out", quantity=4))
    with pytest.raises(Conflict, match="only 3 of TENT-1 available at main"):
        apply_movement(request, _levels(StockLevel("TENT-1", "main", 3, 0)))


def test_sale_and_transfer_cannot_take_what_orders_hold() -> None:
    levels = _levels(StockLevel("TENT-1", "main", 10, 8))
    for fields in (
        {"kind": "sale_out"},
        {"kind": "transfer", "from_location": "main", "to_location": "shop"},
    ):
        with pytest.raises(Conflict, match="8 of it reserved for open orders"):
            apply_movement(parse_movement(_move(quantity=3, **fields)), levels)


def test_adjustment_records_a_count_even_below_what_the_books_allow() -> None:
    request = parse_movement(_move(kind="adjustment", from_location="main", quantity=5))
    assert apply_movement(request, _levels(StockLevel("TENT-1", "main", 3, 2))) == [
        StockLevel("TENT-1", "main", -2, 2)
    ]


# --- reservations ---------------------------------------------------------------------


def test_reservable_is_what_is_available_at_most() -> None:
    assert reservable(StockLevel("T", "main", 10, 4), 5) == 5
    assert reservable(StockLevel("T", "main", 10, 7), 5) == 3
    assert reservable(StockLevel("T", "main", 2, 4), 5) == 0


def test_order_needs_add_up_lines_of_one_sku() -> None:
    items = [OrderItem("A", "a", 2, 100), OrderItem("B", "b", 1, 100), OrderItem("A", "a", 3, 100)]
    assert order_needs(items) == {"A": 5, "B": 1}


def test_ledger_sums_what_an_order_holds_and_has_out() -> None:
    ledger = [
        _entry(MovementKind.RESERVE, 3),
        _entry(MovementKind.RESERVE, 2),
        _entry(MovementKind.RELEASE, 5),
        _entry(MovementKind.RESERVE, 1, "B"),
        _entry(MovementKind.SALE_OUT, 4),
        _entry(MovementKind.RETURN_IN, 1),
    ]
    assert held_by_order(ledger) == {"B": 1}
    assert out_with_order(ledger) == {"TENT-1": 3}


def test_shipping_uses_up_the_reservation() -> None:
    level = StockLevel("T", "main", 10, 6)
    assert shipped(level, 4, 4) == StockLevel("T", "main", 6, 2)


def test_shipping_more_than_reserved_takes_the_rest_from_available() -> None:
    level = StockLevel("T", "main", 10, 6)  # 4 available, 2 held by this order
    assert shipped(level, 5, 2) == StockLevel("T", "main", 5, 4)
    with pytest.raises(Conflict, match="cannot ship 7"):
        shipped(level, 7, 2)


def test_shipping_cannot_take_stock_that_is_not_there() -> None:
    with pytest.raises(Conflict):
        shipped(StockLevel("T", "main", 1, 3), 3, 3)


def test_release_never_goes_below_zero_reserved() -> None:
    assert released(StockLevel("T", "main", 5, 3), 2) == StockLevel("T", "main", 5, 1)
    assert released(StockLevel("T", "main", 5, 1), 2) == StockLevel("T", "main", 5, 0)


# --- low stock -----------------------------------------------------------------------


def test_low_stock_alerts_only_on_crossing() -> None:
    assert crossed_low(5, 4, 5)
    assert crossed_low(10, 0, 5)
    assert not crossed_low(4, 3, 5)  # already low: no repeat
    assert not crossed_low(6, 5, 5)  # at the threshold is not below it
    assert not crossed_low(3, 8, 5)
    assert not crossed_low(0, 0, 0)


def test_total_available_sums_locations() -> None:
    assert total_available([StockLevel("T", "a", 5, 2), StockLevel("T", "b", 1, 0)]) == 4


# --- the catalogue -------------------------------------------------------------------------


def test_sku_needs_a_name_in_some_language() -> None:
    base = {"sku": "X1", "unit_price_cents": 100}
    assert validate_sku({**base, "name_en": "Rope"}).name("zh-CN") == "Rope"
    with pytest.raises(BadRequest, match="needs a name"):
        validate_sku(base)


@pytest.mark.parametrize(
    "fields",
    [
        {"unit_price_cents": -1},
        {"unit_price_cents": 1.5},
        {"low_stock_threshold": -3},
        {"sku": ""},
        {"active": "yes"},
        {"category": 7},
    ],
)
def test_bad_sku_fields_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(BadRequest):
        validate_sku({"sku": "X1", "name_zh": "绳", "unit_price_cents": 100, **fields})


def test_changing_a_sku_keeps_its_code() -> None:
    assert changed_sku(TENT, parse_sku_changes({"low_stock_threshold": 9})).low_stock_threshold == 9
    with pytest.raises(BadRequest, match="cannot change"):
        changed_sku(TENT, parse_sku_changes({"sku": "OTHER"}))


def test_csv_round_trip() -> None:
    rope = Sku("ROPE-9", "动力绳, 60米", 'Rope "dynamic"', "climbing", 89900, 0)
    text = format_catalogue_csv(
        [
            (TENT, [StockLevel("TENT-1", "main", 12, 3), StockLevel("TENT-1", "shop", 2, 0)]),
            (rope, []),
        ]
    )
    rows = parse_catalogue_csv(text)
    assert [(r.sku, r.location, r.on_hand) for r in rows] == [
        (TENT, "main", 12),
        (TENT, "shop", 2),
        (rope, None, None),
    ]
    assert [r.line for r in rows] == [2, 3, 4]


def test_csv_without_stock_columns_and_with_a_bom_header() -> None:
    rows = parse_catalogue_csv(f"{HEADER.upper()}\nA1,甲,,gear,100,2\n\n")
    assert rows[0].sku == Sku("A1", "甲", "", "gear", 100, 2)
    assert rows[0].location is None


def test_csv_takes_back_a_level_an_adjustment_left_below_zero() -> None:
    rows = parse_catalogue_csv(f"{HEADER},location,on_hand\nA1,甲,A,gear,100,2,main,-3\n")
    assert rows[0].on_hand == -3


def test_csv_on_hand_without_location_counts_main() -> None:
    rows = parse_catalogue_csv(f"{HEADER},location,on_hand\nA1,甲,A,gear,100,2,,7\n")
    assert (rows[0].location, rows[0].on_hand) == (DEFAULT_LOCATION, 7)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the CSV is empty"),
        ("sku,name_zh\n", "line 1: .*missing unit_price_cents"),
        (f"{HEADER},colour\n", "line 1: .*unknown 'colour'"),
        (f"{HEADER},location\n", "location and on_hand go together"),
        (f"{HEADER}\n", "no rows"),
        (f"{HEADER}\nA1,甲,A,g,100,2\nA2,乙,B,g,-5,2\n", "line 3: unit_price_cents must be"),
        (f"{HEADER}\nA1,甲,A,g,100\n", "line 2: expected 6 fields, found 5"),
        (f"{HEADER}\nA 1,甲,A,g,100,2\n", "line 2: sku must be"),
        (f"{HEADER}\nA1,,,g,100,2\n", "line 2: SKU A1 needs a name"),
        (f"{HEADER},location,on_hand\nA1,甲,A,g,100,2,main,x\n", "line 2: on_hand must be"),
        (f"{HEADER},location,on_hand\nA1,甲,A,g,100,2,main,--1\n", "line 2: on_hand must be"),
        (f"{HEADER},location,on_hand\nA1,甲,A,g,100,2,main,\n", "line 2: location 'main'"),
        (
            f"{HEADER}\nA1,甲,A,g,100,2\nA1,甲,A,g,200,2\n",
            "line 3: SKU A1 is on line 2 too, with different catalogue fields",
        ),
        (
            f"{HEADER},location,on_hand\nA1,甲,A,g,100,2,main,1\nA1,甲,A,g,100,2,main,3\n",
            "line 3: SKU A1 at main is on line 2 too",
        ),
        (f'{HEADER}\nA1,"甲,A,g,100,2\n', "unexpected end of data"),
    ],
)
def test_bad_csv_names_the_line(text: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_catalogue_csv(text)


def test_csv_line_numbers_count_quoted_newlines() -> None:
    text = f'{HEADER}\nA1,"甲\n乙",A,g,100,2\nA2,乙,B,g,x,2\n'
    with pytest.raises(BadRequest, match="line 4: unit_price_cents"):
        parse_catalogue_csv(text)
