"""The jobs waiting in each family's queue, the bound they are admitted under, and how
fast each family's queue drains.

Each family of operations (:class:`~docworker.operations.base.Family`) has a bound on its
**queued** jobs (``queue.<family>``, by default ``queue.per_worker`` per worker; running
jobs are not counted: the workers bound those). A submission is admitted while its
family's queue holds fewer jobs than its priority band may fill:

* **high** (priority > 0): the whole bound;
* **normal** (priority 0): ``queue.normal_share`` of it;
* **low** (priority < 0): ``queue.low_share`` of it,

so a flood of low-priority work stops at its share and leaves the rest to the others,
and normal work leaves the last places to urgent work. Past it the submission is
refused with :class:`~docworker.errors.QueueFull` (429) and a ``Retry-After`` of about
the time the queue takes to drain down to the band's share: the jobs over it divided by
the family's drain rate, the jobs of the family that ended over the last
``queue.drain_window`` seconds per second. With none ended in the window (a service
just started, or workers all stuck on long jobs), the window itself is the estimate.
It is brought within ``queue.retry_after_min`` .. ``queue.retry_after_max``.

Refused clients are spread over time rather than all sent back at the same moment: each
refusal of a family takes the next place in a line that moves at the family's drain
rate, so a burst of refusals is told to come back at the pace the queue frees room
(the first after about a job's time, the hundredth after about a hundred), instead of
returning together to be refused together again. The line is kept by each API process
(several replicas each space their own clients).

Only submissions count: the parts of a split job are made by the supervisor, never
admitted, and neither counted in the queue nor in the drain (their job is, when it
ends), so a split is never refused and a job takes one place however many parts it has.

Both counts are made in the job store, so they hold over every replica. The queued
jobs are counted at every admission, one range of the claim index over the queued rows
(which the bounds keep few); two submissions racing for the last place may both get
it, so the bound is exact to within the submissions admitted at once. (An API process
admits on a count at most :data:`QUEUED_CACHE` seconds old plus what it admitted since,
and counts anew before it refuses: exact for its own submissions, to within that time
for other replicas'.) The jobs that
ended are counted only to answer a refusal or a health probe, one range of
``ix_jobs_finished_at``, and the rates are kept for :data:`DRAIN_CACHE` seconds.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import structlog

from docworker.config import Settings
from docworker.errors import DocworkerError, QueueFull
from docworker.jobs.store import JobStore
from docworker.metrics import QUEUE_DRAIN_RATE, QUEUED_JOBS
from docworker.operations import OPERATIONS
from docworker.operations.base import Family

log = structlog.get_logger(__name__)

#: Seconds the measured drain rates are kept before the job store is asked again.
DRAIN_CACHE = 1.0
#: Seconds the count of queued jobs is trusted to admit a submission: the submissions this
#: process admitted since are added to it, so it is never less than the jobs this process
#: has queued (jobs claimed meanwhile only make it larger). A refusal is always counted
#: anew, so that no job is refused for room freed since.
QUEUED_CACHE = 0.1
#: Seconds the count kept may serve a refusal before a request's body is read
#: (:meth:`Backlog.refusal`); past :data:`QUEUED_CACHE` it is counted anew meanwhile, in
#: the background, so that under a flood the count stays fresh without a request waiting.
REFUSAL_COUNT_AGE = 1.0


class Band(StrEnum):
    """A priority band: how much of its family's bound a job may fill."""

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @classmethod
    def of(cls, priority: int) -> Band:
        if priority > 0:
            return cls.HIGH
        return cls.NORMAL if priority == 0 else cls.LOW


#: Each operation's family, by operation name (jobs of an operation no longer known
#: count in no family).
FAMILY_OF: dict[str, Family] = {name: op.queue for name, op in OPERATIONS.items()}


class Backlog:
    """The bounds on each family's queue, and the counts they are checked against."""

    def __init__(
        self, settings: Settings, store: JobStore, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        config = settings.queue
        self.store = store
        workers = settings.executor.workers
        #: The bound of each family; None for a family without one.
        self.bounds = {family: config.bound(family.value, workers) for family in Family}
        self.shares = {Band.HIGH: 1.0, Band.NORMAL: config.normal_share, Band.LOW: config.low_share}
        self.window = config.drain_window
        self.retry_range = (config.retry_after_min, config.retry_after_max)
        self._clock = clock
        self._rates: tuple[float, dict[Family, float]] | None = None
        #: When the next client refused for each family is told to come back (the
        #: line the module describes), on ``clock``.
        self._line: dict[Family, float] = {}
        self._line_lock = threading.Lock()
        #: The queued jobs as last counted (when, by family), and the submissions this
        #: process admitted since.
        self._queued: tuple[float, dict[Family, int]] | None = None
        self._admitted: dict[Family, int] = dict.fromkeys(Family, 0)
        self._queued_lock = threading.Lock()
        #: A count is being made in the background (:meth:`refusal`).
        self._counting = False

    def room(self, family: Family, band: Band) -> int | None:
        """How many queued jobs of ``family`` a job of ``band`` is admitted under (one at
        least); None when the family has no bound."""
        bound = self.bounds[family]
        if bound is None:
            return None
        return max(1, math.floor(bound * self.shares[band]))

    def queued(self) -> dict[Family, int]:
        """The submitted jobs waiting in each family's queue (see the module)."""
        counts = dict.fromkeys(Family, 0)
        for operation, count in self.store.queued_by_operation().items():
            if operation in FAMILY_OF:
                counts[FAMILY_OF[operation]] += count
        for family, count in counts.items():
            QUEUED_JOBS.labels(family.value).set(count)
        return counts

    def check(self, family: Family, priority: int) -> None:
        """Raise :class:`QueueFull` when ``family``'s queue holds as many jobs as a job of
        ``priority`` may be queued behind."""
        band = Band.of(priority)
        room = self.room(family, band)
        if room is None:
            return
        if self._admits(family, room):
            return
        queued = self._recount()[family]
        if queued < room:
            self._admit(family)
            return
        raise self._full(family, band, queued, self.retry_after(family, queued - room + 1))

    def refusal(self, family: Family, priority: int) -> QueueFull | None:
        """The refusal of a job of ``priority`` in ``family`` that the counts kept already
        justify, without waiting on the job store (so that it can be answered on the
        event loop, before a request's body is read): the queue counted at most
        :data:`REFUSAL_COUNT_AGE` seconds ago, plus this process's admissions since, fills
        the band's room, and a drain rate has been measured; None otherwise (the
        submission goes on to :meth:`check`, which counts anew). A count older than
        :data:`QUEUED_CACHE` is made again in the background. The count kept only grows
        between counts (jobs claimed since are still in it), so a refusal may come that
        long after room was freed, never a job admitted past the bound."""
        band = Band.of(priority)
        room = self.room(family, band)
        rates = self._rates
        if room is None or rates is None:
            return None
        with self._queued_lock:
            kept = self._queued
            if kept is None:
                return None
            age = self._clock() - kept[0]
            queued = kept[1][family] + self._admitted[family]
            stale = age >= QUEUED_CACHE and not self._counting
            if stale:
                self._counting = True
        if stale:
            threading.Thread(target=self._count_again, name="backlog-count", daemon=True).start()
        if age >= REFUSAL_COUNT_AGE or queued < room:
            return None
        return self._full(family, band, queued, self._turn(family, queued - room + 1, rates[1]))

    def _count_again(self) -> None:
        try:
            self._recount()
            self.drain_rates()  # for the Retry-After of the refusals to come
        except DocworkerError as exc:  # the next submission counts, and says so
            log.warning("queued jobs not counted", error=exc.detail)
        finally:
            with self._queued_lock:
                self._counting = False

    def _full(self, family: Family, band: Band, queued: int, retry_after: int) -> QueueFull:
        room = self.room(family, band)
        bound = self.bounds[family]
        share = "" if band is Band.HIGH else f" ({band.value} priority may fill {room} of them)"
        return QueueFull(
            f"{queued} jobs of the {family.value} family wait to run, and its queue takes "
            f"{bound}{share} (queue.{family.value}); retry later",
            retry_after=retry_after,
            family=family.value,
            queued=queued,
            room=room,
        )

    def _admits(self, family: Family, room: int) -> bool:
        """Whether the count kept (see :data:`QUEUED_CACHE`) leaves room for a job of
        ``family``; if so it is admitted."""
        with self._queued_lock:
            kept = self._queued
            if kept is None or self._clock() - kept[0] >= QUEUED_CACHE:
                return False
            if kept[1][family] + self._admitted[family] >= room:
                return False
            self._admitted[family] += 1
            return True

    def _recount(self) -> dict[Family, int]:
        now = self._clock()
        counts = self.queued()
        with self._queued_lock:
            self._queued = (now, counts)
            self._admitted = dict.fromkeys(Family, 0)
        return counts

    def _admit(self, family: Family) -> None:
        with self._queued_lock:
            self._admitted[family] += 1

    def drain_rates(self) -> dict[Family, float]:
        """Jobs of each family that ended per second over the last ``window`` seconds;
        measured in the job store at most once every :data:`DRAIN_CACHE` seconds."""
        now = self._clock()
        cached = self._rates
        if cached is not None and now - cached[0] < DRAIN_CACHE:
            return cached[1]
        since = datetime.now(UTC) - timedelta(seconds=self.window)
        ended = dict.fromkeys(Family, 0)
        for operation, count in self.store.ended_by_operation(since).items():
            if operation in FAMILY_OF:
                ended[FAMILY_OF[operation]] += count
        rates = {family: count / self.window for family, count in ended.items()}
        for family, rate in rates.items():
            QUEUE_DRAIN_RATE.labels(family.value).set(rate)
        self._rates = (now, rates)
        return rates

    def retry_after(self, family: Family, excess: int) -> int:
        """Seconds until a place is free for a client refused now: about ``excess`` jobs
        of ``family`` leaving its queue, at the rate it drains (the drain window when
        nothing ended in it), and behind the clients refused before it that have not
        come back yet (see the module); within the configured range."""
        return self._turn(family, excess, self.drain_rates())

    def _turn(self, family: Family, excess: int, rates: dict[Family, float]) -> int:
        """:meth:`retry_after` with the drain ``rates`` given."""
        rate = rates[family]
        low, high = self.retry_range
        if rate <= 0:
            return min(high, max(low, math.ceil(self.window)))
        now = self._clock()
        with self._line_lock:
            # The wait is worked out as a length, not as a moment less now: a float
            # clock of some size does not give back ``now + 6 - now == 6`` exactly, and
            # the ceiling would then send a client back a second late.
            wait = max(self._line.get(family, now) - now, excess / rate)
            wait = min(wait, high)
            self._line[family] = now + wait + 1 / rate
        return min(high, max(low, math.ceil(wait)))

    def status(self) -> dict[str, Any]:
        """For health: each family's bound, the room of each band, the jobs queued, and
        the drain rate (jobs per second)."""
        queued = self.queued()
        rates = self.drain_rates()
        return {
            family.value: {
                "bound": self.bounds[family],
                "room": {band.value: self.room(family, band) for band in Band},
                "queued": queued[family],
                "drain_per_second": round(rates[family], 3),
            }
            for family in Family
        }
