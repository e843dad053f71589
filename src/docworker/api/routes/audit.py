"""``/api/v2/audit``: the audit trail, for admin keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from docworker.api.auth import CallerDep
from docworker.api.deps import ServicesDep
from docworker.api.errors import problem_responses
from docworker.jobs.audit import MAX_PAGE_SIZE, AuditFilter, AuditKind, AuditRecord

router = APIRouter(prefix="/api/v2/audit", tags=["audit"])


class AuditEventPublic(BaseModel):
    """Who did what, when, with what outcome and cost."""

    id: int
    at: datetime = Field(description="When it happened (a refusal: its first occurrence).")
    kind: str = Field(
        description="job: a job reached its final state; key.create, key.revoke, key.rotate: "
        "an API key was changed (detail names the key); auth.invalid-key (401), "
        "auth.forbidden (403), quota.exceeded (429): requests refused, counted per flush "
        "interval in detail.count; audit.dropped: refusals not recorded one by one.",
        examples=["job"],
    )
    key_id: str | None = Field(description="The API key that acted (for 401: the one claimed).")
    tenant: str | None
    client: str | None = Field(description="The client's address ('cli:user@host' for the CLI).")
    operation: str | None
    job_id: str | None
    input_sha256: str | None
    input_bytes: int | None = Field(description="Bytes of the job's input files.")
    pages: int | None = Field(description="Pages the job processed, when its result names them.")
    outcome: str | None = Field(
        description="The job's final state (succeeded, partial, failed, cancelled, dead), or "
        "'refused'."
    )
    duration_seconds: float | None = Field(description="From submission to the final state.")
    cpu_seconds: float | None = Field(
        description="CPU time of the job's attempts and parts (worker, engines, tools)."
    )
    detail: dict[str, Any] | None

    @classmethod
    def of(cls, record: AuditRecord) -> AuditEventPublic:
        return cls(
            id=record.id,
            at=record.at,
            kind=record.kind,
            key_id=record.key_id,
            tenant=record.tenant,
            client=record.client,
            operation=record.operation,
            job_id=record.job_id,
            input_sha256=record.input_sha256,
            input_bytes=record.input_bytes,
            pages=record.pages,
            outcome=record.outcome,
            duration_seconds=record.duration,
            cpu_seconds=record.cpu_seconds,
            detail=record.detail,
        )


class AuditList(BaseModel):
    events: list[AuditEventPublic]
    next_cursor: str | None = Field(
        None, description="Pass as 'cursor' for the next page; absent on the last page."
    )


@router.get(
    "",
    operation_id="list_audit_events",
    summary="List audit events",
    response_model=AuditList,
    responses=problem_responses(401, 403, 422),
)
async def list_audit_events(
    caller: CallerDep,
    services: ServicesDep,
    tenant: Annotated[str | None, Query(max_length=64, description="Only this tenant's.")] = None,
    key_id: Annotated[str | None, Query(max_length=32, description="Only this key's.")] = None,
    operation: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[AuditKind | None, Query(description="Only this kind.")] = None,
    outcome: Annotated[
        str | None, Query(max_length=32, description="e.g. failed, refused.")
    ] = None,
    job_id: Annotated[str | None, Query(max_length=36)] = None,
    since: Annotated[datetime | None, Query(description="From this time (inclusive).")] = None,
    until: Annotated[datetime | None, Query(description="Before this time.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    cursor: Annotated[str | None, Query(description="From a previous page's next_cursor.")] = None,
) -> AuditList:
    """The audit trail, newest first, a page at a time (admin). Events are kept for
    ``audit.retention`` (per tenant: ``audit.retention_by_tenant``)."""
    caller.require_admin()
    where = AuditFilter(
        tenant=tenant,
        key_id=key_id,
        operation=operation,
        kind=kind.value if kind else None,
        outcome=outcome,
        job_id=job_id,
        since=since,
        until=until,
    )
    records, next_cursor = await anyio.to_thread.run_sync(
        lambda: services.audit.list(where, limit=limit, cursor=cursor)
    )
    return AuditList(events=[AuditEventPublic.of(r) for r in records], next_cursor=next_cursor)
