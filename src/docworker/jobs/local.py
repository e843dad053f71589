"""The local executor: a supervised pool of worker processes fed from the job store.

One supervisor thread in the service process owns the pool. It claims queued
jobs from the store for idle workers (the tenant running the fewest jobs first,
then priority, then age: see ``executor.fair_claiming``), sends each job over
a pipe, and writes every state change back to the store. It enforces what a
worker cannot enforce on itself: the wall-clock limit, the memory limit (RSS
of the worker and its children), cancellation of running jobs (the worker is
killed with its process group) and recycling after ``jobs_per_worker`` jobs.

Retries, decided in one place (:class:`~docworker.errors.AfterFailure`, by the
error's class, with the delay of :mod:`docworker.jobs.retries`) and applied by
:mod:`docworker.jobs.outcomes`, shared with the celery executor:

* a worker that died on its own (a lost worker), an engine that crashed, failed or
  whose circuit breaker was open, the blob store down: the job is queued again after
  a delay that doubles with each attempt, with jitter (``executor.retry_delay`` up to
  ``executor.retry_max_delay``), up to ``executor.max_attempts`` attempts in all,
  then ``dead``;
* a job killed at its wall-clock limit (``executor.job_timeout``) or its memory
  limit (``executor.memory_limit_mb``), or whose engine ran past its own time
  limit: ``dead`` after that one attempt, the limit it passed in its error. The
  same document would pass it again and hold a worker for the whole limit each
  time (a poison document);
* an input error: ``failed`` at once.

The engines' circuit breakers (:mod:`docworker.engines.breaker`, shared with the API
of the same process) hear how each attempt ended. A job that needs an engine whose
breaker is open fails fast before it is handed to a worker (a transient failure,
retried as above); one that needs an engine whose breaker is half-open while another
job tries the engine is queued again after ``executor.retry_delay``, its attempt not
counted.

Jobs left ``running`` by a service that crashed are found by their stale
heartbeat and queued again. While the job database does not answer, running jobs go
on and no job is claimed; the outcomes of attempts that end meanwhile are kept and
written once it answers again (``executor.store_outage_timeout`` at most), if the
attempt is still the job's. A worker never outlives the service: it waits on a
lifeline pipe from the supervisor and, once the service is gone, however it went,
ends its own process group (engines included), so no job runs on unsupervised
while its restarted service runs it again.

Workers are forked from a preloaded template (:mod:`docworker.jobs.template`), so
that replacing one costs milliseconds, and each writes only in its own folder under
the data folder (:mod:`docworker.jobs.workdirs`), deleted once the supervisor has
ended the worker and everything it started; the folders of executors gone (killed,
crashed) are deleted when an executor of the same host starts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import psutil
import structlog
from opentelemetry.trace import Span

from docworker import metrics_store
from docworker.config import Settings
from docworker.engines.breaker import FFMPEG_JOBS, Breakers, engines_of
from docworker.errors import (
    DependencyDown,
    DocworkerError,
    EngineFailed,
    EngineUnavailable,
    InvalidParameter,
    JobTimeout,
    MemoryLimitExceeded,
)
from docworker.jobs.cost import process_tree, tree_cpu_seconds
from docworker.jobs.events import JobEventBus, JobEvents
from docworker.jobs.outcomes import (
    STORE_RETRY_FIRST,
    STORE_RETRY_MAX,
    attempt_held,
    end_attempt,
    job_message,
    job_span,
    record_answer,
)
from docworker.jobs.retries import Backoff
from docworker.jobs.store import (
    ClaimPolicy,
    JobCost,
    JobRecord,
    JobStatus,
    JobStore,
)
from docworker.jobs.template import start_worker, worker_config, worker_context
from docworker.jobs.workdirs import ExecutorFolder, process_gone, remove, sweep
from docworker.jobs.worker import receive, send
from docworker.metrics import JOB_DURATION, WORKER_RESTARTS, WORKERS_BUSY, WORKERS_TOTAL
from docworker.sealing import SecretKeys
from docworker.tracing import now_ns, set_attributes, with_span

log = structlog.get_logger(__name__)

#: How long a worker may take to start (import its modules) before it is replaced.
START_TIMEOUT = 60.0
#: A running job's heartbeat is written this often; a job whose heartbeat is older
#: than ``STALE_AFTER`` belongs to an executor that died and is queued again.
HEARTBEAT_INTERVAL = 5.0
STALE_AFTER = 30.0
#: How often the processes a worker started are looked up for its memory count.
CHILDREN_INTERVAL = 2.0


@dataclass
class _Slot:
    """One worker process and the job it runs."""

    process: BaseProcess
    conn: Connection
    #: The writing end of the worker's lifeline: closing it ends the worker.
    lifeline: Connection
    #: The worker's own folder (its temporary folder), deleted once it is ended.
    folder: Path
    started_at: float = field(default_factory=time.monotonic)
    ready: bool = False
    job: JobRecord | None = None
    job_started: float = 0.0
    #: CPU-seconds of the worker's process tree when it was handed its job.
    job_cpu_start: float = 0.0
    jobs_done: int = 0
    #: The executor's settings generation the worker started with (see ``reconfigure``).
    generation: int = 0
    #: The job's latest progress (fraction, message) not yet written to the store:
    #: written by the housekeeping, at most once a second, so that a job of a few
    #: milliseconds costs no write for its progress.
    progress: tuple[float, str | None] | None = None

    @property
    def idle(self) -> bool:
        return self.ready and self.job is None and self.process.is_alive()

    def job_cost(self, pages: int | None = None) -> JobCost:
        """What the job running now has used so far (see :mod:`docworker.jobs.cost`)."""
        used = 0.0
        if self.process.pid is not None:
            used = tree_cpu_seconds(self.process.pid) - self.job_cpu_start
        return JobCost(cpu_seconds=round(max(used, 0.0), 3), pages=pages)

    #: The worker's process and those it started (engines), looked up again every
    #: ``CHILDREN_INTERVAL`` seconds.
    _procs: list[psutil.Process] = field(default_factory=list)
    _procs_at: float = -CHILDREN_INTERVAL

    def started_processes(self) -> list[psutil.Process]:
        """The processes the worker started (engines, in sessions of their own out of its
        process group): looked up now while the worker lives, else as last seen (a dead
        worker's engines are no longer its children)."""
        if self.process.is_alive():
            return _descendants(self.process.pid)
        return self._procs[1:]

    def rss_bytes(self) -> int:
        """Resident memory of the worker and everything it started."""
        now = time.monotonic()
        if now - self._procs_at >= CHILDREN_INTERVAL:
            pid = self.process.pid
            self._procs = _processes(process_tree(pid)) if pid is not None else []
            self._procs_at = now
        if not self._procs:
            return 0
        total = 0
        for proc in self._procs:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue  # an engine that ended since
        return total


@dataclass
class _Unwritten:
    """An attempt's outcome the job database did not take (it did not answer): written
    when it answers again, unless the attempt was taken back meanwhile."""

    job: JobRecord
    #: Writes the outcome (given no breakers: they heard of it at the first try).
    write: Callable[[Breakers | None], JobRecord]
    since: float = field(default_factory=time.monotonic)
    wait: float = STORE_RETRY_FIRST
    next_try: float = 0.0


class LocalExecutor:
    """Runs jobs from ``store`` in ``settings.executor.workers`` worker processes."""

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        events: JobEventBus | None = None,
        *,
        keys: SecretKeys | None = None,
        breakers: Breakers | None = None,
    ) -> None:
        """``breakers``: the engines' circuit breakers, shared with the API of this
        process (its own when None)."""
        self.settings = settings
        self.config = settings.executor
        self.store = store
        self.events: JobEventBus = events or JobEvents()
        token = uuid.uuid4().hex[:8]
        self.name = f"{socket.gethostname()}:{os.getpid()}:{token}"
        self.folder = ExecutorFolder(settings.data_dir, token)
        self._ctx = worker_context(self.config.worker_start)
        self._slots: list[_Slot] = []
        self._wake_r, self._wake_w = self._ctx.Pipe(duplex=False)
        self._stopping = threading.Event()
        #: Set when the service drains: running jobs go on, no other is claimed. A plain
        #: flag, so that a signal handler may set it.
        self._holding = False
        self._thread: threading.Thread | None = None
        self._last_housekeeping = 0.0
        #: Whether queued work may be waiting for a free worker: set when a job is
        #: queued (notify) or a worker comes free, cleared when a claim finds nothing;
        #: the store is asked anyway every ``poll_interval`` (work queued elsewhere,
        #: retries whose delay ran out).
        self._look = True
        self._looked_at = 0.0
        keys = keys or SecretKeys.from_settings(settings)
        self._keys = keys
        self._worker_config = worker_config(settings, keys)
        #: Bumped by ``reconfigure``: a worker of an older generation is replaced once idle.
        self._generation = 0
        self.breakers = breakers or Breakers(settings.breaker)
        self._backoff = Backoff.of(self.config)
        self._claims = ClaimPolicy(
            fair=self.config.fair_claiming, max_running=self.config.max_running_per_tenant
        )
        # Imported here: the registry imports every operation, which this module's
        # importers (the worker template among them) need not.
        from docworker.operations import OPERATIONS

        self._ffmpeg_cap = settings.ffmpeg.max_concurrent or max(1, self.config.workers - 1)
        self._without_ffmpeg = frozenset(OPERATIONS) - FFMPEG_JOBS
        #: Outcomes of attempts that ended while the job database did not answer.
        self._unwritten: list[_Unwritten] = []
        #: Whether the job database failed the last time it was used (logged once).
        self._store_away = False

    # -- public surface -----------------------------------------------------------------
    def start(self) -> None:
        """Start the worker processes and the supervisor thread."""
        self._requeue_orphans()
        for folder in sweep(self.settings.data_dir):
            log.info("work folder of a gone executor deleted", folder=str(folder))
        self.folder.create()
        for _ in range(self.config.workers):
            self._slots.append(self._spawn())
        WORKERS_TOTAL.set(len(self._slots))
        self._thread = threading.Thread(
            target=self._supervise, name="docworker-executor", daemon=True
        )
        self._thread.start()
        log.info("executor started", executor=self.name, workers=len(self._slots))

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking jobs, queue running ones again, and end the worker processes."""
        self._stopping.set()
        self.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        for slot in self._slots:
            if slot.job is not None:
                self.store.requeue_worker(self.name)
                break
        for slot in self._slots:
            self._end(slot, graceful=True)
        self._slots.clear()
        self.folder.remove()
        WORKERS_TOTAL.set(0)
        WORKERS_BUSY.set(0)
        log.info("executor stopped", executor=self.name)

    def hold(self) -> None:
        """Claim no more jobs; those running go on (the service drains). Safe in a signal
        handler: it only sets a flag that the supervisor reads."""
        self._holding = True

    def wait_idle(self, timeout: float) -> bool:
        """Wait ``timeout`` seconds at most for the jobs running now to end; whether they
        all did. Call :meth:`hold` first, or new jobs may start meanwhile."""
        deadline = time.monotonic() + timeout
        while self.busy():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    def _requeue_orphans(self) -> None:
        """Queue again, at once, the jobs an executor of this host left running when it died.

        Executors elsewhere are judged by their heartbeats (``STALE_AFTER``); one on
        this host is judged by its process, which either runs or does not
        (:func:`~docworker.jobs.workdirs.process_gone`).
        """
        host = socket.gethostname()
        running, _ = self.store.list(status=[JobStatus.RUNNING], limit=500, include_parts=True)
        # Each executor's earliest claim: its process ran then, so one started later is another.
        claimed: dict[str, float] = {}
        for record in running:
            if record.worker and record.worker != self.name:
                at = record.started_at.timestamp() if record.started_at else time.time()
                claimed[record.worker] = min(at, claimed.get(record.worker, at))
        for worker, since in claimed.items():
            name, _, rest = worker.partition(":")
            pid = rest.partition(":")[0]
            if name == host and pid.isdigit() and process_gone(int(pid), since):
                for record in self.store.requeue_worker(worker):
                    log.warning("job of a dead executor queued again", job_id=record.id)

    def queued(self, record: JobRecord) -> None:
        """A job was queued: a worker of this executor claims it from the store."""
        self.notify()

    def cancelled(self, record: JobRecord) -> None:
        """A job's cancellation was asked for: a running one is stopped at once."""
        self.notify()

    def queued_many(self, records: Iterable[JobRecord]) -> None:
        """Jobs were queued together (a batch's children): the supervisor is woken once,
        ``records`` not read (its workers claim them from the store)."""
        self.notify()

    def cancelled_many(self, records: Iterable[JobRecord]) -> None:
        """The cancellation of jobs was asked for together (a batch's): woken once."""
        self.notify()

    def notify(self) -> None:
        """Wake the supervisor: a job was queued or a cancel requested."""
        with contextlib.suppress(OSError):
            self._wake_w.send_bytes(b"!")

    def pids(self) -> list[int]:
        """Process ids of the worker processes (for health and tests)."""
        return [s.process.pid for s in self._slots if s.process.pid is not None]

    def busy(self) -> dict[str, int]:
        """Job id → worker pid, for the jobs running now."""
        return {s.job.id: s.process.pid for s in self._slots if s.job and s.process.pid}

    # -- the supervisor loop --------------------------------------------------------------
    def _supervise(self) -> None:
        while not self._stopping.is_set():
            try:
                self._tick()
            except Exception:
                log.exception("executor tick failed")
                time.sleep(self.config.poll_interval)

    def reconfigure(self, settings: Settings) -> None:
        """Run the jobs claimed from now on with ``settings`` (their limits, the
        engines' options): each worker is replaced by one started with them once it is
        idle, a running job finishing with the settings it started with."""
        self._worker_config = worker_config(settings, self._keys)
        self._generation += 1
        self.notify()

    def _tick(self) -> None:
        if self._unwritten:
            self._write_unwritten()
        for slot in list(self._slots):
            if slot.generation != self._generation and slot.ready and slot.job is None:
                self._replace(slot, "reconfigured")
        try:
            self._dispatch()
        except DependencyDown as exc:
            self._store_failed(exc)
        waitables: list[Any] = [self._wake_r]
        for slot in self._slots:
            waitables.extend([slot.conn, slot.process.sentinel])
        busy = any(s.job for s in self._slots)
        timeout = min(self.config.poll_interval, 0.1 if busy else self.config.poll_interval)
        for ready in wait(waitables, timeout):
            if ready is self._wake_r:
                self._drain_wake()
            else:
                self._on_ready(ready)
        self._enforce_limits()
        if time.monotonic() - self._last_housekeeping >= min(HEARTBEAT_INTERVAL, 1.0):
            try:
                self._housekeeping()
            except DependencyDown as exc:
                self._store_failed(exc)
            else:
                if self._store_away and not self._unwritten:
                    self._store_away = False
                    log.info("job store answers again", executor=self.name)

    def _store_failed(self, exc: DependencyDown) -> None:
        """The job database did not answer: running jobs go on (their outcomes are kept
        until it answers), no job is claimed; the outage is logged once."""
        self._last_housekeeping = time.monotonic()
        if not self._store_away:
            self._store_away = True
            log.warning("job store down: no job claimed until it answers", error=exc.detail)

    def _drain_wake(self) -> None:
        while self._wake_r.poll():
            self._wake_r.recv_bytes()
        self._look = True

    def _dispatch(self) -> None:
        """Give queued jobs to idle workers: a claim per idle worker while claims find
        work, and none while nothing can have changed (a claim is a write transaction)."""
        now = time.monotonic()
        if not self._look and now - self._looked_at < self.config.poll_interval:
            return
        for slot in self._slots:
            if self._stopping.is_set() or self._holding or not slot.idle:
                continue
            claimed_at = now_ns()
            job = self.store.claim_next(
                self.name, operations=self._claimable(), policy=self._claims
            )
            if job is None:
                self._look = False
                self._looked_at = now
                return
            with job_span("job claim", job, start_time=claimed_at) as span:
                self._start_job(slot, job, span)

    def _claimable(self) -> frozenset[str] | None:
        """The operations a free worker may take: all (None), or all but those that run
        FFmpeg while ``ffmpeg.max_concurrent`` of them run."""
        running = sum(
            1 for slot in self._slots if slot.job is not None and slot.job.operation in FFMPEG_JOBS
        )
        return self._without_ffmpeg if running >= self._ffmpeg_cap else None

    def _start_job(self, slot: _Slot, job: JobRecord, span: Span) -> None:
        """Hand the claimed ``job`` to ``slot``'s worker, whose ``job run`` span follows
        ``span`` (the claim's)."""
        try:
            if not self.breakers.begin(engines_of(job.operation, job.input)):
                # An engine's breaker is half-open and another job is trying it.
                self.store.defer(job.id, delay=self.config.retry_delay)
                return
        except EngineUnavailable as exc:
            log.info("job refused: engine breaker open", job_id=job.id, engine=exc.fields["engine"])
            self._attempt_failed(job, exc.to_dict(), cost=JobCost(), heard=False)
            return
        slot.job = job
        slot.job_started = time.monotonic()
        slot.job_cpu_start = tree_cpu_seconds(slot.process.pid) if slot.process.pid else 0.0
        WORKERS_BUSY.set(sum(1 for s in self._slots if s.job))
        message = job_message(self.store, job)
        message["trace"] = with_span(job.trace, span)
        self.events.publish(job.id, job)
        try:
            send(slot.conn, message)
        except OSError:
            self._worker_lost(slot, "died")
        except TypeError as exc:
            # The job's message does not encode (parameters stored before they were checked
            # as they are now): the worker never got it, so the job ends here rather than
            # holding the slot until the job timeout, attempt after attempt.
            slot.job = None
            WORKERS_BUSY.set(sum(1 for s in self._slots if s.job))
            self.breakers.release(engines_of(job.operation, job.input))
            error = InvalidParameter("params", f"the job cannot be handed to a worker: {exc}")
            self._attempt_failed(job, error.to_dict(), cost=JobCost(), heard=False)

    def _on_ready(self, ready: Any) -> None:
        slot = next((s for s in self._slots if ready in (s.conn, s.process.sentinel)), None)
        if slot is None:
            return
        if ready is slot.conn:
            try:
                message = receive(slot.conn)
            except (EOFError, OSError):
                self._worker_lost(slot, "died")
                return
            self._on_message(slot, message)
        elif not slot.process.is_alive():
            self._worker_lost(slot, "died")

    def _on_message(self, slot: _Slot, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "ready":
            slot.ready = True
            self._look = True
            return
        job = slot.job
        if job is None or message.get("job_id") != job.id:
            return
        if kind == "progress":
            slot.progress = (float(message["fraction"]), message.get("message"))
            return
        JOB_DURATION.labels(job.operation).observe(time.monotonic() - slot.job_started)
        pages = message.get("pages")
        cost = slot.job_cost(pages if isinstance(pages, int) else None)
        slot.job = None
        slot.progress = None
        slot.jobs_done += 1
        self._look = True
        if kind in ("split", "done", "error"):
            with job_span("job record", job) as span:
                set_attributes(span, outcome=kind)
                self._write(
                    job,
                    lambda breakers: record_answer(
                        self.store,
                        job,
                        message,
                        cost=cost,
                        backoff=self._backoff,
                        breakers=breakers,
                    )[0],
                )
        if slot.jobs_done >= self.config.jobs_per_worker:
            self._replace(slot, "recycled")
        WORKERS_BUSY.set(sum(1 for s in self._slots if s.job))

    # -- outcomes ---------------------------------------------------------------------
    def _attempt_failed(
        self, job: JobRecord, error: dict[str, Any], *, cost: JobCost, heard: bool = True
    ) -> None:
        """End the job's attempt as its error's class says (the module docstring); the
        engines' breakers hear of it unless ``heard`` is False (the attempt was refused
        by a breaker: it tried no engine)."""
        self._write(
            job,
            lambda breakers: end_attempt(
                self.store,
                job,
                error,
                cost=cost,
                backoff=self._backoff,
                breakers=breakers,
                heard=heard,
            ),
        )

    def _write(self, job: JobRecord, write: Callable[[Breakers | None], JobRecord]) -> None:
        """Write an attempt's outcome (``write`` tells the breakers it is given how the
        attempt ended); kept to be written later when the job database does not answer
        (:meth:`_write_unwritten`, the breakers told already)."""
        try:
            record = write(self.breakers)
        except DependencyDown as exc:
            log.warning(
                "job outcome not written: the job store is down; trying again",
                job_id=job.id,
                error=exc.detail,
            )
            self._store_away = True
            self._unwritten.append(_Unwritten(job, write, next_try=time.monotonic()))
            return
        self._finished(record)
        if record.status == "queued":
            self.notify()

    def _write_unwritten(self) -> None:
        """Try again the outcomes the job database did not take, each after a wait that
        grows while it does not answer; one kept longer than
        ``executor.store_outage_timeout`` is given up (the job, left running, is taken
        back when its heartbeat is stale and runs again). An attempt taken back
        meanwhile (by another executor's sweep) keeps its new course: its outcome is
        dropped."""
        now = time.monotonic()
        for item in list(self._unwritten):
            if now < item.next_try:
                continue
            try:
                if attempt_held(self.store, item.job):
                    record = item.write(None)
                    log.info("job outcome written: the job store is back", job_id=item.job.id)
                    self._finished(record)
                    if record.status == "queued":
                        self.notify()
                else:
                    log.warning(
                        "job outcome dropped: the attempt was taken back", job_id=item.job.id
                    )
            except DependencyDown:
                if now - item.since > self.config.store_outage_timeout:
                    log.error("job outcome given up: the job store stayed down", job_id=item.job.id)
                    self._unwritten.remove(item)
                else:
                    item.next_try = now + item.wait
                    item.wait = min(item.wait * 2, STORE_RETRY_MAX)
                continue
            self._unwritten.remove(item)

    def _finished(self, record: JobRecord) -> None:
        self.events.publish(record.id, record)
        if record.parent_id is not None:
            # The part's end moved its parent on (progress; queued to merge).
            self.events.publish(record.parent_id)

    def _fail_running(self, slot: _Slot, error: DocworkerError, reason: str) -> None:
        job = slot.job
        cost = slot.job_cost()  # read before the kill takes the processes away
        self._replace(slot, reason)
        if job is not None:
            log.warning("job attempt ended by the executor", job_id=job.id, reason=reason)
            self._attempt_failed(job, error.to_dict(), cost=cost)

    def _worker_lost(self, slot: _Slot, reason: str) -> None:
        """A worker died on its own: its job is retried (an engine failure) and the worker
        is replaced."""
        exit_code = slot.process.exitcode
        self._fail_running(
            slot,
            EngineFailed(f"the worker process running the job died (exit code {exit_code})"),
            reason,
        )

    # -- limits and housekeeping --------------------------------------------------------------
    def _enforce_limits(self) -> None:
        now = time.monotonic()
        limit_bytes = self.config.memory_limit_mb * 1024 * 1024
        for slot in list(self._slots):
            if slot.job is None:
                if not slot.ready and now - slot.started_at > START_TIMEOUT:
                    self._replace(slot, "start-timeout")
                continue
            if now - slot.job_started > self.config.job_timeout:
                self._fail_running(slot, JobTimeout(self.config.job_timeout), "timeout")
            elif slot.rss_bytes() > limit_bytes:
                self._fail_running(slot, MemoryLimitExceeded(self.config.memory_limit_mb), "memory")

    def _housekeeping(self) -> None:
        self._last_housekeeping = time.monotonic()
        running = {s.job.id: s for s in self._slots if s.job is not None}
        if running:
            for job_id in self.store.cancel_requested_among(running):
                slot = running[job_id]
                cost = slot.job_cost()
                if slot.job is not None:
                    self.breakers.release(engines_of(slot.job.operation, slot.job.input))
                slot.job = None
                self._replace(slot, "cancelled")
                self._finished(self.store.mark_cancelled(job_id, cost=cost))
            self._write_progress()
        # The jobs whose outcome waits to be written are this executor's still.
        beating = [s.job.id for s in self._slots if s.job is not None]
        self.store.heartbeat(beating + [item.job.id for item in self._unwritten])
        # While outcomes wait to be written, the database was away: the heartbeats of
        # every executor are as old as the outage, none is judged by them yet.
        for record in [] if self._unwritten else self.store.requeue_stale(older_than=STALE_AFTER):
            log.warning(
                "job of a lost executor queued again", job_id=record.id, status=record.status
            )
            self._finished(record)
        WORKERS_BUSY.set(sum(1 for s in self._slots if s.job))

    def _write_progress(self) -> None:
        for slot in self._slots:
            if slot.job is not None and slot.progress is not None:
                fraction, text = slot.progress
                slot.progress = None
                self.store.set_progress(slot.job.id, fraction, text)
                self.events.publish(slot.job.id)

    # -- process management ---------------------------------------------------------------
    def _spawn(self) -> _Slot:
        folder = self.folder.new_worker_folder()
        process, conn, lifeline = start_worker(self._ctx, self._worker_config, folder)
        return _Slot(
            process=process,
            conn=conn,
            lifeline=lifeline,
            folder=folder,
            generation=self._generation,
        )

    def _replace(self, slot: _Slot, reason: str) -> None:
        WORKER_RESTARTS.labels(reason).inc()
        self._end(slot, graceful=False)
        index = self._slots.index(slot)
        self._slots[index] = self._spawn() if not self._stopping.is_set() else slot

    def _end(self, slot: _Slot, *, graceful: bool) -> None:
        """End the worker, every process it started, and delete its folder."""
        process = slot.process
        engines = slot.started_processes()
        if graceful and process.is_alive():
            with contextlib.suppress(OSError):
                send(slot.conn, {"type": "stop"})
            process.join(2.0)
        if process.is_alive() and process.pid is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                process.kill()
            process.join(5.0)
        for engine in engines:
            with contextlib.suppress(psutil.Error):
                engine.kill()
        psutil.wait_procs(engines, timeout=5.0)
        slot.conn.close()
        slot.lifeline.close()
        remove(slot.folder)
        if process.pid is not None and not process.is_alive():
            # Its counts kept, its live gauges dropped, before the next scrape.
            metrics_store.process_ended(process.pid)


def _descendants(pid: int | None) -> list[psutil.Process]:
    """Every process ``pid`` started, and theirs."""
    return _processes(process_tree(pid)[1:]) if pid is not None else []


def _processes(pids: list[int]) -> list[psutil.Process]:
    """psutil's handles of ``pids``, less those that ended since."""
    found = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            found.append(psutil.Process(pid))
    return found
