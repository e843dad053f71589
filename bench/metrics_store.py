"""What the multi-process metrics store costs: one counter increment and one histogram
observation, in a process's own registry against the multi-process store, and a scrape
of the store after many worker processes that recorded metrics have ended (the first
scrape folds their files into the archive, the next ones read only the live files).

    .venv/bin/python -m bench.metrics_store [--processes 200] [--increments 100000]

Each mode runs in a process of its own (the store is chosen once per process).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _record(count: int) -> dict[str, float]:
    from docworker.metrics import ENGINE_CALL_DURATION, ENGINE_CALLS

    counter = ENGINE_CALLS.labels("tesseract", "ok")
    started = time.perf_counter()
    for _ in range(count):
        counter.inc()
    inc = (time.perf_counter() - started) / count
    histogram = ENGINE_CALL_DURATION.labels("tesseract")
    started = time.perf_counter()
    for _ in range(count):
        histogram.observe(0.3)
    observe = (time.perf_counter() - started) / count
    return {"inc_us": inc * 1e6, "observe_us": observe * 1e6}


def _worker() -> None:
    from docworker.metrics import ENGINE_CALLS, JOB_DURATION, STORAGE_OPERATIONS

    ENGINE_CALLS.labels("tesseract", "ok").inc()
    JOB_DURATION.labels("ocr").observe(1.0)
    STORAGE_OPERATIONS.labels("file", "read", "ok").inc()


def _mode(mode: str, processes: int, increments: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    if mode == "multiprocess":
        from docworker import metrics_store

        folder = metrics_store.instance_folder(Path(tempfile.mkdtemp()) / "metrics", "bench")
        metrics_store.enable(folder)
        fork = multiprocessing.get_context("fork")
        for _ in range(processes):
            process = fork.Process(target=_worker)
            process.start()
            process.join()
        started = time.perf_counter()
        metrics_store.exposition()
        figures["first_scrape_ms"] = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        for _ in range(10):
            metrics_store.exposition()
        figures["scrape_ms"] = (time.perf_counter() - started) * 100
        figures["files_left"] = len(list(folder.iterdir()))
    figures |= _record(increments)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=200)
    parser.add_argument("--increments", type=int, default=100_000)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(_mode(args.mode, args.processes, args.increments)))
        return
    for mode in ("single", "multiprocess"):
        sizes = ["--processes", str(args.processes), "--increments", str(args.increments)]
        done = subprocess.run(
            [sys.executable, "-m", "bench.metrics_store", "--mode", mode, *sizes],
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        shown = ", ".join(f"{name} {value:.2f}" for name, value in figures.items())
        print(f"{mode:13} {shown}")


if __name__ == "__main__":
    main()
