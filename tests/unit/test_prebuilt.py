"""The writer's prebuilt statements hold only bind parameters, so their SQLite text is whole."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from orderchat.storage import conversations, messages, prebuilt
from orderchat.storage.schema import counters

PREBUILT = [
    messages._LOCK_COUNTER,
    messages._SET_COUNTER,
    conversations._SET_HEAD,
    conversations._ADVANCE_READ,
]


@pytest.mark.parametrize("statement", PREBUILT)
def test_prebuilt_statements_compile_with_named_parameters(statement: object) -> None:
    sql = prebuilt.sqlite_sql(statement)  # type: ignore[arg-type]
    assert ":b_" in sql and "?" not in sql


def test_a_literal_value_is_refused_rather_than_lost() -> None:
    with pytest.raises(ValueError, match="bind parameters only"):
        prebuilt.sqlite_sql(select(counters.c.value).where(counters.c.name == "head"))
