"""Counting requests against rates: the notation, the verdicts, and exact counts under
concurrent callers, in memory and in Redis."""

from __future__ import annotations

import asyncio
import socket
import uuid

import pytest
from pydantic import ValidationError

from docworker.auth import KeyLimits
from docworker.config import RateSettings, RateStrategy, load_settings
from docworker.errors import DependencyDown
from docworker.ratelimit import RateLimiter, Verdict, parse_rate


def test_the_notation_and_its_mistakes() -> None:
    (per_minute,) = parse_rate("20/minute")
    assert (per_minute.amount, per_minute.get_expiry()) == (20, 60)
    assert [(i.amount, i.get_expiry()) for i in parse_rate("10/second; 1000/hour")] == [
        (10, 1),
        (1000, 3600),
    ]
    for bad in ("", "lots", "20 per fortnight", "0/minute", ";".join(["1/second"] * 11)):
        with pytest.raises(ValueError, match="rate"):
            parse_rate(bad)


def test_settings_and_keys_refuse_a_rate_that_is_not_one() -> None:
    with pytest.raises(ValidationError, match="is not a rate"):
        load_settings(rate={"default": "many/minute"})
    with pytest.raises(ValidationError, match="not a storage for rate limits"):
        load_settings(rate={"storage_url": "mongodb://db/limits"})
    with pytest.raises(ValidationError, match="is not a rate"):
        KeyLimits(rate="fast")
    assert KeyLimits(rate="5/second;100/hour").rate == "5/second;100/hour"


def test_rates_are_on_with_keys_by_default() -> None:
    assert not load_settings().rate_enabled
    assert load_settings(auth={"enabled": True}).rate_enabled
    assert not load_settings(auth={"enabled": True}, rate={"enabled": False}).rate_enabled
    assert load_settings(rate={"enabled": True}).rate_enabled


def hit_together(limiter: RateLimiter, count: int, identity: str, rate: str) -> list[Verdict]:
    """``count`` requests of ``identity`` at once, as concurrent tasks of one loop."""

    async def run() -> list[Verdict]:
        try:
            hits = (limiter.hit(identity, parse_rate(rate)) for _ in range(count))
            return list(await asyncio.gather(*hits))
        finally:
            await limiter.aclose()

    return asyncio.run(run())


def test_exactly_the_rate_passes_in_memory() -> None:
    limiter = RateLimiter(RateSettings())
    verdicts = hit_together(limiter, 50, "key:a", "20/minute")
    passed = [v for v in verdicts if v.allowed]
    refused = [v for v in verdicts if not v.allowed]
    assert len(passed) == 20 and len(refused) == 30
    # Each request that passed saw its own place in the window.
    assert sorted(v.remaining for v in passed) == list(range(20))
    for verdict in refused:
        assert (verdict.limit, verdict.remaining, verdict.window) == (20, 0, 60)
        assert 1 <= verdict.retry_after <= 60
        assert verdict.policy == "20;w=60"
    # Another identity has a count of its own.
    assert hit_together(limiter, 1, "key:b", "20/minute")[0].remaining == 19


def test_the_headers_name_the_rate_closest_to_being_spent() -> None:
    limiter = RateLimiter(RateSettings())
    first, second, third = hit_together(limiter, 3, "client:10.0.0.1", "100/hour;2/minute")
    assert first.allowed and second.allowed and not third.allowed
    assert dict(first.headers()) == {
        b"ratelimit-limit": b"2",
        b"ratelimit-remaining": b"1",
        b"ratelimit-reset": str(first.reset).encode(),
        b"ratelimit-policy": b"100;w=3600, 2;w=60",
    }
    assert (third.limit, third.window) == (2, 60)
    # The hourly rate kept the count of the request the other refused.
    fourth = hit_together(limiter, 1, "client:10.0.0.1", "100/hour")[0]
    assert fourth.remaining == 96


@pytest.mark.parametrize("strategy", list(RateStrategy))
def test_every_strategy_counts_a_burst_exactly(strategy: RateStrategy) -> None:
    limiter = RateLimiter(RateSettings(strategy=strategy))
    verdicts = hit_together(limiter, 30, f"key:{strategy}", "10/hour")
    assert sum(v.allowed for v in verdicts) == 10


def _prefix() -> str:
    return f"docworker-test-{uuid.uuid4().hex}"


@pytest.mark.redis
def test_replicas_sharing_redis_share_the_count(redis_url: str) -> None:
    settings = RateSettings(storage_url=redis_url, key_prefix=_prefix())

    async def run() -> list[Verdict]:
        # Two limiters, as two API replicas would have, over one Redis.
        replicas = [RateLimiter(settings), RateLimiter(settings)]
        rate = parse_rate("20/minute")
        hits = [replicas[i % 2].hit("key:shared", rate) for i in range(50)]
        try:
            return list(await asyncio.gather(*hits))
        finally:
            for replica in replicas:
                await replica.aclose()

    verdicts = asyncio.run(run())
    assert sum(v.allowed for v in verdicts) == 20
    refused = [v for v in verdicts if not v.allowed]
    assert len(refused) == 30 and all(1 <= v.retry_after <= 60 for v in refused)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_a_storage_that_does_not_answer_is_a_dependency_down() -> None:
    settings = RateSettings(
        storage_url=f"redis://127.0.0.1:{_closed_port()}/0", storage_timeout=0.5
    )
    limiter = RateLimiter(settings)
    with pytest.raises(DependencyDown, match="rate limit storage"):
        hit_together(limiter, 1, "key:a", "5/minute")
