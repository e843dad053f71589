"""Submitting, waiting for, cancelling and reading jobs: what the API and CLI call.

:class:`JobQueue` ties the job store, the blob store and the executor together.
Every entry point submits work through :meth:`JobQueue.submit`, so validation,
idempotency and metrics happen in one place whichever executor runs the job.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any, Protocol

import anyio.to_thread

from docworker.errors import Conflict, NotFound, error_from_dict
from docworker.jobs.events import JobEvents
from docworker.jobs.store import TERMINAL_STATUSES, JobRecord, JobStatus, JobStore, NewJob
from docworker.operations import dump_params, get_operation, validate_params
from docworker.storage import BlobStore, StoredBlob
from docworker.telemetry import JOBS_SUBMITTED


class Executor(Protocol):
    """Runs queued jobs. ``notify`` says new work or a cancel is waiting."""

    def start(self) -> None: ...

    def stop(self, timeout: float = 10.0) -> None: ...

    def notify(self) -> None: ...


@dataclass(frozen=True)
class JobInput:
    blob: StoredBlob
    name: str | None = None
    mime: str | None = None
    #: What a v1 route recorded about the upload and the request (v1's job ``payload``),
    #: kept with the input so that ``/api/v1/job/:id`` can answer it. Operations ignore it.
    v1: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        stored: dict[str, Any] = {
            "uri": self.blob.uri,
            "sha256": self.blob.sha256,
            "size": self.blob.size,
            "name": self.name,
            "mime": self.mime,
        }
        if self.v1 is not None:
            stored["v1"] = self.v1
        return stored


#: How often a waiter re-reads the store even without an in-process event, so jobs
#: finished elsewhere (another replica, a remote worker) are seen.
STORE_POLL = 1.0


class JobQueue:
    def __init__(
        self,
        store: JobStore,
        blobs: BlobStore,
        executor: Executor | None,
        events: JobEvents,
        *,
        max_attempts: int,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.executor = executor
        self.events = events
        self.max_attempts = max_attempts

    def submit(
        self,
        operation: str,
        params: dict[str, Any],
        job_input: JobInput,
        *,
        priority: int = 0,
        idempotency_key: str | None = None,
        others: Sequence[JobInput] = (),
    ) -> tuple[JobRecord, bool]:
        """Validate and queue a job; returns the job and whether it is new. Every
        operation reads an input file (``Operation.run`` takes one), so ``job_input`` is
        required; ``others`` are the job's further input files, after it."""
        op = get_operation(operation)
        checked = validate_params(op, params)
        stored = job_input.as_dict()
        if others:
            stored["others"] = [other.as_dict() for other in others]
        record, created = self.store.create(
            NewJob(
                operation=operation,
                params=dump_params(checked),
                input=stored,
                priority=priority,
                idempotency_key=idempotency_key,
                max_attempts=self.max_attempts,
            )
        )
        if created:
            JOBS_SUBMITTED.labels(operation).inc()
            if self.executor is not None:
                self.executor.notify()
        return record, created

    def cancel(self, job_id: str) -> JobRecord:
        record = self.store.request_cancel(job_id)
        if self.executor is not None:
            self.executor.notify()
        if record.status in TERMINAL_STATUSES:
            self.events.publish(job_id)
        return record

    async def wait(self, job_id: str, timeout: float) -> JobRecord:
        """The job once it has ended, or as it stands when ``timeout`` seconds have passed."""
        deadline = time.monotonic() + timeout
        while True:
            record = await anyio.to_thread.run_sync(self.store.get, job_id)
            remaining = deadline - time.monotonic()
            if record.status in TERMINAL_STATUSES or remaining <= 0:
                return record
            await self.events.wait(job_id, min(remaining, STORE_POLL))

    def artifact(self, record: JobRecord, name: str) -> tuple[dict[str, Any], IO[bytes]]:
        """A file the job made beside its result (its ``artifacts`` entry, and a stream)."""
        if record.status not in {JobStatus.SUCCEEDED, JobStatus.PARTIAL} or not record.result:
            self.result(record)  # raises the job's error, or that it has not finished
        listed = (record.result or {}).get("artifacts") or []
        entry = next((a for a in listed if a.get("name") == name), None)
        if entry is None:
            raise NotFound("artifact", name)
        return entry, self.blobs.open(entry["uri"])

    def result(self, record: JobRecord) -> dict[str, Any]:
        """The result payload of a finished job; the job's own error when it failed."""
        if record.status in {JobStatus.SUCCEEDED, JobStatus.PARTIAL} and record.result:
            payload: dict[str, Any] = json.loads(self.blobs.read_bytes(record.result["uri"]))
            return payload
        if record.error and record.status in {JobStatus.FAILED, JobStatus.DEAD}:
            raise error_from_dict(record.error)
        raise Conflict(
            f"job {record.id} has no result: it is {record.status}", job_status=record.status
        )
