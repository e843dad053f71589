"""The job store as the board where processes post the engine breakers they open.

Each process of the service (an API with its local executor, each Celery worker
process) keeps circuit breakers of its own (:mod:`docworker.engines.breaker`). When one
opens, the process posts it here, a row of ``engine_breakers`` until the breaker is due
to half-open; when one closes, its row is taken down. The others read the board when
they admit work (a submission, a job about to be handed to a worker) and for
``/health``: an engine posted open is refused everywhere until its time, with the
``Retry-After`` of the process that opened it, and ``/health`` names that process.

Posting happens on a breaker's change of state only (rare); reading is a reading at
most :data:`READING_AGE` seconds old, made again by the first caller after that, so a
flood of submissions costs one small query a second.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select

from docworker.engines.breaker import PostedBreaker
from docworker.jobs.models import EngineBreaker
from docworker.jobs.store import JobStore

#: How old a reading of the board may be, in seconds.
READING_AGE = 1.0


class StoreBreakerBoard:
    """A :class:`~docworker.engines.breaker.BreakerBoard` on the job store's
    ``engine_breakers``; thread-safe."""

    def __init__(self, store: JobStore, *, name: str | None = None) -> None:
        self.store = store
        #: This process, as its posts name it.
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self._lock = threading.Lock()
        self._reading: dict[str, PostedBreaker] = {}
        self._read_at: float | None = None

    def post(self, engine: str, cooldown: float, failures: int, last_error: str | None) -> None:
        now = datetime.now(UTC)
        until = now + timedelta(seconds=cooldown)
        error = last_error[:1000] if last_error else None
        with self.store.transaction(writes=True) as session:
            row = session.get(EngineBreaker, engine, with_for_update=True)
            if row is None:
                session.add(
                    EngineBreaker(
                        engine=engine,
                        opened_at=now,
                        until=until,
                        failures=failures,
                        last_error=error,
                        opened_by=self.name,
                    )
                )
            else:
                row.opened_at, row.until, row.failures = now, until, failures
                row.last_error, row.opened_by = error, self.name
        self._forget()

    def take_down(self, engine: str) -> None:
        with self.store.transaction(writes=True) as session:
            session.execute(delete(EngineBreaker).where(EngineBreaker.engine == engine))
        self._forget()

    def posted(self) -> dict[str, PostedBreaker]:
        with self._lock:
            clock = time.monotonic()
            if self._read_at is None or clock - self._read_at >= READING_AGE:
                self._reading, self._read_at = self._read(), clock
            elapsed = clock - self._read_at
        return {
            engine: replace(posted, remaining=posted.remaining - elapsed)
            for engine, posted in self._reading.items()
            if posted.remaining > elapsed
        }

    def _read(self) -> dict[str, PostedBreaker]:
        now = datetime.now(UTC)
        # This process's own posts are its breakers': it judges them itself.
        query = select(EngineBreaker).where(
            EngineBreaker.until > now, EngineBreaker.opened_by != self.name
        )
        with self.store.transaction() as session:
            rows = session.scalars(query).all()
        return {
            row.engine: PostedBreaker(
                engine=row.engine,
                remaining=(row.until - now).total_seconds(),
                failures=row.failures,
                last_error=row.last_error,
                opened_by=row.opened_by,
            )
            for row in rows
        }

    def _forget(self) -> None:
        """This process changed the board: the next reading is made afresh."""
        with self._lock:
            self._read_at = None
