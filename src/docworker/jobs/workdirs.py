"""Where the local executor's workers write: a folder per executor and per worker under
the data folder, deleted when their process is gone, however it went.

Layout: ``<data_dir>/work/<host>/<pid>-<started>-<token>/worker-<n>/``. The executor's
folder is named by its process (id and start time, in whole seconds since the epoch)
and by the token of its name (:attr:`~docworker.jobs.local.LocalExecutor.name`); each
of its worker processes has a folder of its own, which is the worker's temporary
folder (``TMPDIR`` and :data:`tempfile.tempdir`): its jobs' working folders, its local
copies of their inputs, its engines' profiles and files (LibreOffice, Chromium), and
whatever else the libraries it runs write to the temporary folder. Everything a worker
writes is thus in one place, on the disk whose free space admission watches
(:class:`~docworker.jobs.admission.DiskFloor` looks at the data folder).

Sweeping, so that nothing is left behind by a killed attempt:

* a worker's folder is deleted by its supervisor as soon as the worker has been
  ended, together with everything it started (a job killed at its time or memory
  limit, cancelled, a worker that died or was recycled);
* an executor's folder at its stop;
* at an executor's start, the folders of the executors of this host that are gone:
  no process has their process id any more, or the one that has it started after
  them (the id was used again, as it is by a container that restarts). Two services
  of one host sharing a data folder keep each other's folders while both run; the
  folders of another host's executors are left to that host's executors.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import socket
from pathlib import Path

import psutil
import structlog

log = structlog.get_logger(__name__)

#: The data folder's subfolder that holds the executors' folders.
WORK_FOLDER = "work"
#: How far two readings of one process's start time may differ (the kernel counts
#: from its boot time, which is known to the second).
START_TIME_SLACK = 2.0
_FOLDER_NAME = re.compile(r"(\d+)-(\d+)-([0-9a-f]+)")


def host_folder(data_dir: Path) -> Path:
    """The folder of this host's executors under ``data_dir``."""
    host = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "localhost"
    return data_dir.absolute() / WORK_FOLDER / host


def process_gone(pid: int, since: float | None = None) -> bool:
    """Whether the process of this host that had ``pid`` (and ran at ``since``, in
    seconds since the epoch, when given) has ended: no process has the id, or the one
    that has it started after ``since`` and so is another."""
    try:
        started = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False  # there, but not ours to look at: alive
    return since is not None and started > since + START_TIME_SLACK


class ExecutorFolder:
    """One executor's folder and its workers' folders."""

    def __init__(self, data_dir: Path, token: str) -> None:
        started = int(psutil.Process().create_time())
        self.path = host_folder(data_dir) / f"{os.getpid()}-{started}-{token}"
        self._numbers = itertools.count(1)

    def create(self) -> None:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)

    def new_worker_folder(self) -> Path:
        """A new, empty folder for the next worker process."""
        folder = self.path / f"worker-{next(self._numbers)}"
        folder.mkdir(mode=0o700, parents=True)
        return folder

    def remove(self) -> None:
        remove(self.path)


def remove(folder: Path) -> None:
    """Delete ``folder`` and everything in it; what cannot be deleted is logged."""

    def failed(_function: object, path: str, info: tuple[type, BaseException, object]) -> None:
        if not isinstance(info[1], FileNotFoundError):
            log.warning("work file not deleted", path=path, error=str(info[1]))

    shutil.rmtree(folder, onerror=failed)


def sweep(data_dir: Path) -> list[Path]:
    """Delete the folders of this host's executors whose process is gone; returns them."""
    swept = []
    try:
        folders = list(host_folder(data_dir).iterdir())
    except FileNotFoundError:
        return []
    for folder in folders:
        found = _FOLDER_NAME.fullmatch(folder.name)
        if found is None or not folder.is_dir():
            continue  # not an executor's: left alone
        pid, started = int(found[1]), float(found[2])
        if process_gone(pid, since=started):
            remove(folder)
            swept.append(folder)
    return swept
