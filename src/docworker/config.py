"""Configuration: one settings tree, read from ``DOCWORKER_*`` variables and v1 names.

Nested fields use ``__``: ``DOCWORKER_EXECUTOR__WORKERS=4``. The variables of the
v1 service (``PORT``, ``OCR_LANGUAGE``, ``WORKER_RETRY_COUNT``, ...) are honoured as
aliases with lower priority than the ``DOCWORKER_*`` names; like v1, an empty or
unparsable v1 value falls back to the default (with a warning), and durations may
be written the Go way (``1m30s``) or as plain seconds. Settings are built by
:func:`load_settings` and passed down; nothing is read at import time.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
import re
import warnings
from contextvars import ContextVar
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(value: object) -> float:
    """Seconds from a Go duration (``1h30m``, ``250ms``) or a plain number of seconds."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    pos, total = 0, 0.0
    for match in _GO_DURATION.finditer(body):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(body) or not body:
        raise ValueError(f"'{value}' is not a duration (e.g. 30s, 1m30s, 2h, or seconds)")
    return sign * total


Seconds = Annotated[float, BeforeValidator(parse_duration)]


class Profile(StrEnum):
    """What the service is deployed for (docs/configuration.md has what each one changes)."""

    DEVELOPMENT = "development"
    #: An automated test deployment (CI, staging runs): as development, and every job
    #: really runs (no result cache) and fails through its attempts in seconds.
    TEST = "test"
    PRODUCTION = "production"


#: Defaults a profile puts in place of the fields' own, for the fields not set by any
#: source (section, field) → value. The properties below (``auth_enabled``,
#: ``json_logs``, ``rate_enabled``, ``listen_host``) decide the rest by profile.
PROFILE_DEFAULTS: dict[Profile, dict[tuple[str, str], Any]] = {
    Profile.TEST: {
        ("cache", "enabled"): False,
        ("executor", "retry_delay"): 0.1,
        ("executor", "retry_max_delay"): 1.0,
    },
}


class ServerSettings(BaseModel):
    host: str | None = Field(
        None,
        description="Address the HTTP server listens on; default: 0.0.0.0 with API keys on, "
        "127.0.0.1 without (a service open to anyone listens on loopback only).",
    )
    port: int = Field(3001, ge=1, le=65535, description="HTTP port (v1: PORT, SERVER_PORT).")
    read_timeout: Seconds = Field(30.0, gt=0, description="Time to read a request (v1).")
    write_timeout: Seconds = Field(30.0, gt=0, description="Time to write a response (v1).")
    idle_timeout: Seconds = Field(120.0, gt=0, description="Keep-alive idle timeout (v1).")
    max_upload_bytes: int = Field(
        512 * 1024 * 1024, gt=0, description="Largest request body accepted, in bytes."
    )
    malloc_arenas: int = Field(
        2,
        ge=0,
        le=1024,
        description="glibc malloc arenas of the API process (docworker.memory): fewer keep "
        "less memory a burst of concurrent requests freed; 0: glibc's default (8 per core).",
    )
    memory_trim_interval: Seconds = Field(
        10.0,
        ge=0,
        description="How often the API process gives the memory it freed back to the "
        "system (malloc_trim); 0: never.",
    )
    default_wait: Seconds = Field(
        30.0, ge=0, description="How long a synchronous endpoint waits for its job by default."
    )
    upload_limits: dict[str, Annotated[int, Field(gt=0)]] = Field(
        default_factory=dict,
        description="Largest request body per route, in bytes, overriding max_upload_bytes: "
        "a path prefix ('/api/v2/video', '/api/v1/') → bytes; the longest prefix that "
        "matches the request's path wins. Empty: max_upload_bytes for every route.",
    )
    max_wait: Seconds = Field(300.0, ge=0, description="Longest wait a request may ask for.")
    min_free_disk_mb: int = Field(
        1024,
        ge=0,
        description="Work (an upload, a job) is refused with 503 and Retry-After while the "
        "disk of the data folder, or of the temporary folder, has less than this free, in "
        "MiB (0: never refused).",
    )
    disk_retry_after: int = Field(
        60,
        ge=1,
        description="Seconds a client is told to wait (Retry-After) when the disk is low.",
    )
    drain_timeout: Seconds = Field(
        20.0,
        ge=0,
        description="On SIGTERM the service drains: it refuses new work (503 with "
        "Retry-After) and waits this long at most for the requests it is answering and the "
        "jobs it runs to end; jobs still running then are queued again for the next start. "
        "Keep it under the orchestrator's grace period (Kubernetes: 30 s by default).",
    )
    drain_retry_after: int = Field(
        5,
        ge=1,
        description="Seconds a client refused while the service drains is told to wait "
        "(Retry-After): time enough for a load balancer to send it to another replica.",
    )
    docs: bool = Field(True, description="Serve the OpenAPI UI at /docs.")
    max_loaded_result_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        description="Largest stored result (its JSON and text content together, in "
        "bytes) the API loads whole, which it does only to reshape one: the v1 routes' "
        "answers and a raw (text/markdown, ...) answer of a result stored by an earlier "
        "version. A larger one is refused with limit-exceeded; /api/v2/jobs/{id}/result "
        "streams any result without loading it.",
    )
    remote_inputs_at_once: int = Field(
        8,
        ge=1,
        le=256,
        description="Inputs named by 'url' or 'uri' that one API process fetches at the "
        "same time; further requests wait for a turn: slow servers cannot take every "
        "thread of the API.",
    )
    loaded_results_at_once: int = Field(
        2,
        ge=1,
        le=64,
        description="Results the API loads and reshapes at the same time (each at most "
        "max_loaded_result_bytes); further requests wait for a turn. With the bound on "
        "each, this bounds the API's memory for them.",
    )

    def upload_limit(self, path: str) -> int:
        """The largest body accepted on ``path``: the longest matching prefix of
        ``upload_limits``, else ``max_upload_bytes``."""
        matches = [prefix for prefix in self.upload_limits if path.startswith(prefix)]
        if not matches:
            return self.max_upload_bytes
        return self.upload_limits[max(matches, key=len)]

    @property
    def largest_upload(self) -> int:
        """The largest body any route accepts (what one upload may be, at most)."""
        return max([self.max_upload_bytes, *self.upload_limits.values()])


class AuthSettings(BaseModel):
    """API keys: who may call the service, for which tenant, with which scopes."""

    enabled: bool | None = Field(
        None,
        description="Every request needs an API key (except health probes and the API "
        "documents). Default: on in production, off in development.",
    )
    secret: SecretStr | None = Field(
        None,
        description="Server secret that API keys are hashed with (HMAC-SHA256), 32 "
        "characters or more. Changing it invalidates every key. Default in development: one "
        "generated into the data folder; production refuses to start without it.",
    )
    query_parameter: str = Field(
        "api_key",
        description="Query parameter that may carry the key, for clients that cannot set a "
        "header (v1 clients); '' turns it off. Headers: 'Authorization: Bearer <key>' or "
        "'X-API-Key: <key>'.",
    )
    cache_ttl: Seconds = Field(
        5.0,
        ge=0,
        description="How long a checked key is remembered; a key revoked elsewhere stops "
        "working here within this time.",
    )
    public_metrics: bool = Field(
        False, description="GET /metrics answers without a key (for a Prometheus scraper)."
    )


class AuditSettings(BaseModel):
    """The audit trail in the job store: finished jobs, key changes, refused requests."""

    retention: Seconds = Field(
        90 * 86400.0,
        gt=0,
        description="Audit events are deleted after this long (seconds or a duration such "
        "as 2160h).",
    )
    retention_by_tenant: dict[str, Seconds] = Field(
        default_factory=dict,
        description="Retention of a tenant's audit events where it differs from 'retention', "
        'as JSON: {"acme": "8760h"}.',
    )
    refusals: bool = Field(
        True,
        description="Record requests refused for an API key that is not valid (401), a "
        "missing scope (403) or a spent quota (429). They are gathered in memory and "
        "written together, the same refusals of one flush interval as one event.",
    )
    flush_interval: Seconds = Field(
        5.0, gt=0, description="How often gathered refusal events are written."
    )
    buffer_events: int = Field(
        1000,
        ge=1,
        description="Distinct refusal events held between two writes; more are counted "
        "in an 'audit.dropped' event.",
    )


class QuotaSettings(BaseModel):
    """Daily quotas per API key (UTC days); a key's own limits take precedence.

    Unset means unlimited. Requests and bytes are counted when a job is queued, pages
    and CPU-seconds when it ends: a job is admitted while the day's amount is under
    the quota.
    """

    requests_per_day: int | None = Field(
        None, ge=0, description="Jobs a key may submit per UTC day."
    )
    bytes_per_day: int | None = Field(
        None, ge=0, description="Bytes of job input a key may submit per UTC day."
    )
    pages_per_day: int | None = Field(
        None, ge=0, description="Pages a key's jobs may process per UTC day."
    )
    cpu_seconds_per_day: float | None = Field(
        None, ge=0, description="CPU-seconds a key's jobs may use per UTC day."
    )


class UsageSettings(BaseModel):
    metrics_by_key: bool = Field(
        False,
        description="Label the usage metrics with the API key's id as well as the tenant "
        "and operation (one time series per key: mind the metrics store's cardinality).",
    )


class CapacitySettings(BaseModel):
    """Capacity planning from the job history (``docworker capacity``, ``GET
    /api/v2/capacity``; docs/capacity.md). Jobs still kept are read from their rows; the
    retention sweep rolls the jobs it deletes up into hourly sums kept for
    history_retention, so the window reaches back that far."""

    window_days: float = Field(
        28.0, gt=0, description="Days of job history read when none are asked for."
    )
    max_window_days: float = Field(
        400.0, gt=0, le=3660, description="The most days of job history one report may read."
    )
    history_retention: Seconds = Field(
        400 * 86400.0,
        gt=0,
        description="How long the hourly capacity history (the sums of the jobs the "
        "retention sweep deleted) is kept; older hours are deleted by the same sweep.",
    )
    basis: Literal["mean", "peak"] = Field(
        "peak",
        description="The load the workers are sized for by default: the window's mean "
        "arrival rate, or its busiest hour's.",
    )
    target_wait: Seconds = Field(
        30.0, ge=0, description="Queue wait the workers are sized to keep within by default."
    )
    max_target_wait: Seconds = Field(
        86400.0, gt=0, description="The longest target wait a report may be asked for."
    )
    wait_percentile: float = Field(
        95.0, ge=50, le=99.9, description="The percentile of the queue wait held to the target."
    )
    max_growth: float = Field(
        1000.0, gt=0, description="The largest growth factor a report may be asked for."
    )
    max_rate: float = Field(
        100000.0, gt=0, description="The largest target rate (jobs/s) a report may be asked for."
    )
    max_workers: int = Field(
        100000,
        ge=1,
        description="Sizing gives up past this many workers (the answer then names none).",
    )
    sample_per_operation: int = Field(
        5000,
        ge=10,
        le=1000000,
        description="Newest jobs of each operation read one by one for the percentiles.",
    )
    max_detail_rows: int = Field(
        100000,
        ge=100,
        le=10000000,
        description="Most jobs of more than one attempt (retried, split, cancelled) read one "
        "by one for their exact service time; past it the report says it is not exact.",
    )


class RateStrategy(StrEnum):
    #: Exact: at most N requests in any span of the window (a timestamp per request).
    MOVING_WINDOW = "moving-window"
    #: N per calendar window: cheapest, but twice N may pass around a window's edge.
    FIXED_WINDOW = "fixed-window"
    #: Two counters weighed against each other: cheap, and close to the moving window.
    SLIDING_WINDOW_COUNTER = "sliding-window-counter"


class RateSettings(BaseModel):
    """Requests per API key (per client address without keys), counted by the 'limits'
    library: in this process, or in Redis shared by every API replica."""

    enabled: bool | None = Field(
        None,
        description="Count requests and refuse those over the rate with 429. Default: on "
        "with API keys, off without (then, when turned on, each client address has the "
        "default rate). Health probes and the API documents are never counted.",
    )
    default: str = Field(
        "1200/minute",
        description="Requests a key may make, in the 'limits' notation: '100/minute', or "
        "several separated by ';' ('20/second;1000/hour'). A key's own 'rate' replaces it.",
    )
    strategy: RateStrategy = Field(
        RateStrategy.MOVING_WINDOW,
        description="How requests are counted: moving-window (exact), fixed-window or "
        "sliding-window-counter (both cheaper, and approximate).",
    )
    storage_url: str = Field(
        "memory://",
        description="Where the counts live: 'memory://' (this process only), or "
        "'redis://[:password@]host:6379/0' ('rediss://', 'redis+unix:///path?db=0'), shared "
        "by every API replica that names the same Redis.",
    )
    key_prefix: str = Field(
        "docworker",
        min_length=1,
        max_length=100,
        description="Prefix of the keys the counts are stored under in a shared storage.",
    )
    storage_timeout: Seconds = Field(
        1.0, gt=0, description="Longest a call to the storage (Redis) may take."
    )
    fail_open: bool = Field(
        True,
        description="When the storage does not answer, requests go through uncounted (and a "
        "warning is logged); false: they are refused with 503.",
    )

    @field_validator("default")
    @classmethod
    def _check_default(cls, value: str) -> str:
        from docworker.ratelimit import parse_rate

        parse_rate(value)
        return value

    @field_validator("storage_url")
    @classmethod
    def _check_storage(cls, value: str) -> str:
        from docworker.ratelimit import check_storage_url

        return check_storage_url(value)


class CorsSettings(BaseModel):
    allow_origins: list[str] = Field(
        default_factory=lambda: ["*"],
        description="Origins a browser may call the API from; ['*'] (v1's behaviour) for any.",
    )
    allow_credentials: bool = Field(
        False,
        description="Browsers may send cookies and credentials cross-origin; never with '*' "
        "in production.",
    )
    max_age: int = Field(600, ge=0, description="How long a browser may cache a preflight.")


class DatabaseSettings(BaseModel):
    url: str | None = Field(
        None,
        description="SQLAlchemy URL of the job store; default: SQLite file in the data folder.",
    )
    echo: bool = Field(False, description="Log every SQL statement.")


class S3Settings(BaseModel):
    """How the service reaches every ``s3://`` URL it opens: the blob stores and the roots
    it reads inputs from. Unset values fall back to boto's own chain (``AWS_*``
    environment variables, ``~/.aws``, the instance's role)."""

    endpoint_url: str | None = Field(
        None,
        description="Endpoint of an S3-compatible service (MinIO, Ceph, R2, ...); "
        "None: AWS's own (or AWS_ENDPOINT_URL).",
    )
    region: str | None = Field(None, description="Region; None: AWS_REGION or boto's default.")
    access_key_id: str | None = Field(None, description="Access key; None: boto's chain.")
    secret_access_key: SecretStr | None = Field(
        None, description="Secret of the access key; None: boto's chain."
    )
    session_token: SecretStr | None = Field(
        None, description="Session token of temporary credentials."
    )
    path_style: bool = Field(
        False,
        description="Address buckets in the path (https://host/bucket/key) instead of the "
        "host name: what most S3-compatible services on one host need.",
    )
    public_endpoint_url: str | None = Field(
        None,
        description="Endpoint the clients reach, when it differs from endpoint_url (a "
        "service reached inside a private network): presigned links are signed for it.",
    )


class StorageSettings(BaseModel):
    url: str | None = Field(
        None,
        description="fsspec URL of the blob store (inputs): a folder ('file:///srv/blobs', "
        "the default 'blobs' in the data folder), 's3://bucket/prefix', 'gs://...', "
        "'az://...'.",
    )
    output_url: str | None = Field(
        None,
        description="fsspec URL of the store the jobs' results and artifacts are written "
        "to; None: the blob store (storage.url). Results already stored stay where they "
        "were written: change it only with an empty results store.",
    )
    s3: S3Settings = Field(default_factory=S3Settings)
    read_roots: list[str] = Field(
        default_factory=list,
        description="Storage URLs inputs may be read from by 'uri' (e.g. "
        "'s3://incoming/docs/', 'file:///srv/shared/'): a job's 'uri' must lie under one "
        "of them. Empty: no input is read by 'uri'.",
    )
    presign: bool = Field(
        True,
        description="Give artifacts presigned download links where the output store can "
        "sign them (s3); else, and when false, links to the API's artifact route.",
    )
    link_expiry: Seconds = Field(
        900.0, gt=0, le=7 * 24 * 3600, description="How long a presigned link is valid."
    )


def _key_list(value: object) -> object:
    """Keys as a JSON list or separated by commas (a key never holds a comma)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


def _key_bytes(key: str) -> bytes | None:
    """The 32 bytes a key encodes, or None when it is not a key."""
    try:
        raw = base64.urlsafe_b64decode(key.encode())
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


#: A key whose 32 bytes take fewer distinct values than this was not drawn at random
#: (random bytes take about 30; fewer than 16 happens once in more than 10^20 draws).
MIN_DISTINCT_KEY_BYTES = 16


class SecretsSettings(BaseModel):
    """Keys that seal secret job parameters (passwords) at rest."""

    keys: Annotated[list[SecretStr], NoDecode, BeforeValidator(_key_list)] = Field(
        default_factory=list,
        description="Keys that encrypt secret job parameters (passwords) in the job store: "
        "each the url-safe base64 of 32 random bytes (a Fernet key; `docworker secrets "
        "new-key` prints one), as a JSON list or separated by commas. The first key "
        "encrypts; every key listed decrypts. To rotate, put a new key first, run "
        "`docworker secrets rotate`, then remove the old one. Empty: a key is generated "
        "once into 'secret.key' in the data folder (mode 0600) and used.",
    )

    @field_validator("keys")
    @classmethod
    def _are_keys(cls, keys: list[SecretStr]) -> list[SecretStr]:
        for index, key in enumerate(keys, 1):
            if _key_bytes(key.get_secret_value()) is None:
                raise ValueError(
                    f"key {index} is not the url-safe base64 of 32 bytes "
                    "(`docworker secrets new-key` makes one)"
                )
        return keys


class ExecutorKind(StrEnum):
    #: Jobs run in this process's pool of worker processes.
    LOCAL = "local"
    #: This process runs no jobs: an API-only replica, the jobs run by other processes.
    NONE = "none"
    #: Jobs are published to a Celery broker, one queue per family, and run by
    #: ``docworker worker`` processes (see docs/distributed.md).
    CELERY = "celery"


class WorkerStart(StrEnum):
    #: Forked from a template process that imported the worker's modules once (milliseconds).
    FORKSERVER = "forkserver"
    #: A fresh interpreter each, importing everything itself (over a CPU-second each).
    SPAWN = "spawn"


class ExecutorSettings(BaseModel):
    kind: ExecutorKind = Field(ExecutorKind.LOCAL, description="Where jobs run.")
    workers: int = Field(
        default_factory=lambda: max(os.cpu_count() or 1, 1),
        ge=1,
        le=256,
        description="Worker processes of the local executor (v1: WORKER_MAX_CONCURRENCY).",
    )
    jobs_per_worker: int = Field(
        100, ge=1, description="A worker process is replaced after this many jobs."
    )
    worker_start: WorkerStart = Field(
        WorkerStart.FORKSERVER,
        description="How worker processes start: 'forkserver' forks each from a template "
        "process that imported the worker's modules once, so a replaced worker is ready "
        "in milliseconds; 'spawn' starts each in a fresh interpreter.",
    )
    job_timeout: Seconds = Field(300.0, gt=0, description="Wall-clock limit of one job attempt.")
    memory_limit_mb: int = Field(
        2048, ge=64, description="Resident memory a worker may use during a job, in MiB."
    )
    max_attempts: int = Field(
        3, ge=1, le=20, description="Attempts per job in total (v1: WORKER_RETRY_COUNT)."
    )
    retry_delay: Seconds = Field(
        5.0,
        ge=0,
        description="Delay before the first retry of an attempt that failed for a transient "
        "reason (a lost worker, an engine crash, storage down); it doubles with each further "
        "attempt, up to retry_max_delay (v1: WORKER_RETRY_DELAY).",
    )
    retry_max_delay: Seconds = Field(
        300.0, ge=0, description="Longest delay before a retry, however many attempts failed."
    )
    store_outage_timeout: Seconds = Field(
        600.0,
        gt=0,
        description="How long a worker keeps trying to write an attempt's outcome (a result, "
        "a failure) while the job database does not answer, before it gives the outcome up: "
        "the job, left running, is then taken back once its heartbeat is 30 s old and run "
        "again.",
    )
    retry_jitter: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of each retry delay drawn at random (0.5: between half the delay "
        "and all of it), so that jobs failed together are not retried together.",
    )
    replay_max: int = Field(
        100,
        ge=1,
        le=1000,
        description="Most dead jobs one POST /api/v2/dead-letters/replay queues again.",
    )
    poll_interval: Seconds = Field(
        0.5, gt=0, description="How often the executor looks for queued or cancelled jobs."
    )
    job_retention: Seconds = Field(
        86400.0, gt=0, description="Finished jobs and their files are deleted after this long."
    )
    tenant_retention: dict[str, Seconds] = Field(
        default_factory=dict,
        description="Retention of the finished jobs of these tenants, over job_retention: "
        '{tenant: seconds}, e.g. {"acme": 3600}.',
    )
    split_min_pages: int = Field(
        4,
        ge=0,
        description="A job with at least this many pages of slow work (OCR) is split into "
        "page ranges that run as child jobs on several workers at once; 0: never split.",
    )
    split_parts: int | None = Field(
        None,
        ge=2,
        le=1000,
        description="How many parts a split job becomes, at most (default: twice the "
        "workers). With one worker and no setting, jobs are not split.",
    )
    max_active_jobs: int | None = Field(
        None,
        ge=1,
        description="Jobs one tenant may have queued or running at once (the parts of a "
        "split job count as their job); more are refused with 429. A key's own "
        "'max_active_jobs' replaces it. None: no cap.",
    )
    fair_claiming: bool = Field(
        True,
        description="When jobs of several tenants wait, a free worker goes to the tenant "
        "that runs the fewest jobs (parts included), then to the one served least "
        "recently, then by priority and age; false: by priority and age alone, whoever "
        "submitted.",
    )
    max_running_per_tenant: int | None = Field(
        None,
        ge=1,
        description="Most jobs (or parts) of one tenant running at once across all "
        "executors; its other jobs wait even when workers are free. None: no cap.",
    )


class CelerySettings(BaseModel):
    """The ``celery`` executor (docs/distributed.md): the broker the API publishes jobs to
    and ``docworker worker`` takes them from. The job store stays the only record of a
    job's state; a message names the job and nothing else, so no result backend is used."""

    broker_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Broker URL: redis://host:port/db or amqp://user:password@host:port/vhost.",
    )
    queue_prefix: str = Field(
        "",
        max_length=100,
        description="Prefix of the broker's queue names (the queue of a family is "
        "<prefix><family>), so that several deployments may share one broker.",
    )
    prefetch_multiplier: int = Field(
        1,
        ge=1,
        le=64,
        description="Messages a worker process reserves ahead (1: none beyond the one it runs).",
    )
    max_tasks_per_child: int = Field(
        100, ge=1, description="A worker process is replaced after this many jobs."
    )
    max_memory_per_child_mb: int | None = Field(
        None,
        ge=64,
        description="A worker process whose resident memory is over this after a job is "
        "replaced (Celery's worker_max_memory_per_child). None: only the per-job limit "
        "(executor.memory_limit_mb) applies.",
    )
    time_limit_margin: Seconds = Field(
        30.0,
        gt=0,
        description="Celery's soft time limit is executor.job_timeout plus this, its hard "
        "limit (the worker process killed) the soft one plus this again: both back up the "
        "worker's own enforcement of executor.job_timeout.",
    )
    visibility_timeout: Seconds = Field(
        3600.0,
        gt=0,
        description="Redis only: a message taken by a worker that is neither acknowledged "
        "nor given back within this is delivered again (a worker host that vanished).",
    )
    concurrency: int | None = Field(
        None,
        ge=1,
        le=256,
        description="Worker processes of `docworker worker` (default: executor.workers).",
    )
    sweep_interval: Seconds = Field(
        5.0,
        gt=0,
        description="How often each `docworker worker` takes back jobs whose worker stopped "
        "sending heartbeats and publishes them again.",
    )
    republish_after: Seconds = Field(
        120.0,
        gt=0,
        description="A queued job due this long, unchanged and taken by no worker, while "
        "its family's broker queue holds no message waiting, is published again by the "
        "sweep of `docworker worker` (its message was lost: a publish that failed after "
        "the job store took the change, a broker that lost what it held). A message "
        "published twice runs the job once (workers claim by id).",
    )


class MetricsSettings(BaseModel):
    """Prometheus metrics (docs/observability.md): where the processes of one service
    instance gather their samples, so that a scrape of the API (or of ``docworker
    worker --metrics-port``) shows every worker process's, those recycled included."""

    multiprocess: bool = Field(
        True,
        description="Gather the metrics of every process of an instance (API, worker "
        "processes, `docworker worker` and its pool) in one folder that each scrape reads. "
        "False: each process keeps its own; the API's /metrics shows its own process only.",
    )
    folder: Path | None = Field(
        None,
        description="Parent of the instances' metric folders (each instance takes "
        "<folder>/<role>-<pid>, emptied at start; those of ended instances are removed). "
        "Default: <data_dir>/metrics. A local disk: the files are memory-mapped.",
    )
    worker_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port on which `docworker worker` answers GET /metrics (Prometheus "
        "text of its processes); 0: none (`docworker worker --metrics-port` sets it).",
    )
    worker_host: str = Field(
        "0.0.0.0",  # noqa: S104 - scraped from another host; off unless a port is set
        description="Address `docworker worker`'s metrics endpoint listens on.",
    )


class BreakerSettings(BaseModel):
    """Circuit breakers of the external engines (LibreOffice, Tesseract, FFmpeg, Chromium)
    and of the blob store (see :mod:`docworker.engines.breaker`). Each process counts the
    failures it sees; a breaker that opens is posted in the job store for the others
    (``shared``)."""

    enabled: bool = Field(True, description="false: no breaker opens; every job tries its engine.")
    threshold: int = Field(
        5,
        ge=1,
        le=1000,
        description="Failures of an engine in a row (a crash, or the engine unavailable; "
        "never a bad input) that open its breaker.",
    )
    cooldown: Seconds = Field(
        30.0,
        gt=0,
        description="How long an open breaker refuses work before it lets one job through "
        "to try the engine again (half-open).",
    )
    broker_cooldown: Seconds = Field(
        5.0,
        gt=0,
        description="The cool-down of the celery executor's broker breaker: after "
        "'threshold' publishes failed in a row, submissions are refused at once (503) for "
        "this long, then the next publish tries the broker again.",
    )
    shared: bool = Field(
        True,
        description="Post a breaker that opens in the job store until it half-opens, so "
        "that every process of the service (API replicas, Celery worker processes) refuses "
        "work needing the engine meanwhile and reports it in /health; false: each process "
        "judges alone.",
    )


class QueueSettings(BaseModel):
    """Bounds on the jobs waiting to run, per family of operations and priority band
    (see :mod:`docworker.jobs.backlog`): past a bound a submission gets 429 with a
    ``Retry-After`` from how fast the family's queue drains. Jobs are counted in the job
    store, over every replica: with several, size the bounds for all their workers."""

    per_worker: int = Field(
        16,
        ge=1,
        description="Default bound of each family: this many queued jobs per worker "
        "process (executor.workers).",
    )
    documents: int | None = Field(
        None,
        ge=0,
        description="Queued jobs of the documents family (extract, chunk); default "
        "per_worker × executor.workers; 0: no bound.",
    )
    ocr: int | None = Field(
        None,
        ge=0,
        description="Queued jobs of the ocr family; default per_worker × executor.workers; "
        "0: no bound.",
    )
    convert: int | None = Field(
        None,
        ge=0,
        description="Queued jobs of the convert family (convert, pdf, render, screenshot); "
        "default per_worker × executor.workers; 0: no bound.",
    )
    media: int | None = Field(
        None,
        ge=0,
        description="Queued jobs of the media family (image, video, v1's media routes); "
        "default per_worker × executor.workers; 0: no bound.",
    )
    normal_share: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Share of a family's bound that jobs of normal priority (0) may fill; "
        "the rest is kept for jobs of high priority (> 0), which may fill it all.",
    )
    low_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Share of a family's bound that jobs of low priority (< 0) may fill, "
        "so that a flood of them leaves room for the others.",
    )
    drain_window: Seconds = Field(
        60.0,
        gt=0,
        description="How far back the jobs that ended are counted to measure how fast a "
        "family's queue drains (for Retry-After).",
    )
    retry_after_min: int = Field(
        1, ge=1, description="Least Retry-After, in seconds, of a refusal for a full queue."
    )
    retry_after_max: int = Field(
        300, ge=1, description="Greatest Retry-After, in seconds, of a refusal for a full queue."
    )

    @model_validator(mode="after")
    def _ordered(self) -> QueueSettings:
        if self.low_share > self.normal_share:
            raise ValueError("queue.low_share may not be over queue.normal_share")
        if self.retry_after_min > self.retry_after_max:
            raise ValueError("queue.retry_after_min may not be over queue.retry_after_max")
        return self

    def bound(self, family: str, workers: int) -> int | None:
        """The bound of ``family`` (a field of this section); None when it has none."""
        given: int | None = getattr(self, family)
        if given is None:
            return self.per_worker * workers
        return given or None


class BatchSettings(BaseModel):
    """Batches of jobs (``POST /api/v2/batches``, docs/batches.md): one operation on many
    files. The request's body is bounded as any upload's (``server.upload_limits`` with
    the prefix ``/api/v2/batches``, else ``server.max_upload_bytes``)."""

    max_files: int = Field(
        10_000,
        ge=1,
        description="Most files one batch may carry; past it the request gets 413 "
        "(payload-too-large) and nothing of it is kept.",
    )
    max_queued_files: int = Field(
        100_000,
        ge=0,
        description="Most children of batches queued at once in one family of operations "
        "(over every replica); a batch that would pass it is refused whole with 429 "
        "(queue-full). 0: no bound.",
    )
    max_field_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="Longest text field (operation, params, priority, idempotency_key) of "
        "a batch's multipart body, in bytes.",
    )
    results_page: int = Field(
        200,
        ge=1,
        le=500,
        description="Children read from the job store at a time while a batch's results "
        "are streamed (NDJSON or zip).",
    )


class LimitSettings(BaseModel):
    max_pages: int = Field(5000, ge=1, description="Most pages a document may have parsed.")
    max_cells: int = Field(5_000_000, ge=1, description="Most spreadsheet cells read per file.")
    max_pixels: int = Field(
        100_000_000, ge=1, description="Most pixels of one image or frame (decompression bombs)."
    )
    max_depth: int = Field(5, ge=0, description="How deep embedded documents are read.")
    max_embedded: int = Field(
        100, ge=0, description="Most embedded documents read per document, at all depths."
    )
    max_embedded_bytes: int = Field(
        200 * 1024 * 1024, ge=0, description="Most bytes of embedded documents read per document."
    )
    max_text_chars: int = Field(
        50_000_000,
        ge=1000,
        description="Most characters of text a document yields (all its blocks together, "
        "embedded documents included); past it the text is cut, the result carries a "
        "'text-truncated' warning and the job ends 'partial'.",
    )
    max_output_chars: int = Field(
        100_000_000,
        ge=1000,
        description="Most characters of text one job may read out of its documents (all "
        "their blocks, embedded documents included, before the cut at max_text_chars), "
        "counted as the parser adds them; past it the job fails at once with 422 "
        "limit-exceeded, not retried. Bounds the worker's memory for a document that "
        "unpacks to far more text than its size suggests.",
    )
    max_blocks: int = Field(
        500_000,
        ge=1000,
        description="Most blocks (paragraphs, headings, list items, tables, ...) one "
        "document may hold, embedded documents included; each costs memory however "
        "short its text. Past it the job fails at once with 422 limit-exceeded.",
    )
    max_output_bytes: int = Field(
        2 * 1024 * 1024 * 1024,
        ge=1024 * 1024,
        description="Most bytes one job may store as its output: its result (JSON and "
        "text content) and the files it makes, together, counted as they are written; "
        "past it the job fails with 422 limit-exceeded, not retried, and what it wrote "
        "is deleted.",
    )
    max_mime_parts: int = Field(
        3000,
        ge=1,
        description="Most MIME parts one e-mail message may hold, at every depth (the "
        "parts of attached messages included); counted as the message is parsed, past it "
        "422 limit-exceeded. The standard library parses each part's headers: 50,000 "
        "parts took 23 s, 3,000 take about 0.5 s.",
    )
    max_header_encoded_words: int = Field(
        2000,
        ge=1,
        description="Most RFC 2047 encoded words (=?charset?q?...?=) one header of an "
        "e-mail message may hold; past it 422 limit-exceeded, before any header is "
        "decoded. The standard library's decoding grows faster than their number: "
        "20,000 in a Subject took 11 s, 2,000 take 0.05 s.",
    )
    max_markdown_columns: int = Field(
        1000,
        ge=1,
        description="Most columns of one Markdown table; past it 422 limit-exceeded, "
        "before markdown-it reads the table's cells. 100,000 columns took 5.7 s, "
        "1,000 take 0.05 s.",
    )


class OcrSettings(BaseModel):
    language: str = Field(
        "eng", description="Tesseract languages, e.g. 'tur+eng' (v1: OCR_LANGUAGE)."
    )
    dpi: int = Field(300, ge=50, le=1200, description="Render resolution for OCR (v1: OCR_DPI).")
    psm: int = Field(1, ge=0, le=13, description="Tesseract page segmentation mode (v1: OCR_PSM).")


class LibreOfficeSettings(BaseModel):
    soffice_path: str = Field(
        "soffice",
        description="LibreOffice's program: a name looked up on PATH, or a path "
        "(v1: LIBREOFFICE_PATH).",
    )
    python_path: Path = Field(
        Path("/usr/bin/python3"),
        description="A Python that has LibreOffice's 'uno' module (Debian: python3-uno); "
        "it runs the bridge between the service and LibreOffice.",
    )
    timeout: Seconds = Field(
        120.0, gt=0, description="Longest one conversion may take; the instance is then killed."
    )
    restart_after: int = Field(
        200, ge=0, description="An instance is restarted after this many conversions (0: never)."
    )
    max_queue: int = Field(
        10,
        ge=0,
        description="Jobs that may wait for LibreOffice beyond one running on each worker "
        "(executor.workers): a job that needs it past that is refused with 429 and "
        "Retry-After. Within one process, also the conversions that may wait for a busy "
        "instance.",
    )
    start_timeout: Seconds = Field(
        60.0, gt=0, description="Longest an instance may take to start and answer."
    )
    idle_shutdown: Seconds = Field(
        300.0, ge=0, description="An instance unused for this long is stopped (0: never)."
    )


class FfmpegSettings(BaseModel):
    ffmpeg_path: str = Field(
        "ffmpeg",
        description="FFmpeg's program: a name looked up on PATH, or a path (v1: FFMPEG_PATH).",
    )
    ffprobe_path: str | None = Field(
        None,
        description="ffprobe's program; default: 'ffprobe' beside the FFmpeg program, "
        "else on PATH.",
    )
    timeout: Seconds = Field(
        270.0,
        gt=0,
        description="Longest one FFmpeg run may take; its process group is then killed. "
        "Capped a few seconds below the job's time limit.",
    )
    probe_timeout: Seconds = Field(30.0, gt=0, description="Longest one ffprobe run may take.")
    memory_limit_mb: int = Field(
        2048,
        ge=512,
        description="Address space one FFmpeg or ffprobe process may map, in MiB (RLIMIT_AS).",
    )
    threads: int = Field(0, ge=0, le=64, description="Encoder threads per run (0: FFmpeg decides).")
    max_duration: Seconds = Field(
        3600.0, gt=0, description="Longest stretch of video or audio one request may process."
    )
    max_pixels: int = Field(
        8192 * 4320,
        ge=1,
        description="Most pixels of one video frame, in the input and in the output.",
    )
    max_output_bytes: int = Field(
        1024 * 1024 * 1024, ge=1024, description="Largest file one request may produce, in bytes."
    )
    split_min_seconds: Seconds = Field(
        600.0,
        ge=0,
        description="A video's scenes or thumbnails over a stretch at least this long are "
        "found in time ranges of at least half of it, on several workers at once (when the "
        "executor splits jobs at all); 0: never split.",
    )
    max_concurrent: int | None = Field(
        None,
        ge=1,
        le=256,
        description="Jobs that run FFmpeg (video, audio) at once in one local executor; "
        "default: one worker fewer than executor.workers (at least 1), so a long transcode "
        "never holds every worker while documents wait. The celery executor runs them on "
        "the media queue's workers instead.",
    )


class SpeechSettings(BaseModel):
    """Speech recognition (the ``audio`` operation's ``transcribe``)."""

    language: str = Field(
        "en-us",
        pattern=r"^[A-Za-z0-9_-]{1,32}$",
        description="The PocketSphinx model's language, as its files are named "
        "('en-us': the model the pocketsphinx package ships).",
    )
    model_dir: str | None = Field(
        None,
        description="A folder holding a PocketSphinx model: '<language>/' (the acoustic "
        "model), '<language>.lm.bin' and 'cmudict-<language>.dict'. Default: the models "
        "the pocketsphinx package ships.",
    )


class ChromiumSettings(BaseModel):
    path: str = Field(
        "/usr/bin/chromium",
        description="Chromium's program: a path or a name looked up on PATH. Debian's "
        "launcher script is replaced by the browser binary it starts (/usr/lib/chromium).",
    )
    timeout: Seconds = Field(
        30.0,
        gt=0,
        description="Longest one render (load, scripts, waits, output) may take; past it "
        "the render fails and the browser is restarted.",
    )
    restart_after: int = Field(
        100, ge=0, description="The browser is restarted after this many renders (0: never)."
    )
    max_queue: int = Field(
        10,
        ge=0,
        description="Jobs that may wait for Chromium beyond one running on each worker "
        "(executor.workers): a job that needs it past that is refused with 429 and "
        "Retry-After. Within one process, also the renders that may wait for a busy "
        "browser.",
    )
    start_timeout: Seconds = Field(
        30.0, gt=0, description="Longest the browser may take to start and answer."
    )
    idle_shutdown: Seconds = Field(
        300.0, ge=0, description="A browser unused for this long is stopped (0: never)."
    )
    sandbox: bool | None = Field(
        None,
        description="Chromium's own process sandbox; None: on, except when running as "
        "root, where Chromium refuses it.",
    )
    max_remote_requests: int = Field(
        50,
        ge=0,
        description="Most remote (allow-listed) resources one render may fetch; more are refused.",
    )
    max_viewport: int = Field(
        4096, ge=100, description="Largest viewport width or height, in CSS pixels."
    )
    max_screenshot_height: int = Field(
        16384,
        ge=100,
        description="A full-page screenshot is cut at this height, in CSS pixels.",
    )


class FetchSettings(BaseModel):
    allow: list[str] = Field(
        default_factory=list,
        description="Remote URLs the service may fetch (a page's images and style sheets, "
        "remote inputs): host names ('example.com'), wildcard domains ('*.example.com') or "
        "URL prefixes ('https://cdn.example.com/assets/'). Empty: nothing remote is fetched. "
        "Private, loopback and link-local addresses are refused whatever this says, "
        "unless fetch.private_allow names their network.",
    )
    timeout: Seconds = Field(10.0, gt=0, description="Longest one remote fetch may take.")
    max_bytes: int = Field(
        20 * 1024 * 1024, ge=1, description="Largest remote resource fetched, in bytes."
    )
    private_allow: list[str] = Field(
        default_factory=list,
        description="Non-public networks (CIDR, e.g. '10.1.2.0/24', '127.0.0.1/32') that "
        "allow-listed URLs may still resolve to: an intranet server of documents. Empty: "
        "private, loopback and link-local addresses are always refused.",
    )
    input_timeout: Seconds = Field(
        120.0,
        gt=0,
        description="Longest the download of one input given by 'url' may take, whole "
        "(its size is bounded by the route's upload limit).",
    )

    @field_validator("private_allow")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(f"'{entry[:60]}' is not a network (CIDR)") from None
        return value


#: The events of a job, in the order a job meets them (see docs/events.md).
JobEventKind = Literal[
    "queued", "started", "progress", "part", "succeeded", "partial", "failed", "cancelled", "dead"
]
#: The events that end a job: what a webhook hears unless it chooses.
FINAL_EVENT_KINDS: tuple[JobEventKind, ...] = (
    "succeeded",
    "partial",
    "failed",
    "cancelled",
    "dead",
)
#: The events of a batch (see docs/events.md, "Batch events").
BatchEventKind = Literal[
    "batch.queued",
    "batch.progress",
    "batch.retried",
    "batch.succeeded",
    "batch.partial",
    "batch.failed",
    "batch.cancelled",
]
#: The events that end a batch: what a batch's webhook hears unless it chooses.
FINAL_BATCH_EVENT_KINDS: tuple[BatchEventKind, ...] = (
    "batch.succeeded",
    "batch.partial",
    "batch.failed",
    "batch.cancelled",
)
#: The prefix of a Standard Webhooks secret (``whsec_`` and the base64 of its bytes).
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


def webhook_secret_bytes(secret: str) -> bytes:
    """The key of a ``whsec_<base64>`` secret (Standard Webhooks); ValueError when the
    text is not one or its key is not 24 to 64 bytes."""
    if not secret.startswith(WEBHOOK_SECRET_PREFIX):
        raise ValueError(f"a webhook secret is '{WEBHOOK_SECRET_PREFIX}' and base64")
    try:
        raw = base64.b64decode(secret[len(WEBHOOK_SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"a webhook secret is '{WEBHOOK_SECRET_PREFIX}' and base64") from None
    if not 24 <= len(raw) <= 64:
        raise ValueError("a webhook secret's key is 24 to 64 bytes")
    return raw


def _is_webhook_secret(secret: SecretStr | None) -> SecretStr | None:
    if secret is not None:
        webhook_secret_bytes(secret.get_secret_value())
    return secret


WebhookSecret = Annotated[SecretStr, AfterValidator(_is_webhook_secret)]


class EventSettings(BaseModel):
    """The event stream of a job (``GET /api/v2/jobs/{id}/events``), and the bus that
    wakes waiting requests (docs/events.md)."""

    keepalive: Seconds = Field(
        15.0,
        gt=0,
        le=300,
        description="A stream with nothing to say sends a comment line this often, so that "
        "proxies keep it open.",
    )
    stream_timeout: Seconds = Field(
        3600.0,
        gt=0,
        description="A stream is closed after this long; its client reconnects with "
        "Last-Event-ID and misses nothing.",
    )
    retry_ms: int = Field(
        2000, ge=0, description="The reconnection delay a stream advises (its 'retry:' field)."
    )
    batch_progress_interval: Seconds = Field(
        1.0,
        ge=0,
        le=3600,
        description="A batch's children that end within this long of its previous event are "
        "counted in its next batch.progress event (or its end) rather than each in one of "
        "their own; 0: one batch.progress per child end.",
    )
    redis_url: str | None = Field(
        None,
        description="Redis (redis://host:port/db) over which processes tell each other that a "
        "job moved on, so that a request waiting in one API replica wakes the moment a "
        "Celery worker or another replica ends its job; None: waiters in other processes "
        "see it at their next look at the job store (every second).",
    )
    channel: str = Field(
        "docworker:jobs",
        min_length=1,
        max_length=200,
        description="The Redis pub/sub channel of those announcements.",
    )


class WebhookSubscription(BaseModel):
    """A configured webhook: every job's and batch's chosen events (or one tenant's) go to
    ``url``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Names the subscription in logs."
    )
    url: str = Field(max_length=2000, description="Where the events are POSTed (http/https).")
    events: list[JobEventKind | BatchEventKind] = Field(
        default_factory=lambda: list[JobEventKind | BatchEventKind](FINAL_EVENT_KINDS),
        min_length=1,
        description="Events sent: a job's (succeeded, …) and a batch's (batch.succeeded, …).",
    )
    secret: WebhookSecret = Field(description="Signing secret, 'whsec_' and base64.")
    tenant: str | None = Field(
        None, description="Only this tenant's jobs and batches (None: every one)."
    )


class WebhookSettings(BaseModel):
    """Webhooks: where job events are POSTed, signed the Standard Webhooks way."""

    secret: WebhookSecret | None = Field(
        None,
        description="Signs the webhooks of jobs submitted without a webhook_secret of their "
        "own ('whsec_' and the base64 of 24 to 64 random bytes). None: a job's webhook_url "
        "needs its webhook_secret.",
    )
    subscriptions: list[WebhookSubscription] = Field(
        default_factory=list,
        description="Configured webhooks, a JSON list of {name, url, events, secret, tenant}.",
    )
    allow_private: list[str] = Field(
        default_factory=list,
        description="Webhook targets that may resolve to private, loopback or link-local "
        "addresses (host names, '*.example.com' or URL prefixes); any other target must "
        "resolve to public addresses only.",
    )
    deliver: bool = Field(
        True,
        description="Whether this process sends webhooks from the outbox; any number of "
        "processes may (each claims a delivery for the time of its attempt).",
    )
    timeout: Seconds = Field(10.0, gt=0, le=120, description="Longest one attempt may take.")
    max_attempts: int = Field(
        8, ge=1, le=30, description="Attempts per delivery, then it is recorded as failed."
    )
    backoff: Seconds = Field(
        5.0,
        ge=0,
        description="Delay before the second attempt; it doubles with each attempt (with "
        "jitter: 50 to 100 % of it), up to max_backoff.",
    )
    max_backoff: Seconds = Field(3600.0, ge=0, description="Longest delay between attempts.")
    concurrency: int = Field(4, ge=1, le=64, description="Deliveries sent at once per process.")
    poll_interval: Seconds = Field(
        2.0,
        gt=0,
        description="How often the outbox is read for due retries and deliveries queued by "
        "other processes (those of this process wake it at once).",
    )


class PdfToolSettings(BaseModel):
    max_pages: int = Field(
        5000,
        ge=1,
        description="Most pages a PDF tool (merge, split, rotate, ...) reads, all inputs "
        "together, and writes.",
    )
    max_inputs: int = Field(
        50, ge=1, description="Most PDFs one merge takes, and most files one attach adds."
    )
    max_input_bytes: int = Field(
        256 * 1024 * 1024,
        ge=1,
        description="Largest input file (each PDF, each attachment) of a PDF tool, in bytes.",
    )
    max_outputs: int = Field(1000, ge=1, description="Most files one split may make.")


class RenderSettings(BaseModel):
    max_pages: int = Field(
        500, ge=1, description="Most pages (or frames) one render job turns into images."
    )
    dpi: int = Field(
        150, ge=18, le=1200, description="Resolution pages are rendered at when none is asked."
    )
    quality: int = Field(
        85, ge=1, le=100, description="JPEG and WebP quality when none is asked (1-100)."
    )
    max_side: int = Field(
        20000, ge=16, description="Largest width or height a page image may be asked for."
    )
    thumbnail_size: int = Field(
        256, ge=16, le=4096, description="Side of the box a thumbnail fits in by default."
    )
    split_min_pages: int = Field(
        24,
        ge=1,
        description="A PDF render job of at least this many pages is split into page ranges "
        "rendered on several workers at once (when the executor splits jobs at all).",
    )


class SiteSettings(BaseModel):
    """A web page uploaded as a zip with its assets (HTML → PDF, screenshots)."""

    max_files: int = Field(
        1000, ge=1, description="Most files an uploaded zip of a page and its assets may hold."
    )
    max_bytes: int = Field(
        200 * 1024 * 1024,
        ge=1,
        description="Most bytes an uploaded zip of a page may unpack to, all files together "
        "(counted as they are written, not taken from the zip's claims).",
    )
    max_ratio: float = Field(
        100.0,
        ge=1,
        description="Highest unpacked/compressed size ratio of a zip member over 64 KiB "
        "(zip bombs).",
    )


class ArchiveSettings(BaseModel):
    """Archives unpacked (the ``unpack`` operation): zip, tar, 7z and compressed streams,
    nested ones included. Every limit is held while the bytes are written, never taken
    from what an archive declares (declarations past a limit refuse an entry early)."""

    max_depth: int = Field(
        5, ge=1, le=32, description="How deep archives nested in archives are unpacked."
    )
    max_entries: int = Field(
        10_000, ge=1, description="Most entries one unpack lists, at every depth together."
    )
    max_total_bytes: int = Field(
        1024 * 1024 * 1024,
        ge=1,
        description="Most bytes one unpack writes, every entry at every depth together.",
    )
    max_entry_bytes: int = Field(
        256 * 1024 * 1024, ge=1, description="Largest single entry unpacked, in bytes."
    )
    max_ratio: float = Field(
        200.0,
        ge=1,
        description="Highest unpacked/compressed size ratio of one entry, counted as it is "
        "unpacked (decompression bombs); entries under 'ratio_floor' bytes are not held to it.",
    )
    ratio_floor: int = Field(
        1024 * 1024,
        ge=0,
        description="Entries up to this many bytes are not held to 'max_ratio' (a small "
        "file of spaces compresses a thousand times and is no bomb).",
    )
    max_decoder_memory: int = Field(
        256 * 1024 * 1024,
        ge=1024 * 1024,
        description="Most memory an xz, lzma or zstd decoder may take (its dictionary or "
        "window), in bytes: a stream that asks for more is refused, not allocated.",
    )


class NetworkIsolation(StrEnum):
    #: A network namespace of their own where the machine allows one, else the
    #: engines' own rules alone.
    AUTO = "auto"
    #: A network namespace of their own, always: an engine that cannot have one
    #: does not start, and neither does the service.
    NAMESPACE = "namespace"
    #: The engines' own rules alone (profiles, request interception, whitelists).
    OFF = "off"


class SandboxSettings(BaseModel):
    """How the external engines (LibreOffice, Chromium, FFmpeg) are cut off from the network."""

    network: NetworkIsolation = Field(
        NetworkIsolation.AUTO,
        description="auto: each engine runs in a network namespace of its own (no interface "
        "but its own loopback) where the machine allows it (root, or unprivileged user "
        "namespaces), else under its own rules alone; namespace: always, or refuse to "
        "start; off: the engines' own rules alone. /health says which holds.",
    )
    unshare_path: str = Field(
        "unshare",
        description="util-linux's unshare program, which starts an engine in its own "
        "namespace: a name looked up on PATH, or a path.",
    )


class LogFormat(StrEnum):
    AUTO = "auto"
    JSON = "json"
    CONSOLE = "console"


class LogSettings(BaseModel):
    level: str = Field("INFO", description="Lowest level logged (v1: LOG_LEVEL).")
    format: LogFormat = Field(
        LogFormat.AUTO,
        description="json, console, or auto: JSON in production, console in development.",
    )
    max_request_id: int = Field(
        128,
        ge=8,
        le=1024,
        description="Longest X-Request-ID taken from a request; a longer one, or one with "
        "characters other than letters, digits and '._:-', is replaced by a new id.",
    )


class TracingSettings(BaseModel):
    """OpenTelemetry tracing (docs/observability.md): off unless ``enabled``."""

    enabled: bool = Field(
        False,
        description="Export traces over OTLP/HTTP; off: no tracer is installed and "
        "tracing costs nothing.",
    )
    otlp_endpoint: str = Field(
        "http://127.0.0.1:4318/v1/traces",
        description="URL the spans are posted to (OTLP over HTTP, protobuf), path included.",
    )
    headers: SecretStr | None = Field(
        None,
        description="Headers sent with every export, as 'name=value,name=value' "
        "(OTEL_EXPORTER_OTLP_HEADERS' form), e.g. a collector's token.",
    )
    sample_ratio: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Share of new traces recorded (a job's spans follow its request's choice).",
    )
    service_name: str = Field(
        "documents-worker",
        min_length=1,
        max_length=100,
        description="The service.name resource attribute of every span.",
    )
    export_timeout: Seconds = Field(
        5.0, gt=0, le=60, description="Longest wait for the collector to take one export."
    )
    flush_timeout: Seconds = Field(
        2.0,
        ge=0,
        le=60,
        description="Longest a local worker process waits, after its last job before it "
        "is replaced (executor.jobs_per_worker), for its spans to be exported.",
    )
    excluded_urls: str = Field(
        "/health,/metrics",
        description="Comma-separated patterns of request paths not traced (probes, scrapes).",
    )


class ImageSettings(BaseModel):
    font_file: Path = Field(
        Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
        description="Font of text watermarks (Debian: fonts-dejavu-core).",
    )
    max_frames: int = Field(
        1000, ge=1, description="Most frames of an animated image processed as an animation."
    )
    max_svg_bytes: int = Field(
        10 * 1024 * 1024, ge=1, description="Largest SVG file rendered, in bytes."
    )
    score_size: int = Field(
        1024,
        ge=64,
        le=4096,
        description="Automatic quality compares images scaled to this longest side, in pixels.",
    )


class V1Settings(BaseModel):
    """The v1 compatibility API (``/api/v1``): its file cache and its batch folder."""

    cache_enabled: bool = Field(True, description="The v1 cache is on (v1: CACHE_ENABLED).")
    cache_directory: Path | None = Field(
        None,
        description="Folder of the v1 cache (v1: CACHE_DIRECTORY); default: 'cache' in the "
        "data folder.",
    )
    cache_ttl: Seconds = Field(
        86400.0, gt=0, description="Life of a cache entry (v1: CACHE_TTL, e.g. 24h)."
    )
    cache_max_size: int = Field(
        1024 * 1024 * 1024,
        ge=0,
        description="Bytes the cache may hold; the janitor deletes the oldest files beyond "
        "(v1: CACHE_MAX_SIZE, or CACHE_MAX_SIZE_MB in MiB).",
    )
    cache_cleanup_age: Seconds = Field(
        7 * 86400.0,
        gt=0,
        description="The janitor deletes cache files older than this (v1: CACHE_CLEANUP_AGE).",
    )
    cache_janitor_interval: Seconds = Field(
        3600.0, gt=0, description="How often the cache janitor runs (v1: hourly)."
    )
    vips_enabled: bool = Field(
        True,
        description="libvips is to be used for images; false reports it 'disabled' in "
        "/health, as v1 did (v1: VIPS_ENABLED).",
    )
    markdown_batch_root: Path | None = Field(
        None,
        description="The only folder POST /api/v1/markdown/batch may read and write under "
        "(v1: MARKDOWN_BATCH_ROOT). Unset: the batch route is refused.",
    )
    markdown_batch_max_files: int = Field(
        1000, ge=1, description="Most files one Markdown batch may convert; more are refused."
    )
    environment: str | None = Field(
        None,
        description="The name /health shows as system.environment (v1: ENVIRONMENT, any "
        "text, which also picks the profile when it names one); default: the profile.",
    )


class CacheSettings(BaseModel):
    """The result cache (see docs/cache.md): a job whose input bytes, operation,
    parameters and engine versions match a result kept before is answered from it."""

    enabled: bool = Field(
        True, description="Look results up before running a job, and keep those that succeed."
    )
    url: str | None = Field(
        None,
        description="Where the shared tier lives: unset, a folder on disk ('directory'); "
        "'redis://[:password@]host:6379/0' ('rediss://', 'unix:///path?db=0'): Redis, shared "
        "by every API replica and worker that names it.",
    )
    directory: Path | None = Field(
        None,
        description="Folder of the tier on disk when 'url' is unset; default: 'result-cache' "
        "in the data folder.",
    )
    ttl: Seconds = Field(
        86400.0, gt=0, description="Life of a kept result from when it was kept, both tiers."
    )
    max_bytes: int = Field(
        2 * 1024**3,
        ge=0,
        description="Bytes the shared tier (disk or Redis) may hold; the least recently used "
        "results are evicted beyond.",
    )
    memory_max_bytes: int = Field(
        128 * 1024**2,
        ge=0,
        description="Bytes the in-memory tier of each API process may hold (0: no memory "
        "tier); least recently used evicted beyond.",
    )
    max_entry_bytes: int = Field(
        64 * 1024**2,
        ge=1,
        description="Largest result kept (its JSON, text and artifacts together); larger "
        "results are not cached.",
    )
    shared_across_tenants: bool = Field(
        False,
        description="A tenant may be answered a result another tenant's job made from the same "
        "bytes and parameters. Off: each tenant has its own entries, so a hit tells a tenant "
        "nothing about what others sent.",
    )
    uncached_operations: list[str] = Field(
        default_factory=lambda: ["screenshot"],
        description="Operations never cached (a screenshot's page may load remote content that "
        "changes).",
    )
    key_prefix: str = Field(
        "docworker:cache",
        min_length=1,
        max_length=100,
        description="Prefix of the Redis keys of the shared tier.",
    )
    timeout: Seconds = Field(
        2.0, gt=0, description="Longest one call to Redis may take; past it the cache is skipped."
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL (unset: on disk)")
        return value


class SettingsRefused(Exception):
    """The settings are not safe to serve with; the message lists why."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class FindingKind(StrEnum):
    """What the hostile-content guard can find in an input (see docs/security.md)."""

    TYPE_MISMATCH = "type_mismatch"
    POLYGLOT = "polyglot"
    EXECUTABLE = "executable"
    PDF_JAVASCRIPT = "pdf_javascript"
    PDF_LAUNCH_ACTION = "pdf_launch_action"
    PDF_EMBEDDED_FILE = "pdf_embedded_file"
    PDF_SUBMIT_FORM = "pdf_submit_form"
    PDF_REMOTE_ACTION = "pdf_remote_action"
    PDF_URI_ACTIONS = "pdf_uri_actions"
    OFFICE_MACROS = "office_macros"
    OFFICE_XLM_MACROS = "office_xlm_macros"
    OFFICE_DDE = "office_dde"
    REMOTE_TEMPLATE = "remote_template"
    EXTERNAL_REFERENCE = "external_reference"
    XXE = "xxe"
    XML_ENTITIES = "xml_entities"
    EICAR = "eicar"
    YARA = "yara"
    DECOMPRESSION_BOMB = "decompression_bomb"
    SCAN_ERROR = "scan_error"


class GuardPolicy(StrEnum):
    #: Not reported.
    ALLOW = "allow"
    #: Listed in the result's ``security`` section; the job runs.
    REPORT = "report"
    #: The job fails with a 422 problem naming the finding; the operation does not run.
    REFUSE = "refuse"


#: What happens to each kind of finding unless the settings say otherwise.
DEFAULT_GUARD_POLICY: dict[FindingKind, GuardPolicy] = {
    **dict.fromkeys(FindingKind, GuardPolicy.REPORT),
    FindingKind.EICAR: GuardPolicy.REFUSE,
    FindingKind.YARA: GuardPolicy.REFUSE,
}


class GuardSettings(BaseModel):
    """The hostile-content guard: what every job's input is scanned for, and what follows."""

    enabled: bool = Field(
        True,
        description="Scan every job's input and add a 'security' section to its result; "
        "false: no scan, no section, nothing refused.",
    )
    policy: dict[FindingKind, GuardPolicy] = Field(
        default_factory=lambda: dict(DEFAULT_GUARD_POLICY),
        description="allow, report or refuse, per kind of finding. A kind left out keeps "
        "its default (report; eicar and yara: refuse).",
    )
    tenants: dict[str, dict[FindingKind, GuardPolicy]] = Field(
        default_factory=dict,
        description="Per-tenant policies, {tenant: {kind: policy}}, over 'policy' for the "
        "jobs of that tenant.",
    )
    yara_rules: Path | None = Field(
        None,
        description="A YARA rules file, or a folder whose *.yar and *.yara files are all "
        "compiled (each in the namespace of its file name); unset: no YARA scan.",
    )
    yara_timeout: int = Field(
        10, ge=1, le=600, description="Longest the YARA rules may take on one file, in seconds."
    )
    timeout: Seconds = Field(
        20.0,
        gt=0,
        description="Time budget of one input's scan; past it the scan stops and says so "
        "with a scan_error finding.",
    )
    max_inflate_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        description="Most bytes the scan decompresses from the parts of one container "
        "(OOXML, OpenDocument, EPUB, ZIP), all parts together.",
    )
    max_parts: int = Field(5000, ge=1, description="Most parts of a container the scan looks into.")
    max_pdf_objects: int = Field(
        500_000, ge=1, description="Most PDF objects the scan walks through."
    )
    bomb_ratio: float = Field(
        200.0,
        ge=2,
        description="A ZIP or gzip member, or a whole ZIP, that declares more than this many "
        "times its compressed size is reported as a decompression bomb.",
    )
    bomb_min_bytes: int = Field(
        16 * 1024 * 1024,
        ge=0,
        description="Declared sizes below this are never reported as decompression bombs, "
        "whatever their ratio.",
    )

    @model_validator(mode="after")
    def _check_rules_path(self) -> GuardSettings:
        if self.yara_rules is not None and not self.yara_rules.exists():
            raise ValueError(f"guard.yara_rules: {self.yara_rules} does not exist")
        return self

    def policy_for(self, kind: FindingKind, tenant: str | None = None) -> GuardPolicy:
        """The policy of ``kind`` for a job of ``tenant`` (None: no tenant)."""
        if tenant is not None:
            override = self.tenants.get(tenant, {}).get(kind)
            if override is not None:
                return override
        return self.policy.get(kind, DEFAULT_GUARD_POLICY[kind])


#: What a flag's variant may be.
FlagValue = bool | int | float | str | dict[str, Any] | list[Any]


class FlagRollout(BaseModel):
    """A share of tenants (or keys) given a variant, by a stable hash of the flag's key
    and theirs (docs/flags.md)."""

    model_config = ConfigDict(extra="forbid")

    variant: str = Field(description="The variant the share gets.")
    percent: float = Field(ge=0, le=100, description="The share, 0-100 (steps of 0.01).")


class FlagDefinition(BaseModel):
    """One flag of the file provider (docs/flags.md)."""

    model_config = ConfigDict(extra="forbid")

    variants: dict[str, FlagValue] = Field(
        default_factory=lambda: dict[str, FlagValue]({"on": True, "off": False}),
        description="Variant name → value; default: on (true) and off (false).",
    )
    default: str = Field(description="The variant of whoever no rule below names.")
    enabled: bool = Field(
        True, description="false: every evaluation gets the code's own default (DISABLED)."
    )
    tenants: dict[str, str] = Field(
        default_factory=dict, description="Tenant → the variant it always gets."
    )
    keys: dict[str, str] = Field(
        default_factory=dict,
        description="API key id → the variant it always gets (before the tenant's).",
    )
    rollout: list[FlagRollout] = Field(
        default_factory=list,
        description="Shares of the rest, in order: the bucket (0-9999) of sha256(flag key, "
        "tenant or key) picks the share it falls in; past the last share, the default.",
    )
    rollout_by: Literal["tenant", "key"] = Field(
        "tenant", description="What the rollout hashes: the caller's tenant or API key id."
    )

    @model_validator(mode="before")
    @classmethod
    def _on_off_names(cls, data: Any) -> Any:
        # YAML reads a bare on/off (yes/no, true/false) as a boolean: as a variant's name,
        # it means the variant named so.
        if not isinstance(data, dict):
            return data

        def name(value: Any) -> Any:
            return ("on" if value else "off") if isinstance(value, bool) else value

        data = dict(data)
        if "default" in data:
            data["default"] = name(data["default"])
        for part in ("tenants", "keys"):
            if isinstance(data.get(part), dict):
                data[part] = {str(k): name(v) for k, v in data[part].items()}
        if isinstance(data.get("variants"), dict):
            data["variants"] = {name(k): v for k, v in data["variants"].items()}
        if isinstance(data.get("rollout"), list):
            data["rollout"] = [
                {**share, "variant": name(share.get("variant"))}
                if isinstance(share, dict)
                else share
                for share in data["rollout"]
            ]
        return data

    @model_validator(mode="after")
    def _check_variants(self) -> FlagDefinition:
        named = [self.default, *self.tenants.values(), *self.keys.values()]
        named += [share.variant for share in self.rollout]
        unknown = sorted({name for name in named if name not in self.variants})
        if unknown:
            raise ValueError(f"variants not defined: {', '.join(unknown)}")
        if sum(share.percent for share in self.rollout) > 100:
            raise ValueError("the rollout's shares add up to more than 100 percent")
        return self


class FlagSettings(BaseModel):
    """Feature flags (docs/flags.md): OpenFeature, with the service's file provider by
    default."""

    file: Path | None = Field(
        None, description="Flags file (YAML or JSON: a 'flags' mapping of flag key → flag)."
    )
    definitions: dict[str, FlagDefinition] = Field(
        default_factory=dict,
        description="Flags given in the settings (e.g. DOCWORKER_FLAGS__DEFINITIONS as JSON); "
        "a flag here replaces the file's flag of the same key.",
    )
    provider: str | None = Field(
        None,
        description="Another OpenFeature provider: 'module:attribute', a provider class or "
        "factory called with provider_options as keyword arguments; unset: the file provider.",
    )
    provider_options: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments of the provider's factory."
    )


class Settings(BaseSettings):
    """Everything the service can be told, with its defaults."""

    # Settings hold secrets (keys, passwords in database URLs): an error names the field
    # that is wrong, never the value given.
    model_config = SettingsConfigDict(
        env_prefix="DOCWORKER_",
        env_nested_delimiter="__",
        extra="ignore",
        hide_input_in_errors=True,
    )

    profile: Profile = Field(
        Profile.DEVELOPMENT, description="development or production (v1: ENVIRONMENT)."
    )
    data_dir: Path = Field(
        Path("data"), description="Folder for the embedded database, blobs and caches."
    )
    server: ServerSettings = Field(default_factory=ServerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    secrets: SecretsSettings = Field(default_factory=SecretsSettings)
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)
    celery: CelerySettings = Field(default_factory=CelerySettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    batches: BatchSettings = Field(default_factory=BatchSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    ocr: OcrSettings = Field(default_factory=OcrSettings)
    libreoffice: LibreOfficeSettings = Field(default_factory=LibreOfficeSettings)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    ffmpeg: FfmpegSettings = Field(default_factory=FfmpegSettings)
    speech: SpeechSettings = Field(default_factory=SpeechSettings)
    chromium: ChromiumSettings = Field(default_factory=ChromiumSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    pdf: PdfToolSettings = Field(default_factory=PdfToolSettings)
    image: ImageSettings = Field(default_factory=ImageSettings)
    render: RenderSettings = Field(default_factory=RenderSettings)
    v1: V1Settings = Field(default_factory=V1Settings)
    site: SiteSettings = Field(default_factory=SiteSettings)
    archives: ArchiveSettings = Field(default_factory=ArchiveSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    rate: RateSettings = Field(default_factory=RateSettings)
    cors: CorsSettings = Field(default_factory=CorsSettings)
    guard: GuardSettings = Field(default_factory=GuardSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    quota: QuotaSettings = Field(default_factory=QuotaSettings)
    usage: UsageSettings = Field(default_factory=UsageSettings)
    capacity: CapacitySettings = Field(default_factory=CapacitySettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    events: EventSettings = Field(default_factory=EventSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    flags: FlagSettings = Field(default_factory=FlagSettings)

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        for (section, name), value in PROFILE_DEFAULTS.get(self.profile, {}).items():
            part = getattr(self, section)
            if name not in part.model_fields_set:
                setattr(part, name, value)
        if self.database.url is None:
            self.database.url = f"sqlite:///{(self.data_dir / 'docworker.db').absolute()}"
        if self.storage.url is None:
            self.storage.url = f"file://{(self.data_dir / 'blobs').absolute()}"
        return self

    @property
    def auth_enabled(self) -> bool:
        if self.auth.enabled is None:
            return self.profile is Profile.PRODUCTION
        return self.auth.enabled

    @property
    def rate_enabled(self) -> bool:
        if self.rate.enabled is None:
            return self.auth_enabled
        return self.rate.enabled

    @property
    def listen_host(self) -> str:
        if self.server.host is not None:
            return self.server.host
        return "0.0.0.0" if self.auth_enabled else "127.0.0.1"  # noqa: S104

    def refusals(self) -> list[str]:
        """Why the service must not start with these settings (empty: it may).

        Production runs with API keys under a strong secret, without debugging aids
        and without letting any origin send credentials; development may run open,
        but then on loopback only.
        """
        found: list[str] = []
        if self.profile is Profile.PRODUCTION:
            if not self.auth_enabled:
                found.append("production needs API keys: auth.enabled must not be false")
            secret = self.auth.secret.get_secret_value() if self.auth.secret else None
            if secret is None:
                found.append("production needs auth.secret (DOCWORKER_AUTH__SECRET)")
            elif (why := _weak_secret(secret)) is not None:
                found.append(f"auth.secret is weak: {why}")
            if (why := self.secret_key_problem()) is not None:
                found.append(why)
            if self.database.echo:
                found.append("database.echo logs every statement, parameters included")
            if self.log.level.upper() == "DEBUG":
                found.append("log.level DEBUG may log request contents")
            if "*" in self.cors.allow_origins and self.cors.allow_credentials:
                found.append("cors.allow_origins '*' with cors.allow_credentials")
        elif not self.auth_enabled and not _is_loopback(self.listen_host):
            found.append(
                f"without API keys the service listens on loopback only, not on "
                f"{self.listen_host}: turn auth.enabled on, or listen on 127.0.0.1"
            )
        return found

    @property
    def database_url(self) -> str:
        assert self.database.url is not None  # set by _fill_defaults
        return self.database.url

    @property
    def storage_url(self) -> str:
        assert self.storage.url is not None  # set by _fill_defaults
        return self.storage.url

    def secret_key_problem(self) -> str | None:
        """Why the keys sealing secret parameters are not fit for production, or None when
        keys were configured (``secrets.keys``) and each was drawn at random."""
        keys = [key.get_secret_value() for key in self.secrets.keys]
        if not keys:
            return (
                "no secrets.keys configured: secret parameters are sealed with a key "
                "generated into the data folder, readable by whoever reads the data"
            )
        for index, key in enumerate(keys, 1):
            raw = _key_bytes(key) or b""
            if len(set(raw)) < MIN_DISTINCT_KEY_BYTES:
                return f"secrets.keys: key {index} is weak (its bytes were not drawn at random)"
        return None

    @property
    def json_logs(self) -> bool:
        if self.log.format is LogFormat.AUTO:
            return self.profile is Profile.PRODUCTION
        return self.log.format is LogFormat.JSON

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            V1EnvironmentSource(settings_cls),
            dotenv_settings,
            ConfigFileSource(settings_cls),
        )


def _weak_secret(secret: str) -> str | None:
    from docworker.auth import weak_secret

    return weak_secret(secret)


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def parse_go_bool(value: str) -> bool:
    """A boolean as Go's ``strconv.ParseBool`` reads it (v1's variables)."""
    text = value.strip()
    if text in _GO_TRUE:
        return True
    if text in _GO_FALSE:
        return False
    raise ValueError(f"'{value}' is not a boolean")


#: v1 variable name → (path in the settings tree, converter).
V1_ALIASES: dict[str, tuple[tuple[str, ...], Any]] = {
    "ENVIRONMENT": (("profile",), lambda v: Profile(v.strip().lower())),
    "SERVER_READ_TIMEOUT": (("server", "read_timeout"), parse_duration),
    "SERVER_WRITE_TIMEOUT": (("server", "write_timeout"), parse_duration),
    "SERVER_IDLE_TIMEOUT": (("server", "idle_timeout"), parse_duration),
    "WORKER_MAX_CONCURRENCY": (("executor", "workers"), int),
    "WORKER_RETRY_COUNT": (("executor", "max_attempts"), lambda v: max(int(v), 1)),
    "WORKER_RETRY_DELAY": (("executor", "retry_delay"), parse_duration),
    "OCR_LANGUAGE": (("ocr", "language"), str),
    "OCR_DPI": (("ocr", "dpi"), int),
    "OCR_PSM": (("ocr", "psm"), int),
    "LOG_LEVEL": (("log", "level"), lambda v: v.strip().upper()),
    "LIBREOFFICE_PATH": (("libreoffice", "soffice_path"), str.strip),
    "FFMPEG_PATH": (("ffmpeg", "ffmpeg_path"), str.strip),
    "CACHE_ENABLED": (("v1", "cache_enabled"), parse_go_bool),
    "CACHE_DIRECTORY": (("v1", "cache_directory"), str.strip),
    "CACHE_TTL": (("v1", "cache_ttl"), parse_duration),
    # CACHE_MAX_SIZE comes after the older MiB variable, so it wins when both are set.
    "CACHE_MAX_SIZE_MB": (("v1", "cache_max_size"), lambda v: int(v) * 1024 * 1024),
    "CACHE_MAX_SIZE": (("v1", "cache_max_size"), int),
    "CACHE_CLEANUP_AGE": (("v1", "cache_cleanup_age"), parse_duration),
    "MARKDOWN_BATCH_ROOT": (("v1", "markdown_batch_root"), str.strip),
    "VIPS_ENABLED": (("v1", "vips_enabled"), parse_go_bool),
}


def _validate_at(model: type[BaseModel], path: tuple[str, ...], value: Any) -> None:
    """Validate ``value`` as the field at ``path`` of ``model`` takes it (its type and
    bounds); a ``ValidationError`` (a ``ValueError``) when it does not."""
    for key in path[:-1]:
        annotation = model.model_fields[key].annotation
        assert isinstance(annotation, type) and issubclass(annotation, BaseModel)
        model = annotation
    field = model.model_fields[path[-1]]
    kind: Any = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
    TypeAdapter(kind).validate_python(value)


class V1EnvironmentSource(EnvSettingsSource):
    """Reads the v1 service's variable names, the v1 way (empty or bad → default)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        environ = os.environ
        # v1 reads PORT, and the v1 README's SERVER_PORT when PORT is unset.
        port_name = "PORT" if environ.get("PORT") else "SERVER_PORT"
        aliases = {**V1_ALIASES, port_name: (("server", "port"), int)}
        for name, (path, convert) in aliases.items():
            raw = environ.get(name, "")
            if not raw.strip():
                continue
            try:
                value = convert(raw)
                _validate_at(self.settings_cls, path, value)
            except (ValueError, TypeError):
                # A ValidationError too: v1 took any number it could read; one v2
                # cannot take (OCR_DPI=5000, WORKER_MAX_CONCURRENCY=0) is let go as
                # v1 let go of what it could not read, rather than stop the start.
                warnings.warn(f"ignoring {name}={raw!r}: not a valid value", stacklevel=2)
                continue
            node = found
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = value
        # v1 showed ENVIRONMENT as it was in /health, whether or not it names a profile.
        if environ.get("ENVIRONMENT", "").strip():
            found.setdefault("v1", {})["environment"] = environ["ENVIRONMENT"].strip()
        return found


#: The variable naming the settings file (below the environment, see ConfigFileSource).
CONFIG_FILE_VARIABLE = "DOCWORKER_CONFIG_FILE"


def read_structured_file(path: Path, what: str) -> dict[str, Any]:
    """A YAML (.yaml, .yml), TOML (.toml) or JSON (anything else) file holding a mapping;
    ValueError naming the file when it cannot be read or is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{what} {path}: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            import yaml  # type: ignore[import-untyped]

            data = yaml.safe_load(text) if text.strip() else {}
        elif suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text) if text.strip() else {}
    except Exception as exc:  # noqa: BLE001 - each parser has its own error class
        line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        kind = suffix.lstrip(".") or "JSON"
        raise ValueError(f"{what} {path} is not valid {kind}: {line}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{what} {path} must hold a mapping of settings")
    return data


class ConfigFileSource(PydanticBaseSettingsSource):
    """The settings file named by ``DOCWORKER_CONFIG_FILE``: the same tree as the
    variables (``executor: {workers: 4}``), below every variable. It is read again by
    a reload (SIGHUP), which is what makes one useful: a running process's environment
    does not change."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        name = os.environ.get(CONFIG_FILE_VARIABLE, "").strip()
        if not name or not _read_config_file.get():
            return {}
        return read_structured_file(Path(name), "settings file")


#: Off while settings are rebuilt from a dump (:func:`settings_of`): the file may have
#: changed, or broken, since the dump was made.
_read_config_file: ContextVar[bool] = ContextVar("read_config_file", default=True)


def settings_of(dumped: dict[str, Any]) -> Settings:
    """Settings from another process's dump (``model_dump``): what it held, the settings
    file not read again (it may have changed, or broken, since)."""
    token = _read_config_file.set(False)
    try:
        return Settings.model_validate(dumped)
    finally:
        _read_config_file.reset(token)


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from the environment, with ``overrides`` taking precedence."""
    return Settings(**overrides)
