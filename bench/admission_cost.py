"""What the queue bounds cost admission: counting each family's queued jobs (done at every
submission) and the jobs that ended in the drain window (done to answer a refusal, then
kept for a second), in a job store that holds a day of finished jobs.

    .venv/bin/python -m bench.admission_cost [--url postgresql+psycopg://...] \\
        [--finished 100000] [--queued 500] [--parts 200] [--calls 300]

The store is filled with ``--finished`` ended jobs spread over the last day (the
retention's default), ``--queued`` submissions waiting and ``--parts`` queued parts of
split jobs; then each count is made ``--calls`` times and its median printed in
milliseconds, beside the median of a submission's insert (``JobStore.create``) for
scale. Without ``--url`` a fresh SQLite file is used.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from docworker.config import load_settings
from docworker.jobs.backlog import Backlog
from docworker.jobs.models import Job
from docworker.jobs.store import JobStatus, JobStore, NewJob
from docworker.telemetry import configure_logging

OPERATIONS = ("extract", "chunk", "ocr", "convert", "pdf", "render", "image", "video")
INPUT = {"uri": "blob://inputs/ab", "sha256": "ab" * 32, "size": 1000}


def _row(index: int, status: JobStatus, at: datetime, parent: str | None = None) -> Job:
    ended = status is not JobStatus.QUEUED
    return Job(
        id=str(uuid.uuid4()),
        operation=OPERATIONS[index % len(OPERATIONS)],
        params={},
        status=status,
        priority=index % 3 - 1,
        input=INPUT,
        attempts=1 if ended else 0,
        max_attempts=3,
        created_at=at,
        updated_at=at,
        started_at=at if ended else None,
        finished_at=at if ended else None,
        parent_id=parent,
        part=0 if parent else None,
    )


def fill(store: JobStore, finished: int, queued: int, parts: int) -> None:
    now = datetime.now(UTC)
    step = timedelta(days=1) / max(finished, 1)
    rows = [_row(i, JobStatus.SUCCEEDED, now - i * step) for i in range(finished)]
    rows += [_row(i, JobStatus.QUEUED, now) for i in range(queued)]
    parent = str(uuid.uuid4())
    rows += [_row(i, JobStatus.QUEUED, now, parent) for i in range(parts)]
    for start in range(0, len(rows), 5000):
        with store.transaction(writes=True) as session:
            session.add_all(rows[start : start + 5000])
    with store.transaction(writes=True) as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("ANALYZE jobs"))  # as autovacuum would have by now


def median_ms(call: Callable[[], object], calls: int) -> float:
    timings = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="SQLAlchemy URL of an empty database")
    parser.add_argument("--finished", type=int, default=100_000)
    parser.add_argument("--queued", type=int, default=500)
    parser.add_argument("--parts", type=int, default=200)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    configure_logging(level="WARNING")
    folder = tempfile.mkdtemp()
    url = args.url or f"sqlite:///{folder}/bench.db"
    store = JobStore(url)
    store.migrate()
    try:
        fill(store, args.finished, args.queued, args.parts)
        backlog = Backlog(load_settings(data_dir=folder), store)
        since = datetime.now(UTC) - timedelta(seconds=backlog.window)
        figures = {
            "queued jobs by family (every submission)": median_ms(backlog.queued, args.calls),
            "ended in the window (a refusal, cached 1 s)": median_ms(
                lambda: store.ended_by_operation(since), args.calls
            ),
            "a submission's insert, for scale": median_ms(
                lambda: store.create(NewJob("extract", {}, INPUT, priority=-100)), args.calls
            ),
        }
    finally:
        store.close()
    print(f"{store_kind(url)}: {args.finished} ended, {args.queued} queued, {args.parts} parts")
    for name, value in figures.items():
        print(f"  {name:<45} {value:7.3f} ms")


def store_kind(url: str) -> str:
    return "PostgreSQL" if url.startswith("postgresql") else "SQLite"


if __name__ == "__main__":
    main()
