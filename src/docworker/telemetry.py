"""Logging set-up and the Prometheus metrics every part of the service records.

Logs are structlog key-value events: JSON lines in production, readable lines
in a terminal. Context such as ``request_id`` and ``job_id`` is bound through
contextvars so that every line of a request or job carries it.
"""

from __future__ import annotations

import logging
import sys

import structlog
from prometheus_client import Counter, Gauge, Histogram

from docworker.tracing import add_trace_ids

HTTP_REQUESTS = Counter(
    "docworker_http_requests_total",
    "HTTP requests answered, by method, route and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "docworker_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
HTTP_REQUEST_BYTES = Counter(
    "docworker_http_request_bytes_total", "Bytes received in request bodies.", ["route"]
)
JOBS_SUBMITTED = Counter(
    "docworker_jobs_submitted_total", "Jobs accepted into the queue.", ["operation"]
)
JOBS_FINISHED = Counter(
    "docworker_jobs_finished_total", "Jobs that reached an end state.", ["operation", "status"]
)
JOB_ATTEMPTS_FAILED = Counter(
    "docworker_job_attempts_failed_total",
    "Job attempts that failed, by operation and error code.",
    ["operation", "code"],
)
JOB_DURATION = Histogram(
    "docworker_job_duration_seconds",
    "Wall-clock time of one job attempt in a worker.",
    ["operation"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)
JOB_QUEUE_WAIT = Histogram(
    "docworker_job_queue_wait_seconds",
    "Time from submission to the first start of a job.",
    ["operation"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
QUEUED_JOBS = Gauge(
    "docworker_queued_jobs",
    "Submitted jobs waiting to run, by family (parts of split jobs not counted), as last "
    "counted at admission or by a health probe.",
    ["family"],
)
QUEUE_DRAIN_RATE = Gauge(
    "docworker_queue_drain_rate",
    "Jobs of a family that ended per second over the drain window (queue.drain_window), "
    "as last measured.",
    ["family"],
)
ADMISSION_REFUSALS = Counter(
    "docworker_admission_refusals_total",
    "Jobs refused at admission, by reason (queue_full: the family's bound; engine_full: "
    "the engine's queue; draining; disk_low; active_jobs: the tenant's cap) and family.",
    ["reason", "family"],
)
WORKER_RESTARTS = Counter(
    "docworker_worker_restarts_total",
    "Worker processes replaced, by reason (recycled, died, timeout, memory, cancelled).",
    ["reason"],
)
WORKERS_BUSY = Gauge("docworker_workers_busy", "Worker processes running a job now.")
WORKERS_TOTAL = Gauge("docworker_workers", "Worker processes of the local executor.")

# The result cache, by tier (memory: this process's; disk or redis: the shared one, as
# this process used it).
CACHE_HITS = Counter(
    "docworker_result_cache_hits_total", "Result cache look-ups that found a result.", ["tier"]
)
CACHE_MISSES = Counter(
    "docworker_result_cache_misses_total",
    "Result cache look-ups that found nothing (or an expired or unreadable entry).",
    ["tier"],
)
CACHE_EVICTIONS = Counter(
    "docworker_result_cache_evictions_total",
    "Results the cache let go, by reason (size: least recently used past the tier's bound; "
    "expired: past cache.ttl).",
    ["tier", "reason"],
)
CACHE_BYTES = Gauge(
    "docworker_result_cache_bytes",
    "Bytes a tier of the result cache holds, as last seen.",
    ["tier"],
)
CACHE_ENTRIES = Gauge(
    "docworker_result_cache_entries",
    "Results a tier of the result cache holds, as last seen.",
    ["tier"],
)

# Usage: the figures of GET /api/v2/usage, counted when a job's audit event is written.
# ``key_id`` is empty unless usage.metrics_by_key is set (one series per key).
_USAGE_LABELS = ["tenant", "operation", "key_id"]
USAGE_JOBS = Counter(
    "docworker_usage_jobs_total",
    "Jobs that reached a final state, by tenant, operation and outcome.",
    ["tenant", "operation", "outcome", "key_id"],
)
USAGE_INPUT_BYTES = Counter(
    "docworker_usage_input_bytes_total", "Bytes of input of ended jobs.", _USAGE_LABELS
)
USAGE_PAGES = Counter("docworker_usage_pages_total", "Pages ended jobs processed.", _USAGE_LABELS)
USAGE_CPU_SECONDS = Counter(
    "docworker_usage_cpu_seconds_total",
    "CPU-seconds ended jobs used (worker, engines and tools they ran; parts included).",
    _USAGE_LABELS,
)
QUOTA_REFUSALS = Counter(
    "docworker_quota_refusals_total",
    "Requests refused because a daily quota of the API key was spent, by tenant and quota.",
    ["tenant", "quota"],
)
AUDIT_EVENTS_DROPPED = Counter(
    "docworker_audit_events_dropped_total",
    "Refusal events not recorded one by one because the buffer was full.",
)
#: Tenant label of work done without API keys.
NO_TENANT = "-"
_usage_options = {"by_key": False}


def configure_usage_metrics(*, by_key: bool) -> None:
    """Whether the usage metrics carry the API key's id (set once at start-up)."""
    _usage_options["by_key"] = by_key


def _usage_labels(tenant: str | None, operation: str, key_id: str | None) -> dict[str, str]:
    key = (key_id or "") if _usage_options["by_key"] else ""
    return {"tenant": tenant or NO_TENANT, "operation": operation, "key_id": key}


def record_job_usage(
    *,
    tenant: str | None,
    key_id: str | None,
    operation: str,
    outcome: str,
    input_bytes: int,
    pages: int,
    cpu_seconds: float,
) -> None:
    """Count an ended job in the usage metrics."""
    labels = _usage_labels(tenant, operation, key_id)
    USAGE_JOBS.labels(outcome=outcome, **labels).inc()
    USAGE_INPUT_BYTES.labels(**labels).inc(input_bytes)
    USAGE_PAGES.labels(**labels).inc(pages)
    USAGE_CPU_SECONDS.labels(**labels).inc(cpu_seconds)


def record_job_cpu(
    tenant: str | None, key_id: str | None, operation: str, cpu_seconds: float
) -> None:
    """CPU-seconds of an ended job that were reported after it ended (a late part)."""
    USAGE_CPU_SECONDS.labels(**_usage_labels(tenant, operation, key_id)).inc(cpu_seconds)


#: The name of the standard library's handler :func:`configure_logging` installs.
_HANDLER = "docworker"


def configure_logging(*, level: str = "INFO", json_logs: bool = False) -> None:
    """Set up structlog, and the standard library's logging under it, once per process:
    every line (uvicorn's, Alembic's, Celery's and every library's too) goes through the
    same processors to one renderer, JSON lines when ``json_logs``. A line carries the
    context bound in contextvars (``request_id``, ``job_id``, ``tenant``, ``key_id``) and
    the ``trace_id`` and ``span_id`` of the span current when it was logged."""
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor
    if json_logs:
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    else:
        # Tracebacks without their local variables: those hold passwords and documents.
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(),
            exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False),
        )
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    handler.set_name(_HANDLER)
    root = logging.getLogger()
    for old in list(root.handlers):
        # This function's handler of an earlier call (a test's capture handler stays).
        if old.get_name() == _HANDLER:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # Warnings (a library's deprecation, Celery's about running as root) are lines too.
    logging.captureWarnings(True)
    # Loggers that bring handlers of their own (uvicorn's, when configured by it; Celery's)
    # hand their lines to the root's instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic", "celery"):
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = True
