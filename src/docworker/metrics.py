"""The Prometheus metrics every part of the service records (docs/observability.md).

Every metric of the service is defined here, once, and recorded where its event
happens: the API's middleware (HTTP), the job store's journal (jobs that start and
end, whichever process moved them), the executors (run time, workers), the engines'
calls, the blob store, the result cache, the webhook deliveries and the usage ledger.

Labels are bounded by design: a route is its template, a method one of the standard
ones, an operation, family, engine, tier or error code one of the fixed sets of the
code; no job id, file name or raw path is ever a label value. The usage metrics carry
the tenant (one per configured tenant) and, only with ``usage.metrics_by_key``, the API
key's id (one per configured key).

The processes of one service instance (the API, the local executor's worker
processes, ``docworker worker`` and its pool processes) write their samples to one
multi-process store when :func:`docworker.metrics_store.enable` has chosen its
folder: a scrape of any of them reads all (:mod:`docworker.metrics_store`). The
``multiprocess_mode`` of each gauge says how the processes' values are combined.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from docworker.errors import EngineTimeout, InputError

# -- HTTP -----------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "docworker_http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
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
HTTP_IN_FLIGHT = Gauge(
    "docworker_http_requests_in_flight",
    "HTTP requests being answered now.",
    multiprocess_mode="livesum",
)
#: The methods that are their own label value; any other is ``OTHER``.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The route label of a request no route matched (a 404 of an unknown path).
UNMATCHED_ROUTE = "unmatched"

# -- SLO indicators -------------------------------------------------------------------
#: Bounds of the synchronous endpoints' latency: the thresholds an SLO may pick.
SYNC_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)
SYNC_REQUEST_DURATION = Histogram(
    "docworker_sync_request_duration_seconds",
    "Synchronous endpoints (submit and wait): from the upload received to the answer "
    "ready, by operation and outcome (the job's final status, or pending: not done "
    "within the wait, answered 202).",
    ["operation", "outcome"],
    buckets=SYNC_BUCKETS,
)
#: Bounds of a job's time from submission to its end: the thresholds an SLO may pick.
END_TO_END_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
JOB_END_TO_END = Histogram(
    "docworker_job_end_to_end_seconds",
    "Time from a job's submission to its final state (queue wait, every attempt and "
    "the retries' delays), by operation and final status.",
    ["operation", "status"],
    buckets=END_TO_END_BUCKETS,
)

# -- jobs and queues ------------------------------------------------------------------
JOBS_SUBMITTED = Counter(
    "docworker_jobs_submitted_total", "Jobs accepted into the queue.", ["operation"]
)
JOBS_STARTED = Counter(
    "docworker_jobs_started_total",
    "Job attempts started by a worker (a retried job starts again).",
    ["operation"],
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
JOB_PARTS = Counter(
    "docworker_job_parts_total",
    "Parts made when a job was split to run on several workers at once.",
    ["operation"],
)
QUEUED_JOBS = Gauge(
    "docworker_queued_jobs",
    "Submitted jobs waiting to run, by family (parts of split jobs not counted), as last "
    "counted at admission, by a health probe or a scrape.",
    ["family"],
    multiprocess_mode="livemostrecent",
)
QUEUE_DRAIN_RATE = Gauge(
    "docworker_queue_drain_rate",
    "Jobs of a family that ended per second over the drain window (queue.drain_window), "
    "as last measured.",
    ["family"],
    multiprocess_mode="livemostrecent",
)
QUEUE_DEPTH = Gauge(
    "docworker_queue_depth",
    "Queued jobs ready to run, as last counted.",
    multiprocess_mode="livemostrecent",
)
QUEUE_AGE = Gauge(
    "docworker_queue_oldest_age_seconds",
    "Age of the oldest queued job, as last counted.",
    multiprocess_mode="livemostrecent",
)
DEAD_LETTERS = Gauge(
    "docworker_dead_letters",
    "Jobs on the dead-letter list (status dead), as counted at the last scrape.",
    multiprocess_mode="livemostrecent",
)
ADMISSION_REFUSALS = Counter(
    "docworker_admission_refusals_total",
    "Jobs refused at admission, by reason (queue_full: the family's bound; engine_full: "
    "the engine's queue; draining; disk_low; active_jobs: the tenant's cap) and family.",
    ["reason", "family"],
)

# -- workers --------------------------------------------------------------------------
WORKER_RESTARTS = Counter(
    "docworker_worker_restarts_total",
    "Worker processes replaced, by reason (recycled, died, timeout, memory, cancelled, "
    "start-timeout, reconfigured: a reload gave new settings).",
    ["reason"],
)
WORKERS_BUSY = Gauge(
    "docworker_workers_busy",
    "Worker processes running a job now.",
    multiprocess_mode="livesum",
)
WORKERS_TOTAL = Gauge(
    "docworker_workers",
    "Worker processes of the local executor.",
    multiprocess_mode="livesum",
)

# -- engines --------------------------------------------------------------------------
ENGINE_CALLS = Counter(
    "docworker_engine_calls_total",
    "Calls of an external engine, by engine and outcome (ok; input_error: the document "
    "was refused; failed; timeout).",
    ["engine", "outcome"],
)
ENGINE_CALL_DURATION = Histogram(
    "docworker_engine_call_duration_seconds",
    "Time of one call of an external engine.",
    ["engine"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
ENGINE_RESTARTS = Counter(
    "docworker_engine_restarts_total",
    "Engine processes started or ended by their supervisor, by reason (start: a process "
    "started; crashed: ended after a failure; recycled: after engine restart_after "
    "tasks; hung: killed at its time limit).",
    ["engine", "reason"],
)
BREAKER_STATE = Gauge(
    "docworker_engine_breaker_state",
    "An engine's circuit breaker: 0 closed, 1 half_open, 2 open (the worst of the "
    "processes that hold one).",
    ["engine"],
    multiprocess_mode="livemax",
)
BREAKER_OPENED = Counter(
    "docworker_engine_breaker_opened_total",
    "Times an engine's circuit breaker opened.",
    ["engine"],
)
#: The value of each breaker state in :data:`BREAKER_STATE`.
BREAKER_STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}

# -- disk -----------------------------------------------------------------------------
DISK_FREE = Gauge(
    "docworker_disk_free_bytes",
    "Free bytes of each disk the service writes to, by the role of its folder (data, "
    "temp, blobs, output), as read at the last scrape.",
    ["disk"],
    multiprocess_mode="livemostrecent",
)
DISK_FLOOR = Gauge(
    "docworker_disk_floor_bytes",
    "Free bytes each disk must keep for work to be accepted (server.min_free_disk_mb; "
    "0: no floor).",
    multiprocess_mode="livemostrecent",
)

# -- the result cache, by tier (memory: a process's; disk or redis: the shared one) ----
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
    "Bytes a tier of the result cache holds, as last seen (memory: the largest of the processes').",
    ["tier"],
    multiprocess_mode="livemax",
)
CACHE_ENTRIES = Gauge(
    "docworker_result_cache_entries",
    "Results a tier of the result cache holds, as last seen (memory: the largest of the "
    "processes').",
    ["tier"],
    multiprocess_mode="livemax",
)

# -- the blob store -------------------------------------------------------------------
STORAGE_OPERATIONS = Counter(
    "docworker_storage_operations_total",
    "Blob store operations, by backend (the storage URL's protocol), operation (put, "
    "write, read, fetch, exists, delete) and outcome (ok, not_found, error).",
    ["backend", "operation", "outcome"],
)
STORAGE_BYTES = Counter(
    "docworker_storage_bytes_total",
    "Bytes written to (in) and read whole from (out) the blob store.",
    ["backend", "direction"],
)
STORAGE_DURATION = Histogram(
    "docworker_storage_operation_duration_seconds",
    "Time of one blob store operation.",
    ["backend", "operation"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# -- webhooks -------------------------------------------------------------------------
WEBHOOK_DELIVERIES = Counter(
    "docworker_webhook_deliveries_total",
    "Webhook delivery attempts, by outcome (delivered; retry: failed, tried again "
    "later; failed: given up).",
    ["outcome"],
)
WEBHOOK_DURATION = Histogram(
    "docworker_webhook_delivery_duration_seconds",
    "Time of one webhook delivery attempt.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# -- usage: the figures of GET /api/v2/usage, counted when a job's audit event is written.
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


def http_method(method: str) -> str:
    """The method's label value: itself when standard, else ``OTHER``."""
    return method if method in HTTP_METHODS else "OTHER"


@contextmanager
def engine_call(engine: str) -> Iterator[None]:
    """Count one call of ``engine`` (a lower-case engine name) and time it; the outcome
    is the exception the call ends with, if any."""
    started = time.perf_counter()
    outcome = "failed"
    try:
        yield
        outcome = "ok"
    except EngineTimeout:
        outcome = "timeout"
        raise
    except InputError:
        outcome = "input_error"
        raise
    finally:
        ENGINE_CALLS.labels(engine, outcome).inc()
        ENGINE_CALL_DURATION.labels(engine).observe(time.perf_counter() - started)


#: The final kinds of a job's events (its end states).
_FINAL_KINDS = frozenset({"succeeded", "partial", "failed", "cancelled", "dead"})


@dataclass(frozen=True)
class JobEventCount:
    """What the job metrics count of one event of a job, once its change has committed
    (the journal records every change of every job, in whichever process made it).

    A job's start and end (and its time from submission) count jobs, not the parts of
    a split job, as ``docworker_jobs_submitted_total`` does; the parts are counted when
    the job is split (``docworker_job_parts_total``)."""

    operation: str
    kind: str
    part: bool
    attempts: int
    created_at: datetime | None
    at: datetime

    def record(self, extra: dict[str, Any] | None = None) -> None:
        if self.kind == "progress":
            parts = (extra or {}).get("parts")
            if isinstance(parts, int) and parts > 0:
                JOB_PARTS.labels(self.operation).inc(parts)
            return
        if self.part:
            return
        if self.kind == "started":
            JOBS_STARTED.labels(self.operation).inc()
            if self.attempts == 1:
                JOB_QUEUE_WAIT.labels(self.operation).observe(self._since_created())
        elif self.kind in _FINAL_KINDS:
            JOBS_FINISHED.labels(self.operation, self.kind).inc()
            JOB_END_TO_END.labels(self.operation, self.kind).observe(self._since_created())

    def _since_created(self) -> float:
        if self.created_at is None:
            return 0.0
        created, at = self.created_at, self.at
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return max((at - created).total_seconds(), 0.0)
