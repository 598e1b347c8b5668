"""The import preview: each row's outcome, its errors by column, and the token."""

from __future__ import annotations

import pytest

from orderchat.core.catalogue_import import (
    FieldChange,
    ImportPreview,
    RowAction,
    first_error_message,
    plan_import,
    read_catalogue_csv,
)
from orderchat.core.errors import BadRequest
from orderchat.core.ids import SkuCode
from orderchat.core.stock import Sku, StockLevel

HEADER = "sku,name_zh,name_en,category,unit_price_cents,low_stock_threshold,location,on_hand"
TENT = Sku(SkuCode("TENT-1"), "双人帐篷", "Tent", "tents", 59900, 3)


def _preview(text: str, levels: dict[str, dict[str, StockLevel]] | None = None) -> ImportPreview:
    parsed = read_catalogue_csv(text)
    return plan_import(parsed, {TENT.sku: TENT}, levels or {"TENT-1": {}})


def test_rows_are_created_updated_or_unchanged() -> None:
    preview = _preview(
        f"{HEADER}\n"
        "TENT-1,双人帐篷,Tent,tents,59900,3,,\n"
        "NEW-1,头灯,Headlamp,lights,9900,2,main,5\n"
        "TENT-1,双人帐篷,Tent,tents,59900,3,main,4\n"
    )
    assert [(r.line, r.action) for r in preview.rows] == [
        (2, RowAction.UNCHANGED),
        (3, RowAction.CREATE),
        (4, RowAction.UPDATE),
    ]
    assert preview.rows[2].changes == (FieldChange("on_hand", 0, 4, "main"),)
    assert preview.valid
    assert [s.sku for s in preview.plan.new] == ["NEW-1"]
    assert preview.plan.edited == ()


def test_an_update_lists_old_and_new_values() -> None:
    preview = _preview(f"{HEADER}\nTENT-1,双人帐篷,Tent 2P,tents,61900,3,,\n")
    assert preview.rows[0].changes == (
        FieldChange("name_en", "Tent", "Tent 2P"),
        FieldChange("unit_price_cents", 59900, 61900),
    )


def test_every_bad_cell_is_reported_with_its_column() -> None:
    preview = _preview(
        f"{HEADER}\nA 1,,,g,-5,x,main,lots\nOK-1,好,,g,100,1,,\nOK-1,好,,g,200,1,,\nB,b\n"
    )
    assert not preview.valid
    assert [(e.line, e.column) for e in preview.errors] == [
        (2, "sku"),
        (2, "name_zh"),
        (2, "unit_price_cents"),
        (2, "low_stock_threshold"),
        (2, "on_hand"),
        (4, None),
        (5, None),
    ]
    assert preview.rows[1].action is RowAction.CREATE
    assert first_error_message(preview).render("en").startswith("line 2: sku must be")


def test_counting_below_what_orders_hold_is_an_error_row() -> None:
    levels = {"TENT-1": {"main": StockLevel(SkuCode("TENT-1"), "main", 10, 6)}}
    preview = _preview(f"{HEADER}\nTENT-1,双人帐篷,Tent,tents,59900,3,main,5\n", levels)
    (error,) = preview.rows[0].errors
    assert (error.line, error.column) == (2, "on_hand")
    assert error.reason.render("en") == (
        "on_hand 5 is below the 6 of TENT-1 reserved for open orders at main"
    )


def test_the_token_follows_the_file_and_the_state() -> None:
    text = f"{HEADER}\nTENT-1,双人帐篷,Tent,tents,59900,3,main,5\n"
    first = _preview(text).token
    assert _preview(text).token == first
    moved = {"TENT-1": {"main": StockLevel(SkuCode("TENT-1"), "main", 1, 0)}}
    assert _preview(text, moved).token != first
    assert _preview(text + "N-2,新,,g,1,0,,\n").token != first


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the CSV is empty"),
        ("sku,name\nA,b\n", "line 1"),
        (f"{HEADER}\n", "no rows"),
        (f'{HEADER}\nA1,"甲,A,g,100,2\n', "unexpected end of data"),
    ],
)
def test_a_malformed_file_is_refused_whole(text: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        read_catalogue_csv(text)
