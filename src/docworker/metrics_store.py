# mypy: disable-error-code="no-untyped-call"
"""One store of metrics for every process of a service instance, and its exposition.

A service instance is many processes: the API (and the local executor's worker
processes it forks and recycles), or ``docworker worker`` and the pool processes
Celery forks and replaces. Each records metrics where its events happen; each would
lose them when it ends. So, at start-up, :func:`enable` gives the instance a folder of
its own (``metrics.folder``, by default ``<data_dir>/metrics``, one sub-folder per
instance, emptied at start) and switches prometheus_client to its multi-process mode
there: every process, forked before or after, writes its samples to files of its own
in it, and a scrape (:func:`exposition`) reads them all.

Nothing a process counted is lost when it ends: at each scrape the files of the
processes that have ended are folded into one archive file (counters and histograms
added, under a lock the scrape shares) and their live gauges dropped
(``mark_process_dead``), so the folder holds one file per live process and the
archive, however often workers are recycled. Gauges say how the processes' values
combine by their ``multiprocess_mode`` (:mod:`docworker.metrics`).

Without :func:`enable` (tests that run the app in their own process, the command-line
tools), metrics stay in the process's own registry and :func:`exposition` reads that.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
    start_http_server,
    values,
)
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

log = structlog.get_logger(__name__)

#: The environment variable prometheus_client reads (inherited by every child process).
ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Where the samples of ended processes are added up.
_ARCHIVES = {"counter": "counter_archive.db", "histogram": "histogram_archive.db"}
_PROCESS_FILE = re.compile(r"^(counter|histogram|summary|gauge_[a-z]+)_(\d+)\.db$")
_INSTANCE = re.compile(r"^[a-z]+-(\d+)$")
_LOCK = ".lock"
#: Only the service's own metrics move to the multi-process store.
_PREFIX = "docworker_"


class _State:
    folder: Path | None = None


def folder() -> Path | None:
    """This instance's metrics folder, or None when metrics stay in this process."""
    return _State.folder


def instance_folder(parent: Path, role: str) -> Path:
    """The folder of this instance (``<parent>/<role>-<pid>``), made empty; the folders
    of instances whose process has ended are removed on the way."""
    parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    for entry in parent.iterdir():
        found = _INSTANCE.match(entry.name)
        if found and entry.is_dir() and not _alive(int(found.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
    mine = parent / f"{role}-{os.getpid()}"
    shutil.rmtree(mine, ignore_errors=True)
    mine.mkdir(mode=0o700)
    return mine


def enable(path: Path) -> None:
    """Record this process's metrics (and its children's) in the folder ``path``.

    Call it at start-up, before anything is recorded: the service's metrics, defined
    when their modules were imported, start again at zero in the multi-process store.
    """
    os.environ[ENV] = str(path)
    values.ValueClass = values.MultiProcessValue()
    for collector in _own_metrics():
        if collector._labelnames:
            with collector._lock:
                collector._metrics.clear()
        else:
            collector._metric_init()
    _State.folder = path


def _own_metrics() -> Iterator[MetricWrapperBase]:
    seen: set[int] = set()
    for collector in list(REGISTRY._collector_to_names):
        if (
            isinstance(collector, MetricWrapperBase)
            and collector._name.startswith(_PREFIX)
            and id(collector) not in seen
        ):
            seen.add(id(collector))
            yield collector


def process_ended(pid: int) -> None:
    """Fold the samples of the ended process ``pid`` into the archive now (the next
    scrape would otherwise)."""
    path = _State.folder
    if path is not None:
        with _locked(path, exclusive=True):
            _fold(path, [pid])


class _Collector(Collector):
    """Every process's samples, the ended ones' folded first, read under the lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._files = MultiProcessCollector(None, str(path))

    def collect(self) -> Iterable[Any]:
        with _locked(self.path, exclusive=True):
            _fold(self.path, _ended(self.path))
        with _locked(self.path, exclusive=False):
            found = list(self._files.collect())
        # Every metric of the service is listed, those no process recorded yet too (with
        # their help and type, and no sample), as a single process's registry lists them.
        named = {family.name for family in found}
        for metric in _own_metrics():
            found += [family for family in metric.describe() if family.name not in named]
        return found


def registry() -> CollectorRegistry:
    """The registry a scrape reads: every process's metrics (and the process metrics of
    this one) with :func:`enable`, else this process's own."""
    path = _State.folder
    if path is None:
        return REGISTRY
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(_Collector(path))
    ProcessCollector(registry=scraped)
    return scraped


def exposition() -> bytes:
    """The Prometheus text of :func:`registry`."""
    return generate_latest(registry())


def serve(port: int, host: str) -> threading.Thread:
    """Answer ``GET /metrics`` (any path) on ``host:port`` from a thread of this
    process, with :func:`registry` (``docworker worker --metrics-port``)."""
    _server, thread = start_http_server(port, addr=host, registry=registry())
    return thread


# -- the folding of ended processes -------------------------------------------------------
def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A child that ended and was not reaped yet has ended all the same."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _ended(path: Path) -> list[int]:
    pids = set()
    for entry in os.listdir(path):
        found = _PROCESS_FILE.match(entry)
        if found:
            pids.add(int(found.group(2)))
    return [pid for pid in sorted(pids) if not _alive(pid)]


def _fold(path: Path, pids: Iterable[int]) -> None:
    """Add the counters and histograms of the processes ``pids`` into the archives and
    remove their files; drop their live gauges. The caller holds the lock."""
    for pid in pids:
        for kind, archive in _ARCHIVES.items():
            source = path / f"{kind}_{pid}.db"
            if not source.exists():
                continue
            _add_into(path / archive, source)
            source.unlink()
        mark_process_dead(pid, str(path))
        for other in path.glob(f"*_{pid}.db"):
            # Gauges of other modes and summaries of the ended process: not added up.
            other.unlink(missing_ok=True)


def _add_into(archive: Path, source: Path) -> None:
    entries = MmapedDict.read_all_values_from_file(str(source))
    if not entries:
        return
    target = MmapedDict(str(archive))
    try:
        for key, value, timestamp, _ in entries:
            held, _held_at = target.read_value(key)
            target.write_value(key, held + value, timestamp)
    finally:
        target.close()


@contextlib.contextmanager
def _locked(path: Path, *, exclusive: bool) -> Iterator[None]:
    with (path / _LOCK).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def adopt() -> None:
    """In a process started with the instance's environment (a local worker process):
    record in the instance's folder when it names one."""
    path = os.environ.get(ENV)
    if path and _State.folder != Path(path) and Path(path).is_dir():
        enable(Path(path))
