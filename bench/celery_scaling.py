"""One against two Celery worker processes on a CPU-bound batch, in the same run.

``python -m bench.celery_scaling [--jobs 24] [--file pdf/ibm-redbook-sampled.pdf]
[--broker redis://127.0.0.1:6379/0]`` runs the distributed mode on this machine twice,
each time from a fresh data folder (SQLite job store, local blob store) and its own
broker queues: ``docworker serve --executor celery`` (the API, which runs no job) and
``docworker worker --concurrency N`` for N = 1, then 2. Each time it submits ``--jobs``
extractions of the same document (to Markdown, the result cache bypassed so that every
job runs) as one batch, after one warm-up job, and times them from the submission to
the last job's end. Printed: jobs per second for each, the ratio (the goal: ≥ 1.8× with
two processes), and the in-process rate of the same document on one and on two
processes measured in the same run (the ceiling of each).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bench.load import _free_port
from bench.scoring import corpus_root


def _extract_for(path: str, seconds: float) -> tuple[int, float]:
    """Documents extracted by this process in ``seconds`` (after one warm-up)."""
    from docworker.config import Settings
    from docworker.formats.registry import preload
    from docworker.operations import get_operation, validate_params
    from docworker.operations.base import InputFile, operation_context

    preload()
    operation = get_operation("extract")
    params = validate_params(operation, {"output": "markdown"})
    with tempfile.TemporaryDirectory(prefix="dw-bench-") as workdir:
        ctx = operation_context(Settings(), workdir=Path(workdir))
        operation.run(ctx, InputFile(Path(path), Path(path).name), params)
        done, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            operation.run(ctx, InputFile(Path(path), Path(path).name), params)
            done += 1
    return done, elapsed


def in_process_rate(path: Path, processes: int, seconds: float) -> float:
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        runs = pool.starmap(_extract_for, [(str(path), seconds)] * processes)
    return sum(done / elapsed for done, elapsed in runs)


class Fleet:
    """An API and one ``docworker worker`` of ``concurrency`` processes."""

    def __init__(self, broker: str, concurrency: int) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="dw-celery-bench-"))
        self.port = _free_port()
        self.env = {
            **os.environ,
            "DOCWORKER_DATA_DIR": str(self.folder),
            "DOCWORKER_EXECUTOR__KIND": "celery",
            "DOCWORKER_CELERY__BROKER_URL": broker,
            "DOCWORKER_CELERY__QUEUE_PREFIX": f"bench-{uuid.uuid4().hex[:8]}-",
            "DOCWORKER_LOG__LEVEL": "WARNING",
            # Every request runs: the same files again must not be answered from the cache.
            "DOCWORKER_CACHE__ENABLED": "false",
        }
        self.concurrency = concurrency
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.folder / "fleet.log").open("ab")
        python = [sys.executable, "-m", "docworker"]
        for command in (
            [*python, "serve", "--port", str(self.port)],
            [*python, "worker", "--concurrency", str(self.concurrency)],
        ):
            self.processes.append(subprocess.Popen(command, env=self.env, stdout=log, stderr=log))
            if command[3] == "serve":
                self._ready()

    def _ready(self) -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                raise SystemExit(f"a process of the fleet exited; see {self.folder}/fleet.log")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health/readiness", timeout=1).status_code == 200:
                    return
            time.sleep(0.3)
        raise SystemExit("the API did not start")

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


def _run_batch(client: httpx.Client, document: Path, jobs: int) -> float:
    """Seconds from submitting ``jobs`` extractions of ``document`` as a batch until the
    last of them ended."""
    data = document.read_bytes()
    files = [("file", (f"{i}-{document.name}", data, "application/pdf")) for i in range(jobs)]
    form = {"operation": "extract", "params": '{"output": "markdown"}'}
    started = time.perf_counter()
    answer = client.post("/api/v2/batches?cache=false", files=files, data=form)
    if answer.status_code not in (200, 201, 202):
        raise SystemExit(f"the batch was refused: {answer.status_code} {answer.text[:300]}")
    batch = answer.json()
    while True:
        state = client.get(f"/api/v2/batches/{batch['id']}").json()
        if state["status"] != "running":
            break
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    if state["counts"]["succeeded"] != jobs:
        raise SystemExit(f"not every job succeeded: {state['counts']}")
    return seconds


def measure(broker: str, document: Path, jobs: int, concurrency: int) -> float:
    """Jobs per second of a fleet of ``concurrency`` worker processes."""
    fleet = Fleet(broker, concurrency)
    fleet.start()
    try:
        with httpx.Client(base_url=fleet.url, timeout=600) as client:
            _run_batch(client, document, concurrency)  # warm: every process's parsers
            return jobs / _run_batch(client, document, jobs)
    finally:
        fleet.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=24)
    parser.add_argument("--file", default="pdf/ibm-redbook-sampled.pdf")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--seconds", type=float, default=15.0, help="of each in-process run")
    args = parser.parse_args(argv)
    document = corpus_root() / args.file
    ceiling = {n: in_process_rate(document, n, args.seconds) for n in (1, 2)}
    rates = {n: measure(args.broker, document, args.jobs, n) for n in (1, 2)}
    print(f"{args.jobs} extractions of {args.file} to Markdown, Celery on {args.broker}")
    for n in (1, 2):
        print(
            f"  {n} worker process{'es' if n > 1 else ''}: {rates[n]:6.2f} jobs/s "
            f"(in process on {n}: {ceiling[n]:6.2f}/s, {rates[n] / ceiling[n]:.2f}×)"
        )
    print(
        f"  two against one: {rates[2] / rates[1]:.2f}× (goal ≥ 1.8×; in process "
        f"{ceiling[2] / ceiling[1]:.2f}×)"
    )


if __name__ == "__main__":
    main()
