"""``/api/v2/usage``: what tenants, keys and operations used over a period, and what is
left of a key's daily quotas."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from docworker.api.auth import CallerDep
from docworker.api.deps import Services, ServicesDep
from docworker.api.errors import problem_responses
from docworker.auth import Principal
from docworker.errors import InvalidParameter, NotFound
from docworker.jobs.audit import AuditFilter, UsageFigures, UsageGroup
from docworker.jobs.usage import QUOTA_NAMES, Quotas, Spent, day_ends, utc_day

router = APIRouter(prefix="/api/v2/usage", tags=["usage"])


class GroupBy(StrEnum):
    TENANT = "tenant"
    KEY_ID = "key_id"
    OPERATION = "operation"
    DAY = "day"


class UsageFiguresPublic(BaseModel):
    jobs: int = Field(description="Jobs that reached a final state in the period.")
    outcomes: dict[str, int] = Field(
        description="Those jobs by final state.", examples=[{"succeeded": 40, "failed": 2}]
    )
    input_bytes: int = Field(description="Bytes of their input files.")
    pages: int = Field(description="Pages they processed (as their results name them).")
    cpu_seconds: float = Field(description="CPU time they used, their parts' included.")
    duration_seconds: float = Field(description="Their times from submission to the end, summed.")

    @classmethod
    def of(cls, figures: UsageFigures) -> UsageFiguresPublic:
        return cls(
            jobs=figures.jobs,
            outcomes=figures.outcomes,
            input_bytes=figures.input_bytes,
            pages=figures.pages,
            cpu_seconds=round(figures.cpu_seconds, 3),
            duration_seconds=round(figures.duration_seconds, 3),
        )


class UsageGroupPublic(UsageFiguresPublic):
    group: dict[str, str | None] = Field(
        description="The group's tenant, key_id, operation or day (YYYY-MM-DD, UTC), as "
        "grouped by; null: work without an API key.",
        examples=[{"tenant": "acme", "operation": "extract"}],
    )


class UsageReport(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    start: datetime = Field(alias="from", description="Start of the period (inclusive).")
    end: datetime = Field(alias="to", description="End of the period (exclusive).")
    group_by: list[GroupBy]
    groups: list[UsageGroupPublic]
    total: UsageFiguresPublic


class QuotaState(BaseModel):
    limit: float | None = Field(description="The quota; null: unlimited.")
    used: float = Field(description="Spent today (UTC).")
    remaining: float | None = Field(description="What is left today; null: unlimited.")


class QuotaReport(BaseModel):
    key_id: str
    tenant: str | None
    day: date = Field(description="The UTC day counted.")
    resets_at: datetime = Field(description="When the day's counts start again (UTC midnight).")
    quotas: dict[str, QuotaState] = Field(
        description="requests_per_day (jobs submitted), bytes_per_day (bytes of their "
        "input), pages_per_day and cpu_seconds_per_day (counted as jobs end)."
    )


@router.get(
    "",
    operation_id="get_usage",
    summary="Usage over a period",
    response_model=UsageReport,
    responses=problem_responses(401, 403, 422),
)
async def get_usage(
    caller: CallerDep,
    services: ServicesDep,
    start: Annotated[
        datetime | None,
        Query(alias="from", description="Start of the period; default: today's 00:00 UTC."),
    ] = None,
    end: Annotated[datetime | None, Query(alias="to", description="End; default: now.")] = None,
    group_by: Annotated[
        list[GroupBy] | None, Query(description="Dimensions to group by; default: tenant.")
    ] = None,
    tenant: Annotated[str | None, Query(max_length=64, description="Only this tenant.")] = None,
    key_id: Annotated[str | None, Query(max_length=32, description="Only this key.")] = None,
    operation: Annotated[
        str | None, Query(max_length=64, description="Only this operation.")
    ] = None,
) -> UsageReport:
    """Jobs that ended in the period, grouped by tenant, key, operation or day, with their
    outcomes, bytes of input, pages and CPU-seconds: the figures of the audit trail
    (kept for ``audit.retention``) and of the ``docworker_usage_*`` metrics. A key sees
    its own tenant's usage; an admin key every tenant's."""
    caller.require_read()
    now = datetime.now(UTC)
    since = _aware(start, "from") if start else datetime.combine(utc_day(now), time(), UTC)
    until = _aware(end, "to") if end else now
    if until < since:
        raise InvalidParameter("to", "is before 'from'")
    chosen = list(dict.fromkeys(group_by or [GroupBy.TENANT]))
    groups: list[UsageGroup] = []
    if caller.is_admin or tenant in (None, caller.tenant):
        where = AuditFilter(
            tenant=tenant if caller.is_admin else caller.tenant,
            key_id=key_id,
            operation=operation,
            since=since,
            until=until,
        )
        names = [g.value for g in chosen]
        groups = await anyio.to_thread.run_sync(lambda: services.audit.usage(where, names))
    total = UsageFigures()
    for entry in groups:
        total.add(entry.figures)
    return UsageReport(
        start=since,
        end=until,
        group_by=chosen,
        groups=[
            UsageGroupPublic(group=g.group, **UsageFiguresPublic.of(g.figures).model_dump())
            for g in groups
        ],
        total=UsageFiguresPublic.of(total),
    )


@router.get(
    "/quota",
    operation_id="get_quota",
    summary="What is left of a key's daily quotas",
    response_model=QuotaReport,
    responses=problem_responses(401, 404),
)
async def get_quota(
    caller: CallerDep,
    services: ServicesDep,
    key_id: Annotated[
        str | None, Query(max_length=32, description="Another key (admin); default: this one.")
    ] = None,
) -> QuotaReport:
    """The day's counts of the key this request is made with (or, for an admin, of
    ``key_id``) against its quotas. 404 when the service runs without keys."""
    chosen = key_id or caller.key_id
    if chosen is None or (chosen != caller.key_id and not caller.is_admin):
        raise NotFound("key", chosen or "current")
    now = datetime.now(UTC)
    day = utc_day(now)
    tenant, quotas, spent = await anyio.to_thread.run_sync(
        lambda: _quota_state(services, caller, chosen, day)
    )
    return QuotaReport(
        key_id=chosen,
        tenant=tenant,
        day=day,
        resets_at=day_ends(day),
        quotas={name: _state(getattr(quotas, name), spent.used(name)) for name in QUOTA_NAMES},
    )


def _quota_state(
    services: Services, caller: Principal, key_id: str, day: date
) -> tuple[str | None, Quotas, Spent]:
    if key_id == caller.key_id:
        tenant, limits = caller.tenant, caller.limits
    else:
        record = services.keys.get(key_id)
        tenant, limits = record.tenant, record.limits or {}
    quotas = Quotas.of(limits, services.settings.quota)
    return tenant, quotas, services.counters.spent(key_id, day)


def _state(limit: float | None, used: float) -> QuotaState:
    remaining = None if limit is None else max(0.0, limit - used)
    return QuotaState(limit=limit, used=round(used, 3), remaining=remaining)


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidParameter(name, "must carry a timezone")
    return value.astimezone(UTC)
