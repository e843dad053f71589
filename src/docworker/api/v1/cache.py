"""v1's cache routes (§10): ``GET /api/v1/cache/stats`` and ``DELETE /api/v1/cache/clear``.

They report and clear the v1 cache folder (:mod:`docworker.cache`), configured by
v1's ``CACHE_*`` variables; the folder's janitor runs for as long as the service. On top
of v1's answer, the stats carry ``result_cache``, the result cache's figures as
``GET /api/v2/cache`` gives them (for admin callers: every caller when the service runs
without keys), and clearing the folder forgets every result the result cache holds too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from docworker.api.auth import current_caller
from docworker.api.deps import ServicesDep
from docworker.api.routes.cache import cache_stats as result_cache_stats
from docworker.api.v1 import schemas
from docworker.api.v1.encoding import go_duration
from docworker.api.v1.errors import V1Error, v1_responses
from docworker.cache import FileCache
from docworker.config import Settings
from docworker.errors import DocworkerError

router = APIRouter(prefix="/api/v1", tags=["v1"])


def cache_directory(settings: Settings) -> Path:
    """The v1 cache folder: ``CACHE_DIRECTORY``, else ``cache`` in the data folder."""
    return settings.v1.cache_directory or settings.data_dir / "cache"


def file_cache(settings: Settings) -> FileCache:
    v1 = settings.v1
    return FileCache(
        cache_directory(settings), max_size=v1.cache_max_size, cleanup_age=v1.cache_cleanup_age
    )


def cache_stats(settings: Settings) -> dict[str, Any]:
    """v1's ``cache`` object; blocking (walks the folder)."""
    v1 = settings.v1
    if not v1.cache_enabled:
        return {"enabled": False}
    return {
        "enabled": True,
        "size": file_cache(settings).size(),
        "directory": str(cache_directory(settings)),
        "ttl": go_duration(v1.cache_ttl),
        "max_size": v1.cache_max_size,
    }


@router.get(
    "/cache/stats",
    operation_id="v1_cache_stats",
    summary="The cache folder's size and settings (v1)",
    responses={
        200: {
            "model": schemas.V1CacheStats,
            "description": "`{success, cache: {enabled, size, directory, ttl, max_size}, "
            "result_cache}`: `result_cache` (the result cache's figures, as GET /api/v2/cache "
            "answers them) for admin callers only",
            "content": {
                "application/json": {
                    "example": {
                        "success": True,
                        "cache": {
                            "enabled": True,
                            "size": 123456,
                            "directory": "./cache",
                            "ttl": "24h0m0s",
                            "max_size": 1073741824,
                        },
                    }
                }
            },
        }
    },
)
async def stats(services: ServicesDep) -> JSONResponse:
    """``size`` is the bytes of every file under the folder now."""
    cache = await anyio.to_thread.run_sync(cache_stats, services.settings)
    body: dict[str, Any] = {"success": True, "cache": cache}
    if current_caller().is_admin:
        try:
            results = await anyio.to_thread.run_sync(result_cache_stats, services.cache)
        except DocworkerError as exc:
            raise V1Error.wrapping(503, "Failed to read the result cache", exc) from None
        body["result_cache"] = results.model_dump(mode="json")
    return JSONResponse(body)


@router.delete(
    "/cache/clear",
    operation_id="v1_cache_clear",
    summary="Empty the cache folder (v1)",
    responses={
        200: {"description": "`{success: true, message}`"},
        **v1_responses(
            (400, "Cache is not enabled"),
            (403, "Failed to clear cache"),
            (500, "Failed to clear cache"),
            (503, "Failed to clear cache"),
        ),
    },
)
async def clear(services: ServicesDep) -> JSONResponse:
    """Deletes every file under the cache folder, and forgets every result of the result
    cache (with API keys on: admin keys only)."""
    try:
        current_caller().require_admin()
    except DocworkerError as exc:
        raise V1Error.wrapping(403, "Failed to clear cache", exc) from None
    if not services.settings.v1.cache_enabled:
        raise V1Error(400, "Cache is not enabled")
    try:
        await anyio.to_thread.run_sync(file_cache(services.settings).clear)
    except OSError as exc:
        raise V1Error(500, "Failed to clear cache", str(exc)) from None
    if services.cache is not None:
        try:
            await anyio.to_thread.run_sync(services.cache.delete, "")
        except DocworkerError as exc:
            raise V1Error.wrapping(503, "Failed to clear cache", exc) from None
    return JSONResponse({"success": True, "message": "Cache clear operation completed"})
