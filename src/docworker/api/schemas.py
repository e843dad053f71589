"""The public shapes of the v2 API: jobs, job lists, operations, problems."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue

from docworker.config import FINAL_EVENT_KINDS, BatchEventKind, JobEventKind
from docworker.errors import InvalidParameter
from docworker.jobs.models import BatchRecord, BatchState
from docworker.jobs.outbox import Delivery
from docworker.jobs.store import JobRecord, JobStatus
from docworker.jobs.webhooks import MAX_URL_LENGTH
from docworker.operations import OPERATIONS, public_params
from docworker.url_policy import shown_url

#: The longest idempotency key a client may send (header or field).
IDEMPOTENCY_KEY_LENGTH = 200


def _date_time(value: object) -> object:
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
        raise ValueError("must be a date and time (ISO 8601), not a number")
    return value


#: A date and time as ISO 8601 text; pydantic alone would also take a number of seconds.
DateTime = Annotated[datetime, BeforeValidator(_date_time)]


def _true_or_false(value: object) -> object:
    if isinstance(value, str) and value.strip().lower() not in {"true", "false"}:
        raise ValueError("must be true or false")
    return value


#: A yes-or-no form field: ``true`` or ``false``, as the document says; pydantic alone
#: would also take 0, 1, yes, no, on and off.
FormBool = Annotated[bool, BeforeValidator(_true_or_false)]


class Problem(BaseModel):
    """An RFC 9457 problem; ``code`` names the error in one word, stable for clients."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["urn:docworker:problem:password-required"])
    title: str = Field(examples=["Password required"])
    status: int = Field(examples=[422])
    detail: str = Field(examples=["the pdf document is encrypted: pass its password as 'password'"])
    code: str | None = Field(None, examples=["password-required"])
    instance: str | None = None


class InputFilePublic(BaseModel):
    name: str | None = None
    mime: str | None = None
    size: int | None = None
    sha256: str | None = None

    @classmethod
    def of(cls, stored: dict[str, Any]) -> InputFilePublic:
        return cls(**{k: stored.get(k) for k in InputFilePublic.model_fields})


class JobInputPublic(InputFilePublic):
    others: list[InputFilePublic] = Field(
        default_factory=list, description="The job's further input files, in order."
    )

    @classmethod
    def of(cls, stored: dict[str, Any]) -> JobInputPublic:
        first = InputFilePublic.of(stored).model_dump()
        others = [InputFilePublic.of(other) for other in stored.get("others") or []]
        return cls(**first, others=others)


class JobLinks(BaseModel):
    self: str
    result: str
    events: str = Field(description="The job's events as a Server-Sent Events stream.")
    webhooks: str = Field(description="The deliveries of the job's webhooks and their log.")
    parts: str | None = Field(None, description="The job's parts, when it was split.")
    parent: str | None = Field(None, description="The job this one is a part of.")
    artifacts: str | None = Field(
        None, description="The files the job made, with their download links."
    )
    batch: str | None = Field(None, description="The batch this job is a child of.")


class JobParts(BaseModel):
    """A job split into parts that run as child jobs on several workers at once."""

    total: int = Field(description="Parts the job was split into.")
    pending: int = Field(description="Parts that have not ended yet.")


class JobUsage(BaseModel):
    """What a job took in and used so far (its parts included)."""

    input_bytes: int = Field(description="Bytes of its input files.")
    pages: int | None = Field(description="Pages it processed, when its result names them.")
    cpu_seconds: float = Field(
        description="CPU time of its attempts: the worker, the engines and tools it ran."
    )


class AttemptError(BaseModel):
    code: str | None = Field(examples=["engine-failed"])
    detail: str = Field(examples=["LibreOffice exited during the conversion"])


class AttemptPublic(BaseModel):
    """One attempt of a job that has ended."""

    attempt: int = Field(description="Its number, from 1.")
    started_at: datetime | None
    ended_at: datetime
    worker: str | None = Field(description="The executor process that ran it.")
    outcome: str = Field(
        description="What it led to: succeeded, partial, split (into parts), retried "
        "(queued again), failed, dead or cancelled.",
        examples=["retried"],
    )
    error: AttemptError | None = Field(description="Why it failed, when it did.")
    retry_at: datetime | None = Field(
        None, description="For a retried attempt: when the next attempt could start."
    )


class JobWebhookPublic(BaseModel):
    """A job's own webhook (its secret is never shown)."""

    url: str
    events: list[JobEventKind]

    @classmethod
    def of(cls, stored: dict[str, Any]) -> JobWebhookPublic:
        return cls(url=shown_url(str(stored["url"])), events=stored.get("events") or [])


class JobPublic(BaseModel):
    id: str = Field(examples=["0b6c3f2e-8d6e-4b7e-9a35-2f4f7e2d9a10"])
    operation: str = Field(examples=["extract"])
    status: JobStatus
    params: dict[str, Any]
    priority: int
    input: JobInputPublic | None
    attempts: int = Field(description="Attempts started so far.")
    max_attempts: int
    attempt_history: list[AttemptPublic] = Field(
        default_factory=list,
        description="The attempts that ended, oldest first (the running one is "
        "started_at and the job's status).",
    )
    progress: float
    progress_message: str | None
    error: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    parent_id: str | None = Field(
        None, description="The job this one is a part of (a page range of a split job)."
    )
    part: int | None = Field(None, description="This part's place among its job's parts, from 0.")
    parts: JobParts | None = Field(None, description="Set when the job was split into parts.")
    webhook: JobWebhookPublic | None = Field(None, description="The job's own webhook.")
    batch_id: str | None = Field(None, description="The batch this job is a child of.")
    batch_index: int | None = Field(
        None, description="This child's place among its batch's files, from 0."
    )
    usage: JobUsage
    cached: bool = Field(
        False,
        description="Answered from the result cache: it succeeded when it was submitted, with "
        "a copy of the result an earlier job made from the same input and parameters, on no "
        "worker.",
    )
    links: JobLinks

    @classmethod
    def of(cls, record: JobRecord, base: str = "/api/v2") -> JobPublic:
        job_input = record.input or None
        return cls(
            id=record.id,
            operation=record.operation,
            status=record.status,
            params=public_params(record.operation, record.params),
            priority=record.priority,
            input=JobInputPublic.of(job_input) if job_input else None,
            attempts=record.attempts,
            max_attempts=record.max_attempts,
            attempt_history=[AttemptPublic.model_validate(entry) for entry in record.history],
            progress=record.progress,
            progress_message=record.progress_message,
            error=record.error,
            created_at=record.created_at,
            updated_at=record.updated_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            parent_id=record.parent_id,
            part=record.part,
            parts=JobParts(total=record.children_total, pending=record.children_pending)
            if record.children_total
            else None,
            webhook=JobWebhookPublic.of(record.webhook) if record.webhook else None,
            batch_id=record.batch_id,
            batch_index=record.batch_index,
            usage=JobUsage(
                input_bytes=record.input_bytes,
                pages=record.pages,
                cpu_seconds=round(record.cpu_seconds, 3),
            ),
            cached=record.cached,
            links=JobLinks(
                self=f"{base}/jobs/{record.id}",
                result=f"{base}/jobs/{record.id}/result",
                events=f"{base}/jobs/{record.id}/events",
                webhooks=f"{base}/jobs/{record.id}/webhooks",
                parts=f"{base}/jobs?parent_id={record.id}" if record.children_total else None,
                parent=f"{base}/jobs/{record.parent_id}" if record.parent_id else None,
                artifacts=f"{base}/jobs/{record.id}/artifacts"
                if (record.result or {}).get("artifacts")
                else None,
                batch=f"{base}/batches/{record.batch_id}" if record.batch_id else None,
            ),
        )


class ArtifactPublic(BaseModel):
    """A file a job made, and where to download it."""

    name: str = Field(examples=["searchable.pdf"])
    mime: str = Field(examples=["application/pdf"])
    size: int = Field(description="Bytes.")
    url: str = Field(
        description="Its download link: presigned, straight to the output store, where the "
        "store signs links (s3); else the API's own artifact route (with the caller's key).",
        examples=["/api/v2/jobs/0b6c3f2e-8d6e-4b7e-9a35-2f4f7e2d9a10/artifacts/searchable.pdf"],
    )
    presigned: bool = Field(description="Whether url is a presigned link to the store.")
    expires_at: datetime | None = Field(
        None, description="When a presigned link stops working (storage.link_expiry)."
    )


class ArtifactList(BaseModel):
    artifacts: list[ArtifactPublic]


class BatchCounts(BaseModel):
    """A batch's children by state."""

    queued: int
    running: int
    succeeded: int
    partial: int
    failed: int
    cancelled: int
    dead: int


class BatchLinks(BaseModel):
    self: str
    jobs: str = Field(description="The children, a page at a time.")
    results: str = Field(description="Every child's result or error, as NDJSON or a zip.")
    cancel: str
    retry: str
    events: str = Field(description="The batch's events (Server-Sent Events).")
    webhooks: str = Field(description="The deliveries of the batch's webhooks and their log.")


class BatchWebhookPublic(BaseModel):
    """A batch's own webhook (its secret is never shown)."""

    url: str
    events: list[BatchEventKind]

    @classmethod
    def of(cls, stored: dict[str, Any]) -> BatchWebhookPublic:
        return cls(url=shown_url(str(stored["url"])), events=stored.get("events") or [])


class BatchPublic(BaseModel):
    """One operation on many files: its children are ordinary jobs, its state theirs."""

    id: str = Field(examples=["5d0f5c0e-3c4b-4f3e-9d1a-0c8e7f6a5b4c"])
    operation: str = Field(examples=["extract"])
    params: dict[str, Any] = Field(description="The params every child runs with.")
    priority: int
    status: BatchState = Field(
        description="running while a child is queued or running; then succeeded (every "
        "child succeeded), partial (some did not), failed (none did) or cancelled."
    )
    total: int = Field(description="Children the batch was made with.")
    counts: BatchCounts
    progress: float = Field(description="Share of the children that have ended.")
    created_at: datetime
    finished_at: datetime | None = Field(None, description="When the last child ended.")
    webhook: BatchWebhookPublic | None = Field(None, description="The batch's own webhook.")
    links: BatchLinks

    @classmethod
    def of(cls, record: BatchRecord, base: str = "/api/v2") -> BatchPublic:
        here = f"{base}/batches/{record.id}"
        return cls(
            id=record.id,
            operation=record.operation,
            params=public_params(record.operation, record.params),
            priority=record.priority,
            status=record.state,
            total=record.total,
            counts=BatchCounts(**{status.value: n for status, n in record.counts.items()}),
            progress=record.progress,
            created_at=record.created_at,
            finished_at=record.finished_at,
            webhook=BatchWebhookPublic.of(record.webhook) if record.webhook else None,
            links=BatchLinks(
                self=here,
                jobs=f"{here}/jobs",
                results=f"{here}/results",
                cancel=f"{here}/cancel",
                retry=f"{here}/retry",
                events=f"{here}/events",
                webhooks=f"{here}/webhooks",
            ),
        )


class BatchList(BaseModel):
    batches: list[BatchPublic] = Field(description="Batches, newest first.")
    next_cursor: str | None = Field(
        None, description="Pass as 'cursor' for the next page; absent on the last page."
    )


class BatchJobList(BaseModel):
    jobs: list[JobPublic] = Field(description="Children in the order of the batch's files.")
    next_cursor: str | None = Field(
        None, description="Pass as 'cursor' for the next page; absent on the last page."
    )


class JobList(BaseModel):
    jobs: list[JobPublic]
    next_cursor: str | None = Field(
        None, description="Pass as 'cursor' for the next page; absent on the last page."
    )


class DeadLetterReplay(BaseModel):
    """Which dead jobs to queue again: the filters of ``GET /api/v2/dead-letters``."""

    model_config = ConfigDict(extra="forbid")

    operation: str | None = Field(None, max_length=64, examples=["convert"])
    error_code: str | None = Field(
        None,
        max_length=64,
        description="Only jobs whose error has this code.",
        examples=["engine-failed"],
    )
    finished_after: DateTime | None = Field(None, description="Died at or after (ISO 8601).")
    finished_before: DateTime | None = Field(None, description="Died before (ISO 8601).")
    limit: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="Most jobs queued again, newest first; default and greatest: "
        "executor.replay_max (100 by default).",
    )


class DeadLetterReplayed(BaseModel):
    replayed: list[JobPublic] = Field(description="The jobs queued again.")
    count: int
    more: bool = Field(
        description="Whether more dead jobs matched than were queued again (send the "
        "request again for the next ones)."
    )


_OPERATION_NAMES: list[JsonValue] = [*sorted(OPERATIONS)]
#: A stored input as a job names it: ``blob://inputs/<sha256>``.
INPUT_URI_PATTERN = r"^blob://inputs/[0-9a-f]{64}$"
InputUri = Annotated[
    str,
    Field(
        pattern=INPUT_URI_PATTERN,
        description="A stored input: blob://inputs/<sha256>, as a job's input lists it.",
        examples=["blob://inputs/" + "0" * 64],
    ),
]


#: What the webhook fields of a submission say.
WEBHOOK_URL = (
    "Where the job's events are POSTed, signed the Standard Webhooks way "
    "(docs/events.md). Its host must resolve to public addresses unless the server "
    "allow-lists it (webhooks.allow_private)."
)
WEBHOOK_SIGNING = (
    "The secret that signs the job's webhooks: 'whsec_' and the base64 of 24 to 64 "
    "random bytes; sealed at rest. Without it the server's webhooks.secret signs them."
)


class JobCreate(BaseModel):
    """A job named in JSON: its input is a blob already in the store (``input_uri``), a
    file under a storage root the service reads (``uri``) or a web page or file it
    fetches (``url``): exactly one of the three."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [{"required": ["input_uri"]}, {"required": ["uri"]}, {"required": ["url"]}]
        },
    )

    operation: str = Field(
        max_length=64,
        examples=["extract"],
        json_schema_extra={"enum": _OPERATION_NAMES},
        description="One of the operations GET /api/v2/operations lists.",
    )
    params: dict[str, Any] = Field(default_factory=dict, examples=[{"output": "markdown"}])
    input_uri: InputUri | None = None
    uri: str | None = Field(
        None,
        min_length=1,
        max_length=2048,
        description="A storage URL under one of the service's storage.read_roots, copied in "
        "as the input.",
        examples=["s3://incoming/report.pdf"],
    )
    url: str | None = Field(
        None,
        min_length=1,
        max_length=2048,
        description="An http(s) URL fetched as the input (allow-listed in fetch.allow).",
        examples=["https://example.com/report.pdf"],
    )
    other_input_uris: list[InputUri] = Field(
        default_factory=list,
        max_length=100,
        description="Further inputs (blob://inputs/<sha256>), in order, after input_uri.",
    )
    priority: int = Field(0, ge=-100, le=100, description="Higher runs first.")
    idempotency_key: str | None = Field(None, min_length=1, max_length=IDEMPOTENCY_KEY_LENGTH)
    cache: bool = Field(
        True,
        description="false: the result cache neither answers this job nor keeps its result.",
    )

    def input_given(self) -> None:
        """Check that the input is given exactly one way (:class:`InvalidParameter`)."""
        given = [name for name in ("input_uri", "uri", "url") if getattr(self, name) is not None]
        if len(given) != 1:
            raise InvalidParameter(
                given[1] if given else "input_uri",
                "the input is given exactly one way: input_uri, uri or url"
                + (f", not {' and '.join(given)}" if given else ""),
            )

    webhook_url: str | None = Field(None, max_length=MAX_URL_LENGTH, description=WEBHOOK_URL)
    webhook_events: list[JobEventKind] = Field(
        default_factory=lambda: list(FINAL_EVENT_KINDS),
        min_length=1,
        description="The events sent to webhook_url.",
    )
    webhook_secret: str | None = Field(None, max_length=200, description=WEBHOOK_SIGNING)


class OperationInfo(BaseModel):
    name: str
    summary: str
    queue: str
    params_schema: dict[str, Any]


class OperationList(BaseModel):
    operations: list[OperationInfo]


class WebhookAttempt(BaseModel):
    """One attempt at a delivery."""

    attempt: int
    at: datetime
    status: int | None = Field(None, description="The receiver's HTTP status, if it answered.")
    error: str | None = Field(None, description="Why the attempt failed, if it did.")
    ms: float = Field(description="How long the attempt took, in milliseconds.")


class WebhookDeliveryPublic(BaseModel):
    """One webhook to send for one of a job's (or a batch's) events, and its attempts."""

    id: str = Field(description="The webhook-id header, the same on every attempt.")
    event: JobEventKind | BatchEventKind
    event_id: int = Field(description="The event's id in the job's (batch's) event stream.")
    subscription: str | None = Field(
        None, description="The configured subscription it is for; none: the job's (batch's) own."
    )
    url: str
    status: str = Field(description="pending, delivered or failed.")
    attempts: int
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime
    log: list[WebhookAttempt]

    @classmethod
    def of(cls, delivery: Delivery) -> WebhookDeliveryPublic:
        return cls(
            id=delivery.id,
            event=delivery.event,
            event_id=delivery.event_seq,
            subscription=delivery.subscription,
            url=shown_url(delivery.url),
            status=delivery.status,
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_at if delivery.status == "pending" else None,
            delivered_at=delivery.delivered_at,
            created_at=delivery.created_at,
            log=[WebhookAttempt.model_validate(entry) for entry in delivery.log],
        )


class WebhookDeliveryList(BaseModel):
    deliveries: list[WebhookDeliveryPublic]
