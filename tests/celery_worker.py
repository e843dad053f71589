"""A real ``docworker worker`` process for the tests of the celery executor, and the
clean-up of what its fleet made on a broker that other tests share."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import redis
from kombu.connection import Connection


def queue_prefix() -> str:
    """A queue prefix of its own, for a fleet on a broker others may share."""
    return f"test-{uuid.uuid4().hex[:12]}-"


class Worker:
    """One ``docworker worker`` process (``concurrency`` worker processes under it) with
    ``env``, its output in ``<data_dir>/worker.log``."""

    def __init__(self, data_dir: Path, env: dict[str, str], concurrency: int = 1) -> None:
        self.env = env
        self.concurrency = concurrency
        self.log = data_dir / "worker.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "docworker",
                    "worker",
                    "--concurrency",
                    str(self.concurrency),
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def wait_ready(self) -> None:
        self.wait_for_line(re.compile(r"docworker-\d+@\S+ ready"), 120)

    def wait_for_line(self, pattern: re.Pattern[str], timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.tail()
            for line in self.log.read_text(errors="replace").splitlines():
                if pattern.search(line):
                    return line
            time.sleep(0.1)
        raise AssertionError(f"no line {pattern.pattern!r} in the worker's log:\n{self.tail()}")

    def wait_for_event(self, event: str, job_id: str, timeout: float = 60) -> dict[str, Any]:
        """The first JSON log line of ``event`` about ``job_id``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log.read_text(errors="replace").splitlines():
                if line.startswith("{") and job_id in line:
                    entry: dict[str, Any] = json.loads(line)
                    if entry.get("event") == event and entry.get("job_id") == job_id:
                        return entry
            time.sleep(0.1)
        raise AssertionError(f"no {event!r} of job {job_id} in the worker's log:\n{self.tail()}")

    def pids(self) -> list[int]:
        """Process ids of the worker processes (Celery's pool, under the main process)."""
        assert self.process is not None
        try:
            children = psutil.Process(self.process.pid).children()
        except psutil.NoSuchProcess:
            return []
        alive = []
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):  # it may end meanwhile
                if child.status() != psutil.STATUS_ZOMBIE:
                    alive.append(child.pid)
        return alive

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def terminate(self) -> None:
        """Ask the worker to stop (a warm shutdown), without waiting: :meth:`stop` waits."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def delete_queues(env: dict[str, str]) -> None:
    """Delete what a fleet made on the broker (others share it): on Redis every key of
    its prefix, on RabbitMQ its queues and exchanges."""
    broker, prefix = env["DOCWORKER_CELERY__BROKER_URL"], env["DOCWORKER_CELERY__QUEUE_PREFIX"]
    if broker.startswith("redis"):
        client = redis.Redis.from_url(broker)
        try:
            keys = list(client.scan_iter(match=f"{prefix}*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
        return
    exchanges = [f"{prefix}docworker{suffix}" for suffix in ("", ".pidbox", ".events")]
    with Connection(broker) as connection:
        channel = connection.channel()
        for family in ("documents", "ocr", "convert", "media"):
            channel.queue_delete(f"{prefix}{family}")
        for name in [*exchanges, f"reply.{prefix}docworker.pidbox"]:
            channel.exchange_delete(name)
