"""In-process job events: lets a waiting request wake the moment its job ends.

The executor publishes from its own thread; waiters are asyncio tasks in the
API's event loop. This is only a shortcut — waiters also re-read the job store
at intervals, so a job finished by another process (another replica, a Celery
worker) is seen too, just a little later.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict


class JobEvents:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = (
            defaultdict(list)
        )

    def publish(self, job_id: str) -> None:
        """Wake everything waiting on ``job_id``; safe to call from any thread."""
        with self._lock:
            waiters = self._waiters.pop(job_id, [])
        for loop, event in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    async def wait(self, job_id: str, timeout: float) -> bool:
        """Wait until ``job_id`` is published or ``timeout`` passes; True if published."""
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        with self._lock:
            self._waiters[job_id].append(entry)
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                waiters = self._waiters.get(job_id)
                if waiters and entry in waiters:
                    waiters.remove(entry)
                    if not waiters:
                        del self._waiters[job_id]
