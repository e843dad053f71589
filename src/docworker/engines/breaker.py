"""Circuit breakers of the external engines: work that needs a failing engine fails fast.

One breaker per engine the service depends on (LibreOffice, Tesseract, FFmpeg,
Chromium, the blob store, and the celery executor's broker), each in one of three
states:

* ``closed``: work runs; each failure of the engine in a row is counted, and
  ``breaker.threshold`` of them open it. A success resets the count. Only the
  engine's own failures count (it crashed, it is not installed or would not start,
  the store did not answer: ``engine-failed``, ``dependency-down``); a bad input, a
  timeout or a memory limit says nothing about the engine and is not counted;
* ``open``: work that needs the engine is refused with
  :class:`~docworker.errors.EngineUnavailable` (503, naming the engine, with
  ``Retry-After``) without trying it, at submission where the operation tells the
  engine, and by the executor before a queued job is handed to a worker; work that
  needs other engines goes on;
* ``half_open``: once ``breaker.cooldown`` has passed, work is accepted again and one
  job that needs the engine is let through to try it; the executor holds the others
  back (queued again for a moment, their attempt not counted) while it runs. Its
  success closes the breaker, its failure opens it for another cool-down.

:class:`Breakers` holds them all and is shared by the executor's supervisor, which
records what each attempt shows of its engines, and the API, which refuses work and
reports the states in ``/health``. Each process keeps breakers of its own, opening on
the failures it sees; with a :class:`BreakerBoard` (the job store's, see
:mod:`docworker.jobs.breaker_board`) a breaker that opens is posted there until it
half-opens, and one that closes is taken down, so that every other process (API
replicas, Celery worker processes) refuses work needing the engine meanwhile and says
so in ``/health``. Only the trial after the cool-down stays each process's own.
Everything here is thread-safe; the board's I/O is done outside the lock, and a board
that cannot be reached leaves each process to its own breakers.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import structlog

from docworker.config import BreakerSettings
from docworker.errors import EngineUnavailable
from docworker.metrics import BREAKER_OPENED, BREAKER_STATE, BREAKER_STATE_VALUES

log = structlog.get_logger(__name__)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


#: The engines that have a breaker, by the name errors and jobs give them (lower case),
#: and the name a client reads in a refusal.
ENGINES: dict[str, str] = {
    "libreoffice": "LibreOffice",
    "tesseract": "Tesseract",
    "ffmpeg": "FFmpeg",
    "chromium": "Chromium",
    "storage": "storage",
    "broker": "broker",
}
#: The broker's breaker: told of each publish by the celery executor's API side.
BROKER = frozenset({"broker"})
#: The error codes that count as a failure of the engine the error names.
ENGINE_FAILURES = frozenset({"engine-failed", "dependency-down"})
#: Operations that always run on an engine, whatever their input (others say it at
#: admission: see :class:`~docworker.operations.base.EngineBound`).
OPERATION_ENGINES: dict[str, str] = {"ocr": "tesseract", "video": "ffmpeg", "audio": "ffmpeg"}
#: Operations whose every job runs FFmpeg (``ffmpeg.max_concurrent`` caps them).
FFMPEG_JOBS = frozenset(name for name, engine in OPERATION_ENGINES.items() if engine == "ffmpeg")


def engine_key(name: object) -> str | None:
    """The breaker of an engine named in an error (``"LibreOffice"``), or None."""
    key = str(name).strip().lower() if name else ""
    return key if key in ENGINES else None


def engines_of(operation: str, stored_input: Mapping[str, Any] | None) -> frozenset[str]:
    """The engines a job is known to need before it runs: the blob store (every job
    reads its input there and writes its result), the engine its operation always uses,
    and the one admission recorded in its input (``engine``)."""
    found = {"storage"}
    if operation in OPERATION_ENGINES:
        found.add(OPERATION_ENGINES[operation])
    tagged = engine_key((stored_input or {}).get("engine"))
    if tagged is not None:
        found.add(tagged)
    return frozenset(found)


def failed_engines(error: Mapping[str, Any], needed: Collection[str]) -> frozenset[str]:
    """The engines an attempt's ``error`` counts against: the engine (or the blob store)
    it names, else, for a failure that names none (the worker died under the job), the
    engines the job was known to need. Empty for any other error."""
    if str(error.get("code")) not in ENGINE_FAILURES:
        return frozenset()
    named = engine_key(error.get("engine"))
    if named is not None:
        return frozenset({named})
    if "dependency" in error:  # the job database, or another service: no engine's fault
        return frozenset({"storage"}) if error["dependency"] == "storage" else frozenset()
    return frozenset(needed) - {"storage"}


def _show(engine: str, state: BreakerState | str) -> None:
    """Set the breaker-state gauge of ``engine`` (:data:`~docworker.metrics.BREAKER_STATE`)."""
    BREAKER_STATE.labels(engine).set(BREAKER_STATE_VALUES.get(str(state), 0))


def show_states(states: Mapping[str, Mapping[str, Any]]) -> None:
    """Set the breaker-state gauges from :meth:`Breakers.status` (at a scrape)."""
    for engine, status in states.items():
        if engine in ENGINES:
            _show(engine, str(status.get("state", "closed")))


@dataclass
class CircuitBreaker:
    """The breaker of one engine (see the module docstring); call it under a lock."""

    engine: str
    threshold: int
    cooldown: float
    clock: Callable[[], float] = time.monotonic
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float | None = None
    #: Whether the one job let through while half-open runs now.
    trial: bool = False
    last_error: str | None = None

    def refusal(self) -> EngineUnavailable | None:
        """Why work needing the engine is refused now (the breaker is open), or None. An
        open breaker whose cool-down has passed half-opens here."""
        if self.state is BreakerState.OPEN and self._cooled():
            self.state = BreakerState.HALF_OPEN
            self.trial = False
            log.info("engine breaker half-open", engine=self.engine)
            _show(self.engine, self.state)
        if self.state is not BreakerState.OPEN:
            return None
        wait = max(1, math.ceil(self._remaining()))
        return EngineUnavailable(ENGINES[self.engine], wait, self.failures)

    def failed(self, reason: str | None) -> None:
        self.failures += 1
        self.last_error = reason
        self.trial = False
        opens = self.state is BreakerState.HALF_OPEN or self.failures >= self.threshold
        if opens and self.state is not BreakerState.OPEN:
            log.warning("engine breaker open", engine=self.engine, failures=self.failures)
            BREAKER_OPENED.labels(self.engine).inc()
        if opens:
            self.state = BreakerState.OPEN
            self.opened_at = self.clock()
            _show(self.engine, self.state)

    def succeeded(self) -> None:
        if self.state is not BreakerState.CLOSED:
            log.info("engine breaker closed", engine=self.engine)
            _show(self.engine, BreakerState.CLOSED)
        self.state = BreakerState.CLOSED
        self.failures = 0
        self.opened_at = None
        self.trial = False

    def status(self) -> dict[str, Any]:
        if self.state is BreakerState.OPEN and self._cooled():
            self.refusal()  # half-open now: say so
        body: dict[str, Any] = {
            "state": str(self.state),
            "failures": self.failures,
            "threshold": self.threshold,
        }
        if self.state is BreakerState.OPEN:
            body["retry_after"] = max(1, math.ceil(self._remaining()))
        if self.last_error is not None:
            body["last_error"] = self.last_error
        return body

    def _remaining(self) -> float:
        opened = self.opened_at if self.opened_at is not None else self.clock()
        return max(0.0, opened + self.cooldown - self.clock())

    def _cooled(self) -> bool:
        return self._remaining() <= 0


@dataclass(frozen=True)
class PostedBreaker:
    """An engine's breaker opened by some process, as a :class:`BreakerBoard` shows it."""

    engine: str
    #: Seconds until it half-opens (above 0: the board shows only those not yet due).
    remaining: float
    failures: int
    last_error: str | None
    #: The process that opened it.
    opened_by: str

    def refusal(self) -> EngineUnavailable:
        return EngineUnavailable(
            ENGINES[self.engine], max(1, math.ceil(self.remaining)), self.failures
        )

    def status(self, threshold: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "state": str(BreakerState.OPEN),
            "failures": self.failures,
            "threshold": threshold,
            "retry_after": max(1, math.ceil(self.remaining)),
            "opened_by": self.opened_by,
        }
        if self.last_error is not None:
            body["last_error"] = self.last_error
        return body


class BreakerBoard(Protocol):
    """Where the processes of one service post the breakers they open (see the module)."""

    def post(self, engine: str, cooldown: float, failures: int, last_error: str | None) -> None:
        """``engine``'s breaker opened here: posted until ``cooldown`` seconds from now."""

    def take_down(self, engine: str) -> None:
        """``engine``'s breaker closed here: the engine works again."""

    def posted(self) -> dict[str, PostedBreaker]:
        """The breakers other processes posted and that are not yet due to half-open, by
        engine (a reading at most a moment old)."""


class Breakers:
    """Every engine's breaker, for one process (see the module docstring)."""

    def __init__(
        self,
        settings: BreakerSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        board: BreakerBoard | None = None,
    ) -> None:
        self.enabled = settings.enabled
        self.threshold = settings.threshold
        self.cooldown = settings.cooldown
        self.board = board
        self._lock = threading.Lock()
        self._breakers = {
            engine: CircuitBreaker(
                engine,
                settings.threshold,
                settings.broker_cooldown if engine == "broker" else settings.cooldown,
                clock,
            )
            for engine in ENGINES
        }

    def check(self, engines: Iterable[str]) -> None:
        """Raise :class:`EngineUnavailable` when the breaker of one of ``engines`` is
        open, here or on the board; a submission asks this."""
        if not self.enabled:
            return
        wanted = sorted(engines)
        with self._lock:
            for engine in wanted:
                refusal = self._breakers[engine].refusal()
                if refusal is not None:
                    raise refusal
        posted = self._posted()
        for engine in wanted:
            if engine in posted:
                raise posted[engine].refusal()

    def _posted(self) -> dict[str, PostedBreaker]:
        """The board's breakers; none when there is no board or it cannot be read."""
        if self.board is None:
            return {}
        try:
            return self.board.posted()
        except Exception as exc:  # noqa: BLE001 - the board is advice: each process judges alone
            log.warning("engine breakers of other processes not read", error=repr(exc))
            return {}

    def begin(self, engines: Iterable[str]) -> bool:
        """Whether a job that needs ``engines`` may run now: :meth:`check`, then, when a
        breaker is half-open, this job becomes its trial; False while another job's trial
        runs (hold this one back until it has ended, see :meth:`ended`)."""
        if not self.enabled:
            return True
        posted = self._posted()
        with self._lock:
            breakers = [self._breakers[engine] for engine in sorted(engines)]
            for breaker in breakers:
                refusal = breaker.refusal()
                if refusal is not None:
                    raise refusal
                if breaker.engine in posted:
                    raise posted[breaker.engine].refusal()
            half_open = [b for b in breakers if b.state is BreakerState.HALF_OPEN]
            if any(breaker.trial for breaker in half_open):
                return False
            for breaker in half_open:
                breaker.trial = True
            return True

    def ended(
        self, engines: Collection[str], error: Mapping[str, Any] | None = None
    ) -> frozenset[str]:
        """Record how a job that needed ``engines`` ended: ``error`` None is a success of
        each; an error counts against the engines it names (:func:`failed_engines`) and
        ends the trial of the others without a verdict. Returns the engines it counted
        a failure against."""
        if not self.enabled:
            return frozenset()
        failed = failed_engines(error, engines) if error is not None else frozenset()
        opened: list[CircuitBreaker] = []
        closed: list[str] = []
        with self._lock:
            for engine in failed:
                breaker = self._breakers[engine]
                was = breaker.state
                breaker.failed(str(error.get("detail")) if error else None)
                if breaker.state is BreakerState.OPEN and was is not BreakerState.OPEN:
                    opened.append(breaker)
            for engine in set(engines) - failed:
                breaker = self._breakers[engine]
                if error is None:
                    if breaker.state is not BreakerState.CLOSED:
                        closed.append(engine)
                    breaker.succeeded()
                else:
                    breaker.trial = False
        self._tell_board(opened, closed)
        return failed

    def _tell_board(self, opened: list[CircuitBreaker], closed: list[str]) -> None:
        """Post the breakers that opened here, take down those that closed."""
        if self.board is None:
            return
        try:
            for breaker in opened:
                self.board.post(
                    breaker.engine, breaker.cooldown, breaker.failures, breaker.last_error
                )
            for engine in closed:
                self.board.take_down(engine)
        except Exception as exc:  # noqa: BLE001 - the board is advice: each process judges alone
            log.warning("engine breaker not posted for other processes", error=repr(exc))

    def release(self, engines: Collection[str]) -> None:
        """A job that needed ``engines`` ended saying nothing of them (it was cancelled, or
        split into parts): a half-open breaker lets the next job try."""
        with self._lock:
            for engine in engines:
                self._breakers[engine].trial = False

    def state(self, engine: str) -> BreakerState:
        with self._lock:
            self._breakers[engine].status()
            return self._breakers[engine].state

    def status(self) -> dict[str, Any]:
        """For health: each engine's breaker state, its failures in a row and threshold,
        and for an open one the seconds until it half-opens; an engine closed here but
        posted open by another process is open, with ``opened_by``."""
        posted = self._posted()
        with self._lock:
            states = {engine: breaker.status() for engine, breaker in self._breakers.items()}
        for engine, other in posted.items():
            if states.get(engine, {}).get("state") != str(BreakerState.OPEN):
                states[engine] = other.status(self.threshold)
        return states
