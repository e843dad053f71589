"""The one supervisor of external engine processes: start, queue, watch, restart, stop.

An engine (LibreOffice, Chromium, ...) hands the supervisor a function that
starts one process of its program and a task to run on it; the supervisor owns
the process's life, the same way for every engine:

* lazy start: nothing runs until the first task, and a start that takes longer
  than ``start_timeout`` fails (the engine's start function enforces it);
* one task at a time on the process; callers wait in a bounded queue, and one
  more than ``max_queue`` waiting is refused with :class:`~docworker.errors.QueueFull`;
* a watchdog per task: past the timeout the process is killed (its whole
  process group) and the task fails with :class:`~docworker.errors.EngineTimeout`;
* restart: after ``restart_after`` tasks (programs that run for long leak), after
  a crash, a timeout or a task that failed with a service error; the next task
  starts a fresh process;
* idle shutdown: a process unused for ``idle_shutdown`` seconds is stopped;
* health: :meth:`Supervisor.status` (running, tasks, restarts, last error).

The supervisor is thread-safe; an engine usually keeps one per process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

import structlog

from docworker.errors import DocworkerError, EngineFailed, EngineTimeout, QueueFull, ServiceError
from docworker.metrics import ENGINE_RESTARTS, engine_call

log = structlog.get_logger(__name__)


class EngineProcess(Protocol):
    """One running process of an engine's program, as the supervisor needs to see it."""

    @property
    def pid(self) -> int: ...

    def alive(self) -> bool:
        """Whether the process still runs."""
        ...

    def kill(self) -> None:
        """Kill the process and everything it started, at once; safe from any thread."""
        ...

    def close(self) -> None:
        """Ask the process to exit, wait briefly, kill what is left and release its files."""
        ...


P = TypeVar("P", bound=EngineProcess)
T = TypeVar("T")


class Supervisor(Generic[P]):
    """Runs tasks, one at a time, on a lazily started process of one engine."""

    def __init__(
        self,
        name: str,
        start: Callable[[float], P],
        *,
        task_timeout: float,
        restart_after: int = 0,
        max_queue: int = 0,
        start_timeout: float = 60.0,
        idle_shutdown: float = 0.0,
    ) -> None:
        """``start(timeout)`` starts a process and returns once it answers, or raises.

        ``restart_after`` and ``idle_shutdown`` of 0 disable those restarts.
        """
        self.name = name
        #: The engine's name in the metrics' ``engine`` label.
        self.engine = name.lower()
        self._start = start
        self.task_timeout = task_timeout
        self.restart_after = restart_after
        self.max_queue = max_queue
        self.start_timeout = start_timeout
        self.idle_shutdown = idle_shutdown
        # _busy serialises tasks; _state guards the fields below it.
        self._busy = threading.Lock()
        self._state = threading.Lock()
        self._process: P | None = None
        self._pending = 0
        self._tasks = 0
        self._tasks_on_process = 0
        self._starts = 0
        self._last_error: str | None = None
        self._idle_timer: threading.Timer | None = None

    def run(self, task: Callable[[P], T], *, timeout: float | None = None) -> T:
        """Run ``task`` on the process (started first if need be) and return its result.

        ``timeout`` (default ``task_timeout``) bounds the task, not the wait or the start.
        Raises :class:`QueueFull` when too many callers wait already,
        :class:`EngineTimeout` when the task outlives its timeout, and whatever
        the start or the task raise. An input error leaves the process running; any
        other failure takes it down, to be started afresh by the next task.
        """
        with self._state:
            if self._pending > self.max_queue:
                raise QueueFull(
                    f"{self.name} is busy and {self._pending - 1} tasks wait already; retry later"
                )
            self._pending += 1
        try:
            with self._busy:
                self._cancel_idle_timer()
                with engine_call(self.engine):
                    process = self._running_process()
                    try:
                        return self._watched(process, task, timeout or self.task_timeout)
                    finally:
                        self._after_task()
        finally:
            with self._state:
                self._pending -= 1

    def stop(self) -> None:
        """Stop the process, if one runs; a later task starts a new one."""
        self._cancel_idle_timer()
        self._retire(None)

    @property
    def current(self) -> P | None:
        """The process running now, if any (for details an engine adds to its health)."""
        with self._state:
            process = self._process
        return process if process is not None and process.alive() else None

    def status(self) -> dict[str, Any]:
        """Health: whether a process runs, its pid, and the counters since this object began."""
        with self._state:
            process = self._process
            running = process is not None and process.alive()
            return {
                "name": self.name,
                "running": running,
                "busy": self._busy.locked(),
                "pid": process.pid if running and process is not None else None,
                "tasks": self._tasks,
                "starts": self._starts,
                "restarts": max(self._starts - 1, 0),
                "waiting": max(self._pending - 1, 0),
                "last_error": self._last_error,
            }

    # -- one task ---------------------------------------------------------------------
    def _running_process(self) -> P:
        with self._state:
            process = self._process
        if process is not None and process.alive():
            return process
        if process is not None:
            self._fail("the process exited between two tasks")
            ENGINE_RESTARTS.labels(self.engine, "crashed").inc()
            self._retire(process)
        try:
            process = self._start(self.start_timeout)
        except DocworkerError as exc:
            self._fail(exc.detail)
            self._name_in(exc)
            raise
        with self._state:
            self._process = process
            self._starts += 1
            self._tasks_on_process = 0
        ENGINE_RESTARTS.labels(self.engine, "start").inc()
        log.info("engine started", engine=self.name, pid=process.pid, starts=self._starts)
        return process

    def _watched(self, process: P, task: Callable[[P], T], timeout: float) -> T:
        """Run ``task`` under a watchdog that kills the process at ``timeout``."""
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            process.kill()

        watchdog = threading.Timer(timeout, expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            result = task(process)
        except DocworkerError as exc:
            if expired.is_set():
                raise self._timed_out(process, timeout) from None
            if isinstance(exc, ServiceError) or not process.alive():
                self._fail(exc.detail)
                ENGINE_RESTARTS.labels(self.engine, "crashed").inc()
                self._retire(process)
            self._name_in(exc)
            raise
        except Exception as exc:
            if expired.is_set():
                raise self._timed_out(process, timeout) from None
            self._fail(f"{type(exc).__name__}: {exc}")
            ENGINE_RESTARTS.labels(self.engine, "crashed").inc()
            self._retire(process)
            raise EngineFailed(
                f"{self.name} failed: {type(exc).__name__}: {exc}", engine=self.name
            ) from exc
        finally:
            watchdog.cancel()
        if expired.is_set():
            # Finished as the watchdog fired: the result stands, the process is gone.
            self._retire(process)
        return result

    def _name_in(self, exc: DocworkerError) -> None:
        """Name this engine in ``exc`` when it is a service error that names none (for
        the engine's circuit breaker, see :mod:`docworker.engines.breaker`)."""
        if isinstance(exc, ServiceError):
            exc.fields.setdefault("engine", self.name)

    def _timed_out(self, process: P, timeout: float) -> EngineTimeout:
        error = EngineTimeout(self.name, timeout)
        self._fail(error.detail)
        ENGINE_RESTARTS.labels(self.engine, "hung").inc()
        self._retire(process)
        return error

    def _after_task(self) -> None:
        with self._state:
            self._tasks += 1
            self._tasks_on_process += 1
            process = self._process
            recycle = bool(self.restart_after) and self._tasks_on_process >= self.restart_after
        if process is None:
            return
        if recycle:
            log.info("engine recycled", engine=self.name, pid=process.pid, tasks=self.restart_after)
            ENGINE_RESTARTS.labels(self.engine, "recycled").inc()
            self._retire(process)
        else:
            self._arm_idle_timer()

    def _fail(self, reason: str) -> None:
        with self._state:
            self._last_error = reason
        log.warning("engine failure", engine=self.name, reason=reason)

    def _retire(self, process: P | None) -> None:
        """Close ``process`` (None: whichever runs) and forget it."""
        with self._state:
            if process is None or process is self._process:
                process, self._process = self._process, None
        if process is not None:
            process.close()

    # -- idle shutdown ------------------------------------------------------------------
    def _arm_idle_timer(self) -> None:
        if self.idle_shutdown <= 0:
            return
        timer = threading.Timer(self.idle_shutdown, self._stop_if_idle)
        timer.daemon = True
        with self._state:
            self._idle_timer = timer
        timer.start()

    def _cancel_idle_timer(self) -> None:
        with self._state:
            timer, self._idle_timer = self._idle_timer, None
        if timer is not None:
            timer.cancel()

    def _stop_if_idle(self) -> None:
        # A task that began meanwhile holds _busy; it re-arms the timer when done.
        if not self._busy.acquire(blocking=False):
            return
        try:
            with self._state:
                process = self._process
                self._idle_timer = None
            if process is not None:
                log.info("engine idle, stopping", engine=self.name, pid=process.pid)
                self._retire(process)
        finally:
            self._busy.release()
