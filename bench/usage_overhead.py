"""What counting usage costs the job store: queuing and ending a job without an API key
against with a key and four daily quotas (the quota counter, the audit event).

    .venv/bin/python -m bench.usage_overhead [--url postgresql+psycopg://...] [--jobs 600]

The two kinds of job alternate, so a busy machine slows both alike; the medians are
printed in milliseconds. Without ``--url`` a fresh SQLite file is used.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from docworker.jobs.store import JobCost, JobStore, NewJob
from docworker.jobs.usage import Quotas
from docworker.telemetry import configure_logging

INPUT = {"uri": "blob://inputs/ab", "sha256": "ab" * 32, "size": 1000}
QUOTAS = Quotas(
    requests_per_day=10**9, bytes_per_day=10**15, pages_per_day=10**9, cpu_seconds_per_day=1e12
)


def measure(store: JobStore, jobs: int) -> dict[str, dict[bool, list[float]]]:
    timings: dict[str, dict[bool, list[float]]] = {
        "queue": {False: [], True: []},
        "end": {False: [], True: []},
    }
    for index in range(jobs):
        keyed = index % 2 == 0
        new = NewJob("extract", {}, INPUT, tenant="a", key_id="k" * 16 if keyed else None)
        started = time.perf_counter()
        store.create(new, quotas=QUOTAS)
        timings["queue"][keyed].append(time.perf_counter() - started)
        claimed = store.claim_next("bench")
        assert claimed is not None
        started = time.perf_counter()
        store.mark_succeeded(claimed.id, {"uri": "x"}, cost=JobCost(cpu_seconds=0.5, pages=3))
        timings["end"][keyed].append(time.perf_counter() - started)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="SQLAlchemy URL of an empty database")
    parser.add_argument("--jobs", type=int, default=600)
    args = parser.parse_args()
    configure_logging(level="WARNING")
    url = args.url or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    store = JobStore(url)
    store.migrate()
    try:
        timings = measure(store, args.jobs)
    finally:
        store.close()
    for step, by_key in timings.items():
        plain, keyed = (statistics.median(by_key[k]) * 1000 for k in (False, True))
        print(f"{step:<6} without a key {plain:6.2f} ms   with a key and quotas {keyed:6.2f} ms")


if __name__ == "__main__":
    main()
