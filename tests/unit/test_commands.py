"""Slash commands: which text runs which command, and with what arguments."""

from __future__ import annotations

import pytest

from orderchat.core.ids import UserId
from orderchat.core.model import Role, User, UserKind
from orderchat.services.chat.commands import Command, CommandCall, Commands
from orderchat.services.stock.command import MAX_QUERY_CHARS, STOCK_COMMAND, StockQuery
from orderchat.services.writer import WriteTxn

STAFF = User(UserId("u_s"), "s", "S", (Role.WAREHOUSE,))
CUSTOMER = User(UserId("u_c"), "c", "C", (), UserKind.CUSTOMER)


async def _ignore(tx: WriteTxn, call: CommandCall, args: str) -> None:
    """Handlers are not run here; only the look-up is."""


def _command(
    name: str, *, glued: tuple[str, ...] = (), aliases: tuple[str, ...] = ()
) -> Command[str]:
    return Command(name=name, parse=str.upper, handle=_ignore, aliases=aliases, glued=glued)


@pytest.mark.parametrize(
    ("text", "query", "page"),
    [
        ("/stock tent", "tent", 1),
        ("  /stock   waterproof   backpack  ", "waterproof backpack", 1),
        ("/stock", "", 1),
        ("/库存帐篷", "帐篷", 1),
        ("/库存 帐篷", "帐篷", 1),
        ("/库存", "", 1),
        ("/stock tent 2", "tent", 2),
        ("/库存帐篷 3", "帐篷", 3),
        # A number alone is a SKU code, and a page past any sensible one is part of the query.
        ("/stock 1234", "1234", 1),
        ("/stock tent 0", "tent 0", 1),
        ("/stock tent 99999", "tent 99999", 1),
        ("/stock tent ２", "tent ２", 1),
    ],
)
def test_stock_is_found_with_its_query_and_page(text: str, query: str, page: int) -> None:
    found = Commands([STOCK_COMMAND]).find(STAFF, text)
    assert found is not None
    assert (found.command, found.args) == (STOCK_COMMAND, StockQuery(query, page))
    assert found.command.private


@pytest.mark.parametrize("text", ["/stocktake", "stock tent", "hello /stock tent", "/", "/other x"])
def test_text_that_is_not_a_known_command_is_an_ordinary_message(text: str) -> None:
    assert Commands([STOCK_COMMAND]).find(STAFF, text) is None


def test_a_customers_stock_is_an_ordinary_message() -> None:
    assert Commands([STOCK_COMMAND]).find(CUSTOMER, "/stock tent") is None


def test_a_command_open_to_customers_runs_for_them() -> None:
    command = Command(name="help", parse=str.strip, handle=_ignore, staff_only=False)
    assert Commands([command]).find(CUSTOMER, "/help") is not None


def test_the_stock_query_is_cut_to_its_limit() -> None:
    found = Commands([STOCK_COMMAND]).find(STAFF, "/stock " + "x" * (MAX_QUERY_CHARS + 5))
    assert found is not None
    assert found.args == StockQuery("x" * MAX_QUERY_CHARS)


def test_aliases_and_the_longest_glued_spelling_win() -> None:
    short, long = _command("a", glued=("库",)), _command("b", glued=("库存",), aliases=("bee",))
    commands = Commands([short, long])
    found = [commands.find(STAFF, text) for text in ("/库存x", "/库x", "/bee x")]
    assert [(f.command, f.args) for f in found if f is not None] == [
        (long, "X"),
        (short, "X"),
        (long, "X"),
    ]


@pytest.mark.parametrize("spelling", ["", "/stock", "two words"])
def test_a_bad_spelling_is_refused_at_start_up(spelling: str) -> None:
    with pytest.raises(ValueError, match="spelling"):
        Commands([_command(spelling)])


def test_two_commands_with_one_spelling_are_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="two commands"):
        Commands([_command("stock"), STOCK_COMMAND])
