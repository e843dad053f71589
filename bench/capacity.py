"""What a capacity report costs on a large job history.

``python -m bench.capacity [--jobs 200000] [--days 7] [--database URL]`` fills a new job
store (default: a SQLite file in a temporary folder; a PostgreSQL URL must name an empty
database) with ``--jobs`` ended jobs spread over ``--days`` days — four operations of
three families, service times of 0.1 to 10 s, 2 % retried once (read one by one for
their history) — then times :func:`docworker.jobs.capacity.measure` over the whole
window, cold and again, and prints the rows read, the seconds and the growth of the
process's peak resident memory.
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from docworker.config import load_settings
from docworker.jobs.capacity import check_query, measure
from docworker.jobs.models import Job, JobStatus
from docworker.jobs.store import JobStore

OPERATIONS = {"extract": 0.4, "chunk": 0.1, "ocr": 4.0, "convert": 2.0}
BATCH = 5000


def _rows(count: int, days: float, now: datetime, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    span = days * 86400
    rows = []
    names = list(OPERATIONS)
    for _ in range(count):
        operation = rng.choice(names)
        created = now - timedelta(seconds=rng.uniform(60, span - 60))
        wait = rng.expovariate(1 / 2.0)
        service = min(10.0, max(0.1, rng.expovariate(1 / OPERATIONS[operation])))
        started = created + timedelta(seconds=wait)
        finished = started + timedelta(seconds=service)
        history = [
            {
                "attempt": 1,
                "started_at": started.isoformat(),
                "ended_at": finished.isoformat(),
                "outcome": "succeeded",
            }
        ]
        attempts = 1
        if rng.random() < 0.02:
            first_end = started + timedelta(seconds=service / 2)
            history.insert(
                0,
                {
                    "attempt": 1,
                    "started_at": (started - timedelta(seconds=5)).isoformat(),
                    "ended_at": first_end.isoformat(),
                    "outcome": "retried",
                },
            )
            attempts = 2
        rows.append(
            {
                "id": str(uuid.uuid4()),
                "operation": operation,
                "params": {},
                "status": JobStatus.SUCCEEDED,
                "priority": 0,
                "attempts": attempts,
                "max_attempts": 3,
                "progress": 1.0,
                "created_at": created,
                "updated_at": finished,
                "started_at": started,
                "finished_at": finished,
                "cancel_requested": False,
                "children_total": 0,
                "children_pending": 0,
                "cpu_seconds": service,
                "history": history,
                "cached": False,
            }
        )
    return rows


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200_000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--database", help="SQLAlchemy URL of an empty database")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-capacity-"))
    url = args.database or f"sqlite:///{folder / 'jobs.db'}"
    store = JobStore(url)
    store.migrate()
    now = datetime.now(UTC)
    filled = time.perf_counter()
    with store.transaction(writes=True) as session:
        for start in range(0, args.jobs, BATCH):
            count = min(BATCH, args.jobs - start)
            session.execute(insert(Job), _rows(count, args.days, now, seed=start))
    filled = time.perf_counter() - filled
    settings = load_settings(
        data_dir=folder, executor={"job_retention": (args.days + 1) * 86400, "workers": 8}
    )
    query = check_query(settings.capacity, days=args.days)
    dialect = url.split(":", 1)[0]
    print(f"{args.jobs} jobs over {args.days:g} days in {dialect}, filled in {filled:.1f} s")
    for run in ("cold", "again"):
        before = _peak_mib()
        began = time.perf_counter()
        found = measure(store, query, settings, now=now)
        took = time.perf_counter() - began
        jobs = sum(op.figures.jobs for op in found.operations)
        sampled = sum(op.figures.sampled for op in found.operations)
        print(
            f"{run:>5}: {took:.2f} s for {jobs} jobs ({sampled} sampled, exact={found.exact}); "
            f"peak RSS +{_peak_mib() - before:.0f} MiB (now {_peak_mib():.0f} MiB)"
        )
    store.close()


if __name__ == "__main__":
    main()
