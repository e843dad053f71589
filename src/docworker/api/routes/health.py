"""Health probes and metrics: ``/health``, ``/health/liveness``, ``/health/readiness``,
``/metrics``.

The bodies keep the v1 shapes (v1 clients and probes depend on them) and add the
v2 checks beside them. ``/metrics`` answers v1's JSON by default and Prometheus
text to a scraper (an ``Accept`` asking for text/plain or OpenMetrics).
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from docworker import metrics_store
from docworker.api.deps import Services, ServicesDep
from docworker.api.v1.encoding import go_duration, v1_time
from docworker.config import ExecutorKind, Settings
from docworker.engines.breaker import show_states
from docworker.engines.libreoffice import LibreOfficeEngine
from docworker.engines.sandbox import network_sandbox
from docworker.errors import DependencyDown
from docworker.jobs.admission import DiskFloor
from docworker.metrics import DEAD_LETTERS, DISK_FLOOR, DISK_FREE, QUEUE_AGE, QUEUE_DEPTH

router = APIRouter(tags=["health", "v1"])

V1_VERSION = "1.0.0"
#: Tool probes are cached this long, as v1 did: they start processes.
PROBE_TTL = 300.0


def _program(name: str) -> str | None:
    return None if shutil.which(name) else f"program '{name}' is not installed"


def _library(name: str) -> str | None:
    return None if importlib.util.find_spec(name) else f"library '{name}' is not installed"


def _capabilities(settings: Settings) -> dict[str, Callable[[], str | None]]:
    """v1's service keys → a check of what provides that capability in v2 (None: available)."""
    return {
        "ffmpeg": lambda: _program(settings.ffmpeg.ffmpeg_path),
        "vips": lambda: _library("pyvips"),
        "libreoffice": LibreOfficeEngine(settings.libreoffice).unavailable_reason,
        "mutool": lambda: _library("pypdfium2"),
        "tesseract": lambda: _library("tesserocr"),
    }


_probe_cache: dict[str, Any] = {"at": -PROBE_TTL, "services": {}}


def _probe_services(settings: Settings) -> dict[str, dict[str, Any]]:
    now = time.monotonic()
    if now - _probe_cache["at"] < PROBE_TTL:
        cached: dict[str, dict[str, Any]] = _probe_cache["services"]
        return cached
    services: dict[str, dict[str, Any]] = {}
    for key, check in _capabilities(settings).items():
        if key == "vips" and not settings.v1.vips_enabled:
            services[key] = {"status": "disabled", "available": False}
            continue
        reason = check()
        if reason is None:
            # v1's "version" was what its probe printed: "detected" for output on stdout,
            # "available" for mutool, which prints its version on stderr.
            version = "available" if key == "mutool" else "detected"
            services[key] = {"status": "available", "available": True, "version": version}
        else:
            services[key] = {"status": "unavailable", "available": False, "error": reason}
    _probe_cache.update(at=now, services=services)
    return services


def _queue_info(services: Services) -> dict[str, Any]:
    try:
        services.store.ping()
        depth, oldest = services.store.queue_depth()
        if services.queue.admission is not None:
            services.queue.admission.backlog.queued()  # the gauge of each family
    except DependencyDown as exc:
        return {"connected": False, "stats": None, "error": exc.detail}
    QUEUE_DEPTH.set(depth)
    QUEUE_AGE.set(oldest or 0.0)
    return {"connected": True, "stats": {"pending": depth}}


def _checks(services: Services) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    try:
        services.blobs.ping()
        checks["storage"] = {"status": "up"}
    except DependencyDown as exc:
        checks["storage"] = {"status": "down", "error": exc.detail}
    checks["disk"] = DiskFloor.of(services.settings).status()
    admission = services.queue.admission
    if admission is not None:
        try:
            checks["admission"] = admission.status()
        except DependencyDown as exc:
            checks["admission"] = {"draining": admission.drain.active, "error": exc.detail}
    checks["sandbox"] = network_sandbox(services.settings.sandbox).status()
    checks["breakers"] = services.breakers.status()
    executor = services.executor
    if services.settings.executor.kind is ExecutorKind.CELERY:
        from docworker.jobs.distributed import CeleryDispatch

        if isinstance(services.queue.executor, CeleryDispatch):
            checks["executor"] = services.queue.executor.status()
    elif executor is not None:
        checks["executor"] = {
            "status": "up",
            "kind": "local",
            "workers": len(executor.pids()),
            "busy": len(executor.busy()),
        }
    return checks


def health_report(services: Services) -> tuple[dict[str, Any], int]:
    tools = _probe_services(services.settings)
    queue = _queue_info(services)
    checks = _checks(services)
    status = "healthy"
    if not all(s["available"] for s in tools.values()) or checks["disk"]["status"] != "up":
        status = "degraded"
    if checks.get("admission", {}).get("draining"):
        status = "degraded"
    if any(b["state"] != "closed" for b in checks["breakers"].values()):
        status = "degraded"
    if not queue["connected"] or checks["storage"]["status"] != "up":
        status = "unhealthy"
    if checks.get("executor", {}).get("status") == "down":  # the broker: no job can be queued
        status = "unhealthy"
    body = {
        "status": status,
        "version": V1_VERSION,
        "timestamp": _now(),
        "uptime": go_duration(services.uptime),
        "services": tools,
        "queue": queue,
        "system": {"environment": _environment(services.settings), "platform": "kubernetes"},
        "checks": checks,
    }
    return body, 503 if status == "unhealthy" else 200


def _environment(settings: Settings) -> str:
    """v1's ``ENVIRONMENT`` as given, else the profile's name."""
    return settings.v1.environment or settings.profile.value


def _now() -> str:
    return v1_time()


@router.get(
    "/health",
    operation_id="health",
    summary="Full health report",
    responses={
        200: {"description": "``healthy`` or ``degraded``"},
        503: {
            "description": "``unhealthy``: the same report",
            "content": {"application/json": {}},
        },
    },
)
async def health(services: ServicesDep) -> JSONResponse:
    """``healthy``, ``degraded`` (a tool is missing, the disk is under its free-space
    floor, the service drains, so no work is accepted, or an engine's breaker is not
    closed: 200) or ``unhealthy`` (the job
    store or blob store is down: 503), with each tool, the queue and the v2 checks:
    storage, ``disk`` (free MiB of each disk the service writes to, and the floor),
    ``admission`` (``draining``, and each family's queue: its ``bound``, the ``room`` of
    each priority band, the jobs ``queued``, and ``drain_per_second``), ``sandbox``
    (what keeps the engines off the network: ``namespace`` or ``engine rules``),
    ``breakers`` (each engine's circuit breaker, as this process holds it: ``state``
    ``closed``, ``open`` or ``half_open``, its ``failures`` in a row and ``threshold``,
    ``retry_after`` while open, ``last_error``; one not closed makes the service
    ``degraded``) and the executor."""
    body, status = await anyio.to_thread.run_sync(health_report, services)
    return JSONResponse(body, status_code=status)


@router.get("/health/liveness", operation_id="liveness", summary="Liveness probe")
async def liveness(services: ServicesDep) -> dict[str, Any]:
    """Always 200 while the process answers."""
    return {"status": "alive", "timestamp": _now(), "uptime": go_duration(services.uptime)}


@router.get(
    "/health/readiness",
    operation_id="readiness",
    summary="Readiness probe",
    responses={
        200: {"description": "``ready``"},
        503: {"description": "``not_ready``, and why", "content": {"application/json": {}}},
    },
)
async def readiness(services: ServicesDep) -> JSONResponse:
    """200 when the job store answers, 503 otherwise, and 503 while the service drains
    (it is shutting down and takes no new work: send it none)."""
    admission = services.queue.admission
    if admission is not None and admission.drain.active:
        return JSONResponse({"status": "not_ready", "reason": "Draining"}, 503)
    queue = await anyio.to_thread.run_sync(_queue_info, services)
    if not queue["connected"]:
        return JSONResponse({"status": "not_ready", "reason": "Queue not available"}, 503)
    return JSONResponse({"status": "ready", "timestamp": _now()})


@router.get(
    "/metrics",
    operation_id="metrics",
    summary="Metrics (v1 JSON or Prometheus)",
    responses={
        200: {
            "description": "v1's JSON object, or Prometheus text when Accept asks for it",
            "content": {"application/json": {}, "text/plain": {}},
        }
    },
)
async def metrics(services: ServicesDep, accept: str | None = Header(None)) -> Response:
    """Prometheus text when ``Accept`` asks for ``text/plain`` or OpenMetrics (as scrapers
    do); otherwise v1's flat JSON object."""
    queue = await anyio.to_thread.run_sync(_queue_info, services)
    wants_text = (
        accept is not None
        and "application/json" not in accept
        and ("text/plain" in accept or "openmetrics" in accept)
    )
    tools = await anyio.to_thread.run_sync(_probe_services, services.settings)
    body: dict[str, Any] = {
        "documents_worker_up": 1,
        "documents_worker_uptime_seconds": round(services.uptime, 3),
        "documents_worker_queue_pending_jobs": (queue["stats"] or {}).get("pending", 0),
    }
    for key, info in tools.items():
        body[f'documents_worker_service_available{{service="{key}"}}'] = int(info["available"])
    if wants_text:
        text = await anyio.to_thread.run_sync(_scrape, services)
        return Response(text + _v1_exposition(body), media_type=CONTENT_TYPE_LATEST)
    return JSONResponse(body)


#: v1's metrics, for their lines in the Prometheus text.
_V1_HELP = {
    "documents_worker_up": "1 while the service answers (v1).",
    "documents_worker_uptime_seconds": "Seconds since the process started (v1).",
    "documents_worker_queue_pending_jobs": "Jobs waiting in the queue (v1).",
    "documents_worker_service_available": "1 when the tool is available, else 0 (v1).",
}


def _v1_exposition(values: dict[str, Any]) -> bytes:
    """v1's metrics (the JSON object's keys are Prometheus samples already) as
    Prometheus text, so that a scraper finds them under the names v1 gave them."""
    lines: list[str] = []
    for name, help_text in _V1_HELP.items():
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        lines += [
            f"{sample} {value}"
            for sample, value in values.items()
            if sample == name or sample.startswith(name + "{")
        ]
    return ("\n".join(lines) + "\n").encode()


#: The dead-letter count is read from the job store at most this often (seconds).
DEAD_COUNT_TTL = 30.0
_dead_cache: dict[str, float] = {"at": -DEAD_COUNT_TTL}


def _scrape(services: Services) -> bytes:
    """The gauges read at a scrape (disks, dead letters, breakers; the queue was counted
    just before), then the Prometheus text of every process of the instance."""
    _disk_gauges(services.settings)
    now = time.monotonic()
    if now - _dead_cache["at"] >= DEAD_COUNT_TTL:
        try:
            DEAD_LETTERS.set(services.store.dead_count())
            _dead_cache["at"] = now
        except DependencyDown:
            pass  # the job store is away: the last count stands
    # The breakers other processes posted unreadable (the job store away): the last stand.
    with contextlib.suppress(DependencyDown):
        show_states(services.breakers.status())
    return metrics_store.exposition()


def _disk_gauges(settings: Settings) -> None:
    """Free bytes of each disk the service writes to, by the role of its folder."""
    floor = DiskFloor.of(settings)
    DISK_FLOOR.set(max(floor.min_free_mb, 0) * 1024 * 1024)
    for role, folder in disk_roles(settings).items():
        existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
        if existing is None:
            continue
        try:
            DISK_FREE.labels(role).set(shutil.disk_usage(existing).free)
        except OSError:
            continue


def disk_roles(settings: Settings) -> dict[str, Path]:
    """The folders whose disks :data:`~docworker.metrics.DISK_FREE` reports, by role:
    ``data`` (the data folder: the embedded database, the jobs' work folders), ``temp``
    (uploads), ``blobs`` and ``output`` (a local blob store's folders)."""
    roles = {"data": settings.data_dir.absolute(), "temp": Path(tempfile.gettempdir())}
    for role, url in (("blobs", settings.storage_url), ("output", settings.storage.output_url)):
        if url is not None and url.startswith("file://"):
            roles[role] = Path(url.removeprefix("file://"))
    return roles
