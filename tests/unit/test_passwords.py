"""The password policy: pure rules, no I/O beyond the packaged list."""

from __future__ import annotations

import pytest

from orderchat.core.errors import BadRequest
from orderchat.core.passwords import (
    MIN_PASSWORD_CHARS,
    PasswordCost,
    check_password,
    common_passwords,
)


@pytest.mark.parametrize(
    ("password", "username", "why"),
    [
        ("short-pw", "amy", "at least 10"),
        ("x" * (MIN_PASSWORD_CHARS - 1), "amy", "at least 10"),
        ("a" * 30, "amy", "one character repeated"),
        ("amy.wong.2024", "Amy.Wong.2024", "not be the username"),
        ("qwertyuiop", "amy", "too common"),
        ("Password123", "amy", "too common"),
        ("1234567890", "amy", "too common"),
    ],
)
def test_a_weak_password_is_refused_with_the_reason(password: str, username: str, why: str) -> None:
    with pytest.raises(BadRequest, match=why):
        check_password(password, username)


@pytest.mark.parametrize("password", ["sturdy-passphrase", "abababababab", "ten chars!"])
def test_a_good_enough_password_passes(password: str) -> None:
    check_password(password, "amy")


def test_the_common_list_ships_with_the_package_lower_cased() -> None:
    common = common_passwords()
    assert len(common) > 300
    assert "password123" in common
    assert all(word == word.lower() and not word.startswith("#") for word in common)


def test_the_cost_is_the_recommended_one_unless_the_environment_sets_it() -> None:
    assert PasswordCost.from_env({}) == PasswordCost(time_cost=3, memory_kib=65536)
    assert not PasswordCost.from_env({}).below_default
    cheap = PasswordCost.from_env(
        {"ORDERCHAT_PASSWORD_TIME_COST": "1", "ORDERCHAT_PASSWORD_MEMORY_KIB": " 2048 "}
    )
    assert (cheap.time_cost, cheap.memory_kib) == (1, 2048)
    assert cheap.below_default


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("ORDERCHAT_PASSWORD_TIME_COST", "0", "at least 1"),
        ("ORDERCHAT_PASSWORD_TIME_COST", "three", "whole number"),
        ("ORDERCHAT_PASSWORD_MEMORY_KIB", "1023", "at least 1024"),
        ("ORDERCHAT_PASSWORD_MEMORY_KIB", "1.5", "whole number"),
    ],
)
def test_a_cost_out_of_bounds_is_refused_by_name(name: str, value: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as raised:
        PasswordCost.from_env({name: value})
    assert name in str(raised.value)
