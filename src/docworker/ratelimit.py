"""Counting requests against rates: the notation, the storage and the verdict.

A rate is written in the notation of the ``limits`` library: ``100/minute``, or several
at once separated by ``;`` (``20/second;1000/hour``); a request must fit in every one.
Counts live in the storage that ``rate.storage_url`` names: this process's memory
(``memory://``; each API replica counts on its own) or Redis (``redis://...``; every
replica that names it shares the counts, so a key's rate holds across replicas).

The default strategy is the moving window: ``20/minute`` lets at most 20 requests through
in any 60 seconds, whenever the window starts, which is what a client reading
``RateLimit-Remaining`` expects. Each request then costs one atomic step in the storage
(a lock in memory, one Lua script in Redis) and one read for the headers.

In memory, every step is a few microseconds of work under a lock and no I/O, so the
synchronous storage is used straight from the event loop; the asynchronous one would
only add tasks and threads. Redis is reached through its asynchronous client.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

import limits
import limits.aio.storage
import limits.aio.strategies
import limits.storage
import limits.strategies
import redis.asyncio
from limits import RateLimitItem
from limits.errors import StorageError
from limits.util import WindowStats

from docworker.config import RateSettings, RateStrategy
from docworker.errors import DependencyDown

#: Most rates one notation may list.
MAX_RATES = 10
#: Storage URL schemes, and the scheme the Redis client reads each as (None: memory).
_SCHEMES = {
    "memory": None,
    "redis": "redis",
    "rediss": "rediss",
    "redis+unix": "unix",
}


@lru_cache(maxsize=1024)
def parse_rate(text: str) -> tuple[RateLimitItem, ...]:
    """The rates of ``text`` (``'100/minute'``, ``'20/second;1000/hour'``); raises
    ValueError with what is wrong."""
    try:
        items = tuple(limits.parse_many(text))
    except ValueError:
        raise ValueError(
            f"'{text}' is not a rate: write '100/minute', or several separated by ';' "
            "('20/second;1000/hour'); units: second, minute, hour, day, month, year"
        ) from None
    if len(items) > MAX_RATES:
        raise ValueError(f"'{text}' lists {len(items)} rates; at most {MAX_RATES} are allowed")
    if any(item.amount < 1 for item in items):
        raise ValueError(f"'{text}': a rate allows at least one request")
    return items


def check_storage_url(url: str) -> str:
    """``url`` if the rate limits can keep their counts there; raises ValueError if not."""
    scheme = urlsplit(url).scheme
    if scheme not in _SCHEMES:
        raise ValueError(
            f"'{scheme or url}' is not a storage for rate limits: use memory:// or "
            "redis://host:port/db (rediss://, redis+unix://)"
        )
    return url


@dataclass(frozen=True)
class Verdict:
    """What the storage said about one request: allowed or not, and the figures the
    ``RateLimit-*`` headers carry (of the rate closest to being spent)."""

    allowed: bool
    limit: int
    remaining: int
    #: Seconds until the rate named by ``limit`` lets a request through again.
    reset: int
    #: The window of that rate, in seconds.
    window: int
    #: Every rate, as ``RateLimit-Policy`` lists them: ``20;w=60, 1000;w=3600``.
    policy: str

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset).encode()),
            (b"ratelimit-policy", self.policy.encode()),
        ]

    @property
    def retry_after(self) -> int:
        """Seconds a refused request should wait (at least one)."""
        return max(self.reset, 1)


def policy_of(items: Sequence[RateLimitItem]) -> str:
    return ", ".join(f"{item.amount};w={item.get_expiry()}" for item in items)


class _Counter(Protocol):
    """One strategy over one storage, called the same way whether it waits or not."""

    async def hit(self, item: RateLimitItem, identity: str) -> bool: ...

    async def stats(self, item: RateLimitItem, identity: str) -> WindowStats: ...

    async def aclose(self) -> None: ...


class _InMemory:
    """The synchronous strategy over memory: no I/O, so no reason to leave the loop."""

    _STRATEGIES: ClassVar[dict[RateStrategy, type[limits.strategies.RateLimiter]]] = {
        RateStrategy.MOVING_WINDOW: limits.strategies.MovingWindowRateLimiter,
        RateStrategy.FIXED_WINDOW: limits.strategies.FixedWindowRateLimiter,
        RateStrategy.SLIDING_WINDOW_COUNTER: limits.strategies.SlidingWindowCounterRateLimiter,
    }

    def __init__(self, strategy: RateStrategy) -> None:
        self.limiter = self._STRATEGIES[strategy](limits.storage.MemoryStorage())

    async def hit(self, item: RateLimitItem, identity: str) -> bool:
        return self.limiter.hit(item, identity)

    async def stats(self, item: RateLimitItem, identity: str) -> WindowStats:
        return self.limiter.get_window_stats(item, identity)

    async def aclose(self) -> None:
        return None


class _Shared:
    """The asynchronous strategy over a shared storage (Redis)."""

    _STRATEGIES: ClassVar[dict[RateStrategy, type[limits.aio.strategies.RateLimiter]]] = {
        RateStrategy.MOVING_WINDOW: limits.aio.strategies.MovingWindowRateLimiter,
        RateStrategy.FIXED_WINDOW: limits.aio.strategies.FixedWindowRateLimiter,
        RateStrategy.SLIDING_WINDOW_COUNTER: (
            limits.aio.strategies.SlidingWindowCounterRateLimiter
        ),
    }

    def __init__(self, settings: RateSettings) -> None:
        scheme, rest = settings.storage_url.split("://", 1)
        # The pool is made here, so that it can be closed when the service stops.
        self.pool = redis.asyncio.ConnectionPool.from_url(
            f"{_SCHEMES[scheme]}://{rest}",
            socket_timeout=settings.storage_timeout,
            socket_connect_timeout=settings.storage_timeout,
        )
        # (typed by limits as if every option were a plain value)
        options: dict[str, Any] = {"connection_pool": self.pool}
        storage = limits.aio.storage.RedisStorage(
            f"async+{settings.storage_url}",
            implementation="redispy",
            key_prefix=settings.key_prefix,
            wrap_exceptions=True,
            **options,
        )
        self.limiter = self._STRATEGIES[settings.strategy](storage)

    async def hit(self, item: RateLimitItem, identity: str) -> bool:
        return await self.limiter.hit(item, identity)

    async def stats(self, item: RateLimitItem, identity: str) -> WindowStats:
        return await self.limiter.get_window_stats(item, identity)

    async def aclose(self) -> None:
        await self.pool.aclose()


class RateLimiter:
    """Counts the requests of each identity (``key:<id>``, ``client:<address>``)."""

    def __init__(self, settings: RateSettings) -> None:
        self.settings = settings
        self.default = parse_rate(settings.default)
        self.shared = not settings.storage_url.startswith("memory:")
        self._counter: _Counter = _Shared(settings) if self.shared else _InMemory(settings.strategy)

    async def hit(self, identity: str, items: Sequence[RateLimitItem]) -> Verdict:
        """Count one request of ``identity`` against each of ``items``, in order, until
        one refuses it (the rates before it keep the count: a refused request is never
        let through by another rate). Raises :class:`DependencyDown` when the storage
        fails."""
        try:
            return await self._hit(identity, items)
        except StorageError as exc:
            raise DependencyDown(
                f"the rate limit storage failed: {exc.storage_error}", dependency="rate-limits"
            ) from exc

    async def aclose(self) -> None:
        """Close the connections to the storage."""
        await self._counter.aclose()

    async def _hit(self, identity: str, items: Sequence[RateLimitItem]) -> Verdict:
        closest: tuple[RateLimitItem, WindowStats] | None = None
        for item in items:
            allowed = await self._counter.hit(item, identity)
            stats = await self._counter.stats(item, identity)
            if not allowed:
                return _verdict(False, item, stats, items)
            if closest is None or stats.remaining < closest[1].remaining:
                closest = (item, stats)
        assert closest is not None, "a rate lists one item or more"
        return _verdict(True, *closest, items)


def _verdict(
    allowed: bool, item: RateLimitItem, stats: WindowStats, items: Sequence[RateLimitItem]
) -> Verdict:
    reset = max(0, math.ceil(stats.reset_time - time.time()))
    return Verdict(
        allowed=allowed,
        limit=item.amount,
        remaining=max(0, stats.remaining) if allowed else 0,
        reset=reset,
        window=item.get_expiry(),
        policy=policy_of(items),
    )
