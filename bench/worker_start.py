"""What a replaced worker costs before it can take a job: wall time until its ready
message and CPU-seconds, forked from the preloaded template ("forkserver") against
started afresh ("spawn"), in the same run.

    .venv/bin/python -m bench.worker_start [--rounds 10]

Workers are started as the local executor starts them (``start_worker``, the same
settings, keys and folder), one at a time, each ended before the next starts. The
CPU counted is everything the start costs: the worker's own (its children included),
this process's (the supervisor's side) and the template's (the fork). The first
worker of each method is shown apart: under "forkserver" it starts the template too.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psutil

from docworker.config import WorkerStart, load_settings
from docworker.jobs.template import start_worker, worker_config, worker_context
from docworker.jobs.workdirs import ExecutorFolder
from docworker.jobs.worker import receive
from docworker.sealing import SecretKeys
from docworker.telemetry import configure_logging


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu(proc: psutil.Process | None) -> float:
    if proc is None:
        return 0.0
    times = proc.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


class Starter:
    """Starts workers of one method, as the executor does, and measures each start."""

    def __init__(self, method: WorkerStart, data_dir: Path) -> None:
        settings = load_settings(data_dir=data_dir, executor={"workers": 1})
        self.context = worker_context(method)
        self.config = worker_config(settings, SecretKeys.from_settings(settings))
        self.folder = ExecutorFolder(data_dir, uuid.uuid4().hex[:8])
        self.folder.create()
        self.template: psutil.Process | None = None

    def start_one(self) -> tuple[float, float]:
        """Start a worker, wait for it to be ready, end it; its wall and CPU seconds."""
        template_before = _cpu(self.template)
        own_before = _own_cpu()
        started = time.perf_counter()
        process, conn, lifeline = start_worker(
            self.context, self.config, self.folder.new_worker_folder()
        )
        message = receive(conn)
        wall = time.perf_counter() - started
        assert message["type"] == "ready", message
        own = _own_cpu() - own_before
        worker = psutil.Process(process.pid)
        parent = worker.parent()
        if self.template is None and parent is not None and parent.pid != psutil.Process().pid:
            self.template = parent  # the template's whole start counts for the first worker
        template = _cpu(self.template) - template_before
        cpu = _cpu(worker) + own + template
        lifeline.close()  # the worker ends its process group
        process.join(10)
        conn.close()
        return wall, cpu


def measure(method: WorkerStart, rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as data_dir:
        starter = Starter(method, Path(data_dir))
        first_wall, first_cpu = starter.start_one()
        walls, cpus = zip(*(starter.start_one() for _ in range(rounds)), strict=True)
        starter.folder.remove()
    return {
        "first_wall": first_wall,
        "first_cpu": first_cpu,
        "wall": statistics.median(walls),
        "cpu": statistics.median(cpus),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="replaced workers per method")
    args = parser.parse_args()
    configure_logging(level="WARNING")
    results = {method: measure(method, args.rounds) for method in WorkerStart}
    print(f"{'start method':<12} {'first worker':>22} {'replaced worker (median)':>30}")
    print(f"{'':<12} {'wall s':>10} {'CPU-s':>11} {'wall s':>14} {'CPU-s':>15}")
    for method, figures in results.items():
        print(
            f"{method.value:<12} {figures['first_wall']:>10.3f} {figures['first_cpu']:>11.3f} "
            f"{figures['wall']:>14.3f} {figures['cpu']:>15.3f}"
        )
    spawn, fork = results[WorkerStart.SPAWN], results[WorkerStart.FORKSERVER]
    print(
        f"a replaced worker from the template: {spawn['wall'] / fork['wall']:.0f}x faster, "
        f"{spawn['cpu'] / fork['cpu']:.0f}x less CPU"
    )


if __name__ == "__main__":
    main()
