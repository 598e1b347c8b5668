"""Rate limits that hold across the nodes of a cluster.

Each node keeps its own token buckets (core/ratelimit.py): they answer at once
and protect the node even when nothing else is reachable. With Redis the same
buckets are also kept there, shared by every node, so that spreading sign-in
attempts over the nodes behind a load balancer gains an attacker nothing.
While Redis is unreachable the shared check lets everything through and each
node's own buckets are the limit.
"""

from __future__ import annotations

from typing import Protocol

from orderchat.core.errors import RateLimited
from orderchat.core.ratelimit import Rate, RateLimiter
from orderchat.core.texts import Text, say


class SharedBuckets(Protocol):
    async def take(self, bucket: str, rate: Rate, cost: float) -> float | None:
        """Take `cost` tokens; None if taken, else the seconds to wait (nothing taken)."""


class ClusterRateLimiter:
    """A node's own buckets, then the cluster's."""

    def __init__(
        self, name: str, rate: Rate, *, enabled: bool, shared: SharedBuckets | None
    ) -> None:
        self._name = name
        self._rate = rate
        self._enabled = enabled
        self._local = RateLimiter(rate, enabled=enabled)
        self._shared = shared

    async def hit(self, key: str, now_s: float, what: Text, cost: float = 1.0) -> None:
        """Raises RateLimited when this node's limit or the cluster's is reached."""
        self._local.hit(key, now_s, what, cost)
        if not self._enabled or self._shared is None:
            return
        retry_after_s = await self._shared.take(f"{self._name}:{key}", self._rate, cost)
        if retry_after_s is not None:
            raise RateLimited(
                say("ratelimit.too_many_retry_in_s", what=what, retry_after_s=retry_after_s),
                retry_after_s,
            )
