"""The public shapes of the v2 API: jobs, job lists, operations, problems."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue

from docworker.jobs.models import BatchRecord, BatchState
from docworker.jobs.store import JobRecord, JobStatus
from docworker.operations import OPERATIONS, public_params

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
    parts: str | None = Field(None, description="The job's parts, when it was split.")
    parent: str | None = Field(None, description="The job this one is a part of.")
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


class JobPublic(BaseModel):
    id: str = Field(examples=["0b6c3f2e-8d6e-4b7e-9a35-2f4f7e2d9a10"])
    operation: str = Field(examples=["extract"])
    status: JobStatus
    params: dict[str, Any]
    priority: int
    input: JobInputPublic | None
    attempts: int
    max_attempts: int
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
    batch_id: str | None = Field(None, description="The batch this job is a child of.")
    batch_index: int | None = Field(
        None, description="This child's place among its batch's files, from 0."
    )
    usage: JobUsage
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
            batch_id=record.batch_id,
            batch_index=record.batch_index,
            usage=JobUsage(
                input_bytes=record.input_bytes,
                pages=record.pages,
                cpu_seconds=round(record.cpu_seconds, 3),
            ),
            links=JobLinks(
                self=f"{base}/jobs/{record.id}",
                result=f"{base}/jobs/{record.id}/result",
                parts=f"{base}/jobs?parent_id={record.id}" if record.children_total else None,
                parent=f"{base}/jobs/{record.parent_id}" if record.parent_id else None,
                batch=f"{base}/batches/{record.batch_id}" if record.batch_id else None,
            ),
        )


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
            links=BatchLinks(
                self=here,
                jobs=f"{here}/jobs",
                results=f"{here}/results",
                cancel=f"{here}/cancel",
                retry=f"{here}/retry",
            ),
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


class JobCreate(BaseModel):
    """A job named in JSON: its input is a blob already in the store."""

    model_config = ConfigDict(extra="forbid")

    operation: str = Field(
        max_length=64,
        examples=["extract"],
        json_schema_extra={"enum": _OPERATION_NAMES},
        description="One of the operations GET /api/v2/operations lists.",
    )
    params: dict[str, Any] = Field(default_factory=dict, examples=[{"output": "markdown"}])
    input_uri: InputUri
    other_input_uris: list[InputUri] = Field(
        default_factory=list,
        max_length=100,
        description="Further inputs (blob://inputs/<sha256>), in order, after input_uri.",
    )
    priority: int = Field(0, ge=-100, le=100, description="Higher runs first.")
    idempotency_key: str | None = Field(None, min_length=1, max_length=IDEMPOTENCY_KEY_LENGTH)


class OperationInfo(BaseModel):
    name: str
    summary: str
    queue: str
    params_schema: dict[str, Any]


class OperationList(BaseModel):
    operations: list[OperationInfo]
