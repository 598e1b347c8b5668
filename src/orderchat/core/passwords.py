"""The password policy: what a staff password must be, wherever one is set.

A pure rule: `check_password` raises `BadRequest` naming what is wrong. The list
of common passwords ships with the package (`common_passwords.txt`) and is read
once, on first use; it is compared lower-cased, so "Password123" is refused too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import ClassVar

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


@dataclass(frozen=True, slots=True)
class PasswordCost:
    """What one Argon2id password hash costs: RFC 9106's low-memory profile unless set.

    A small machine (a shop's NAS) may need less memory per sign-in, and a
    test run hashes thousands of throwaway passwords. A stored hash keeps the
    parameters it was made with, so a changed cost applies to new passwords
    and to each account the next time it signs in (it is hashed again then).
    """

    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 4

    MIN_MEMORY_KIB: ClassVar[int] = 1024

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PasswordCost:
        """`ORDERCHAT_PASSWORD_TIME_COST` and `ORDERCHAT_PASSWORD_MEMORY_KIB`, if set.

        Raises:
            ValueError: a value that is not a whole number, or below the floor.
        """
        default = cls()
        time_cost = _whole(env, "ORDERCHAT_PASSWORD_TIME_COST", default.time_cost, 1)
        memory = _whole(
            env, "ORDERCHAT_PASSWORD_MEMORY_KIB", default.memory_kib, cls.MIN_MEMORY_KIB
        )
        return cls(time_cost=time_cost, memory_kib=memory)

    @property
    def below_default(self) -> bool:
        default = PasswordCost()
        return self.time_cost < default.time_cost or self.memory_kib < default.memory_kib


def _whole(env: Mapping[str, str], name: str, default: int, floor: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {text!r}") from None
    if value < floor:
        raise ValueError(f"{name} must be at least {floor}, not {value}")
    return value
