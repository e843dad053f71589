"""What work must pass before it is accepted: the service not draining, the free-disk
floor, the family's queue bound and the engines' queues.

Four checks, made by :meth:`Admission.admit` before a job is queued (every entry point
submits through :meth:`~docworker.jobs.queue.JobQueue.submit`), the first two also
before an upload is read (the API's intake guard), and the third there too, from the
counts already kept, for a route whose jobs all wait in one queue
(:meth:`Admission.refusal`):

* **draining**: once the service has begun to shut down (:class:`Drain`), new work is
  refused with :class:`~docworker.errors.ServiceDraining` (503 with ``Retry-After``)
  while the jobs it runs finish;
* **free disk**: while the disk of the data folder (where jobs work, see
  :mod:`docworker.jobs.workdirs`), of the blob store (when it is local) or of the
  temporary folder (where uploads are spooled) has less than
  ``server.min_free_disk_mb`` free, work is refused with
  :class:`~docworker.errors.InsufficientStorage` (503 with ``Retry-After``): a
  job accepted then would fail half-way, or fill the disk for everyone;
* **family queue**: each family of operations has a bound on its queued jobs, of which
  each priority band may fill a share; past it, :class:`~docworker.errors.QueueFull`
  (429) with a ``Retry-After`` from how fast the family's queue drains (see
  :mod:`docworker.jobs.backlog`, which also says how exact the bound is);
* **engine queues**: a job that will run on a supervised engine (LibreOffice,
  Chromium: the operation says, see :class:`~docworker.operations.base.EngineBound`,
  from its parameters and the input's type detected from its content) is refused
  with :class:`~docworker.errors.QueueFull` (429 with ``Retry-After``) while the
  engine is full: one job running on each worker's instance
  (``executor.workers``) and ``max_queue`` more waiting, as the supervisor of one
  instance counts them. The engine is recorded in the job's stored input
  (``engine``), so that the jobs queued or running for it are counted in the job
  store whichever replica queued them. Two requests racing for the last place may
  both get it: the bound is exact to within the requests admitted at once.

Each refusal is counted in ``docworker_admission_refusals_total`` by reason.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from docworker.config import Settings
from docworker.errors import (
    DocworkerError,
    InsufficientStorage,
    NotFound,
    QueueFull,
    ServiceDraining,
)
from docworker.formats.detect import detect_stream
from docworker.jobs.backlog import Backlog
from docworker.jobs.store import JobStore
from docworker.metrics import ADMISSION_REFUSALS
from docworker.operations.base import Engine, EngineBound, Family, Operation, OperationParams
from docworker.storage import BlobStore, StoredBlob

log = structlog.get_logger(__name__)

#: Where a job's stored input names the engine it will wait for.
ENGINE_TAG = ("engine",)
#: The reason label of each refusal in ``docworker_admission_refusals_total``.
_REASONS: dict[type[DocworkerError], str] = {
    ServiceDraining: "draining",
    InsufficientStorage: "disk_low",
    QueueFull: "queue_full",
}
#: Seconds a client refused for a full engine queue is told to wait.
QUEUE_RETRY_AFTER = 10
_MIB = 1024 * 1024


#: Seconds a reading of the disks' free space serves the checks of the floor (every
#: submission, and every request with a body, checks it).
FREE_SPACE_CACHE = 1.0


class DiskFloor:
    """The folders whose disks must keep ``min_free_mb`` free for work to be accepted."""

    def __init__(self, folders: list[Path], min_free_mb: int, retry_after: int) -> None:
        self.folders = folders
        self.min_free_mb = min_free_mb
        self.retry_after = retry_after
        #: The last reading (monotonic time, free bytes of each disk): see :meth:`check`.
        self._reading: tuple[float, list[tuple[Path, int]]] | None = None

    @classmethod
    def of(cls, settings: Settings) -> DiskFloor:
        """The data folder (the jobs' work folders are in it), the local blob store's
        folder and the temporary folder (uploads)."""
        folders = [settings.data_dir.absolute(), Path(tempfile.gettempdir())]
        for url in (settings.storage_url, settings.storage.output_url):
            if url is not None and url.startswith("file://"):
                folders.append(Path(url.removeprefix("file://")))
        server = settings.server
        return cls(folders, server.min_free_disk_mb, server.disk_retry_after)

    def check(self) -> None:
        """Raise :class:`InsufficientStorage` when a folder's disk is under the floor, as
        read at most :data:`FREE_SPACE_CACHE` seconds ago (read again otherwise)."""
        if self.min_free_mb <= 0:
            return
        reading = self._reading
        if reading is None or time.monotonic() - reading[0] >= FREE_SPACE_CACHE:
            reading = (time.monotonic(), self._free())
            self._reading = reading
        self._judge(reading[1])

    def check_read(self) -> bool:
        """:meth:`check` on the last reading when it is recent, reading no disk (for the
        event loop); False when there is none, and :meth:`check` must read the disks."""
        reading = self._reading
        if self.min_free_mb > 0 and (
            reading is None or time.monotonic() - reading[0] >= FREE_SPACE_CACHE
        ):
            return False
        if reading is not None and self.min_free_mb > 0:
            self._judge(reading[1])
        return True

    def _judge(self, disks: list[tuple[Path, int]]) -> None:
        for folder, free in disks:
            if free < self.min_free_mb * _MIB:
                raise InsufficientStorage(
                    str(folder), free / _MIB, self.min_free_mb, retry_after=self.retry_after
                )

    def status(self) -> dict[str, Any]:
        """For health: each disk's free MiB, the floor, and whether work is accepted."""
        found = [(folder, round(free / _MIB)) for folder, free in self._free()]
        ok = self.min_free_mb <= 0 or all(free >= self.min_free_mb for _, free in found)
        disks = [{"path": str(folder), "free_mb": free} for folder, free in found]
        return {"status": "up" if ok else "low", "floor_mb": self.min_free_mb, "disks": disks}

    def _free(self) -> list[tuple[Path, int]]:
        """Free bytes of each distinct disk among the folders (looked at the nearest
        folder that exists: the data folder may not be made yet)."""
        found: dict[int, tuple[Path, int]] = {}
        for folder in self.folders:
            existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
            if existing is None:
                continue
            device = existing.stat().st_dev
            if device not in found:
                found[device] = (folder, shutil.disk_usage(existing).free)
        return list(found.values())


class Drain:
    """Whether the service is draining: set once, when its shutdown begins, and never
    cleared (a drained service stops; the next one starts afresh).

    :meth:`start` may be called from a signal handler, the moment the signal arrives:
    it takes no lock and logs nothing, and so must each listener given to
    :meth:`on_start` (they run in it, once).
    """

    def __init__(self, timeout: float, retry_after: int) -> None:
        #: Seconds the drain may last: open requests, then running jobs.
        self.timeout = timeout
        self.retry_after = retry_after
        #: When the drain began (``time.monotonic``), or None.
        self.since: float | None = None
        self._listeners: list[Callable[[], None]] = []

    @classmethod
    def of(cls, settings: Settings) -> Drain:
        return cls(settings.server.drain_timeout, settings.server.drain_retry_after)

    @property
    def active(self) -> bool:
        return self.since is not None

    def on_start(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` when the drain starts (signal-safe, see the class)."""
        self._listeners.append(listener)

    def start(self) -> None:
        """Begin draining; a no-op once begun."""
        if self.since is not None:
            return
        self.since = time.monotonic()
        for listener in self._listeners:
            listener()

    def remaining(self) -> float:
        """Seconds left of the drain (all of it before it has begun)."""
        if self.since is None:
            return self.timeout
        return max(0.0, self.since + self.timeout - time.monotonic())

    def check(self) -> None:
        """Raise :class:`ServiceDraining` once the drain has begun."""
        if self.since is not None:
            raise ServiceDraining(self.retry_after)


class Admission:
    """The checks a job passes before :class:`~docworker.jobs.queue.JobQueue` queues it."""

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        blobs: BlobStore,
        *,
        drain: Drain | None = None,
    ) -> None:
        """``drain``: the service's drain state (one that never begins when None)."""
        self.drain = drain or Drain.of(settings)
        self.disk = DiskFloor.of(settings)
        self.backlog = Backlog(settings, store)
        self.store = store
        self.blobs = blobs
        # Each worker process owns one instance of each engine.
        workers = settings.executor.workers
        self.capacity = {
            Engine.LIBREOFFICE: workers + settings.libreoffice.max_queue,
            Engine.CHROMIUM: workers + settings.chromium.max_queue,
        }

    def admit(
        self,
        operation: Operation,
        params: OperationParams,
        blob: StoredBlob | None,
        priority: int = 0,
        **hints: Any,
    ) -> Engine | None:
        """Check the drain, the disk, the family's queue for a job of ``priority``, then
        the queue of the engine the job will run on; returns that engine (to be recorded
        with the job), or None. ``hints``: the input's ``name`` and ``mime`` as given, if
        any (a given type is what the operation reads it as)."""
        family = operation.queue.value
        try:
            self.drain.check()
            self.disk.check()
            self.backlog.check(operation.queue, priority)
        except (ServiceDraining, InsufficientStorage, QueueFull) as exc:
            ADMISSION_REFUSALS.labels(_REASONS[type(exc)], family).inc()
            raise
        if blob is None or not isinstance(operation, EngineBound):
            return None
        mime = hints.get("mime") or self._detected(blob, hints.get("name"))
        engine = operation.engine(params, mime)
        if engine is None:
            return None
        capacity = self.capacity[engine]
        held = self.store.count_unfinished_with_tag(ENGINE_TAG, engine.value)
        if held >= capacity:
            log.info("job refused: engine queue full", engine=engine.value, jobs=held)
            ADMISSION_REFUSALS.labels("engine_full", family).inc()
            raise QueueFull(
                f"{held} jobs run on or wait for {engine.value} already, as many as it "
                f"takes (one per worker, plus {engine.value}.max_queue waiting); retry later",
                retry_after=QUEUE_RETRY_AFTER,
                engine=engine.value,
            )
        return engine

    def refusal(self, family: Family, priority: int) -> QueueFull | None:
        """The refusal a submission of ``priority`` to ``family`` gets from the counts kept
        alone (:meth:`Backlog.refusal <docworker.jobs.backlog.Backlog.refusal>`), counted
        among the refusals; None when they do not justify one."""
        refusal = self.backlog.refusal(family, priority)
        if refusal is not None:
            ADMISSION_REFUSALS.labels(_REASONS[QueueFull], family.value).inc()
        return refusal

    def status(self) -> dict[str, Any]:
        """For health: whether the service drains, and each family's queue (its bound,
        the room of each priority band, the jobs queued, how fast it drains)."""
        return {"draining": self.drain.active, "families": self.backlog.status()}

    def _detected(self, blob: StoredBlob, name: str | None) -> str:
        """The input's type from its content, read by ranges from the blob store."""
        try:
            with self.blobs.open(blob.uri) as stream:
                return detect_stream(stream, name).mime
        except (NotFound, OSError):
            # The worker detects it again, and says what is wrong with it.
            return "application/octet-stream"
