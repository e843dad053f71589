"""What job events and webhooks cost the job store: each step of a job's life (queued,
claimed, one progress write, ended) without events, with its events, and with its
events and a webhook of its own (an outbox row per event it chose).

    .venv/bin/python -m bench.events_overhead [--url postgresql+psycopg://...] [--jobs 600]

"Without events" runs the store with a journal that records nothing, which is what the
store did before events existed. The three kinds of job alternate, so a busy machine
slows them alike; the medians of wall-clock time and of CPU time are printed in
milliseconds (on a busy machine the CPU time says more). Without ``--url`` a fresh
SQLite file is used.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from docworker.jobs.journal import Journal
from docworker.jobs.models import Job
from docworker.jobs.store import JobStore, NewJob
from docworker.telemetry import configure_logging

INPUT = {"uri": "blob://inputs/ab", "sha256": "ab" * 32, "size": 1000}
HOOK = {"url": "https://hooks.example.com/in", "events": ["started", "succeeded"], "secret": None}
KINDS = ("no events", "events", "events + webhook")
STEPS = ("queue", "claim", "progress", "end")


class Silent(Journal):
    """A journal that records nothing: the store as it was without events."""

    def record(
        self,
        session: Session,
        job: Job,
        kind: str,
        now: datetime,
        extra: dict[str, Any] | None = None,
    ) -> int:
        return 0


class Clock:
    """The wall-clock and CPU time (of this thread: SQLite runs in it) of each step."""

    def __init__(self) -> None:
        self.wall = {step: {kind: [] for kind in KINDS} for step in STEPS}
        self.cpu = {step: {kind: [] for kind in KINDS} for step in STEPS}
        self._wall = self._cpu = 0.0

    def start(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.thread_time()

    def stop(self, step: str, kind: str) -> None:
        self.wall[step][kind].append(time.perf_counter() - self._wall)
        self.cpu[step][kind].append(time.thread_time() - self._cpu)


def measure(store: JobStore, jobs: int) -> Clock:
    clock = Clock()
    journals = {"no events": Silent(), "events": Journal(), "events + webhook": Journal()}
    for index in range(jobs):
        kind = KINDS[index % len(KINDS)]
        store.journal = journals[kind]
        hook = HOOK if kind == "events + webhook" else None
        clock.start()
        record, _ = store.create(NewJob("extract", {}, INPUT, tenant="a", webhook=hook))
        clock.stop("queue", kind)
        clock.start()
        claimed = store.claim_next("bench")
        clock.stop("claim", kind)
        assert claimed is not None and claimed.id == record.id
        clock.start()
        store.set_progress(record.id, 0.5, "half way")
        clock.stop("progress", kind)
        clock.start()
        store.mark_succeeded(record.id, {"uri": "x"})
        clock.stop("end", kind)
    return clock


def report(title: str, timings: dict[str, dict[str, list[float]]]) -> None:
    print(f"{title:<10}" + "".join(f"{kind:>20}" for kind in KINDS) + "   (median ms)")
    totals = dict.fromkeys(KINDS, 0.0)
    for step, by_kind in timings.items():
        medians = {kind: statistics.median(by_kind[kind]) * 1000 for kind in KINDS}
        for kind, value in medians.items():
            totals[kind] += value
        print(f"{step:<10}" + "".join(f"{medians[kind]:>20.3f}" for kind in KINDS))
    print(f"{'a job':<10}" + "".join(f"{totals[kind]:>20.3f}" for kind in KINDS))


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
        clock = measure(store, args.jobs)
    finally:
        store.close()
    report("wall", clock.wall)
    report("CPU", clock.cpu)


if __name__ == "__main__":
    main()
