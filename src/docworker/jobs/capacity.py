"""Capacity planning from the job history: how fast each operation's work is done, how
it trends, and how many workers a target load needs to keep the queue wait within a
target (``docworker capacity``, ``GET /api/v2/capacity``; see docs/capacity.md).

**What is measured.** Every job row that ran on a worker and ended in the window (its
``finished_at``), the parts of split jobs included (they run on workers of their own
operation's family) and jobs answered from the result cache left out (they ran nowhere).
For each row:

* its **service time** *S*: the time its attempts held a worker, the sum of each
  attempt's ``started_at`` → ``ended_at``. A split job's parent is counted for the attempt
  that split it and the one that merged its parts, never for the time it waited for them
  (that is the parts' own service time, counted on their rows); a retried job for every
  attempt, the pause before a retry not included;
* its **queue wait**, for a submitted job (not a part): from its creation to the start of
  its first attempt.

Per operation, per family (the fleet a celery deployment runs for it) and over all of
them: jobs, arrival rate λ (jobs that ended per second of the window: in a steady state,
what arrives), the busiest hour's rate, mean, p50 and p95 of *S* and of the wait, the
busy workers λ·S (Little's law over the workers), the throughput of one busy worker
(1/S), and daily buckets with a least-squares slope of the arrivals and of *S* per day.

**Workers needed.** For a target rate λ' (the measured mean or busiest hour, times a
growth factor; or a rate given) the offered load is *a* = λ'·S busy workers; the
workers needed are the fewest *c* > *a* for which an M/M/c queue keeps the chosen
percentile of the queue wait within the target:
P(W > t) = C(c, a) · exp(−(c − a)·t / S) ≤ 1 − percentile/100, with C the Erlang C
formula (:func:`erlang_c`).

**How it is read.** The sums are made by the database: one ``GROUP BY`` over the hours
of the window (a range of ``ix_jobs_finished_at``) takes the count, the time of the
final attempt (``finished_at − started_at``) and the wait of the jobs that ran once. The
rows where those columns do not tell the whole story (more than one attempt: a retry, a
split; or cancelled) are read one by one, their history giving the exact figures, at most
``capacity.max_detail_rows`` of them (newest first; past that the report says it is not
exact). The percentiles are taken from a sample, the newest
``capacity.sample_per_operation`` rows of each operation (the same on SQLite and
PostgreSQL, so both give the same figures).

**Past the rows.** The jobs whose rows the retention sweep deleted are read from the
capacity history (:mod:`docworker.jobs.capacity_history`): exact hourly sums added to the
rows' hours (a job is in one or the other), so the window reaches back
``capacity.history_retention``. When an operation's window holds any such job, its
percentiles are estimated from the log-spaced histograms of every job of the window (the
rows' bucketed in SQL by the same edges), within a factor 2^(1/4), and its cv² comes
from Σ S and Σ S² (``percentiles`` says which).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Float, and_, case, cast, func, literal, or_, select
from sqlalchemy.orm import Session

from docworker.config import CapacitySettings, ExecutorKind, Settings
from docworker.errors import InvalidParameter
from docworker.jobs import capacity_history
from docworker.jobs.backlog import FAMILY_OF
from docworker.jobs.capacity_history import (
    BUCKETS,
    attempts_of,
    histogram_percentile,
    hour_of,
    iso,
)
from docworker.jobs.models import CapacityBucket, CapacityHour, Job, JobStatus
from docworker.jobs.store import JobStore
from docworker.operations.base import Family

#: The family of the jobs of an operation no longer known (as the celery executor
#: publishes them).
DEFAULT_FAMILY = Family.DOCUMENTS
#: The name of the pooled figures of every family (one pool of workers: the local executor).
ALL = "all"
_HOUR = 3600.0
_DAY = 86400.0


# -- Erlang C ------------------------------------------------------------------------------


def erlang_b(servers: int, load: float) -> float:
    """Erlang B: the probability that all ``servers`` are busy in an M/M/c/c system
    offered ``load`` erlangs (λ·S), by the stable recursion B(k) = a·B(k−1) / (k + a·B(k−1))."""
    if servers < 0 or load < 0:
        raise ValueError("servers and load must not be negative")
    blocked = 1.0
    for k in range(1, servers + 1):
        blocked = load * blocked / (k + load * blocked)
    return blocked


def erlang_c(servers: int, load: float) -> float:
    """Erlang C: the probability that a job waits in an M/M/c queue of ``servers``
    offered ``load`` erlangs; 1 when the load is not below the servers (the queue grows
    without bound)."""
    if servers <= 0 or load >= servers:
        return 1.0
    if load <= 0:
        return 0.0
    blocked = erlang_b(servers, load)
    return servers * blocked / (servers - load * (1.0 - blocked))


def wait_exceeds(servers: int, load: float, service: float, wait: float) -> float:
    """P(queue wait > ``wait`` seconds) in an M/M/c queue of ``servers`` with ``load``
    erlangs and a mean service time of ``service`` seconds."""
    if load >= servers:
        return 1.0
    if service <= 0:
        return 0.0
    return erlang_c(servers, load) * math.exp(-(servers - load) * wait / service)


def wait_percentile(servers: int, load: float, service: float, percentile: float) -> float:
    """The ``percentile`` of the queue wait (seconds) in an M/M/c queue; inf when the
    load is not below the servers."""
    if load >= servers:
        return math.inf
    waits = erlang_c(servers, load)
    tail = 1.0 - percentile / 100.0
    if waits <= tail or service <= 0:
        return 0.0
    return service * math.log(waits / tail) / (servers - load)


def mean_wait(servers: int, load: float, service: float) -> float:
    """The mean queue wait (seconds) in an M/M/c queue: C(c, a)·S / (c − a)."""
    if load >= servers:
        return math.inf
    return erlang_c(servers, load) * service / (servers - load)


def workers_for(
    load: float, service: float, wait: float, percentile: float, most: int
) -> int | None:
    """The fewest workers that keep the ``percentile`` of the queue wait within ``wait``
    seconds for ``load`` erlangs of mean service time ``service``; None when more than
    ``most`` would be needed."""
    if load <= 0:
        return 0
    tail = 1.0 - percentile / 100.0
    servers = max(1, math.floor(load) + 1)
    while servers <= most:
        if wait_exceeds(servers, load, service, wait) <= tail:
            return servers
        servers += 1
    return None


# -- statistics ----------------------------------------------------------------------------


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """The ``q`` percentile of sorted values, interpolated linearly between the closest
    ranks (as PostgreSQL's ``percentile_cont``); None for no values."""
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """The least-squares slope of (x, y) points; None for fewer than two distinct x."""
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


# -- the query -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The load and the latency to size the workers for."""

    #: ``mean`` (the window's mean rate) or ``peak`` (its busiest hour's).
    basis: str = "peak"
    #: The chosen basis times this.
    growth: float = 1.0
    #: Or: jobs per second over the operations reported, shared among them as measured.
    rate: float | None = None
    #: Seconds of queue wait not to pass at ``percentile``.
    wait: float = 30.0
    percentile: float = 95.0


@dataclass(frozen=True)
class CapacityQuery:
    days: float
    operations: frozenset[str] | None = None
    target: Target = field(default_factory=Target)


def check_query(
    settings: CapacitySettings,
    *,
    days: float | None = None,
    operations: Collection[str] | None = None,
    basis: str | None = None,
    growth: float | None = None,
    rate: float | None = None,
    wait: float | None = None,
    wait_percentile: float | None = None,
) -> CapacityQuery:
    """A query from what a caller gave, checked against ``settings``: raises
    :class:`InvalidParameter` naming the first thing wrong."""
    chosen_days = settings.window_days if days is None else days
    if not 0 < chosen_days <= settings.max_window_days:
        raise InvalidParameter(
            "days", f"must be more than 0 and at most {settings.max_window_days:g}"
        )
    if growth is not None and rate is not None:
        raise InvalidParameter("rate", "give a rate or a growth factor, not both")
    if growth is not None and not 0 < growth <= settings.max_growth:
        raise InvalidParameter("growth", f"must be more than 0 and at most {settings.max_growth:g}")
    if rate is not None and not 0 < rate <= settings.max_rate:
        raise InvalidParameter("rate", f"must be more than 0 and at most {settings.max_rate:g}")
    chosen_basis = basis or settings.basis
    if chosen_basis not in ("mean", "peak"):
        raise InvalidParameter("basis", "must be 'mean' or 'peak'")
    chosen_wait = settings.target_wait if wait is None else wait
    if not 0 <= chosen_wait <= settings.max_target_wait:
        raise InvalidParameter("wait", f"must be 0 to {settings.max_target_wait:g} seconds")
    chosen_percentile = settings.wait_percentile if wait_percentile is None else wait_percentile
    if not 50 <= chosen_percentile <= 99.9:
        raise InvalidParameter("percentile", "must be 50 to 99.9")
    chosen: frozenset[str] | None = None
    if operations:
        unknown = sorted(set(operations) - set(FAMILY_OF))
        if unknown:
            raise InvalidParameter(
                "operation",
                f"{', '.join(unknown)}: not an operation (known: {', '.join(sorted(FAMILY_OF))})",
            )
        chosen = frozenset(operations)
    return CapacityQuery(
        days=chosen_days,
        operations=chosen,
        target=Target(
            basis=chosen_basis,
            growth=1.0 if growth is None else growth,
            rate=rate,
            wait=chosen_wait,
            percentile=chosen_percentile,
        ),
    )


# -- what is read from the store -----------------------------------------------------------


@dataclass
class Bucket:
    """Sums over some jobs: those of one operation in one hour, a day, the window."""

    jobs: int = 0
    #: Of them, submitted jobs (not parts), and the ones whose wait is known.
    submitted: int = 0
    busy: float = 0.0
    waited: int = 0
    wait: float = 0.0
    #: Σ S², and the jobs counted from the capacity history (their rows are gone).
    busy_sq: float = 0.0
    rolled_up: int = 0

    def add(self, other: Bucket) -> None:
        self.jobs += other.jobs
        self.submitted += other.submitted
        self.busy += other.busy
        self.waited += other.waited
        self.wait += other.wait
        self.busy_sq += other.busy_sq
        self.rolled_up += other.rolled_up


@dataclass
class History:
    """What the window holds, as read: sums per operation and hour (``YYYY-MM-DDTHH``),
    and samples of service times and waits per operation."""

    since: datetime
    until: datetime
    hours: dict[tuple[str, str], Bucket] = field(default_factory=dict)
    service_samples: dict[str, list[float]] = field(default_factory=dict)
    wait_samples: dict[str, list[float]] = field(default_factory=dict)
    #: Rows of more than one attempt (or cancelled) that were not read one by one, so
    #: their earlier attempts are not counted.
    unread_detail: int = 0
    #: Histograms (counts per :data:`~docworker.jobs.capacity_history.BUCKETS` bucket)
    #: of the service times and waits per operation, rows and capacity history
    #: together: read when the window reaches into the history.
    service_histograms: dict[str, list[int]] = field(default_factory=dict)
    wait_histograms: dict[str, list[int]] = field(default_factory=dict)

    def bucket(self, operation: str, hour: str) -> Bucket:
        return self.hours.setdefault((operation, hour), Bucket())


def _seconds(later: Any, earlier: Any, dialect: str) -> ColumnElement[float]:
    if dialect == "postgresql":
        return cast(func.extract("epoch", later - earlier), Float)
    return (func.julianday(later) - func.julianday(earlier)) * _DAY


def _hour(column: Any, dialect: str) -> ColumnElement[str]:
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24')
    return func.strftime("%Y-%m-%dT%H", column)


_hour_of = hour_of


def _count(histograms: dict[str, list[int]], operation: str, bucket: int, jobs: int) -> None:
    histograms.setdefault(operation, [0] * BUCKETS)[bucket] += jobs


def read_history(
    store: JobStore,
    since: datetime,
    until: datetime,
    operations: frozenset[str] | None,
    settings: CapacitySettings,
) -> History:
    """The sums, corrections and samples of the jobs that ran and ended in
    [``since``, ``until``)."""
    found = History(since=since, until=until)
    with store.transaction() as session:
        dialect = session.get_bind().dialect.name
        window = [
            Job.finished_at >= since,
            Job.finished_at < until,
            Job.started_at.is_not(None),
            Job.attempts >= 1,
            Job.cached.is_(False),
        ]
        if operations is not None:
            window.append(Job.operation.in_(sorted(operations)))
        _read_sums(session, dialect, window, found)
        _read_detail(session, window, found, settings.max_detail_rows)
        _read_samples(session, window, found, settings.sample_per_operation)
        if _read_rolled_up(session, since, until, operations, found):
            _read_histograms(session, dialect, window, found)
    return found


#: Rows whose columns tell their whole story: one attempt, which ended the job.
def _simple() -> ColumnElement[bool]:
    return and_(Job.attempts == 1, Job.children_total == 0, Job.status != JobStatus.CANCELLED)


def _read_sums(session: Session, dialect: str, window: list[Any], found: History) -> None:
    hour = _hour(Job.finished_at, dialect).label("hour")
    run = _seconds(Job.finished_at, Job.started_at, dialect)
    waited = _seconds(Job.started_at, Job.created_at, dialect)
    simple = _simple()
    submitted = Job.parent_id.is_(None)
    query = (
        select(
            Job.operation,
            hour,
            func.count(),
            func.sum(case((submitted, 1), else_=0)),
            func.sum(case((simple, run), else_=literal(0.0))),
            func.sum(case((and_(simple, submitted), 1), else_=0)),
            func.sum(case((and_(simple, submitted), waited), else_=literal(0.0))),
            func.sum(case((simple, run * run), else_=literal(0.0))),
        )
        .where(*window)
        .group_by(Job.operation, hour)
    )
    for operation, at, jobs, subs, busy, n_waited, wait, busy_sq in session.execute(query):
        bucket = found.bucket(operation, at)
        bucket.jobs += int(jobs)
        bucket.submitted += int(subs or 0)
        bucket.busy += float(busy or 0.0)
        bucket.waited += int(n_waited or 0)
        bucket.wait += float(wait or 0.0)
        bucket.busy_sq += float(busy_sq or 0.0)


def _history_hours(since: datetime, until: datetime) -> list[Any]:
    """The hours of the capacity history a window counts: those that start in it, and
    the one it starts in (counted whole)."""
    last = hour_of(until - timedelta(microseconds=1))
    return [CapacityHour.hour >= hour_of(since), CapacityHour.hour <= last]


def _read_rolled_up(
    session: Session,
    since: datetime,
    until: datetime,
    operations: frozenset[str] | None,
    found: History,
) -> bool:
    """Add the sums and histograms of the capacity history's hours in the window (jobs
    whose rows are deleted: no row counts them); whether there were any."""
    hours = _history_hours(since, until)
    if operations is not None:
        hours.append(CapacityHour.operation.in_(sorted(operations)))
    query = (
        select(
            CapacityHour.operation,
            CapacityHour.hour,
            func.sum(CapacityHour.jobs),
            func.sum(CapacityHour.submitted),
            func.sum(CapacityHour.busy),
            func.sum(CapacityHour.busy_sq),
            func.sum(CapacityHour.waited),
            func.sum(CapacityHour.wait),
        )
        .where(*hours)
        .group_by(CapacityHour.operation, CapacityHour.hour)
    )
    any_jobs = False
    for operation, at, jobs, subs, busy, busy_sq, n_waited, wait in session.execute(query):
        bucket = found.bucket(operation, at)
        bucket.jobs += int(jobs or 0)
        bucket.rolled_up += int(jobs or 0)
        bucket.submitted += int(subs or 0)
        bucket.busy += float(busy or 0.0)
        bucket.busy_sq += float(busy_sq or 0.0)
        bucket.waited += int(n_waited or 0)
        bucket.wait += float(wait or 0.0)
        any_jobs = any_jobs or bool(jobs)
    if not any_jobs:
        return False
    counted = [
        CapacityBucket.hour >= hour_of(since),
        CapacityBucket.hour <= hour_of(until - timedelta(microseconds=1)),
    ]
    if operations is not None:
        counted.append(CapacityBucket.operation.in_(sorted(operations)))
    histograms = (
        select(
            CapacityBucket.operation,
            CapacityBucket.measure,
            CapacityBucket.bucket,
            func.sum(CapacityBucket.jobs),
        )
        .where(*counted)
        .group_by(CapacityBucket.operation, CapacityBucket.measure, CapacityBucket.bucket)
    )
    for operation, measure, index, jobs in session.execute(histograms):
        into = (
            found.service_histograms
            if measure == capacity_history.SERVICE
            else found.wait_histograms
        )
        _count(into, operation, int(index), int(jobs or 0))
    return True


def _bucket_index(seconds: ColumnElement[float]) -> ColumnElement[int]:
    """The histogram bucket of a value, in SQL (the edges of
    :data:`~docworker.jobs.capacity_history.EDGES`)."""
    edges = capacity_history.EDGES
    return case(*((seconds < edge, index) for index, edge in enumerate(edges)), else_=len(edges))


def _read_histograms(session: Session, dialect: str, window: list[Any], found: History) -> None:
    """Add the rows of one attempt of the window to the histograms (those of several
    are added as they are read one by one)."""
    run = _seconds(Job.finished_at, Job.started_at, dialect)
    waited = _seconds(Job.started_at, Job.created_at, dialect)
    simple = _simple()
    for measure, value, where, into in (
        ("s", run, [simple], found.service_histograms),
        ("w", waited, [simple, Job.parent_id.is_(None)], found.wait_histograms),
    ):
        index = _bucket_index(value).label(f"{measure}_bucket")
        query = (
            select(Job.operation, index, func.count())
            .where(*window, *where)
            .group_by(Job.operation, index)
        )
        for operation, bucket, jobs in session.execute(query):
            _count(into, operation, int(bucket), int(jobs))


def _read_detail(session: Session, window: list[Any], found: History, most: int) -> None:
    """Rows of several attempts, split or cancelled: their service time and wait from
    their history, newest first, at most ``most``."""
    complex_rows = (
        select(
            Job.operation,
            Job.created_at,
            Job.started_at,
            Job.finished_at,
            Job.parent_id,
            Job.history,
        )
        .where(
            *window,
            or_(Job.attempts > 1, Job.children_total > 0, Job.status == JobStatus.CANCELLED),
        )
        .order_by(Job.finished_at.desc())
    )
    read = 0
    for operation, created, started, finished, parent, history in session.execute(
        complex_rows.limit(most)
    ):
        read += 1
        busy, first = attempts_of(history, started, finished)
        bucket = found.bucket(operation, _hour_of(finished))
        bucket.busy += busy
        bucket.busy_sq += busy * busy
        # Filled in only when the window reaches into the history (else not read).
        _count(found.service_histograms, operation, capacity_history.bucket_of(busy), 1)
        if parent is None and first is not None:
            waited = max(0.0, (first - created).total_seconds())
            bucket.waited += 1
            bucket.wait += waited
            _count(found.wait_histograms, operation, capacity_history.bucket_of(waited), 1)
    if read == most:
        count = session.scalar(
            select(func.count()).select_from(complex_rows.order_by(None).subquery())
        )
        found.unread_detail = int(count or 0) - read


def _read_samples(session: Session, window: list[Any], found: History, per_operation: int) -> None:
    newest = (
        func.row_number()
        .over(partition_by=Job.operation, order_by=(Job.finished_at.desc(), Job.id))
        .label("rank")
    )
    ranked = (
        select(
            Job.operation,
            Job.created_at,
            Job.started_at,
            Job.finished_at,
            Job.parent_id,
            Job.history,
            newest,
        )
        .where(*window)
        .subquery()
    )
    query = select(
        ranked.c.operation,
        ranked.c.created_at,
        ranked.c.started_at,
        ranked.c.finished_at,
        ranked.c.parent_id,
        ranked.c.history,
    ).where(ranked.c.rank <= per_operation)
    for operation, created_at, started_at, finished_at, parent, history in session.execute(query):
        created = _aware(created_at)
        busy, first = attempts_of(history, _aware(started_at), _aware(finished_at))
        found.service_samples.setdefault(operation, []).append(busy)
        if parent is None and first is not None:
            found.wait_samples.setdefault(operation, []).append(
                max(0.0, (first - created).total_seconds())
            )


def _aware(value: Any) -> datetime:
    """A timestamp of the subquery: read back raw (a string on SQLite), made aware UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = iso(value)
    assert parsed is not None
    return parsed


# -- the report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Day:
    day: date
    jobs: int
    arrival_rate: float
    service_mean: float | None
    #: The whole day lies in the window (the trend is drawn over those).
    whole: bool


@dataclass(frozen=True)
class Trend:
    #: Least-squares slope of the daily arrival rate, (jobs/s) per day, and relative to
    #: the mean rate (0.1: +10 % a day).
    arrivals_per_day: float | None
    arrivals_relative: float | None
    #: Least-squares slope of the daily mean service time, seconds per day.
    service_per_day: float | None


@dataclass(frozen=True)
class Figures:
    """What was measured of some jobs over the window."""

    jobs: int
    submitted: int
    arrival_rate: float
    peak_rate: float
    peak_hour: str | None
    service_mean: float | None
    service_p50: float | None
    service_p95: float | None
    #: Squared coefficient of variation of the service time in the sample (variance over
    #: the squared mean): 1 for the exponential times M/M/c assumes.
    service_cv2: float | None
    wait_mean: float | None
    wait_p50: float | None
    wait_p95: float | None
    busy_seconds: float
    busy_workers: float
    throughput_per_worker: float | None
    utilisation: float | None
    #: Rows read for the percentiles (0 when they come from the histograms).
    sampled: int
    #: ``sample``: the percentiles and cv² are those of the newest rows (exact when all
    #: the window's jobs were read); ``histogram``: some jobs of the window are counted
    #: from the capacity history only, so the percentiles are estimated from the
    #: histograms of every job (within a factor 2^(1/4)), the cv² exact from the sums.
    percentiles: str
    #: Jobs counted from the capacity history (their rows were deleted).
    rolled_up: int
    daily: list[Day]
    trend: Trend


@dataclass(frozen=True)
class Sizing:
    """The workers that a target rate needs for the target wait."""

    target_rate: float
    offered_load: float
    workers: int | None
    utilisation: float | None
    wait_mean: float | None
    wait_at_percentile: float | None
    wait_probability: float | None


@dataclass(frozen=True)
class OperationReport:
    operation: str
    family: str
    figures: Figures


@dataclass(frozen=True)
class FamilyReport:
    family: str
    operations: list[str]
    figures: Figures
    sizing: Sizing


@dataclass(frozen=True)
class CapacityReport:
    since: datetime
    until: datetime
    window_seconds: float
    requested_days: float
    limited_by_retention: bool
    target: Target
    executor: str
    configured_workers: int | None
    operations: list[OperationReport]
    families: list[FamilyReport]
    exact: bool
    unread_detail: int
    sample_per_operation: int

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON values (the route's answer; the CLI prints it)."""
        plain: dict[str, Any] = _plain(self)
        return plain


def _plain(value: Any) -> Any:  # noqa: PLR0911 (one case per kind of value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        # Nine significant digits: rates of a few jobs a day are small numbers.
        return None if not math.isfinite(value) else float(f"{value:.9g}")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "__dataclass_fields__"):
        return {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}
    return value


def _figures(
    hours: dict[str, Bucket],
    services: list[float],
    waits: list[float],
    since: datetime,
    until: datetime,
    workers: int | None,
    histograms: tuple[list[int], list[int]] | None = None,
) -> Figures:
    window = (until - since).total_seconds()
    total = Bucket()
    days: dict[date, Bucket] = {}
    for hour, bucket in hours.items():
        total.add(bucket)
        days.setdefault(date.fromisoformat(hour[:10]), Bucket()).add(bucket)
    peak_hour, peak = None, Bucket()
    for hour, bucket in sorted(hours.items()):
        if bucket.jobs > peak.jobs:
            peak_hour, peak = hour, bucket
    # A window shorter than an hour: its busiest hour is the window.
    peak_rate = peak.jobs / min(_HOUR, window) if window > 0 else 0.0
    service = total.busy / total.jobs if total.jobs else None
    daily = _daily(days, since, until)
    services, waits = sorted(services), sorted(waits)
    arrival_rate = total.jobs / window if window > 0 else 0.0
    busy_workers = total.busy / window if window > 0 else 0.0
    method = "sample"
    spread: dict[str, float | None] = {
        "service_p50": percentile(services, 50),
        "service_p95": percentile(services, 95),
        "service_cv2": _cv2(services),
        "wait_p50": percentile(waits, 50),
        "wait_p95": percentile(waits, 95),
    }
    if total.rolled_up and histograms is not None:
        # Some jobs of the window have no rows any more: the percentiles come from the
        # histograms of every job, the cv² from the sums.
        method, (service_counts, wait_counts) = "histogram", histograms
        spread = {
            "service_p50": histogram_percentile(service_counts, 50),
            "service_p95": histogram_percentile(service_counts, 95),
            "service_cv2": _cv2_of_sums(total.jobs, total.busy, total.busy_sq),
            "wait_p50": histogram_percentile(wait_counts, 50),
            "wait_p95": histogram_percentile(wait_counts, 95),
        }
        services = []
    return Figures(
        jobs=total.jobs,
        submitted=total.submitted,
        arrival_rate=arrival_rate,
        peak_rate=peak_rate,
        peak_hour=peak_hour,
        service_mean=service,
        service_p50=spread["service_p50"],
        service_p95=spread["service_p95"],
        service_cv2=spread["service_cv2"],
        wait_mean=total.wait / total.waited if total.waited else None,
        wait_p50=spread["wait_p50"],
        wait_p95=spread["wait_p95"],
        busy_seconds=total.busy,
        busy_workers=busy_workers,
        throughput_per_worker=1.0 / service if service else None,
        utilisation=busy_workers / workers if workers else None,
        sampled=len(services),
        percentiles=method,
        rolled_up=total.rolled_up,
        daily=daily,
        trend=_trend(daily, arrival_rate),
    )


def _cv2_of_sums(count: int, total: float, squares: float) -> float | None:
    """The cv² of ``count`` values from their sum and the sum of their squares."""
    if count < 2 or total <= 0:
        return None
    mean = total / count
    variance = max(0.0, (squares - total * mean) / (count - 1))
    return variance / mean**2


def _cv2(values: Sequence[float]) -> float | None:
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    if mean <= 0:
        return None
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return variance / mean**2


def _daily(days: dict[date, Bucket], since: datetime, until: datetime) -> list[Day]:
    """Each UTC day the window touches, those without jobs included; a day's rate is
    over the part of it within the window."""
    out: list[Day] = []
    day = since.astimezone(UTC).date()
    while _midnight(day) < until:
        span = min(until, _midnight(day + timedelta(days=1))) - max(since, _midnight(day))
        bucket = days.get(day, Bucket())
        seconds = span.total_seconds()
        out.append(
            Day(
                day=day,
                jobs=bucket.jobs,
                arrival_rate=bucket.jobs / seconds if seconds > 0 else 0.0,
                service_mean=bucket.busy / bucket.jobs if bucket.jobs else None,
                whole=seconds >= _DAY,
            )
        )
        day += timedelta(days=1)
    return out


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC)


def _trend(daily: list[Day], mean_rate: float) -> Trend:
    """The slopes over the whole UTC days of the window (its first and last are parts of
    days, their rates the noisiest); None with fewer than two."""
    whole = [(float(i), d) for i, d in enumerate(daily) if d.whole]
    arrivals = slope([(x, d.arrival_rate) for x, d in whole])
    services = slope([(x, d.service_mean) for x, d in whole if d.service_mean is not None])
    relative = arrivals / mean_rate if arrivals is not None and mean_rate > 0 else None
    return Trend(arrivals_per_day=arrivals, arrivals_relative=relative, service_per_day=services)


def _sizing(figures: Figures, rate: float, target: Target, most: int) -> Sizing:
    service = figures.service_mean or 0.0
    load = rate * service
    workers = workers_for(load, service, target.wait, target.percentile, most)
    if workers is None or workers == 0:
        return Sizing(
            target_rate=rate,
            offered_load=load,
            workers=workers,
            utilisation=None,
            wait_mean=None if workers is None else 0.0,
            wait_at_percentile=None if workers is None else 0.0,
            wait_probability=None if workers is None else 0.0,
        )
    return Sizing(
        target_rate=rate,
        offered_load=load,
        workers=workers,
        utilisation=load / workers,
        wait_mean=mean_wait(workers, load, service),
        wait_at_percentile=wait_percentile(workers, load, service, target.percentile),
        wait_probability=erlang_c(workers, load),
    )


def _target_rate(figures: Figures, target: Target, share: float | None) -> float:
    if target.rate is not None and share is not None:
        return target.rate * share
    base = figures.peak_rate if target.basis == "peak" else figures.arrival_rate
    return base * target.growth


def _histograms(history: History, operations: list[str]) -> tuple[list[int], list[int]]:
    """The histograms of the service time and of the wait of some operations, merged."""
    service, wait = [0] * BUCKETS, [0] * BUCKETS
    for op in operations:
        for merged, counts in (
            (service, history.service_histograms.get(op)),
            (wait, history.wait_histograms.get(op)),
        ):
            for index, count in enumerate(counts or []):
                merged[index] += count
    return service, wait


def report(
    history: History,
    query: CapacityQuery,
    settings: Settings,
    *,
    requested_days: float | None = None,
    limited: bool = False,
) -> CapacityReport:
    """The figures and the sizing of what ``history`` holds."""
    capacity = settings.capacity
    local = settings.executor.kind is ExecutorKind.LOCAL
    workers = settings.executor.workers if local else None
    by_operation: dict[str, dict[str, Bucket]] = {}
    for (operation, hour), bucket in history.hours.items():
        by_operation.setdefault(operation, {})[hour] = bucket
    family_of = {op: str(FAMILY_OF.get(op, DEFAULT_FAMILY).value) for op in by_operation}
    operations = [
        OperationReport(
            operation=op,
            family=family_of[op],
            figures=_figures(
                hours,
                history.service_samples.get(op, []),
                history.wait_samples.get(op, []),
                history.since,
                history.until,
                workers,
                _histograms(history, [op]),
            ),
        )
        for op, hours in sorted(by_operation.items())
    ]
    groups: dict[str, list[str]] = {}
    for op in sorted(by_operation):
        groups.setdefault(family_of[op], []).append(op)
    if len(groups) > 1 or (groups and local):
        groups[ALL] = sorted(by_operation)
    all_jobs = sum(report.figures.jobs for report in operations)
    families: list[FamilyReport] = []
    for family, members in groups.items():
        hours: dict[str, Bucket] = {}
        services: list[float] = []
        waits: list[float] = []
        for op in members:
            for hour, bucket in by_operation[op].items():
                hours.setdefault(hour, Bucket()).add(bucket)
            services += history.service_samples.get(op, [])
            waits += history.wait_samples.get(op, [])
        figures = _figures(
            hours,
            services,
            waits,
            history.since,
            history.until,
            workers,
            _histograms(history, members),
        )
        share = figures.jobs / all_jobs if all_jobs else None
        rate = _target_rate(figures, query.target, share)
        families.append(
            FamilyReport(
                family=family,
                operations=members,
                figures=figures,
                sizing=_sizing(figures, rate, query.target, capacity.max_workers),
            )
        )
    return CapacityReport(
        since=history.since,
        until=history.until,
        window_seconds=(history.until - history.since).total_seconds(),
        requested_days=query.days if requested_days is None else requested_days,
        limited_by_retention=limited,
        target=query.target,
        executor=settings.executor.kind.value,
        configured_workers=workers,
        operations=operations,
        families=families,
        exact=history.unread_detail == 0,
        unread_detail=history.unread_detail,
        sample_per_operation=capacity.sample_per_operation,
    )


def measure(
    store: JobStore, query: CapacityQuery, settings: Settings, *, now: datetime | None = None
) -> CapacityReport:
    """Read the window that ends ``now`` (default: the present) and report on it. The
    window reaches back no further than ``capacity.history_retention`` (or
    ``executor.job_retention`` if longer): older jobs are gone (a window cut short says
    so)."""
    until = (now or datetime.now(UTC)).astimezone(UTC)
    wanted = query.days * _DAY
    kept = max(settings.capacity.history_retention, settings.executor.job_retention)
    span = min(wanted, kept)
    since = until - timedelta(seconds=span)
    history = read_history(store, since, until, query.operations, settings.capacity)
    return report(history, query, settings, limited=span < wanted)
