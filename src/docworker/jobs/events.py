"""The job event bus: lets a waiting request wake the moment its job moves on.

What happened to a job is recorded in the job store (``job_events``, written in the
transaction of each change: :mod:`docworker.jobs.journal`); the bus only says *that*
a job moved, so that waiters (a long poll, an event stream) read the store at once
instead of at their next look. :class:`JobEventBus` is what the rest of the service
depends on; :class:`JobEvents` is the in-process bus of the embedded service, and
:class:`RedisJobEvents` carries the same wake-ups between processes (API replicas,
Celery workers) over Redis pub/sub (``events.redis_url``).

The executor publishes from its own thread, with the job's record as it left the
store when it has it; waiters are asyncio tasks in the API's event loop. A waiter
subscribes *before* it reads the job from the store, so an end published between
its read and its wait is not missed, and a record published with the event spares
it the read. This is only a shortcut — waiters also re-read the job store at
intervals, so a job finished by another process (another replica, a Celery
worker) is seen too, just a little later.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

import redis
import structlog

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from docworker.config import EventSettings
    from docworker.jobs.models import JobRecord

log = structlog.get_logger(__name__)


class Subscription:
    """One waiter's interest in one job: set when the job is published."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._event = asyncio.Event()
        #: The record published with the latest event (None: read the store).
        self.record: JobRecord | None = None

    def _set(self, record: JobRecord | None) -> None:
        self.record = record
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """Wait until the job is published or ``timeout`` passes; True if published.
        The event is consumed: the next call waits for the next one."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        self._event.clear()
        return True


class JobEventBus(Protocol):
    """Wakes waiters when a job moves on (its new events are in the job store)."""

    def publish(self, job_id: str, record: JobRecord | None = None) -> None:
        """Say that ``job_id`` moved on; ``record``: the job as the store has it now."""

    def subscribe(self, job_id: str) -> AbstractContextManager[Subscription]:
        """Hear ``job_id``'s publications while the block runs (in the event loop)."""

    def announce(self, job_id: str) -> None:
        """Say that the job store committed a change of ``job_id`` (a batch's
        :func:`~docworker.jobs.journal.batch_key`): the store's journal calls it after
        every commit that recorded an event, so every change reaches the bus, whoever
        made it."""

    async def wait(self, job_id: str, timeout: float) -> bool:
        """Wait until ``job_id`` is published or ``timeout`` passes; True if published."""


class JobEvents:
    """The in-process bus: publications from any thread of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, list[Subscription]] = defaultdict(list)

    def publish(self, job_id: str, record: JobRecord | None = None) -> None:
        """Wake everything waiting on ``job_id``, handing it ``record`` (the job as the
        store has it now) if given; safe to call from any thread."""
        with self._lock:
            waiters = list(self._waiters.get(job_id, ()))
        for waiter in waiters:
            if not waiter.loop.is_closed():
                waiter.loop.call_soon_threadsafe(waiter._set, record)

    def announce(self, job_id: str) -> None:
        """Wake this process's waiters on ``job_id`` (they read the store)."""
        self.publish(job_id)

    @contextmanager
    def subscribe(self, job_id: str) -> Iterator[Subscription]:
        """Receive the events of ``job_id`` while the block runs (in the event loop)."""
        waiter = Subscription(asyncio.get_running_loop())
        with self._lock:
            self._waiters[job_id].append(waiter)
        try:
            yield waiter
        finally:
            with self._lock:
                waiters = self._waiters.get(job_id)
                if waiters and waiter in waiters:
                    waiters.remove(waiter)
                    if not waiters:
                        del self._waiters[job_id]

    async def wait(self, job_id: str, timeout: float) -> bool:
        """Wait until ``job_id`` is published or ``timeout`` passes; True if published."""
        with self.subscribe(job_id) as waiter:
            return await waiter.wait(timeout)


#: Announcements waiting to be sent at most (past it the oldest are dropped: a waiter
#: still sees its job at its next look at the store).
MAX_PENDING = 10_000
#: Seconds between attempts to reach Redis again after it failed.
RECONNECT_DELAY = 1.0


class RedisJobEvents:
    """The bus between processes: Redis pub/sub on one channel (``events.channel``).

    In the process, it is :class:`JobEvents` (what :meth:`publish` hands, record and
    all, reaches this process's waiters at once). Between processes, the job store
    announces every change it commits (:attr:`Journal.on_event
    <docworker.jobs.journal.Journal.on_event>`): :meth:`announce` wakes this process's
    waiters and queues the job's id, a sender thread publishes it as
    ``<origin> <job id>``, and a listener thread in every other process wakes that
    job's waiters there (``listen`` False: a process that only announces, such as the
    sweep of ``docworker worker``, runs no listener). Neither thread ever holds up the caller:
    while Redis does not answer, announcements wait (:data:`MAX_PENDING` at most) and
    waiters fall back on their look at the store every second; both threads reconnect
    by themselves.
    """

    def __init__(self, url: str, channel: str, *, listen: bool = True) -> None:
        self.local = JobEvents()
        self.channel = channel
        #: Tells this process's announcements apart from others'.
        self.origin = uuid.uuid4().hex[:16]
        self._client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        self._pending: deque[str] = deque(maxlen=MAX_PENDING)
        self._ready = threading.Condition()
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._send, name="events-redis-send", daemon=True)]
        if listen:
            self._threads.append(
                threading.Thread(target=self._listen, name="events-redis-listen", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def publish(self, job_id: str, record: JobRecord | None = None) -> None:
        """Wake this process's waiters on ``job_id`` (other processes hear of the change
        from the store's :meth:`announce`)."""
        self.local.publish(job_id, record)

    def subscribe(self, job_id: str) -> AbstractContextManager[Subscription]:
        return self.local.subscribe(job_id)

    async def wait(self, job_id: str, timeout: float) -> bool:
        return await self.local.wait(job_id, timeout)

    def announce(self, job_id: str) -> None:
        """Wake this process's waiters on ``job_id`` and tell the other processes (queued
        for the sender)."""
        self.local.publish(job_id)
        with self._ready:
            self._pending.append(job_id)
            self._ready.notify()

    def close(self, timeout: float = 2.0) -> None:
        """Send what is queued (within ``timeout``), then stop both threads."""
        self._stopping.set()
        with self._ready:
            self._ready.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        self._client.close()

    def _send(self) -> None:
        while True:
            with self._ready:
                while not self._pending and not self._stopping.is_set():
                    self._ready.wait()
                batch = list(self._pending)
                self._pending.clear()
            if not batch:
                return  # stopping, nothing left
            try:
                pipe = self._client.pipeline(transaction=False)
                for job_id in dict.fromkeys(batch):
                    pipe.publish(self.channel, f"{self.origin} {job_id}")
                pipe.execute()
            except redis.RedisError as exc:
                log.warning("job events not announced", jobs=len(batch), error=str(exc))
                if self._stopping.wait(RECONNECT_DELAY):
                    return

    def _listen(self) -> None:
        while not self._stopping.is_set():
            try:
                with self._client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    pubsub.subscribe(self.channel)
                    while not self._stopping.is_set():
                        message = pubsub.get_message(timeout=0.5)
                        if message is not None:
                            self._heard(message.get("data"))
            except redis.RedisError as exc:
                log.warning("job events not heard", error=str(exc))
                self._stopping.wait(RECONNECT_DELAY)

    def _heard(self, data: object) -> None:
        text = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
        origin, _, job_id = text.partition(" ")
        if job_id and origin != self.origin:
            self.local.publish(job_id)


def event_bus(settings: EventSettings, *, listen: bool = True) -> JobEventBus:
    """The bus of this process: :class:`RedisJobEvents` with ``events.redis_url``, else
    :class:`JobEvents`. Hand it to the job store's journal
    (:func:`docworker.jobs.webhooks.journal`), which announces every change on it."""
    if settings.redis_url:
        return RedisJobEvents(settings.redis_url, settings.channel, listen=listen)
    return JobEvents()
