"""The job event bus: lets a waiting request wake the moment its job moves on.

What happened to a job is recorded in the job store (``job_events``, written in the
transaction of each change: :mod:`docworker.jobs.journal`); the bus only says *that*
a job moved, so that waiters (a long poll, an event stream) read the store at once
instead of at their next look. :class:`JobEventBus` is what the rest of the service
depends on; :class:`JobEvents` is the in-process bus of the embedded service. A bus
over a broker (Redis pub/sub) serves jobs run in other processes the same way.

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
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from docworker.jobs.models import JobRecord


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
