"""Token-bucket rate limits keyed by anything (a username, an address, a user).

Pure: the current time is passed in, so tests step a clock instead of sleeping.
Buckets that are full again are forgotten, which keeps memory bounded by the
number of keys active within one refill period.
"""

from __future__ import annotations

from dataclasses import dataclass

from orderchat.core.errors import RateLimited
from orderchat.core.texts import Text, say


@dataclass(frozen=True, slots=True)
class Rate:
    """`burst` actions at once, refilled at `per_s` actions a second."""

    burst: float
    per_s: float


class RateLimiter:
    _PRUNE_EVERY = 1024

    def __init__(self, rate: Rate, *, enabled: bool = True) -> None:
        self._rate = rate
        self._enabled = enabled
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at_s)
        self._calls = 0

    def hit(self, key: str, now_s: float, what: Text, cost: float = 1.0) -> None:
        """Take `cost` tokens from `key`'s bucket.

        Raises:
            RateLimited: not enough tokens; nothing is taken.
        """
        if not self._enabled:
            return
        tokens = self._tokens(key, now_s)
        if tokens < cost:
            retry_after_s = (cost - tokens) / self._rate.per_s
            raise RateLimited(
                say("ratelimit.too_many_retry_in_s", what=what, retry_after_s=retry_after_s),
                retry_after_s,
            )
        self._buckets[key] = (tokens - cost, now_s)
        self._calls += 1
        if self._calls % self._PRUNE_EVERY == 0:
            self._prune(now_s)

    def _tokens(self, key: str, now_s: float) -> float:
        tokens, at_s = self._buckets.get(key, (self._rate.burst, now_s))
        return min(self._rate.burst, tokens + (now_s - at_s) * self._rate.per_s)

    def _prune(self, now_s: float) -> None:
        full = [k for k in self._buckets if self._tokens(k, now_s) >= self._rate.burst]
        for key in full:
            del self._buckets[key]
