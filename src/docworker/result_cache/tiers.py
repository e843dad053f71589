"""The tiers of the result cache: a process's memory, a folder on disk, or Redis.

Each holds encoded :class:`~docworker.result_cache.entry.CachedResult` values under keys
``<operation>:<sha256 hex>`` (see :func:`docworker.result_cache.cache_key`), bounded in
bytes (the least recently used are evicted past the bound) and in age (an entry older
than the TTL is a miss, and is dropped). Each counts its hits, misses, evictions and
expirations: the memory tier for its process, the disk and Redis tiers in the tier
itself, so that every process using one (API replicas, workers) adds to the same figures.

Errors of the storage (``OSError``, ``redis.RedisError``) go up to the caller:
:class:`~docworker.result_cache.ResultCache` decides what a failing tier means.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import redis

from docworker.metrics import (
    CACHE_BYTES,
    CACHE_ENTRIES,
    CACHE_EVICTIONS,
    CACHE_HITS,
    CACHE_MISSES,
)
from docworker.result_cache.entry import CachedResult, EntryCorrupt

#: What a key looks like: the operation, a colon, a SHA-256 in hex.
KEY_PATTERN = re.compile(r"^[a-z0-9_-]{1,64}:[0-9a-f]{64}$")
#: The counters every tier keeps.
COUNTERS = ("hits", "misses", "evictions", "expired")


@dataclass(frozen=True)
class TierStats:
    """What a tier holds and how it has served."""

    tier: str
    entries: int
    bytes: int
    max_bytes: int
    hits: int
    misses: int
    #: Entries let go for room (least recently used first).
    evictions: int
    #: Entries dropped past their life (``cache.ttl``).
    expired: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "entries": self.entries,
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
            "hits": self.hits,
            "misses": self.misses,
            "evictions": self.evictions,
            "expired": self.expired,
        }


class Tier(Protocol):
    name: str

    def get(self, key: str) -> CachedResult | None: ...

    def put(self, key: str, entry: CachedResult) -> None: ...

    def delete(self, prefix: str = "") -> int: ...

    def discard(self, key: str) -> None:
        """Forget the entry ``key``, if held (one entry: no walk of the tier)."""
        ...

    def stats(self) -> TierStats: ...


class SharedTier(Tier, Protocol):
    """A tier every process reaches: it says whether it still holds an entry."""

    def touch(self, key: str) -> bool:
        """Whether the tier holds ``key``, marked used now if so."""
        ...


def _counted(tier: str, counts: dict[str, int]) -> None:
    """Add ``counts`` to the tier's Prometheus counters."""
    if counts.get("hits"):
        CACHE_HITS.labels(tier).inc(counts["hits"])
    if counts.get("misses"):
        CACHE_MISSES.labels(tier).inc(counts["misses"])
    if counts.get("evictions"):
        CACHE_EVICTIONS.labels(tier, "size").inc(counts["evictions"])
    if counts.get("expired"):
        CACHE_EVICTIONS.labels(tier, "expired").inc(counts["expired"])


class MemoryTier:
    """Entries in this process's memory, least recently used first out."""

    name = "memory"

    def __init__(self, max_bytes: int, ttl: float) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._entries: OrderedDict[str, CachedResult] = OrderedDict()
        self._bytes = 0
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._lock = threading.Lock()

    def _count(self, **counts: int) -> None:
        for name, value in counts.items():
            self._counts[name] += value
        _counted(self.name, counts)

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry.size

    def _gauges(self) -> None:
        CACHE_BYTES.labels(self.name).set(self._bytes)
        CACHE_ENTRIES.labels(self.name).set(len(self._entries))

    def get(self, key: str) -> CachedResult | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.expired(self.ttl):
                self._drop(key)
                self._count(misses=1, expired=1)
                self._gauges()
                return None
            if entry is None:
                self._count(misses=1)
                return None
            self._entries.move_to_end(key)
            self._count(hits=1)
            return entry

    def put(self, key: str, entry: CachedResult) -> None:
        if entry.size > self.max_bytes:
            return
        with self._lock:
            self._drop(key)
            self._entries[key] = entry
            self._bytes += entry.size
            evicted = 0
            while self._bytes > self.max_bytes:
                _, oldest = self._entries.popitem(last=False)
                self._bytes -= oldest.size
                evicted += 1
            self._count(evictions=evicted)
            self._gauges()

    def discard(self, key: str) -> None:
        with self._lock:
            self._drop(key)
            self._gauges()

    def holds(self, key: str) -> bool:
        """Whether ``key`` is held (expired or not), without counting a look-up."""
        with self._lock:
            return key in self._entries

    def delete(self, prefix: str = "") -> int:
        with self._lock:
            keys = [key for key in self._entries if key.startswith(prefix)]
            for key in keys:
                self._drop(key)
            self._gauges()
            return len(keys)

    def stats(self) -> TierStats:
        with self._lock:
            return TierStats(
                self.name, len(self._entries), self._bytes, self.max_bytes, **self._counts
            )


class DiskTier:
    """Entries as files ``<folder>/<operation>/<hex>``, shared by every process of the
    host. A file's modification time is its last use (set again on every hit), which
    orders the evictions; its life runs from when it was kept (in its header). Files are
    written aside and renamed into place, so a reader never sees half of one. The
    counters are a small JSON file, updated under a lock."""

    name = "disk"
    _STATS = ".stats.json"
    _TMP = ".tmp"

    def __init__(self, directory: Path, max_bytes: int, ttl: float) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.ttl = ttl

    def _path(self, key: str) -> Path:
        if not KEY_PATTERN.match(key):
            raise ValueError(f"not a result cache key: {key!r}")
        operation, _, digest = key.partition(":")
        return self.directory / operation / digest

    def _files(self) -> Iterator[tuple[str, Path, os.stat_result]]:
        """Every entry: its key, path and status."""
        if not self.directory.is_dir():
            return
        for folder in self.directory.iterdir():
            if folder.name.startswith(".") or not folder.is_dir():
                continue
            for path in folder.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    yield f"{folder.name}:{path.name}", path, path.stat()

    def _count(self, **counts: int) -> None:
        _counted(self.name, counts)
        if not any(counts.values()):
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._locked_stats() as stats:
            for name, value in counts.items():
                stats[name] = int(stats.get(name, 0)) + value

    @contextlib.contextmanager
    def _locked_stats(self, write: bool = True) -> Iterator[dict[str, Any]]:
        path = self.directory / self._STATS
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(fd, "r+") as stream:
            fcntl.flock(stream, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
            text = stream.read()
            try:
                stats: dict[str, Any] = json.loads(text) if text else {}
            except ValueError:
                stats = {}
            yield stats
            if write:
                stream.seek(0)
                stream.truncate()
                stream.write(json.dumps(stats))

    def get(self, key: str) -> CachedResult | None:
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self._count(misses=1)
            return None
        try:
            entry = CachedResult.decode(data)
        except EntryCorrupt:
            path.unlink(missing_ok=True)
            self._count(misses=1)
            return None
        if entry.expired(self.ttl):
            path.unlink(missing_ok=True)
            self._count(misses=1, expired=1)
            return None
        with contextlib.suppress(FileNotFoundError):
            os.utime(path)
        self._count(hits=1)
        return entry

    def touch(self, key: str) -> bool:
        try:
            os.utime(self._path(key))
        except FileNotFoundError:
            return False
        return True

    def put(self, key: str, entry: CachedResult) -> None:
        data = entry.encode()
        if len(data) > self.max_bytes:
            return
        path = self._path(key)
        spare = self.directory / self._TMP
        spare.mkdir(parents=True, exist_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = spare / uuid.uuid4().hex
        try:
            aside.write_bytes(data)
            os.replace(aside, path)
        finally:
            aside.unlink(missing_ok=True)
        self._evict()

    def _evict(self) -> None:
        """Drop the expired entries, then the least recently used past the bound."""
        now = time.time()
        kept: list[tuple[float, int, Path]] = []
        expired = 0
        for _, path, stat in self._files():
            # The last use is never before the entry was kept: unused for its whole life,
            # it is past it.
            if now - stat.st_mtime >= self.ttl:
                path.unlink(missing_ok=True)
                expired += 1
            else:
                kept.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in kept)
        evicted = 0
        for _, size, path in sorted(kept, key=lambda item: item[0]):
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size
            evicted += 1
        self._count(evictions=evicted, expired=expired)
        CACHE_BYTES.labels(self.name).set(total)
        CACHE_ENTRIES.labels(self.name).set(len(kept) - evicted)

    def discard(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete(self, prefix: str = "") -> int:
        removed = 0
        for key, path, _ in list(self._files()):
            if key.startswith(prefix):
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def stats(self) -> TierStats:
        entries = size = 0
        for _, _, stat in self._files():
            entries += 1
            size += stat.st_size
        counts = dict.fromkeys(COUNTERS, 0)
        if (self.directory / self._STATS).exists():
            with self._locked_stats(write=False) as stats:
                counts |= {name: int(stats.get(name, 0)) for name in COUNTERS}
        CACHE_BYTES.labels(self.name).set(size)
        CACHE_ENTRIES.labels(self.name).set(entries)
        return TierStats(self.name, entries, size, self.max_bytes, **counts)


# Put an entry, then evict the least recently used until the tier is within its bound.
# KEYS: entry, lru (sorted set: key -> last use), sizes (hash: key -> bytes), total bytes,
# stats (hash). ARGV: key, data, ttl (s), now, max bytes, prefix of entry keys.
_PUT = """
local old = redis.call('HGET', KEYS[3], ARGV[1])
if old then redis.call('DECRBY', KEYS[4], old) end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], string.len(ARGV[2]))
local total = redis.call('INCRBY', KEYS[4], string.len(ARGV[2]))
local evicted = 0
while total > tonumber(ARGV[5]) do
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)
  if #oldest == 0 then break end
  local key = oldest[1]
  local size = tonumber(redis.call('HGET', KEYS[3], key) or '0')
  redis.call('DEL', ARGV[6] .. key)
  redis.call('ZREM', KEYS[2], key)
  redis.call('HDEL', KEYS[3], key)
  total = redis.call('DECRBY', KEYS[4], size)
  evicted = evicted + 1
end
if evicted > 0 then redis.call('HINCRBY', KEYS[5], 'evictions', evicted) end
return evicted
"""

# Forget an entry: its value and its place in the index. KEYS: entry, lru, sizes, total.
# ARGV: key. Returns whether the index held it.
_FORGET = """
redis.call('DEL', KEYS[1])
local size = redis.call('HGET', KEYS[3], ARGV[1])
if not size then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('DECRBY', KEYS[4], size)
return 1
"""


class RedisTier:
    """Entries in Redis, shared by every process that names the same server and prefix.

    Each entry is a string key that Redis itself expires after the TTL; an index (a
    sorted set of last uses, a hash of sizes and a byte total) orders the evictions,
    made in the same script as the write that passes the bound. An entry Redis expired
    leaves its place in the index until it is next looked up, or the statistics are
    read, or it is evicted first."""

    name = "redis"

    def __init__(self, url: str, max_bytes: int, ttl: float, prefix: str, timeout: float) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.prefix = prefix
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._lru = f"{prefix}:lru"
        self._sizes = f"{prefix}:sizes"
        self._total = f"{prefix}:bytes"
        self._stats = f"{prefix}:stats"
        self._put = self.client.register_script(_PUT)
        self._forget = self.client.register_script(_FORGET)

    def _entry(self, key: str) -> str:
        return f"{self.prefix}:e:{key}"

    def _index(self, key: str) -> list[str]:
        return [self._entry(key), self._lru, self._sizes, self._total]

    def _count(self, **counts: int) -> None:
        _counted(self.name, counts)
        pipe = self.client.pipeline(transaction=False)
        for name, value in counts.items():
            if value:
                pipe.hincrby(self._stats, name, value)
        pipe.execute()

    def get(self, key: str) -> CachedResult | None:
        data = self.client.get(self._entry(key))
        if data is None:
            expired = int(self._forget(keys=self._index(key), args=[key]))
            self._count(misses=1, expired=expired)
            return None
        try:
            entry = CachedResult.decode(bytes(data))  # type: ignore[arg-type]
        except EntryCorrupt:
            self._forget(keys=self._index(key), args=[key])
            self._count(misses=1)
            return None
        self.client.zadd(self._lru, {key: time.time()}, xx=True)
        self._count(hits=1)
        return entry

    def touch(self, key: str) -> bool:
        pipe = self.client.pipeline(transaction=False)
        pipe.exists(self._entry(key))
        pipe.zadd(self._lru, {key: time.time()}, xx=True)
        present, _ = pipe.execute()
        return bool(present)

    def put(self, key: str, entry: CachedResult) -> None:
        data = entry.encode()
        if len(data) > self.max_bytes:
            return
        keys = [*self._index(key), self._stats]
        ttl = max(1, math.ceil(self.ttl))
        evicted = self._put(
            keys=keys,
            args=[key, data, ttl, time.time(), self.max_bytes, f"{self.prefix}:e:"],
        )
        _counted(self.name, {"evictions": int(evicted)})

    def discard(self, key: str) -> None:
        self._forget(keys=self._index(key), args=[key])

    def _indexed(self) -> list[str]:
        return [member.decode() for member, _ in self.client.zscan_iter(self._lru)]

    def delete(self, prefix: str = "") -> int:
        removed = 0
        for key in self._indexed():
            if key.startswith(prefix):
                self._forget(keys=self._index(key), args=[key])
                removed += 1
        return removed

    def _sweep_expired(self) -> int:
        """Drop from the index the entries Redis has expired; how many."""
        keys = self._indexed()
        expired = 0
        for start in range(0, len(keys), 500):
            batch = keys[start : start + 500]
            pipe = self.client.pipeline(transaction=False)
            for key in batch:
                pipe.exists(self._entry(key))
            for key, present in zip(batch, pipe.execute(), strict=True):
                if not present:
                    expired += int(self._forget(keys=self._index(key), args=[key]))
        return expired

    def stats(self) -> TierStats:
        expired = self._sweep_expired()
        if expired:
            self._count(expired=expired)
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(self._lru)
        pipe.get(self._total)
        pipe.hgetall(self._stats)
        entries, total, raw = pipe.execute()
        counts = {name: int(raw.get(name.encode(), 0)) for name in COUNTERS}
        size = int(total or 0)
        CACHE_BYTES.labels(self.name).set(size)
        CACHE_ENTRIES.labels(self.name).set(int(entries))
        return TierStats(self.name, int(entries), size, self.max_bytes, **counts)

    def close(self) -> None:
        self.client.close()
