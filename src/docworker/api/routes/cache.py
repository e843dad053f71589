"""``/api/v2/cache``: the result cache's figures, and forgetting what it holds.

Both routes are for admin keys when the service runs with API keys (without keys every
caller is the admin): the figures are the whole service's, and forgetting results
costs every tenant their hits.
"""

from __future__ import annotations

import re
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from docworker.api.auth import CallerDep
from docworker.api.deps import ServicesDep
from docworker.api.errors import problem_responses
from docworker.errors import InvalidParameter
from docworker.operations import OPERATIONS, get_operation
from docworker.result_cache import ResultCache

router = APIRouter(prefix="/api/v2", tags=["cache"])

#: What a key prefix may be: an operation's name, then its colon, then hex digits.
PREFIX_PATTERN = re.compile(r"^[a-z0-9_-]{1,64}(:[0-9a-f]{0,64})?$")


class CacheTierPublic(BaseModel):
    tier: str = Field(
        description="memory (this API process's), disk or redis (shared by every process).",
        examples=["disk"],
    )
    entries: int = Field(description="Results held now.")
    bytes: int = Field(description="Bytes they take.")
    max_bytes: int = Field(description="The tier's bound: least recently used evicted beyond.")
    hits: int = Field(description="Look-ups that found a result.")
    misses: int = Field(description="Look-ups that found none (or an expired one).")
    evictions: int = Field(description="Results let go for room.")
    expired: int = Field(description="Results dropped past their life (cache.ttl).")


class CacheStats(BaseModel):
    enabled: bool = Field(description="Whether the result cache is on (cache.enabled).")
    ttl: float | None = Field(None, description="Life of a result, in seconds.")
    tiers: list[CacheTierPublic] = Field(
        default_factory=list,
        description="The memory tier first (absent when cache.memory_max_bytes is 0), then "
        "the shared one. The memory tier counts for this process since it started; the shared "
        "tier for every process using it.",
    )


class CacheCleared(BaseModel):
    enabled: bool = Field(description="Whether the result cache is on.")
    deleted: dict[str, int] = Field(
        default_factory=dict,
        description="Results forgotten, by tier (the memory tier: this process's).",
        examples=[{"memory": 2, "disk": 5}],
    )


def cache_stats(cache: ResultCache | None) -> CacheStats:
    """The figures of ``cache`` (blocking: a tier may walk a folder or ask Redis)."""
    if cache is None:
        return CacheStats(enabled=False)
    tiers = [CacheTierPublic(**tier.as_dict()) for tier in cache.stats()]
    return CacheStats(enabled=True, ttl=cache.config.ttl, tiers=tiers)


@router.get(
    "/cache",
    operation_id="get_cache",
    summary="The result cache's figures",
    response_model=CacheStats,
    responses=problem_responses(401, 403, 503),
)
async def get_cache(caller: CallerDep, services: ServicesDep) -> CacheStats:
    """Entries, bytes, hits, misses, evictions and expirations of each tier of the result
    cache. 503 when the shared tier (the disk folder, Redis) does not answer."""
    caller.require_admin()
    return await anyio.to_thread.run_sync(cache_stats, services.cache)


@router.delete(
    "/cache",
    operation_id="clear_cache",
    summary="Forget results kept in the result cache",
    response_model=CacheCleared,
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def clear_cache(
    caller: CallerDep,
    services: ServicesDep,
    operation: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Only the results of this operation.",
            json_schema_extra={"enum": sorted(OPERATIONS)},
        ),
    ] = None,
    prefix: Annotated[
        str | None,
        Query(
            max_length=129,
            description="Only the results whose key starts with this: '<operation>:<hex "
            "digits>' (keys are '<operation>:<sha256>').",
            examples=["extract:3fa9"],
        ),
    ] = None,
) -> CacheCleared:
    """Every result (no filter), those of an ``operation``, or those whose key starts with
    ``prefix``. Jobs served from the cache before keep their copies of the results. 404
    for an unknown operation; 422 for a prefix that no key can start with."""
    caller.require_admin()
    chosen = clear_prefix(operation, prefix)
    cache = services.cache
    if cache is None:
        return CacheCleared(enabled=False)
    deleted = await anyio.to_thread.run_sync(cache.delete, chosen)
    return CacheCleared(enabled=True, deleted=deleted)


def clear_prefix(operation: str | None, prefix: str | None) -> str:
    """The key prefix an ``operation`` and a ``prefix`` name together ("" for every key)."""
    if operation is not None:
        get_operation(operation)
    if prefix is None:
        return f"{operation}:" if operation is not None else ""
    if not PREFIX_PATTERN.match(prefix):
        raise InvalidParameter(
            "prefix", "must be an operation's name, or '<operation>:' and hex digits"
        )
    if operation is not None and not prefix.startswith(f"{operation}:"):
        raise InvalidParameter("prefix", f"does not start with '{operation}:', the operation")
    return prefix
