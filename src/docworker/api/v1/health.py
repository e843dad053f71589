"""``GET /api/v1/health`` (§3.5): v1's "domain" health report, from real checks.

The shape is v1's: ``services`` (the processor and the queue) and
``dependencies`` (``queue``, ``cache``, ``vips``, ``ffmpeg``, ``tesseract``,
``playwright``), each ``healthy``, ``unhealthy`` or ``unavailable``. Here the
queue is the job store answering, the cache is the v1 cache folder being
writable, and the tools are what provides them in v2 (libvips through pyvips,
FFmpeg, Tesseract through tesserocr, and WeasyPrint for HTML to PDF under v1's
``playwright`` key), with their versions. 200 when all are healthy, 503 otherwise.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from docworker.api.deps import ServicesDep
from docworker.api.routes.health import PROBE_TTL, V1_VERSION
from docworker.api.v1 import schemas
from docworker.api.v1.cache import file_cache
from docworker.api.v1.encoding import v1_time
from docworker.api.v1.errors import V1Error, v1_responses
from docworker.config import Settings
from docworker.errors import DocworkerError
from docworker.jobs.store import JobStore

router = APIRouter(prefix="/api/v1", tags=["v1"])

SERVICES = {
    "document-processor": {
        "status": "running",
        "message": "Document processing service is running",
    },
    "queue": {"status": "running", "message": "Queue service is running"},
}


def _vips() -> str:
    from docworker.engines.vips import pyvips  # loads libvips in its order (engines/vips.py)

    return f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}"


def _ffmpeg() -> str:
    program = shutil.which("ffmpeg")
    if program is None:
        raise OSError("program 'ffmpeg' is not installed")
    out = subprocess.run(
        [program, "-version"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    match = re.match(r"ffmpeg version (\S+)", out)
    return match.group(1) if match else ""


def _tesseract() -> str:
    import tesserocr

    match = re.search(r"tesseract\s+(\S+)", tesserocr.tesseract_version())
    return match.group(1) if match else ""


def _weasyprint() -> str:
    return importlib.metadata.version("weasyprint")


#: key → (check returning a version, message when healthy).
_TOOLS: dict[str, tuple[Callable[[], str], str]] = {
    "vips": (_vips, "VIPS image processing"),
    "ffmpeg": (_ffmpeg, "FFmpeg video processing"),
    "tesseract": (_tesseract, "Tesseract OCR"),
    "playwright": (_weasyprint, "WeasyPrint PDF generation"),
}
_tool_cache: dict[str, Any] = {"at": -PROBE_TTL, "deps": {}}


def _probe(check: Callable[[], str], message: str) -> dict[str, Any]:
    try:
        version = check()
    except (ImportError, OSError, subprocess.SubprocessError, ValueError) as exc:
        return {"status": "unhealthy", "available": False, "message": str(exc)}
    entry: dict[str, Any] = {"status": "healthy", "available": True, "message": message}
    if version:
        entry["version"] = version
    return entry


def _tools() -> dict[str, dict[str, Any]]:
    """The tool checks, cached (they start processes and load libraries)."""
    now = time.monotonic()
    if now - _tool_cache["at"] >= PROBE_TTL:
        deps = {key: _probe(check, message) for key, (check, message) in _TOOLS.items()}
        _tool_cache.update(at=now, deps=deps)
    cached: dict[str, dict[str, Any]] = _tool_cache["deps"]
    return cached


def _queue(store: JobStore | None) -> dict[str, Any]:
    if store is None:
        return {
            "status": "unavailable",
            "available": False,
            "message": "Queue service not initialized",
        }
    try:
        store.ping()
    except DocworkerError as exc:
        return {"status": "unhealthy", "available": False, "message": exc.detail}
    return {"status": "healthy", "available": True, "message": "Job store answers"}


def _cache(settings: Settings) -> dict[str, Any]:
    if not settings.v1.cache_enabled:
        return {
            "status": "unavailable",
            "available": False,
            "message": "Cache service not initialized",
        }
    reason = file_cache(settings).writable()
    if reason is not None:
        return {"status": "unhealthy", "available": False, "message": reason}
    return {"status": "healthy", "available": True, "message": "Cache folder is writable"}


def domain_health(store: JobStore | None, settings: Settings) -> dict[str, Any]:
    """v1's domain health object, of the job store (None: there is none) and the cache
    folder ``settings`` name; blocking."""
    deps = {"queue": _queue(store), "cache": _cache(settings), **_tools()}
    healthy = all(dep["available"] for dep in deps.values())
    return {
        "status": "healthy" if healthy else "degraded",
        "version": V1_VERSION,
        "timestamp": v1_time(),
        "services": SERVICES,
        "dependencies": deps,
    }


@router.get(
    "/health",
    operation_id="v1_domain_health",
    summary="Health of the services and dependencies (v1)",
    responses={
        200: {"model": schemas.V1DomainHealth, "description": "`healthy`"},
        503: {
            "model": schemas.V1DomainHealth,
            "description": "`degraded`: a dependency is unavailable",
        },
        **v1_responses((500, "Failed to get health status")),
    },
)
async def health(services: ServicesDep) -> JSONResponse:
    """200 when every dependency is available, 503 (``degraded``) otherwise."""
    try:
        body = await anyio.to_thread.run_sync(domain_health, services.store, services.settings)
    except (OSError, RuntimeError) as exc:
        raise V1Error(500, "Failed to get health status", str(exc)) from None
    return JSONResponse(body, status_code=200 if body["status"] == "healthy" else 503)
