"""The tiers of the result cache: memory, a folder on disk and a real Redis; their bounds,
lives, evictions, deletions and figures."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from docworker.config import load_settings
from docworker.result_cache import CachedResult, ResultCache
from docworker.result_cache.entry import EntryCorrupt
from docworker.result_cache.tiers import DiskTier, MemoryTier, RedisTier

KB = 1024


def _key(operation: str = "extract", n: int = 0) -> str:
    return f"{operation}:{n:064x}"


def _entry(size: int = KB, *, age: float = 0.0, operation: str = "extract") -> CachedResult:
    return CachedResult(
        ref={"uri": "result.json", "size": size, "content": None},
        files={"result.json": b"{" + b"x" * (size - 2) + b"}"},
        operation=operation,
        pages=3,
        created=float(int(time.time() - age)),
    )


def test_an_entry_encodes_and_decodes_whole() -> None:
    entry = CachedResult(
        ref={"uri": "result.json", "content": {"uri": ".content"}, "artifacts": []},
        files={"result.json": b"{}", ".content": "h\u00e9".encode()},
        operation="extract",
        pages=2,
    )
    assert CachedResult.decode(entry.encode()) == entry
    with pytest.raises(EntryCorrupt):
        CachedResult.decode(entry.encode()[:-1])
    with pytest.raises(EntryCorrupt):
        CachedResult.decode(b"not an entry")


def test_memory_evicts_the_least_recently_used_past_its_bound() -> None:
    tier = MemoryTier(max_bytes=3 * KB, ttl=60)
    for n in range(3):
        tier.put(_key(n=n), _entry())
    assert tier.get(_key(n=0)) is not None  # 0 is now the most recently used
    tier.put(_key(n=3), _entry())
    assert tier.get(_key(n=1)) is None
    assert all(tier.get(_key(n=n)) is not None for n in (0, 2, 3))
    stats = tier.stats()
    assert (stats.entries, stats.bytes, stats.evictions) == (3, 3 * KB, 1)
    assert (stats.hits, stats.misses) == (4, 1)
    tier.put(_key(n=9), _entry(4 * KB))  # larger than the whole tier: not held
    assert tier.get(_key(n=9)) is None


def test_memory_entries_expire() -> None:
    tier = MemoryTier(max_bytes=10 * KB, ttl=60)
    tier.put(_key(n=1), _entry(age=61))
    tier.put(_key(n=2), _entry(age=30))
    assert tier.get(_key(n=1)) is None
    assert tier.get(_key(n=2)) is not None
    stats = tier.stats()
    assert (stats.entries, stats.expired, stats.misses) == (1, 1, 1)


def test_disk_keeps_evicts_and_expires(tmp_path: Path) -> None:
    tier = DiskTier(tmp_path / "cache", max_bytes=3 * KB + 600, ttl=60)
    start = time.time() - 30
    for n in range(3):
        tier.put(_key(n=n), _entry())
        # Entries used one after another: their files' times order them.
        os.utime(tmp_path / "cache" / "extract" / f"{n:064x}", (start + n, start + n))
    assert tier.get(_key(n=0)) is not None  # used now: the most recent
    tier.put(_key(n=3), _entry())
    assert tier.get(_key(n=1)) is None
    assert all(tier.get(_key(n=n)) is not None for n in (0, 2, 3))
    stats = tier.stats()
    assert stats.entries == 3 and stats.evictions == 1 and stats.hits == 4
    tier.put(_key(n=4), _entry(age=61))
    assert tier.get(_key(n=4)) is None
    assert tier.stats().expired == 1
    assert not (tmp_path / "cache" / "extract" / f"{4:064x}").exists()


def test_disk_deletes_by_operation_and_prefix(tmp_path: Path) -> None:
    tier = DiskTier(tmp_path, max_bytes=100 * KB, ttl=60)
    tier.put(_key("extract", 0xAB), _entry())
    tier.put(_key("extract", 0xCD), _entry())
    tier.put(_key("ocr", 0xAB), _entry(operation="ocr"))
    assert tier.delete(f"extract:{0:062x}ab") == 1
    assert tier.delete("extract:") == 1
    assert tier.stats().entries == 1
    assert tier.get(_key("ocr", 0xAB)) is not None
    assert tier.delete("") == 1 and tier.stats().entries == 0


def test_the_disk_tier_is_shared_by_caches_of_one_folder(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    api = ResultCache(settings, versions={"docworker": "1"})
    worker = ResultCache(settings, memory=False, versions={"docworker": "1"})
    worker.put(_key(n=1), _entry())
    assert api.get(_key(n=1)) is not None  # from disk, now in memory too
    assert api.get(_key(n=1)) is not None  # from memory
    figures = {tier.tier: tier for tier in api.stats()}
    assert figures["memory"].hits == 1 and figures["disk"].hits == 1
    # Forgotten by another process: memory answers no more either.
    assert worker.delete("extract:") == {"disk": 1}
    assert api.get(_key(n=1)) is None


@pytest.fixture
def redis_tier(redis_url: str) -> Iterator[RedisTier]:
    tier = RedisTier(
        redis_url, max_bytes=3 * KB + 600, ttl=60, prefix=f"test:{uuid.uuid4().hex}", timeout=2
    )
    yield tier
    keys = list(tier.client.scan_iter(f"{tier.prefix}:*"))
    if keys:
        tier.client.delete(*keys)
    tier.close()


@pytest.mark.redis
def test_redis_keeps_evicts_and_deletes(redis_tier: RedisTier) -> None:
    tier = redis_tier
    for n in range(3):
        tier.put(_key(n=n), _entry())
    assert tier.get(_key(n=0)) is not None
    tier.put(_key(n=3), _entry())
    assert tier.get(_key(n=1)) is None
    assert all(tier.get(_key(n=n)) is not None for n in (0, 2, 3))
    stats = tier.stats()
    assert (stats.entries, stats.evictions, stats.hits, stats.misses) == (3, 1, 4, 1)
    assert stats.bytes == sum(len(_entry().encode()) for _ in range(3))
    tier.put(_key("ocr", 7), _entry(operation="ocr"))
    assert tier.delete("extract:") == 2  # 0 was evicted for the ocr entry
    assert [s.entries for s in [tier.stats()]] == [1]
    assert tier.touch(_key("ocr", 7)) and not tier.touch(_key(n=2))


@pytest.mark.redis
def test_redis_entries_expire(redis_url: str) -> None:
    tier = RedisTier(
        redis_url, max_bytes=KB * KB, ttl=1, prefix=f"test:{uuid.uuid4().hex}", timeout=2
    )
    try:
        tier.put(_key(n=1), _entry())
        assert tier.get(_key(n=1)) is not None
        time.sleep(1.2)  # Redis expires the entry on its own
        assert tier.get(_key(n=1)) is None
        stats = tier.stats()
        assert (stats.entries, stats.bytes, stats.expired) == (0, 0, 1)
    finally:
        tier.client.delete(*tier.client.scan_iter(f"{tier.prefix}:*"))
        tier.close()


@pytest.mark.redis
def test_a_cache_on_redis(redis_url: str, tmp_path: Path) -> None:
    prefix = f"test:{uuid.uuid4().hex}"
    settings = load_settings(data_dir=tmp_path, cache={"url": redis_url, "key_prefix": prefix})
    cache = ResultCache(settings, versions={"docworker": "1"})
    try:
        cache.put(_key(n=5), _entry())
        assert [t.tier for t in cache.stats()] == ["memory", "redis"]
        other = ResultCache(settings, memory=False, versions={"docworker": "1"})
        assert other.get(_key(n=5)) is not None
        other.close()
        assert cache.delete("") == {"memory": 1, "redis": 1}
    finally:
        cache.close()


def test_a_tier_that_fails_is_a_miss(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path, cache={"url": "redis://127.0.0.1:1/0", "timeout": 0.5}
    )
    cache = ResultCache(settings, memory=False, versions={"docworker": "1"})
    cache.put(_key(n=1), _entry())  # logged, not raised
    assert cache.get(_key(n=1)) is None
    from docworker.errors import DependencyDown

    with pytest.raises(DependencyDown):
        cache.stats()
