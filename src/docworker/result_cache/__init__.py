"""The result cache: a job that asks again for what a job made before is answered from
what it made, without a worker.

A result is kept under a key made of everything it depends on (:func:`cache_key`): the
SHA-256 of each input file with the name and type it was sent under, the operation, its
parameters as validated (defaults applied; each secret by its HMAC, never in clear), the
versions of the service, of the libraries and of the external programs that make results
(:func:`engine_versions`: an upgrade misses), the settings that shape results, and the
tenant unless ``cache.shared_across_tenants``. Two tiers hold results: the memory of each
API process (hot, small) and a shared one, on disk in the data folder or in Redis
(``cache.url``). A look-up tries memory, then the shared tier, and puts what the shared
tier found into memory. Results are kept by the worker that made them (the shared tier
only), when the job succeeded whole: partial and failed results never are.

A tier that fails (a full disk, Redis gone) never fails a job: the look-up is a miss,
the keeping is skipped, and a warning is logged. Only the routes that read or clear the
cache report such a failure (:class:`~docworker.errors.DependencyDown`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import redis
import structlog

from docworker import __version__
from docworker.config import CacheSettings, Settings
from docworker.errors import DependencyDown
from docworker.result_cache.entry import CachedResult, capture
from docworker.result_cache.tiers import (
    DiskTier,
    MemoryTier,
    RedisTier,
    SharedTier,
    Tier,
    TierStats,
)
from docworker.sealing import comparable

__all__ = [
    "CACHE_KEY",
    "CachedResult",
    "ResultCache",
    "TierStats",
    "cache_key",
    "capture",
    "engine_versions",
]

log = structlog.get_logger(__name__)

#: Where a job's input records the key its result is to be kept under (absent: it is not
#: kept: the cache is off or bypassed, or the operation is not cached).
CACHE_KEY = "cache_key"
#: The format of the keys' material: changed when what a key covers changes.
KEY_VERSION = 1
#: Errors of a tier's storage.
TIER_ERRORS = (OSError, redis.RedisError, ValueError)
#: The settings sections whose values shape results (limits, engines' options, the guard).
RESULT_SETTINGS = ("limits", "ocr", "render", "image", "pdf", "site", "chromium", "ffmpeg")
#: External programs whose installed file stands for their version (settings field).
_PROGRAMS = (
    ("libreoffice", "soffice_path"),
    ("ffmpeg", "ffmpeg_path"),
    ("ffmpeg", "ffprobe_path"),
    ("chromium", "path"),
)


def _distribution_versions() -> dict[str, str]:
    """The installed version of each library the service depends on."""
    try:
        requirements = importlib.metadata.requires("docworker") or []
    except importlib.metadata.PackageNotFoundError:
        requirements = []
    versions = {}
    for requirement in requirements:
        if "extra ==" in requirement:
            continue
        name = re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0]
        try:
            versions[name.lower()] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name.lower()] = "absent"
    return versions


def _program_version(path: str | None) -> str:
    """An external program's installed file (its size and modification time): a new
    version installed is a new file."""
    found = shutil.which(path) if path else None
    if found is None:
        return "absent"
    try:
        stat = Path(os.path.realpath(found)).stat()
    except OSError:
        return "absent"
    return f"{stat.st_size}:{stat.st_mtime_ns}"


@functools.lru_cache(maxsize=8)
def _versions(programs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    versions = {"docworker": __version__, **_distribution_versions()}
    for name, path in programs:
        versions[f"program:{name}"] = _program_version(path)
    return tuple(sorted(versions.items()))


def engine_versions(settings: Settings) -> dict[str, str]:
    """What makes results, by version: the service, every library it depends on, and the
    external programs it runs (LibreOffice, FFmpeg, Chromium), looked up once a process."""
    programs = []
    for section, field in _PROGRAMS:
        path = getattr(getattr(settings, section), field)
        programs.append((f"{section}.{field}", str(path) if path else ""))
    return dict(_versions(tuple(programs)))


def result_settings(settings: Settings, tenant: str | None) -> dict[str, Any]:
    """The settings that shape a result of ``tenant``'s (its guard policy included)."""
    shaping = {name: getattr(settings, name).model_dump(mode="json") for name in RESULT_SETTINGS}
    guard = settings.guard.model_dump(mode="json", exclude={"tenants"})
    guard["tenant_policy"] = settings.guard.model_dump(mode="json")["tenants"].get(tenant or "")
    return shaping | {"guard": guard}


def cache_key(
    *,
    operation: str,
    params: Mapping[str, Any],
    inputs: Sequence[Mapping[str, Any]],
    versions: Mapping[str, str],
    settings: Mapping[str, Any],
    scope: str | None,
) -> str:
    """The key of a result: ``<operation>:<sha256 hex>`` of everything it depends on.

    ``params`` are the job's as stored (validated, defaults applied, secrets sealed: each
    counts by its ``$mac``, an HMAC under the service's key, never by its value);
    ``inputs`` the job's input files (``sha256``, ``name``, ``mime``); ``scope`` the
    tenant the result is kept for (None: every tenant)."""
    material = {
        "v": KEY_VERSION,
        "operation": operation,
        "params": comparable(params),
        "inputs": [[i.get("sha256"), i.get("name"), i.get("mime")] for i in inputs],
        "versions": dict(versions),
        "settings": settings,
        "scope": scope,
    }
    encoded = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return f"{operation}:{hashlib.sha256(encoded.encode()).hexdigest()}"


def cache_directory(settings: Settings) -> Path:
    """The folder of the tier on disk: ``cache.directory``, else in the data folder."""
    return settings.cache.directory or settings.data_dir / "result-cache"


class ResultCache:
    """The tiers of the cache, as the job queue and the workers use them (the module)."""

    def __init__(
        self,
        settings: Settings,
        *,
        memory: bool = True,
        versions: Mapping[str, str] | None = None,
    ) -> None:
        """``memory``: whether this process keeps a memory tier (an API process does, a
        worker does not); ``versions``: what :func:`engine_versions` would say."""
        self.settings = settings
        self.config: CacheSettings = settings.cache
        config = self.config
        self.memory = (
            MemoryTier(config.memory_max_bytes, config.ttl)
            if memory and config.memory_max_bytes > 0
            else None
        )
        self.shared: SharedTier
        if config.url is not None:
            self.shared = RedisTier(
                config.url, config.max_bytes, config.ttl, config.key_prefix, config.timeout
            )
        else:
            self.shared = DiskTier(cache_directory(settings), config.max_bytes, config.ttl)
        self._versions = dict(versions) if versions is not None else None

    @classmethod
    def from_settings(cls, settings: Settings, *, memory: bool = True) -> ResultCache | None:
        """The cache the settings describe; None when ``cache.enabled`` is false."""
        return cls(settings, memory=memory) if settings.cache.enabled else None

    @property
    def versions(self) -> dict[str, str]:
        """What the keys of this process cover by version (looked up on first use)."""
        if self._versions is None:
            self._versions = engine_versions(self.settings)
        return self._versions

    @property
    def tiers(self) -> list[Tier]:
        return [self.memory, self.shared] if self.memory is not None else [self.shared]

    def key(
        self,
        operation: str,
        params: Mapping[str, Any],
        inputs: Sequence[Mapping[str, Any]],
        tenant: str | None,
    ) -> str | None:
        """The key of the result of a job (see :func:`cache_key`); None when the operation
        is never cached (``cache.uncached_operations``)."""
        if operation in self.config.uncached_operations:
            return None
        return cache_key(
            operation=operation,
            params=params,
            inputs=inputs,
            versions=self.versions,
            settings=result_settings(self.settings, tenant),
            scope=None if self.config.shared_across_tenants else (tenant or ""),
        )

    def get(self, key: str) -> CachedResult | None:
        """The result kept under ``key``: from memory, else from the shared tier (and then
        kept in memory too); None on a miss, or when a tier fails.

        A result in memory is answered only while the shared tier still holds it (a
        look-up that also marks it used there): one deleted or evicted there, by any
        process, is gone for every process. When the shared tier does not answer, memory
        answers alone."""
        if self.memory is not None and self.memory.holds(key):
            try:
                held = self.shared.touch(key)
            except TIER_ERRORS as exc:
                log.warning("result cache look-up failed", tier=self.shared.name, error=str(exc))
                held = True
            if not held:
                self.memory.discard(key)
        if self.memory is not None and (entry := self.memory.get(key)) is not None:
            return entry
        try:
            entry = self.shared.get(key)
        except TIER_ERRORS as exc:
            log.warning("result cache look-up failed", tier=self.shared.name, error=str(exc))
            return None
        if entry is not None and self.memory is not None:
            self.memory.put(key, entry)
        return entry

    def put(self, key: str, entry: CachedResult) -> None:
        """Keep ``entry`` under ``key`` in every tier of this process; a tier that fails
        is skipped (and logged)."""
        if entry.size > self.config.max_entry_bytes:
            return
        for tier in self.tiers:
            try:
                tier.put(key, entry)
            except TIER_ERRORS as exc:
                log.warning("result not kept in the cache", tier=tier.name, error=str(exc))

    def delete(self, prefix: str = "") -> dict[str, int]:
        """Forget every result whose key starts with ``prefix`` (all with ""), in every
        tier this process reaches; the count by tier. :class:`DependencyDown` when a
        tier fails."""
        return {tier.name: self._call(tier, lambda t: t.delete(prefix)) for tier in self.tiers}

    def forget(self, keys: Iterable[str]) -> None:
        """Forget the results kept under ``keys`` in every tier this process reaches (those
        of jobs deleted); a tier that fails is logged, and its entries expire on their own."""
        for key in set(keys):
            for tier in self.tiers:
                try:
                    tier.discard(key)
                except TIER_ERRORS as exc:
                    log.warning("cached result not forgotten", tier=tier.name, error=str(exc))

    def stats(self) -> list[TierStats]:
        """Each tier's figures; :class:`DependencyDown` when a tier fails."""
        return [self._call(tier, lambda t: t.stats()) for tier in self.tiers]

    @staticmethod
    def _call(tier: Tier, action: Any) -> Any:
        try:
            return action(tier)
        except TIER_ERRORS as exc:
            raise DependencyDown(
                f"the result cache's {tier.name} tier failed: {exc}", dependency="cache"
            ) from exc

    def close(self) -> None:
        if isinstance(self.shared, RedisTier):
            self.shared.close()
