"""``/api/v2/capacity``: throughput per worker and operation, its trend, and the workers a
target load needs (see :mod:`docworker.jobs.capacity` and docs/capacity.md)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import anyio.to_thread
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from docworker.api.auth import CallerDep
from docworker.api.deps import ServicesDep
from docworker.api.errors import problem_responses
from docworker.jobs.capacity import check_query, measure

router = APIRouter(prefix="/api/v2/capacity", tags=["capacity"])


class DayFigures(BaseModel):
    day: date = Field(description="The UTC day.")
    jobs: int = Field(description="Jobs that ended that day (within the window).")
    arrival_rate: float = Field(
        description="Those jobs per second of the day's part in the window."
    )
    service_mean: float | None = Field(description="Their mean service time, seconds.")
    whole: bool = Field(description="The whole day lies in the window.")


class TrendFigures(BaseModel):
    arrivals_per_day: float | None = Field(
        description="Least-squares slope of the daily arrival rate over the whole UTC days "
        "of the window: (jobs/s) per day; null with fewer than two whole days."
    )
    arrivals_relative: float | None = Field(
        description="That slope over the window's mean rate (0.1: +10 % a day)."
    )
    service_per_day: float | None = Field(
        description="Least-squares slope of the daily mean service time, seconds per day."
    )


class FiguresPublic(BaseModel):
    jobs: int = Field(
        description="Jobs that ran on a worker and ended in the window, parts included."
    )
    submitted: int = Field(description="Of them, submitted jobs (not parts of split jobs).")
    arrival_rate: float = Field(
        description="Jobs per second over the window (what ended: in a steady state, what arrives)."
    )
    peak_rate: float = Field(description="Jobs per second in the window's busiest hour.")
    peak_hour: str | None = Field(description="That hour (UTC, YYYY-MM-DDTHH).")
    service_mean: float | None = Field(
        description="Mean service time, seconds: the time a job's attempts held a worker."
    )
    service_p50: float | None = Field(
        description="Median service time (from the sample, or the histograms: see percentiles)."
    )
    service_p95: float | None = Field(description="95th percentile of it (as service_p50).")
    service_cv2: float | None = Field(
        description="Squared coefficient of variation of the service time (from the sample; "
        "from the exact sums when percentiles is 'histogram'): "
        "1 for the exponential times M/M/c assumes; well above 1, real waits are longer "
        "than predicted (about (1 + cv²)/2 times, Allen-Cunneen)."
    )
    wait_mean: float | None = Field(
        description="Mean queue wait of submitted jobs, seconds: creation to first start."
    )
    wait_p50: float | None = Field(description="Median queue wait (as service_p50).")
    wait_p95: float | None = Field(description="95th percentile of it (as service_p50).")
    busy_seconds: float = Field(description="Worker-seconds the jobs used.")
    busy_workers: float = Field(
        description="Workers busy on average: busy_seconds over the window (= λ·S)."
    )
    throughput_per_worker: float | None = Field(
        description="Jobs per second one busy worker completes (1 / service_mean)."
    )
    utilisation: float | None = Field(
        description="busy_workers over the configured workers (local executor); null "
        "with celery (its fleets are sized outside the settings)."
    )
    sampled: int = Field(
        description="Jobs in the sample the percentiles are taken from (0 from the histograms)."
    )
    percentiles: Literal["sample", "histogram"] = Field(
        description="'sample': percentiles of the newest job rows of the window; "
        "'histogram': some of the window's jobs are counted from the capacity history "
        "only (their rows were deleted), so the percentiles are estimated from the "
        "log-spaced histograms of every job, within a factor 2^(1/4) (-15.9 %, +18.9 %) "
        "between 0.01 s and 23.3 h (docs/capacity.md)."
    )
    rolled_up: int = Field(
        description="Jobs counted from the capacity history, their rows deleted (the sums "
        "stay exact)."
    )
    daily: list[DayFigures]
    trend: TrendFigures


class SizingPublic(BaseModel):
    target_rate: float = Field(description="The arrival rate sized for, jobs per second.")
    offered_load: float = Field(
        description="Busy workers that rate needs (Little's law: target_rate × service_mean)."
    )
    workers: int | None = Field(
        description="The fewest workers that keep the target percentile of the queue wait "
        "within the target (M/M/c, Erlang C); null past capacity.max_workers."
    )
    utilisation: float | None = Field(description="offered_load over those workers.")
    wait_mean: float | None = Field(description="Predicted mean queue wait, seconds.")
    wait_at_percentile: float | None = Field(
        description="Predicted queue wait at the target percentile, seconds."
    )
    wait_probability: float | None = Field(
        description="Predicted share of jobs that wait at all (Erlang C)."
    )


class OperationCapacity(BaseModel):
    operation: str
    family: str = Field(description="Its queue family (the celery fleet that runs it).")
    figures: FiguresPublic


class FamilyCapacity(BaseModel):
    family: str = Field(
        description="documents, ocr, convert or media; 'all': every family on one pool of "
        "workers (the local executor)."
    )
    operations: list[str]
    figures: FiguresPublic
    sizing: SizingPublic


class TargetPublic(BaseModel):
    basis: Literal["mean", "peak"]
    growth: float
    rate: float | None
    wait: float = Field(description="Target queue wait, seconds.")
    percentile: float = Field(description="Percentile of the queue wait held to it.")


class CapacityAnswer(BaseModel):
    since: datetime = Field(description="Start of the window read.")
    until: datetime = Field(description="Its end (now).")
    window_seconds: float
    requested_days: float
    limited_by_retention: bool = Field(
        description="The window was cut to capacity.history_retention (or "
        "executor.job_retention if longer): older history is deleted."
    )
    target: TargetPublic
    executor: str
    configured_workers: int | None = Field(
        description="executor.workers of the local executor; null for celery."
    )
    operations: list[OperationCapacity]
    families: list[FamilyCapacity]
    exact: bool = Field(
        description="False when some jobs of more than one attempt were not read one by one "
        "(past capacity.max_detail_rows): their earlier attempts are not counted."
    )
    unread_detail: int
    sample_per_operation: int = Field(
        description="The newest jobs per operation the percentiles are taken from."
    )


@router.get(
    "",
    operation_id="get_capacity",
    summary="Throughput, trend and the workers a target load needs",
    response_model=CapacityAnswer,
    responses=problem_responses(401, 403, 422),
)
async def get_capacity(
    caller: CallerDep,
    services: ServicesDep,
    days: Annotated[
        float | None,
        Query(description="Days of job history to read; default capacity.window_days."),
    ] = None,
    operation: Annotated[
        list[str] | None, Query(max_length=64, description="Only these operations.")
    ] = None,
    basis: Annotated[
        Literal["mean", "peak"] | None,
        Query(description="Size for the mean rate or the busiest hour's; default capacity.basis."),
    ] = None,
    growth: Annotated[
        float | None, Query(description="Multiply the basis rate by this (e.g. 1.5).")
    ] = None,
    rate: Annotated[
        float | None,
        Query(
            description="Or: a target of jobs per second over the operations reported, "
            "shared among them as measured (not with growth)."
        ),
    ] = None,
    wait: Annotated[
        float | None,
        Query(description="Target queue wait, seconds; default capacity.target_wait."),
    ] = None,
    percentile: Annotated[
        float | None,
        Query(description="Percentile of the wait held to it; default capacity.wait_percentile."),
    ] = None,
) -> CapacityAnswer:
    """From the jobs that ended in the window, per operation and per queue family: the
    arrival rate, service times, queue waits, busy workers, daily figures and their
    trend; and the workers each family needs for the target rate to keep the target
    percentile of the queue wait within the target (Little's law and Erlang C). For
    admin keys: it spans every tenant's jobs."""
    caller.require_admin()
    settings = services.settings
    query = check_query(
        settings.capacity,
        days=days,
        operations=operation,
        basis=basis,
        growth=growth,
        rate=rate,
        wait=wait,
        wait_percentile=percentile,
    )
    found = await anyio.to_thread.run_sync(lambda: measure(services.store, query, settings))
    return CapacityAnswer.model_validate(found.to_dict())
