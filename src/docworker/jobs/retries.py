"""What becomes of a job whose attempt failed: retried later, dead, or failed.

The decision is the error class's (:class:`~docworker.errors.AfterFailure`); this
module adds when a retry runs. Only transient failures are retried (the worker was
lost, an engine crashed or was unavailable, the blob store did not answer), never a
bad input. The delay doubles with each attempt that failed, from
``executor.retry_delay`` up to ``executor.retry_max_delay``, and a share of it
(``executor.retry_jitter``) is drawn at random, so that jobs that failed together (an
engine that crashed under several) are not all retried at the same moment::

    delay(n) = min(retry_max_delay, retry_delay × 2^(n-1)) × (1 - jitter × U[0, 1))

where ``n`` is the number of attempts made so far; never less than the error's own
``retry_after`` (an open circuit breaker's cool-down: no attempt is wasted on an engine
known to be down). The job store queues the job again with that not-before time
(``run_after``), which claims respect.

Executor-independent: the local executor's supervisor calls :func:`after_failure`,
and any other executor may.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from docworker.config import ExecutorSettings
from docworker.errors import AfterFailure, error_class


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter (see the module docstring)."""

    base: float
    maximum: float
    jitter: float
    random: Callable[[], float] = random.random

    @classmethod
    def of(cls, settings: ExecutorSettings) -> Backoff:
        return cls(settings.retry_delay, settings.retry_max_delay, settings.retry_jitter)

    def delay(self, attempts: int) -> float:
        """Seconds to wait before the attempt after the ``attempts``-th (from 1) failed."""
        exponent = min(max(attempts, 1) - 1, 62)
        capped = min(self.maximum, self.base * 2.0**exponent)
        return capped * (1.0 - self.jitter * self.random())


@dataclass(frozen=True)
class FailureOutcome:
    """What an attempt's failure leads to: its class's decision and, for a retry, the
    delay before the next attempt (the store buries a job without attempts left)."""

    after: AfterFailure
    retry_delay: float | None = None


def after_failure(error: Mapping[str, Any], attempts: int, backoff: Backoff) -> FailureOutcome:
    """The outcome of an attempt (the ``attempts``-th) that ended with ``error`` (the
    dict form of a :class:`~docworker.errors.DocworkerError`)."""
    after = error_class(str(error.get("code"))).after_failure
    if after is not AfterFailure.RETRY:
        return FailureOutcome(after)
    delay = backoff.delay(attempts)
    wait = error.get("retry_after")
    if isinstance(wait, int | float) and not isinstance(wait, bool):
        delay = max(delay, float(wait))
    return FailureOutcome(after, delay)
