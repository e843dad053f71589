"""The celery executor: jobs published to a broker, one queue per family, and run by
``docworker worker`` processes anywhere (docs/distributed.md).

The job store stays the only record of a job's state. A message carries the job's id
and nothing else (its queue and priority route it); no result backend is used, results
go to the blob store and the job's row as with the local executor. So any API replica
answers for any job, and a message delivered twice, late or to a worker that dies
changes nothing by itself:

* **One writer per attempt.** A worker process starts a job only by claiming it by id
  (:meth:`~docworker.jobs.store.JobStore.claim`, a conditional ``UPDATE`` of a queued,
  due job). A message for a job that has ended is acknowledged and skipped; one for a
  job running in a live worker too. A job left ``running`` by a worker process that is
  gone (this host: its process; elsewhere: its heartbeat) is taken back (an attempt
  counted, retried or ``dead``) and claimed anew.
* **Nothing lost.** Messages are acknowledged after the job's attempt
  (``acks_late``) and given back to the broker when the worker process dies
  (``reject_on_worker_lost``); each ``docworker worker`` also takes back, every
  ``celery.sweep_interval``, the jobs whose heartbeats stopped and publishes them again,
  and publishes again the queued jobs no worker took for ``celery.republish_after``
  (their message lost: a publish that failed after the store took the change, a broker
  that lost what it held); a message published twice runs the job once.
* **The job store away.** A claim is delivered again later; an attempt's outcome is
  written again until the database answers (``executor.store_outage_timeout``), if the
  attempt is still the job's (:func:`~docworker.jobs.outcomes.write_when_back`).
* **Limits, cancel, heartbeats in the worker process.** A job runs in a Celery worker
  process (a prefork child, forked from a ``docworker worker`` that loaded every
  parser first) through the same code as the local executor's workers
  (:func:`~docworker.jobs.worker.execute_job`). A watch thread beside it writes the
  heartbeat and progress, and ends the attempt when the job's cancellation is asked
  for, when it runs past ``executor.job_timeout`` or when the process and what it
  started use more than ``executor.memory_limit_mb`` (resident memory, read as the local
  executor reads it): it writes the outcome (``cancelled``, or ``dead`` with the limit)
  and kills the engines and the process, which Celery replaces. The ``RLIMIT_DATA``
  cap of local workers applies too. Celery's soft and hard time limits back the watch up
  (``celery.time_limit_margin`` past the job's limit): a job still running at the hard
  limit is recorded ``dead`` by the ``docworker worker`` whose process Celery killed.
* **Retries** as the error's class says, after the backoff's delay
  (:mod:`docworker.jobs.outcomes`, as the local executor); a job queued again is
  published with its retry delay as the message's countdown.
* **Breakers, events, cache.** Each worker process keeps engine circuit breakers of its
  own (:mod:`docworker.engines.breaker`: it opens on the failures it sees, and posts
  those that open in the job store for the API and the other workers,
  :mod:`docworker.jobs.breaker_board`; the main process has none); its job store writes
  each change's event and webhook deliveries (:mod:`docworker.jobs.journal`) for the API
  replicas to deliver, and announces them over Redis with ``events.redis_url`` (as does
  the sweep of ``docworker worker``'s own process: :func:`announce_changes`); a result
  that succeeded whole is kept in the result cache's shared tier.
* **Batches.** Each child of a batch is published as a job of its own.
* **Parts.** A job that splits (long OCR) publishes each part to its family's queue, so
  the parts run across the fleet; the attempt that ends the last part publishes the
  job again to merge them.
* **Recycling.** A worker process is replaced after ``celery.max_tasks_per_child`` jobs
  (and, when set, once its memory is over ``celery.max_memory_per_child_mb``).

A message is a turn of its family: with fair claims (the default) the worker process
that takes it claims the job the local executor would claim among the family's queued
ones (fair across tenants, each tenant's cap held), which may be another job than the
message's; there are as many messages as queued jobs (:meth:`_Child.claim`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import psutil
import structlog
from celery import Celery, signals
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from kombu.entity import Exchange, Queue
from kombu.exceptions import ChannelError, KombuError
from redis.exceptions import RedisError

from docworker.config import Settings
from docworker.engines.breaker import BROKER, Breakers, engines_of
from docworker.errors import (
    DependencyDown,
    DocworkerError,
    EngineUnavailable,
    JobTimeout,
    MemoryLimitExceeded,
    NotFound,
)
from docworker.jobs.backlog import FAMILY_OF
from docworker.jobs.breaker_board import StoreBreakerBoard
from docworker.jobs.cost import process_tree, tree_cpu_seconds
from docworker.jobs.events import JobEventBus, RedisJobEvents, event_bus
from docworker.jobs.outcomes import (
    end_attempt,
    job_message,
    job_span,
    record_answer,
    write_when_back,
)
from docworker.jobs.retries import Backoff
from docworker.jobs.store import (
    TERMINAL_STATUSES,
    ClaimPolicy,
    JobCost,
    JobRecord,
    JobStatus,
    JobStore,
)
from docworker.jobs.webhooks import journal
from docworker.jobs.workdirs import ExecutorFolder, process_gone, sweep
from docworker.jobs.worker import execute_job, prepare_process
from docworker.metrics import JOB_DURATION, WORKER_RESTARTS, WORKERS_BUSY
from docworker.operations import OPERATIONS
from docworker.operations.base import Family
from docworker.sealing import SecretKeys
from docworker.tracing import configure_tracing, set_attributes

log = structlog.get_logger(__name__)

#: The one task: run the job whose id the message names.
TASK = "docworker.run_job"
#: The broker's priority levels (0..9 on both brokers).
LEVELS = 10
#: A running job's heartbeat is written this often; one whose heartbeat is older than
#: ``STALE_AFTER`` belongs to a worker that is gone and is taken back.
HEARTBEAT_INTERVAL = 5.0
STALE_AFTER = 30.0
#: How often the watch thread looks at the job's cancellation, its time and its memory.
WATCH_INTERVAL = 0.5
#: How often the processes a job started are looked up again for its memory count.
CHILDREN_INTERVAL = 2.0
#: The operations of each family: a message's turn goes to one of its family's jobs.
FAMILY_OPERATIONS: dict[Family, frozenset[str]] = {
    family: frozenset(name for name, op in OPERATIONS.items() if op.queue is family)
    for family in Family
}
#: Seconds a request refused because the broker does not answer is told to wait.
BROKER_RETRY_AFTER = 5


def queue_name(settings: Settings, family: Family | str) -> str:
    """The broker queue of ``family``."""
    return f"{settings.celery.queue_prefix}{Family(family).value}"


def _is_redis(url: str) -> bool:
    return urlsplit(url).scheme in {"redis", "rediss", "redis+socket"}


def broker_priority(priority: int, *, redis: bool) -> int:
    """A job's priority (higher runs first; 0 normal) as the broker's: ten levels, the
    normal one fifth from the bottom, so four below it and five above; priorities beyond
    share the extreme levels. Redis takes its lowest number first, RabbitMQ its highest."""
    level = min(LEVELS - 1, max(0, 4 + priority))
    return LEVELS - 1 - level if redis else level


def make_app(settings: Settings) -> Celery:
    """The Celery application of this deployment: its queues and the guarantees the
    module docstring lists. The API publishes with it; ``docworker worker`` runs it."""
    config = settings.celery
    exchange = Exchange(f"{config.queue_prefix}docworker", type="direct")  # type: ignore[no-untyped-call]
    queues = [
        Queue(  # type: ignore[no-untyped-call]
            queue_name(settings, family),
            exchange,
            routing_key=queue_name(settings, family),
            queue_arguments={"x-max-priority": LEVELS - 1},
        )
        for family in Family
    ]
    transport: dict[str, Any] = {"visibility_timeout": config.visibility_timeout}
    if _is_redis(config.broker_url):
        transport |= {"priority_steps": list(range(LEVELS)), "queue_order_strategy": "priority"}
        if config.queue_prefix:
            transport["global_keyprefix"] = config.queue_prefix
    soft = settings.executor.job_timeout + config.time_limit_margin
    app = Celery("docworker", broker=config.broker_url, set_as_current=False)
    app.conf.update(
        task_queues=queues,
        task_default_queue=queue_name(settings, Family.DOCUMENTS),
        task_default_exchange=exchange.name,
        task_create_missing_queues=False,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        task_soft_time_limit=soft,
        task_time_limit=soft + config.time_limit_margin,
        task_ignore_result=True,
        task_store_errors_even_if_ignored=False,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=config.prefetch_multiplier,
        worker_max_tasks_per_child=config.max_tasks_per_child,
        worker_max_memory_per_child=(
            config.max_memory_per_child_mb * 1024 if config.max_memory_per_child_mb else None
        ),
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        # A worker that lost the broker tries again for as long as it is away (Celery's
        # own waits: 2 s, then 2 s more each time, 30 s at most), never giving up.
        broker_connection_max_retries=None,
        broker_connection_timeout=4.0,
        # Broadcasts (a revoke) stay among the workers of this deployment.
        control_exchange=f"{config.queue_prefix}docworker",
        event_exchange=f"{config.queue_prefix}docworker.events",
        result_backend=None,
    )
    app.task(name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True)(_run_task)
    return app


class CeleryDispatch:
    """The celery executor as the API sees it: jobs queued in the store are published to
    their family's queue, cancelled ones revoked. It runs no job itself."""

    def __init__(
        self, settings: Settings, app: Celery | None = None, *, breakers: Breakers | None = None
    ) -> None:
        self.settings = settings
        self.app = app or make_app(settings)
        self._redis = _is_redis(settings.celery.broker_url)
        #: The API's breakers: the broker's is told of each publish, and refuses
        #: publishes at once while open (a broker away does not cost each request its
        #: connection timeout).
        self.breakers = breakers

    def start(self) -> None:
        """Nothing to start: the broker connection is opened by the first publish."""

    def stop(self, timeout: float = 10.0) -> None:
        self.app.close()

    def queued(self, record: JobRecord) -> None:
        self.publish(record)

    def queued_many(self, records: Iterable[JobRecord]) -> None:
        """Publish each of jobs queued together (a batch's children); raises
        :class:`DependencyDown` at the first the broker does not take."""
        for record in records:
            self.publish(record)

    def cancelled_many(self, records: Iterable[JobRecord]) -> None:
        """Nothing to revoke one by one: the store has cancelled the queued ones (their
        messages are skipped), and the running ones are stopped by their workers."""

    def status(self) -> dict[str, Any]:
        """The broker as ``/health`` shows it: whether it answers, and where it is (its
        URL without a password)."""
        found: dict[str, Any] = {"kind": "celery"}
        try:
            with self.app.connection_for_write() as connection:
                found["broker"] = connection.as_uri()  # masks the password
                connection.ensure_connection(max_retries=1, interval_start=0, timeout=2)
        except (KombuError, OSError) as exc:
            return found | {"status": "down", "error": f"the broker does not answer: {exc}"}
        return found | {"status": "up"}

    def cancelled(self, record: JobRecord) -> None:
        """Revoke the message of a job cancelled while it waited (workers drop it unrun);
        a running job is stopped by the worker running it, which watches the store for
        the cancellation. A running job's message is not revoked: with fair claims it may
        have been taken by another job's message and still wait, as that job's turn."""
        if record.status == JobStatus.RUNNING:
            return
        try:
            self.app.control.revoke(record.id)
        except (KombuError, OSError) as exc:
            log.warning("job not revoked: the broker failed", job_id=record.id, error=str(exc))

    def publish(self, record: JobRecord, *, countdown: float | None = None) -> None:
        """Publish ``record``'s message to its family's queue, at its priority; raises
        :class:`DependencyDown` when the broker cannot be reached."""
        operation = OPERATIONS.get(record.operation)
        family = operation.queue if operation is not None else Family.DOCUMENTS
        queue = queue_name(self.settings, family)
        if self.breakers is not None:
            try:
                self.breakers.check(BROKER)
            except EngineUnavailable as open_breaker:
                raise DependencyDown(
                    f"the broker failed {open_breaker.fields['failures']} times in a row: it "
                    f"is not tried again for {open_breaker.fields['retry_after']} s",
                    dependency="broker",
                    retry_after=open_breaker.fields["retry_after"],
                ) from None
        try:
            self.app.send_task(
                TASK,
                args=[record.id],
                task_id=record.id,
                queue=queue,
                routing_key=queue,
                priority=broker_priority(record.priority, redis=self._redis),
                countdown=countdown or None,
                retry=True,
                retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
            )
        except (KombuError, OSError) as exc:
            if self.breakers is not None:
                failure = {"code": "dependency-down", "engine": "broker", "detail": str(exc)}
                self.breakers.ended(BROKER, failure)
            raise DependencyDown(
                "the broker does not answer: the job could not be queued",
                dependency="broker",
                retry_after=BROKER_RETRY_AFTER,
            ) from exc
        if self.breakers is not None:
            self.breakers.ended(BROKER)
        log.debug("job published", job_id=record.id, queue=queue, countdown=countdown)

    def idle_families(self) -> list[Family]:
        """The families whose broker queue holds no message waiting (none declared yet
        counts as none waiting); raises :class:`DependencyDown` when the broker cannot be
        reached."""
        idle = []
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, timeout=2)
                for family in Family:
                    if not self._waiting(connection, queue_name(self.settings, family)):
                        idle.append(family)
        except (KombuError, OSError, RedisError) as exc:
            # Redis's client raises errors of its own (a connection reset by a restarted
            # broker), which are neither kombu's nor OSError.
            raise DependencyDown(
                "the broker does not answer", dependency="broker", retry_after=BROKER_RETRY_AFTER
            ) from exc
        return idle

    def _waiting(self, connection: Any, queue: str) -> int:
        """Messages waiting in ``queue`` (taken by no worker yet)."""
        channel = connection.channel()
        try:
            if self._redis:
                # Kombu's own count over the queue's list of each priority level (its
                # passive declare finds no queue whose messages are all at other levels).
                return int(channel._size(queue))
            try:
                return int(channel.queue_declare(queue=queue, passive=True).message_count)
            except ChannelError:  # never declared: no worker took from it yet
                return 0
        finally:
            with contextlib.suppress(KombuError, OSError, ChannelError):
                channel.close()

    def follow_up(
        self, store: JobStore, record: JobRecord, parts: list[JobRecord] | None = None
    ) -> None:
        """Publish what an attempt's end queued: its parts, the job itself for a retry
        (its delay as the countdown), and the job of a part that ended last (to merge).
        A failed publish is logged: the job stays queued in the store."""
        queued = list(parts or [])
        if record.status == JobStatus.QUEUED:
            queued.append(record)
        if record.parent_id is not None and record.status in TERMINAL_STATUSES:
            with contextlib.suppress(NotFound):
                parent = store.get(record.parent_id)
                if parent.status == JobStatus.QUEUED and parent.children_pending == 0:
                    queued.append(parent)
        now = datetime.now(UTC)
        for each in queued:
            delay = (each.run_after - now).total_seconds() if each.run_after else None
            try:
                self.publish(each, countdown=delay if delay and delay > 0 else None)
            except DependencyDown:
                log.error("job queued but not published: the broker failed", job_id=each.id)


# -- the worker side ------------------------------------------------------------------


@dataclass
class _Runtime:
    """What ``docworker worker`` prepared before its worker processes were forked."""

    settings: Settings
    keys: SecretKeys
    app: Celery
    dispatch: CeleryDispatch
    #: The main process's store (its sweep), never used by a worker process.
    store: JobStore
    main_pid: int
    #: The delays of retries (:mod:`docworker.jobs.retries`).
    backoff: Backoff
    child: _Child | None = None

    @functools.cached_property
    def families(self) -> dict[str, Family]:
        """Each family by the name of its broker queue (a message's routing key)."""
        return {queue_name(self.settings, family): family for family in Family}


class _This:
    """This process's runtime, set by :func:`prepare_worker` (inherited by the worker
    processes forked from it)."""

    runtime: _Runtime | None = None


#: Held by ``docworker worker``'s own process while it uses the job store (the sweep, the
#: hard-limit handler), and by each fork of a worker process: no fork happens mid-transaction.
_MAIN_STORE = threading.Lock()


def prepare_worker(settings: Settings) -> Celery:
    """Ready this process to run ``docworker worker``: the job store migrated, the
    worker's modules and every parser loaded (the worker processes, forked from it,
    start with them), the stale-job sweep and the hard-limit handler connected."""
    from docworker.formats.registry import preload

    keys = SecretKeys.from_settings(settings)
    # No connection kept open, and none in use while Celery forks a worker process: a
    # child that inherits SQLite's state of an open connection to the file (its locks)
    # finds the database locked for good.
    store = JobStore(settings.database_url, echo=settings.database.echo, pooled=False)
    # Each state change's event and webhooks, as the API's store writes them (delivered
    # by the API replicas, which read the outbox).
    store.journal = journal(settings, None)
    os.register_at_fork(
        before=_MAIN_STORE.acquire,
        after_in_parent=_MAIN_STORE.release,
        after_in_child=_MAIN_STORE.release,
    )
    store.migrate()
    for folder in sweep(settings.data_dir):
        log.info("work folder of a gone worker deleted", folder=str(folder))
    preload()
    app = make_app(settings)
    _This.runtime = _Runtime(
        settings,
        keys,
        app,
        CeleryDispatch(settings, app),
        store,
        os.getpid(),
        Backoff.of(settings.executor),
    )
    # Logging is the service's (configure_logging), not Celery's: every line JSON alike.
    signals.setup_logging.connect(_keep_logging, weak=False)
    signals.worker_process_init.connect(_child_init, weak=False)
    signals.worker_process_shutdown.connect(_child_shutdown, weak=False)
    signals.worker_ready.connect(_start_sweep, weak=False)
    signals.task_failure.connect(_on_task_failure, weak=False)
    return app


class _Child:
    """One Celery worker process: its name in the job store, its own job store
    connections, its folder (its temporary folder), its LibreOffice, the result cache's
    shared tier and the engines' circuit breakers of this process."""

    def __init__(self, runtime: _Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        token = uuid.uuid4().hex[:8]
        self.name = f"{socket.gethostname()}:{os.getpid()}:{token}"
        executor = self.settings.executor
        #: How a message's turn is given (see :meth:`claim`).
        self.claims = ClaimPolicy(
            fair=executor.fair_claiming, max_running=executor.max_running_per_tenant
        )
        runtime.store.after_fork()
        # Before the store: its engine is traced as it is made (prepare_process below
        # finds the provider installed).
        configure_tracing(self.settings.tracing)
        self.store = JobStore(self.settings.database_url)
        #: Announces each change this process commits to the API replicas' waiters.
        self.events = event_bus(self.settings.events, listen=False)
        self.store.journal = journal(self.settings, None, self.events)
        self.folder = ExecutorFolder(self.settings.data_dir, token)
        self.folder.create()
        work = self.folder.new_worker_folder()
        os.environ["TMPDIR"] = str(work)
        tempfile.tempdir = str(work)
        self.tools = prepare_process(self.settings)
        self.dispatch = runtime.dispatch
        self.backoff = runtime.backoff
        #: This process's breakers: they open on the failures of its own engines, and
        #: are posted in the job store for the API and the other workers.
        board = (
            StoreBreakerBoard(self.store, name=self.name) if self.settings.breaker.shared else None
        )
        self.breakers = Breakers(self.settings.breaker, board=board)

    def close(self) -> None:
        self.tools.close()
        if isinstance(self.events, RedisJobEvents):
            self.events.close()
        self.folder.remove()
        self.store.close()

    # -- claiming ---------------------------------------------------------------------
    def claim(self, job_id: str, family: Family | None = None) -> JobRecord | None:
        """The job to run for the message of ``job_id`` from ``family``'s queue, started
        for this process; None when the message is to be skipped (the module docstring).

        With fair claims (``executor.fair_claiming`` or ``executor.max_running_per_tenant``)
        a message is a turn of its family: the job the policy gives first among the
        family's queued ones is claimed, as the local executor's supervisor claims, which
        may be another than ``job_id`` (whose own turn then comes with a later message:
        there are as many messages as queued jobs). A job the tenant's cap holds back is
        published again for later rather than claimed past the cap."""
        if family is not None and self.claims.by_tenant:
            operations = FAMILY_OPERATIONS[family]
            job = self.store.claim_next(self.name, operations=operations, policy=self.claims)
            if job is not None:
                if job.id != job_id:
                    log.debug("message's turn given to another job", message=job_id, job_id=job.id)
                return job
            if self.claims.max_running is not None and self._held_back(job_id):
                return None
        return self._claim_by_id(job_id)

    def _held_back(self, job_id: str) -> bool:
        """Whether ``job_id`` waits, due, while no claim gives it (its tenant runs as many
        jobs as its cap allows): then published again after ``executor.retry_delay``."""
        try:
            current = self.store.get(job_id)
        except NotFound:
            return False
        due = current.run_after is None or current.run_after <= datetime.now(UTC)
        if current.status != JobStatus.QUEUED or not due:
            return False
        log.info("job held back by its tenant's cap: published again", job_id=job_id)
        self.dispatch.publish(current, countdown=self.settings.executor.retry_delay)
        return True

    def _claim_by_id(self, job_id: str) -> JobRecord | None:
        """The job ``job_id`` itself, started for this process (see :meth:`claim`)."""
        job = self.store.claim(job_id, self.name)
        if job is not None:
            return job
        try:
            current = self.store.get(job_id)
        except NotFound:
            log.info("message of a job that no longer exists skipped", job_id=job_id)
            return None
        if current.status == JobStatus.QUEUED and current.run_after is not None:
            wait = (current.run_after - datetime.now(UTC)).total_seconds()
            if wait > 0:  # early (another host's clock): published again for its time
                self.dispatch.publish(current, countdown=wait)
                return None
        if current.status != JobStatus.RUNNING or not current.worker:
            log.info("message skipped", job_id=job_id, status=str(current.status))
            return None
        if not _owner_gone(current):
            log.info("message of a job running elsewhere skipped", job_id=job_id)
            return None
        taken = self.store.requeue_worker(
            current.worker, reason="the worker process running the job died"
        )
        for record in taken:
            log.warning("job of a dead worker process taken back", job_id=record.id)
            if record.id != job_id:
                self.dispatch.follow_up(self.store, record)
        again = self.store.claim(job_id, self.name)
        if again is None:
            for record in taken:
                if record.id == job_id:
                    self.dispatch.follow_up(self.store, record)
        return again

    # -- running ------------------------------------------------------------------------
    def run(self, job: JobRecord) -> None:
        """Run the claimed job's attempt and record its end (or let the watch do so)."""
        if not self._may_begin(job):
            return
        watch = _Watch(self, job)
        watch.start()
        WORKERS_BUSY.inc()
        try:
            try:
                answer = execute_job(
                    watch.progress,
                    self.tools.blobs,
                    job_message(self.store, job),
                    self.settings,
                    self.runtime.keys,
                    self.tools.libreoffice.convert,
                    cache=self.tools.cache,
                )
            except SoftTimeLimitExceeded:
                answer = {"type": "error"}
            limit = self.settings.executor.job_timeout
            if answer["type"] == "error" and watch.elapsed() > limit:
                # Past the job's time limit (Celery's soft limit interrupted it, or it
                # failed while the watch was ending it): the limit is its end.
                answer = {"type": "error", "job_id": job.id, "error": JobTimeout(limit).to_dict()}
            if not watch.take():
                return  # the watch ended the attempt (and is ending this process)
            pages = answer.get("pages")
            cost = watch.cost(pages if isinstance(pages, int) else None)
            with job_span("job record", job) as span:
                set_attributes(span, outcome=answer["type"])
                written = write_when_back(
                    self.store,
                    job,
                    lambda breakers: record_answer(
                        self.store,
                        job,
                        answer,
                        cost=cost,
                        backoff=self.backoff,
                        breakers=breakers,
                    ),
                    self.breakers,
                    self.settings.executor.store_outage_timeout,
                )
                if written is not None:
                    self.dispatch.follow_up(self.store, *written)
        finally:
            JOB_DURATION.labels(job.operation).observe(watch.elapsed())
            WORKERS_BUSY.dec()
            watch.stop()

    def _may_begin(self, job: JobRecord) -> bool:
        """Whether the claimed job may run here now, as this process's breakers say: one
        that needs an engine whose breaker is open fails fast (retried after the
        cool-down, the engine not tried); one that needs an engine whose breaker is
        half-open while another job tries it is queued again after
        ``executor.retry_delay``, its attempt not counted."""
        try:
            if self.breakers.begin(engines_of(job.operation, job.input)):
                return True
            record = self.store.defer(job.id, delay=self.settings.executor.retry_delay)
        except EngineUnavailable as exc:
            log.info("job refused: engine breaker open", job_id=job.id, engine=exc.fields["engine"])
            record = end_attempt(
                self.store,
                job,
                exc.to_dict(),
                cost=JobCost(),
                backoff=self.backoff,
                breakers=self.breakers,
                heard=False,
            )
        self.dispatch.follow_up(self.store, record)
        return False


def _owner_gone(record: JobRecord) -> bool:
    """Whether the worker that holds the running ``record`` is gone: on this host, its
    process (a zombie counts as gone); elsewhere, its heartbeat is ``STALE_AFTER`` old."""
    host, _, rest = (record.worker or "").partition(":")
    pid = rest.partition(":")[0]
    if host == socket.gethostname() and pid.isdigit():
        since = record.started_at.timestamp() if record.started_at else None
        if process_gone(int(pid), since):
            return True
        with contextlib.suppress(psutil.Error):
            return bool(psutil.Process(int(pid)).status() == psutil.STATUS_ZOMBIE)
        return True
    beat = record.heartbeat_at or record.started_at
    return beat is None or (datetime.now(UTC) - beat).total_seconds() > STALE_AFTER


class _Watch:
    """The thread beside a running job: heartbeats, progress, and the end of the attempt
    at a cancel or a limit. Of it and the job, whichever ends the attempt first
    (:meth:`take`) is the attempt's only writer."""

    def __init__(self, child: _Child, job: JobRecord) -> None:
        self.child = child
        self.job = job
        self.config = child.settings.executor
        self.started = time.monotonic()
        self.cpu_start = tree_cpu_seconds(os.getpid())
        self._lock = threading.Lock()
        self._taken = False
        self._stopped = threading.Event()
        self._progress: tuple[float, str | None] | None = None
        self._procs: list[psutil.Process] = []
        self._procs_at = -CHILDREN_INTERVAL
        self._thread = threading.Thread(target=self._loop, name="docworker-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(5.0)

    def take(self) -> bool:
        """Claim the writing of the attempt's end; False when already taken."""
        with self._lock:
            if self._taken:
                return False
            self._taken = True
            return True

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def progress(self, fraction: float, message: str) -> None:
        self._progress = (fraction, message)

    def cost(self, pages: int | None = None) -> JobCost:
        used = tree_cpu_seconds(os.getpid()) - self.cpu_start
        return JobCost(cpu_seconds=round(max(used, 0.0), 3), pages=pages)

    def _loop(self) -> None:
        store = self.child.store
        beat_at = time.monotonic()
        limit_bytes = self.config.memory_limit_mb * 1024 * 1024
        while not self._stopped.wait(WATCH_INTERVAL):
            try:
                if time.monotonic() - beat_at >= HEARTBEAT_INTERVAL:
                    store.heartbeat([self.job.id])
                    beat_at = time.monotonic()
                if self._progress is not None:
                    fraction, text = self._progress
                    self._progress = None
                    store.set_progress(self.job.id, fraction, text)
                if store.cancel_requested_among([self.job.id]):
                    self._end(None, "cancelled")
                elif time.monotonic() - self.started > self.config.job_timeout:
                    self._end(JobTimeout(self.config.job_timeout), "timeout")
                elif self._rss() > limit_bytes:
                    self._end(MemoryLimitExceeded(self.config.memory_limit_mb), "memory")
            except DependencyDown as exc:  # the database away for a moment: look again
                log.warning("job watch failed", job_id=self.job.id, error=exc.detail)

    def _rss(self) -> int:
        now = time.monotonic()
        if now - self._procs_at >= CHILDREN_INTERVAL:
            self._procs = _processes(process_tree(os.getpid()))
            self._procs_at = now
        total = 0
        for proc in self._procs:
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return total

    def _end(self, error: DocworkerError | None, reason: str) -> None:
        """End the attempt: its outcome written, then the engines and this process
        killed (Celery gives the message back and replaces the process; the message,
        delivered again, finds the job ended)."""
        if not self.take():
            return
        store = self.child.store
        cost = self.cost()
        engines = _processes(process_tree(os.getpid())[1:])
        log.warning("job attempt ended by its worker's watch", job_id=self.job.id, reason=reason)
        WORKER_RESTARTS.labels(reason).inc()  # this process is killed below; Celery replaces it
        try:
            if error is None:
                record = store.mark_cancelled(self.job.id, cost=cost)
            else:
                record = end_attempt(
                    store,
                    self.job,
                    error.to_dict(),
                    cost=cost,
                    backoff=self.child.backoff,
                    breakers=self.child.breakers,
                )
            self.child.dispatch.follow_up(store, record)
        finally:
            # Even when the store could not be written: the job, left running by a
            # process that is gone, is taken back by its message delivered again.
            for engine in engines:
                with contextlib.suppress(psutil.Error):
                    engine.kill()
            os.kill(os.getpid(), signal.SIGKILL)


def _processes(pids: list[int]) -> list[psutil.Process]:
    """psutil's handles of ``pids``, less those that ended since."""
    found = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            found.append(psutil.Process(pid))
    return found


def _run_task(task: Any, job_id: str) -> None:
    """The Celery task: claim the job the message names and run it here."""
    runtime = _This.runtime
    if runtime is None or runtime.child is None:
        raise RuntimeError("docworker worker processes are started by `docworker worker`")
    child = runtime.child
    delivery = getattr(task.request, "delivery_info", None) or {}
    family = runtime.families.get(str(delivery.get("routing_key") or ""))
    try:
        job = child.claim(job_id, family)
    except DependencyDown as exc:
        # The job store is away: the message comes back later instead of being lost.
        log.warning("job store down: message delivered again later", job_id=job_id)
        raise task.retry(
            exc=exc, countdown=runtime.settings.celery.sweep_interval, max_retries=None
        ) from exc
    if job is not None:
        child.run(job)


def _keep_logging(**_: Any) -> None:
    """Celery's logging set-up, skipped: connected, it keeps the service's handlers."""


def _child_init(**_: Any) -> None:
    if _This.runtime is not None:
        _This.runtime.child = _Child(_This.runtime)


def _child_shutdown(**_: Any) -> None:
    if _This.runtime is not None and _This.runtime.child is not None:
        _This.runtime.child.close()
        _This.runtime.child = None


def _on_task_failure(
    sender: Any = None, task_id: str | None = None, exception: Any = None, **_: Any
) -> None:
    """In ``docworker worker``: a job whose worker process Celery killed at the hard time
    limit is recorded ``dead`` with the limit (the watch did not end it)."""
    runtime = _This.runtime
    if runtime is None or os.getpid() != runtime.main_pid or task_id is None:
        return
    if not isinstance(exception, TimeLimitExceeded):
        return
    try:
        with _MAIN_STORE:
            job = runtime.store.get(task_id)
            if job.status != JobStatus.RUNNING:
                return
            error = JobTimeout(runtime.settings.executor.job_timeout)
            # This process has no breakers (its worker processes keep their own).
            record = end_attempt(
                runtime.store,
                job,
                error.to_dict(),
                cost=JobCost(cpu_seconds=0.0),
                backoff=runtime.backoff,
            )
            runtime.dispatch.follow_up(runtime.store, record)
    except (DocworkerError, KombuError, OSError) as exc:
        log.error("job at the hard time limit not recorded", job_id=task_id, error=str(exc))


def _start_sweep(**_: Any) -> None:
    runtime = _This.runtime
    if runtime is None or os.getpid() != runtime.main_pid:
        return
    announce_changes(runtime)
    threading.Thread(target=_sweep, args=(runtime,), name="docworker-sweep", daemon=True).start()


def announce_changes(runtime: _Runtime) -> JobEventBus:
    """Give the main process's job store (its sweep, the hard-limit handler) the event bus:
    each change it commits is announced over Redis (``events.redis_url``) as a worker
    process's are, so the API replicas' waiters hear of a job taken back at once. Made
    once the worker processes are forked (none inherits its threads). Returns the bus."""
    bus = event_bus(runtime.settings.events, listen=False)
    with _MAIN_STORE:
        runtime.store.journal = journal(runtime.settings, None, bus)
    return bus


def _sweep(runtime: _Runtime) -> None:
    """Take back the jobs whose worker stopped sending heartbeats (a worker host gone, a
    message acknowledged by a worker that then died) and publish them again; publish
    again the queued jobs whose message was lost (:func:`_republish`); delete the
    folders of this host's worker processes that are gone (killed)."""
    while True:
        try:
            sweep_once(runtime)
        except Exception:
            # A pass that fails (a broker or database error nobody foresaw) is logged and
            # tried again: a sweep thread that died would leave lost jobs unpublished.
            log.exception("sweep failed: tried again at the next interval")
        time.sleep(runtime.settings.celery.sweep_interval)


#: The most jobs one sweep publishes again (the next sweep takes the rest).
REPUBLISH_BATCH = 100


def _republish(runtime: _Runtime) -> None:
    """Publish again the queued jobs no worker took for ``celery.republish_after``: their
    message was lost (a publish that failed after the job store took the change, a
    broker that lost what it held). Only the jobs of families whose broker queue holds
    no message waiting: a job waiting behind others (a backlog) still has its message
    there, and is published again only if the queue drains without it. A message the
    broker holds as well is harmless: the first claims the job, the other finds it
    claimed or ended and is skipped. The store touches each job it hands out, so that
    the sweeps of other workers pass it over until ``celery.republish_after`` has passed
    again."""
    try:
        idle = set(runtime.dispatch.idle_families())
    except DependencyDown:
        return  # nothing can be published: the next sweep looks again
    operations = [name for name, family in FAMILY_OF.items() if family in idle]
    try:
        with _MAIN_STORE:
            lost = runtime.store.unpublished(
                older_than=runtime.settings.celery.republish_after,
                operations=operations,
                limit=REPUBLISH_BATCH,
            )
    except DocworkerError as exc:
        log.warning("sweep of unpublished jobs failed", error=exc.detail)
        return
    for record in lost:
        try:
            runtime.dispatch.publish(record)
        except DependencyDown:
            log.warning("queued job not published again: the broker failed", job_id=record.id)
            return  # the next sweep tries again, once republish_after has passed
        log.warning("queued job taken by no worker published again", job_id=record.id)


def sweep_once(runtime: _Runtime) -> list[JobRecord]:
    """One pass of the sweep (:func:`_sweep`); returns the jobs taken back."""
    taken: list[JobRecord] = []
    try:
        with _MAIN_STORE:
            taken = runtime.store.requeue_stale(older_than=STALE_AFTER)
            for record in taken:
                log.warning("job of a lost worker taken back", job_id=record.id)
                runtime.dispatch.follow_up(runtime.store, record)
    except DocworkerError as exc:
        log.warning("stale job sweep failed", error=exc.detail)
    _republish(runtime)
    for folder in sweep(runtime.settings.data_dir):
        log.info("work folder of a gone worker process deleted", folder=str(folder))
    return taken
