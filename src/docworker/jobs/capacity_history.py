"""The capacity history that outlives the job rows: hourly sums per operation, kept for
``capacity.history_retention`` (400 days by default) while the rows of the jobs are
deleted after ``executor.job_retention`` (see docs/capacity.md).

**What is kept.** ``capacity_hours`` holds, per operation, family and UTC hour (the hour
the job ended): the jobs, the submitted ones (not parts), Σ S and Σ S² of their service
times, the jobs whose queue wait is known with Σ wait and Σ wait², the jobs retried
(more than one attempt) and split. ``capacity_buckets`` holds, per the same key, a
histogram of S (``measure`` ``s``) and of the wait (``w``) over :data:`BUCKETS`
log-spaced buckets, a row per bucket holding jobs. The service time and the wait of a
job are taken from its attempt history exactly as the report reads them from rows
(:func:`attempts_of`).

**When.** The retention sweep rolls a job up in the transaction that deletes its row
(:func:`roll_up`, called by ``JobStore.delete_finished_before`` and
``JobStore.delete_job``), one UPSERT per (operation, family, hour) and per bucket of
the rows deleted: a job is counted either by its row or by the history, never by both
and never lost. Nothing is added to the end of a job (see docs/capacity.md for the
measurement behind the choice).

**Percentiles from the histogram.** Bucket 0 holds values under :data:`SMALLEST`
(0.01 s); bucket *k* (1 ≤ *k* < ``BUCKETS − 1``) holds [``SMALLEST``·√2^(k−1),
``SMALLEST``·√2^k); the last holds everything from ``SMALLEST``·√2^(BUCKETS−2)
(83 886 s, 23.3 h) up. A value is estimated by its bucket's geometric midpoint, so a
percentile estimated by :func:`histogram_percentile` (linear between the two ranks
around it, as :func:`~docworker.jobs.capacity.percentile` does on values) is within a
factor 2^(1/4) of the exact one (−15.9 %, +18.9 %) when it lies in [0.01 s, 23.3 h);
within 0.005 s of it under 0.01 s; and, in the last bucket, only a lower bound.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Float, bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from docworker.jobs.models import CapacityBucket, CapacityHour, Job

#: Buckets of each histogram.
BUCKETS = 48
#: The upper edge of bucket 0, seconds.
SMALLEST = 0.01
#: Each bucket's upper edge over its lower one.
RATIO = math.sqrt(2.0)
#: The upper edges of buckets 0 .. BUCKETS − 2 (the last has none).
EDGES: tuple[float, ...] = tuple(SMALLEST * RATIO**k for k in range(BUCKETS - 1))
#: How far a percentile from the histogram may be from the exact one (a factor).
ERROR_FACTOR = RATIO**0.5

SERVICE = "s"
WAIT = "w"


def bucket_of(seconds: float) -> int:
    """The bucket of a value (seconds)."""
    if seconds < SMALLEST:
        return 0
    k = min(math.floor(2.0 * math.log2(seconds / SMALLEST)) + 1, BUCKETS - 1)
    # A value on an edge may round to the bucket below: its edges decide.
    while k < BUCKETS - 1 and seconds >= EDGES[k]:
        k += 1
    while k > 1 and seconds < EDGES[k - 1]:
        k -= 1
    return k


def midpoint(bucket: int) -> float:
    """The value that stands for a bucket's: half the first edge for bucket 0, the lower
    edge for the last (a lower bound), the geometric midpoint of the edges otherwise."""
    if bucket <= 0:
        return SMALLEST / 2
    if bucket >= BUCKETS - 1:
        return EDGES[-1]
    return math.sqrt(EDGES[bucket - 1] * EDGES[bucket])


def histogram_percentile(counts: Sequence[int], q: float) -> float | None:
    """The ``q`` percentile of the values a histogram counts, each taken as its bucket's
    :func:`midpoint`, linear between the closest ranks; None for an empty histogram."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = (total - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, total - 1)

    def value_at(index: int) -> float:
        seen = 0
        for bucket, count in enumerate(counts):
            seen += count
            if index < seen:
                return midpoint(bucket)
        return midpoint(BUCKETS - 1)

    below, above = value_at(low), value_at(high)
    return below + (above - below) * (rank - low)


def iso(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def attempts_of(
    history: Iterable[dict[str, Any]] | None,
    started_at: datetime | None,
    finished_at: datetime | None,
) -> tuple[float, datetime | None]:
    """A row's service time (its attempts' durations, summed) and the start of its first
    attempt, from its history; a row without one (written before histories were kept)
    counts its last attempt's start to its end."""
    busy = 0.0
    first: datetime | None = None
    for entry in history or []:
        start, end = iso(entry.get("started_at")), iso(entry.get("ended_at"))
        if start is None or end is None:
            continue
        busy += max(0.0, (end - start).total_seconds())
        first = start if first is None or start < first else first
    if first is None and started_at is not None and finished_at is not None:
        return max(0.0, (finished_at - started_at).total_seconds()), started_at
    return busy, first


def hour_of(at: datetime) -> str:
    """The UTC hour of a time, as the history keys it (``YYYY-MM-DDTHH``)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H")


@dataclass
class HourSums:
    """The sums of one (operation, family, hour)."""

    jobs: int = 0
    submitted: int = 0
    busy: float = 0.0
    busy_sq: float = 0.0
    waited: int = 0
    wait: float = 0.0
    wait_sq: float = 0.0
    retried: int = 0
    split: int = 0
    service: dict[int, int] = field(default_factory=dict)
    waits: dict[int, int] = field(default_factory=dict)

    def count(self, busy: float, wait: float | None, *, submitted: bool, job: Job) -> None:
        self.jobs += 1
        self.submitted += int(submitted)
        self.busy += busy
        self.busy_sq += busy * busy
        bucket = bucket_of(busy)
        self.service[bucket] = self.service.get(bucket, 0) + 1
        if wait is not None:
            self.waited += 1
            self.wait += wait
            self.wait_sq += wait * wait
            bucket = bucket_of(wait)
            self.waits[bucket] = self.waits.get(bucket, 0) + 1
        self.retried += int(job.attempts > 1)
        self.split += int(bool(job.children_total))


def family_of(operation: str) -> str:
    """The family (worker fleet) of an operation; ``documents`` for one no longer known."""
    # Imported here: the operations import the job store, which imports this module.
    from docworker.operations import OPERATIONS

    known = OPERATIONS.get(operation)
    return str(known.queue.value) if known is not None else "documents"


def sums_of(jobs: Iterable[Job]) -> dict[tuple[str, str, str], HourSums]:
    """The sums of the jobs that ran on a worker and ended (the jobs a capacity report
    counts), by (operation, family, hour ended)."""
    found: dict[tuple[str, str, str], HourSums] = {}
    families: dict[str, str] = {}
    for job in jobs:
        if job.finished_at is None or job.started_at is None or job.attempts < 1 or job.cached:
            continue
        finished = _aware(job.finished_at)
        busy, first = attempts_of(job.history, _aware(job.started_at), finished)
        submitted = job.parent_id is None
        wait = None
        if submitted and first is not None:
            wait = max(0.0, (first - _aware(job.created_at)).total_seconds())
        family = families.get(job.operation) or families.setdefault(
            job.operation, family_of(job.operation)
        )
        key = (job.operation, family, hour_of(finished))
        found.setdefault(key, HourSums()).count(busy, wait, submitted=submitted, job=job)
    return found


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _module(dialect: str) -> Any:
    return postgresql if dialect == "postgresql" else sqlite


_SUMS = ("jobs", "submitted", "busy", "busy_sq", "waited", "wait", "wait_sq", "retried", "split")
_FLOATS = {"busy", "busy_sq", "wait", "wait_sq"}


@functools.cache
def _add_hour(dialect: str) -> Any:
    """One UPSERT adding sums to an hour's row."""
    insert = _module(dialect).insert(CapacityHour)
    values: dict[str, Any] = {"operation": bindparam("operation"), "family": bindparam("family")}
    values["hour"] = bindparam("hour")
    for name in _SUMS:
        values[name] = bindparam(name, type_=Float() if name in _FLOATS else BigInteger())
    insert = insert.values(values)
    return insert.on_conflict_do_update(
        index_elements=[CapacityHour.operation, CapacityHour.family, CapacityHour.hour],
        set_={name: getattr(CapacityHour, name) + getattr(insert.excluded, name) for name in _SUMS},
    )


@functools.cache
def _add_bucket(dialect: str) -> Any:
    insert = (
        _module(dialect)
        .insert(CapacityBucket)
        .values(
            operation=bindparam("operation"),
            family=bindparam("family"),
            hour=bindparam("hour"),
            measure=bindparam("measure"),
            bucket=bindparam("bucket"),
            jobs=bindparam("jobs", type_=BigInteger()),
        )
    )
    return insert.on_conflict_do_update(
        index_elements=[
            CapacityBucket.operation,
            CapacityBucket.family,
            CapacityBucket.hour,
            CapacityBucket.measure,
            CapacityBucket.bucket,
        ],
        set_={"jobs": CapacityBucket.jobs + insert.excluded.jobs},
    )


def add(session: Session, sums: Mapping[tuple[str, str, str], HourSums]) -> None:
    """Add ``sums`` to the history, in ``session``'s transaction."""
    if not sums:
        return
    dialect = session.get_bind().dialect.name
    hours: list[dict[str, Any]] = []
    buckets: list[dict[str, Any]] = []
    for (operation, family, hour), each in sorted(sums.items()):
        key = {"operation": operation, "family": family, "hour": hour}
        hours.append({**key, **{name: getattr(each, name) for name in _SUMS}})
        for measure, counts in ((SERVICE, each.service), (WAIT, each.waits)):
            buckets += [
                {**key, "measure": measure, "bucket": bucket, "jobs": count}
                for bucket, count in sorted(counts.items())
            ]
    session.execute(_add_hour(dialect), hours)
    if buckets:
        session.execute(_add_bucket(dialect), buckets)


def roll_up(session: Session, jobs: Iterable[Job]) -> int:
    """Add the jobs about to be deleted to the history, in the deleting transaction;
    returns the jobs counted."""
    sums = sums_of(jobs)
    add(session, sums)
    return sum(each.jobs for each in sums.values())


def purge_before(session: Session, before: datetime) -> int:
    """Delete the hours of the history that ended before ``before``; returns the hours'
    rows deleted."""
    cutoff = hour_of(before)
    deleted = session.execute(delete(CapacityHour).where(CapacityHour.hour < cutoff))
    session.execute(delete(CapacityBucket).where(CapacityBucket.hour < cutoff))
    return int(getattr(deleted, "rowcount", 0) or 0)
