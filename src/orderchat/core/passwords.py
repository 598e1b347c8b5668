"""The password policy: what a staff password must be, wherever one is set.

A pure rule: `check_password` raises `BadRequest` naming what is wrong. The list
of common passwords ships with the package (`common_passwords.txt`) and is read
once, on first use; it is compared lower-cased, so "Password123" is refused too.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from orderchat.core.errors import BadRequest
from orderchat.core.texts import say

MIN_PASSWORD_CHARS = 10


@cache
def common_passwords() -> frozenset[str]:
    text = files("orderchat.core").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def check_password(password: str, username: str) -> None:
    """Raise BadRequest unless `password` is fit for the account `username`."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise BadRequest(
            say(
                "passwords.password_must_at_least_characters", min_password_chars=MIN_PASSWORD_CHARS
            )
        )
    if len(set(password)) == 1:
        raise BadRequest(say("passwords.password_must_not_one_character"))
    if password.lower() == username.lower():
        raise BadRequest(say("passwords.password_must_not_username"))
    if password.lower() in common_passwords():
        raise BadRequest(say("passwords.password_too_common_choose_one"))
