"""The engine supervisor, on real small processes (``cat`` echoes, ``sleep`` hangs).

Each process runs in a session of its own, as engine processes do, so that a
kill takes its whole process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import pytest

from docworker.engines.supervisor import Supervisor
from docworker.errors import (
    CorruptDocument,
    DependencyDown,
    EngineFailed,
    EngineTimeout,
    QueueFull,
)


class Echo:
    """A supervised process: by default ``cat``, which answers each line with itself."""

    def __init__(self, command: Sequence[str] = ("cat",)) -> None:
        self.process = subprocess.Popen(
            list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def close(self) -> None:
        self.kill()
        self.process.wait(5)
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.stdout.close()

    def echo(self, text: str = "ping") -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(text.encode() + b"\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            raise EngineFailed("the process is gone") from None
        line = self.process.stdout.readline()
        if not line:
            raise EngineFailed("the process is gone")
        return line.decode().strip()


def pid_of(echo: Echo) -> int:
    return echo.pid


@pytest.fixture
def made() -> Iterator[list[Echo]]:
    """Every process the test's supervisors started, all ended afterwards."""
    processes: list[Echo] = []
    yield processes
    for process in processes:
        if process.alive():
            process.close()


def supervisor(
    made: list[Echo],
    command: Sequence[str] = ("cat",),
    *,
    restart_after: int = 0,
    max_queue: int = 0,
    idle_shutdown: float = 0.0,
) -> Supervisor[Echo]:
    def start(_timeout: float) -> Echo:
        process = Echo(command)
        made.append(process)
        return process

    return Supervisor(
        "echo",
        start,
        task_timeout=10.0,
        restart_after=restart_after,
        max_queue=max_queue,
        idle_shutdown=idle_shutdown,
    )


def test_starts_on_the_first_task_and_reuses_the_process(made: list[Echo]) -> None:
    sup = supervisor(made)
    assert sup.status()["running"] is False
    assert not made
    assert sup.run(lambda p: p.echo("one")) == "one"
    first = sup.run(pid_of)
    assert sup.run(pid_of) == first
    status = sup.status()
    assert status["running"] is True
    assert status["pid"] == first
    assert (status["tasks"], status["starts"], status["restarts"]) == (3, 1, 0)
    sup.stop()
    assert not made[0].alive()
    assert sup.status()["running"] is False


def test_a_process_is_replaced_after_restart_after_tasks(made: list[Echo]) -> None:
    sup = supervisor(made, restart_after=2)
    pids = [sup.run(pid_of) for _ in range(3)]
    assert pids[0] == pids[1] != pids[2]
    assert not made[0].alive()
    assert sup.status()["restarts"] == 1
    sup.stop()


def test_a_task_past_its_timeout_kills_the_process_and_the_next_task_restarts(
    made: list[Echo],
) -> None:
    sup = supervisor(made, command=("sleep", "30"))
    started = time.monotonic()
    with pytest.raises(EngineTimeout) as timed_out:
        sup.run(lambda p: p.echo(), timeout=0.2)
    assert time.monotonic() - started < 5
    assert timed_out.value.fields["limit_seconds"] == 0.2
    assert not made[0].alive()
    assert sup.status()["running"] is False
    assert "0.2 s" in str(sup.status()["last_error"])
    second = sup.run(pid_of)
    assert second == made[1].pid != made[0].pid
    sup.stop()


def test_a_process_that_died_between_tasks_is_restarted(made: list[Echo]) -> None:
    sup = supervisor(made)
    first = sup.run(pid_of)
    made[0].kill()
    made[0].process.wait(5)
    assert sup.run(lambda p: p.echo("again")) == "again"
    assert sup.run(pid_of) != first
    assert sup.status()["last_error"] == "the process exited between two tasks"
    sup.stop()


def test_a_service_error_retires_the_process_an_input_error_does_not(made: list[Echo]) -> None:
    sup = supervisor(made)

    def bad_document(_process: Echo) -> None:
        raise CorruptDocument("doc", "unreadable")

    def engine_trouble(_process: Echo) -> None:
        raise EngineFailed("the engine answered nonsense")

    with pytest.raises(CorruptDocument):
        sup.run(bad_document)
    assert made[0].alive()
    with pytest.raises(EngineFailed):
        sup.run(engine_trouble)
    assert not made[0].alive()
    assert sup.status()["last_error"] == "the engine answered nonsense"


def test_an_unexpected_exception_becomes_engine_failed(made: list[Echo]) -> None:
    sup = supervisor(made)

    def broken(_process: Echo) -> None:
        raise ValueError("bad answer")

    with pytest.raises(EngineFailed, match="ValueError: bad answer"):
        sup.run(broken)
    assert not made[0].alive()


def test_callers_past_the_queue_bound_are_refused(made: list[Echo]) -> None:
    sup = supervisor(made, max_queue=1)
    release = threading.Event()
    results: list[object] = []

    def hold(process: Echo) -> int:
        release.wait(10)
        return process.pid

    def call() -> None:
        results.append(sup.run(hold))

    running = threading.Thread(target=call)
    running.start()
    _wait_for(lambda: sup.status()["busy"])
    waiting = threading.Thread(target=call)
    waiting.start()
    _wait_for(lambda: sup.status()["waiting"] == 1)
    with pytest.raises(QueueFull) as refused:
        sup.run(pid_of)
    assert refused.value.fields["retry_after"] > 0
    release.set()
    running.join(10)
    waiting.join(10)
    assert len(results) == 2
    sup.stop()


def test_an_idle_process_is_stopped(made: list[Echo]) -> None:
    sup = supervisor(made, idle_shutdown=0.1)
    sup.run(pid_of)
    _wait_for(lambda: not made[0].alive())
    assert sup.status()["running"] is False
    sup.run(pid_of)
    assert made[1].alive()
    sup.stop()


def test_a_failed_start_is_raised_and_recorded() -> None:
    def start(_timeout: float) -> Echo:
        raise DependencyDown("the program is not installed")

    sup: Supervisor[Echo] = Supervisor("missing", start, task_timeout=1.0)
    with pytest.raises(DependencyDown):
        sup.run(pid_of)
    assert sup.status()["last_error"] == "the program is not installed"
    assert sup.status()["starts"] == 0


def _wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")
