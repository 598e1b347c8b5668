"""Token buckets in Redis, shared by every node (services/limits.py).

One Lua script per take, so reading, refilling and taking are one atomic step
whichever node asks; the refill uses Redis's clock, so nodes whose clocks
disagree still agree on the bucket.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from orderchat.core.ratelimit import Rate

logger = logging.getLogger(__name__)

_TAKE = """
local now_t = redis.call('TIME')
local now = tonumber(now_t[1]) + tonumber(now_t[2]) / 1000000
local burst = tonumber(ARGV[1])
local per_s = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local held = redis.call('HMGET', KEYS[1], 't', 'at')
local tokens = tonumber(held[1]) or burst
local at = tonumber(held[2]) or now
tokens = math.min(burst, tokens + (now - at) * per_s)
if tokens < cost then
  return tostring((cost - tokens) / per_s)
end
redis.call('HSET', KEYS[1], 't', tostring(tokens - cost), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / per_s) + 1)
return false
"""


class RedisBuckets:
    def __init__(self, url: str, prefix: str) -> None:
        self._client = aioredis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        self._script = self._client.register_script(_TAKE)
        self._prefix = prefix
        self._healthy = True

    async def take(self, bucket: str, rate: Rate, cost: float) -> float | None:
        try:
            found = await self._script(
                keys=[f"{self._prefix}:{bucket}"], args=[rate.burst, rate.per_s, cost]
            )
        except (RedisError, OSError) as exc:
            if self._healthy:
                logger.warning("shared rate limits unavailable (%s); each node limits alone", exc)
            self._healthy = False
            return None
        self._healthy = True
        return None if found is None else float(found)

    async def close(self) -> None:
        await self._client.aclose()
