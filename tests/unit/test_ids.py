"""Ids: spelled from a given clock and generator, so tests pin them exactly."""

from __future__ import annotations

import os
import random

import pytest

from orderchat.core.ids import IdMinter, spell_id
from orderchat.services.ports import os_seeded_random

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _crockford(value: int, width: int) -> str:
    return "".join(_ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(width)))


class _FixedClock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def now_ms(self) -> int:
        return self.ms


@pytest.mark.parametrize(
    ("ms", "random_bits"),
    [(0, 0), (1_795_378_490_016, 2**60 - 1), (2**45 - 1, 123_456_789)],
)
def test_ids_are_milliseconds_then_random_bits_in_crockford_base32(
    ms: int, random_bits: int
) -> None:
    assert spell_id("m", ms, random_bits) == "m_" + _crockford(ms, 9) + _crockford(random_bits, 12)


def test_a_seeded_minter_mints_the_same_ids_at_the_same_time() -> None:
    clock = _FixedClock(1_795_378_490_016)
    first = IdMinter(clock.now_ms, random.Random(42))
    second = IdMinter(clock.now_ms, random.Random(42))
    minted = [first.order(), first.user(), first.message(clock.ms), first.upload()]
    assert minted == [second.order(), second.user(), second.message(clock.ms), second.upload()]
    bits = random.Random(42).getrandbits(60)
    assert minted[0] == spell_id("o", clock.ms, bits)


def test_every_kind_carries_its_prefix_and_the_clock_time() -> None:
    clock = _FixedClock(1_000)
    ids = IdMinter(clock.now_ms, random.Random(7))
    minted = {
        "u": ids.user(),
        "c": ids.conversation(),
        "m": ids.message(1_000),
        "s": ids.session(),
        "o": ids.order(),
        "up": ids.upload(),
        "cf": ids.confirmation_item(),
        "i": ids.issue(),
        "pm": ids.payment(),
        "mv": ids.movement(),
        "w": ids.connection(),
    }
    for prefix, value in minted.items():
        assert value.startswith(prefix + "_")
        assert value[len(prefix) + 1 :][:9] == _crockford(1_000, 9)
        assert len(value) == len(prefix) + 1 + 21


def test_ids_sort_by_the_clock_whatever_the_random_bits() -> None:
    clock = _FixedClock(1_000)
    ids = IdMinter(clock.now_ms, random.Random(3))
    minted = []
    for ms in (1_000, 1_001, 2_000, 86_400_000, 1_795_378_490_016):
        clock.ms = ms
        minted.append(ids.new("m"))
    assert minted == sorted(minted)
    assert ids.new("m", now_ms=5) < ids.new("m", now_ms=6)


def test_ids_at_one_millisecond_are_distinct() -> None:
    ids = IdMinter(_FixedClock(5).now_ms, random.Random(11))
    assert len({ids.user() for _ in range(1000)}) == 1000


def test_a_forked_process_mints_other_ids() -> None:
    rng = os_seeded_random()
    ids = IdMinter(_FixedClock(7).now_ms, rng)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(write, ids.new("m").encode())
        os._exit(0)
    os.waitpid(child, 0)
    theirs = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert theirs != ids.new("m")
