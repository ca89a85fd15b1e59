"""A Redis read-through cache that never makes a caller wait for a broken Redis.

Redis down means answering from the database: every operation here swallows connection
errors, logs the outage once, and logs again once Redis is back.

Invalidation is generation-checked: `forget` bumps a per-key generation, and `put` writes
only if the generation it read before the database query is still current, so a lookup that
raced a booking can never put the pre-booking answer back into the cache.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from config.settings import get_settings
from crm import embedded

log = logging.getLogger(__name__)

TTL_SECONDS = 300
_GENERATION_TTL = 3600

# KEYS: value key, generation key; ARGV: generation read before the query, ttl, value.
_PUT_IF_CURRENT = """
if (redis.call('GET', KEYS[2]) or '0') == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[2])
  return 1
end
return 0
"""


class Cache:
    def __init__(self, url: str) -> None:
        self._client = aioredis.Redis.from_url(
            url, socket_timeout=0.25, socket_connect_timeout=0.25, decode_responses=True
        )
        self._put = self._client.register_script(_PUT_IF_CURRENT)
        self._down = False

    async def get(self, key: str) -> tuple[Any | None, str]:
        """The cached value (None on a miss) and the generation to hand back to `put`."""
        try:
            value, generation = await self._client.mget(key, f"{key}:gen")
        except (RedisError, OSError) as exc:
            self._outage(exc)
            return None, "0"
        self._recovered()
        return (json.loads(value) if value is not None else None), generation or "0"

    async def put(self, key: str, value: Any, generation: str, ttl: int = TTL_SECONDS) -> None:
        try:
            await self._put(keys=[key, f"{key}:gen"], args=[generation, ttl, json.dumps(value)])
        except (RedisError, OSError) as exc:
            self._outage(exc)
        else:
            self._recovered()

    async def forget(self, *keys: str) -> None:
        if not keys:
            return
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                for key in keys:
                    pipe.incr(f"{key}:gen").expire(f"{key}:gen", _GENERATION_TTL).delete(key)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._outage(exc)
        else:
            self._recovered()

    async def clear(self, prefix: str) -> None:
        """Drop every key under `prefix` (after the data behind it was replaced wholesale)."""
        try:
            keys = [key async for key in self._client.scan_iter(match=f"{prefix}*", count=1000)]
            if keys:
                await self._client.delete(*keys)
        except (RedisError, OSError) as exc:
            self._outage(exc)

    async def ping(self) -> bool:
        try:
            return bool(await self._client.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self._client.aclose()

    def _outage(self, exc: BaseException) -> None:
        if not self._down:
            self._down = True
            log.warning("cache unavailable, answering from the database: %s", exc)

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            log.warning("cache available again")


_cache: Cache | None = None
_lock = asyncio.Lock()


async def cache() -> Cache:
    global _cache
    if _cache is None:
        async with _lock:
            if _cache is None:
                url = get_settings().redis_url or await asyncio.to_thread(embedded.redis_url)
                _cache = Cache(url)
    return _cache


async def close() -> None:
    global _cache
    if _cache is not None:
        await _cache.close()
        _cache = None
