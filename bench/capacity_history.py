"""What the capacity history costs: per job rolled up, and per report over a year.

``python -m bench.capacity_history [--jobs 5000] [--operations 4] [--database URL]``
(default: a SQLite file in a temporary folder; a PostgreSQL URL must name an empty
database):

1. **At a job's end, the alternative not taken**: ``--jobs`` transactions that each
   update one job row (as an end does) and roll that job up (one UPSERT of its hour, one
   of its two buckets: what adding each job to the history as it ends would cost),
   against the same transactions without the roll-up; the difference per job is printed.
2. **At the sweep, the way it is done**: ``--jobs`` ended jobs are deleted by
   ``JobStore.delete_finished_before`` three times with the roll-up and three times
   without; the difference of the best per job is printed.
3. **A report over a year**: a year of hourly history for ``--operations`` operations
   (each hour's service and wait histograms spread over 12 buckets) is written, then
   :func:`docworker.jobs.capacity.measure` over 365 days is timed, cold and again.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, insert, update

from bench.capacity import _rows
from docworker.config import load_settings
from docworker.jobs import capacity_history
from docworker.jobs.capacity import check_query, measure
from docworker.jobs.models import CapacityBucket, CapacityHour, Job
from docworker.jobs.store import JobStore

OPERATIONS = ["extract", "chunk", "ocr", "convert", "render", "pdf", "image", "audio"]


def _per_job(seconds: float, jobs: int) -> float:
    return seconds / jobs * 1e6


def _timed(action: Callable[[], Any]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def _fill(store: JobStore, jobs: int, now: datetime, seed: int) -> None:
    rows = _rows(jobs, 1.0, now - timedelta(days=2), seed=seed)
    with store.transaction(writes=True) as session:
        session.execute(insert(Job), rows)


def _at_the_end(store: JobStore, jobs: int, now: datetime) -> None:
    _fill(store, jobs, now, seed=1)
    with store.transaction() as session:
        loaded = list(session.query(Job).all())
        session.expunge_all()

    ended = update(Job).where(Job.id == bindparam("job_id")).values(progress=1.0)

    def empty() -> None:
        for job in loaded:
            with store.transaction(writes=True) as session:
                session.execute(ended, {"job_id": job.id})

    def rolled() -> None:
        for job in loaded:
            with store.transaction(writes=True) as session:
                session.execute(ended, {"job_id": job.id})
                capacity_history.roll_up(session, [job])

    bare, upserts = _timed(empty), _timed(rolled)
    print(
        f"per job end (not taken): {_per_job(upserts - bare, jobs):.0f} µs a job added "
        f"({_per_job(upserts, jobs):.0f} µs with it, {_per_job(bare, jobs):.0f} µs without)"
    )
    with store.transaction(writes=True) as session:
        session.execute(Job.__table__.delete())
        session.execute(CapacityHour.__table__.delete())
        session.execute(CapacityBucket.__table__.delete())


def _at_the_sweep(store: JobStore, jobs: int, now: datetime) -> None:
    kept = capacity_history.roll_up
    timings: dict[bool, list[float]] = {True: [], False: []}
    for run in range(6):
        rolled = run % 2 == 0
        _fill(store, jobs, now, seed=2 + run)
        if not rolled:
            capacity_history.roll_up = lambda session, jobs: 0  # type: ignore[assignment]
        try:
            timings[rolled].append(_timed(lambda: store.delete_finished_before(now)))
        finally:
            capacity_history.roll_up = kept
    with_roll_up, without = min(timings[True]), min(timings[False])
    print(
        f"per job purged (taken): {_per_job(with_roll_up - without, jobs):.0f} µs a job added "
        f"({_per_job(with_roll_up, jobs):.0f} µs with it, {_per_job(without, jobs):.0f} µs "
        "without; the best of 3 sweeps each)"
    )


def _a_year(store: JobStore, operations: int, now: datetime) -> None:
    rng = random.Random(5)
    first = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=365)
    hours: list[dict[str, Any]] = []
    buckets: list[dict[str, Any]] = []
    for index in range(365 * 24):
        hour = capacity_history.hour_of(first + timedelta(hours=index))
        for operation in OPERATIONS[:operations]:
            family = capacity_history.family_of(operation)
            key = {"operation": operation, "family": family, "hour": hour}
            jobs = rng.randint(50, 500)
            hours.append(
                {
                    **key,
                    "jobs": jobs,
                    "submitted": jobs,
                    "busy": jobs * 2.0,
                    "busy_sq": jobs * 8.0,
                    "waited": jobs,
                    "wait": jobs * 1.0,
                    "wait_sq": jobs * 2.0,
                    "retried": jobs // 50,
                    "split": 0,
                }
            )
            for measure_name, low in (("s", 20), ("w", 14)):
                buckets += [
                    {**key, "measure": measure_name, "bucket": low + b, "jobs": jobs // 12}
                    for b in range(12)
                ]
    with store.transaction(writes=True) as session:
        session.execute(CapacityHour.__table__.delete())
        session.execute(CapacityBucket.__table__.delete())
        for start in range(0, len(hours), 5000):
            session.execute(insert(CapacityHour), hours[start : start + 5000])
        for start in range(0, len(buckets), 5000):
            session.execute(insert(CapacityBucket), buckets[start : start + 5000])
    settings = load_settings(executor={"workers": 8})
    query = check_query(settings.capacity, days=365)
    print(f"a year: {len(hours)} hour rows, {len(buckets)} bucket rows")
    for run in ("cold", "again"):
        began = time.perf_counter()
        found = measure(store, query, settings, now=now)
        took = time.perf_counter() - began
        jobs = sum(op.figures.jobs for op in found.operations)
        print(f"{run:>5}: report over 365 days in {took:.2f} s ({jobs} jobs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--operations", type=int, default=4)
    parser.add_argument("--database", help="SQLAlchemy URL of an empty database")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-capacity-history-"))
    url = args.database or f"sqlite:///{folder / 'jobs.db'}"
    store = JobStore(url)
    store.migrate()
    now = datetime.now(UTC)
    print(f"{url.split(':', 1)[0]}, {args.jobs} jobs")
    _at_the_end(store, args.jobs, now)
    _at_the_sweep(store, args.jobs, now)
    _a_year(store, args.operations, now)
    store.close()


if __name__ == "__main__":
    main()
