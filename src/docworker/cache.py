"""The file cache folder of the v1 API (``CACHE_DIRECTORY``): its size, clearing it,
and the janitor that keeps it within its age and size bounds.

v1 kept a cache folder with an hourly janitor: files older than
``CACHE_CLEANUP_AGE`` are deleted, then the oldest files until the folder holds
no more than ``CACHE_MAX_SIZE`` bytes. :class:`CacheJanitor` does that on a
thread of its own, so the event loop never walks the folder.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SweepReport:
    removed_old: int
    removed_for_size: int
    size_after: int


class FileCache:
    """A folder of cached files, bounded in age and total size."""

    def __init__(self, directory: Path, *, max_size: int, cleanup_age: float) -> None:
        self.directory = directory
        self.max_size = max_size
        self.cleanup_age = cleanup_age

    def ensure(self) -> None:
        """Create the folder (v1 created it at start-up)."""
        self.directory.mkdir(parents=True, exist_ok=True)

    def _files(self) -> list[tuple[Path, os.stat_result]]:
        found: list[tuple[Path, os.stat_result]] = []
        if not self.directory.is_dir():
            return found
        for root, _dirs, names in os.walk(self.directory):
            for name in names:
                path = Path(root) / name
                try:
                    found.append((path, path.lstat()))
                except OSError:
                    continue  # removed while we looked
        return found

    def size(self) -> int:
        """Bytes of all files under the folder (0 when it cannot be read)."""
        try:
            return sum(stat.st_size for _, stat in self._files())
        except OSError:
            return 0

    def writable(self) -> str | None:
        """None when a file can be written in the folder; otherwise why not."""
        try:
            self.ensure()
            probe = self.directory / f".probe-{os.getpid()}-{threading.get_ident()}"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            return f"cache folder {self.directory} is not writable: {exc.strerror or exc}"
        return None

    def clear(self) -> int:
        """Delete everything under the folder (the folder stays); returns files removed."""
        removed = 0
        if not self.directory.is_dir():
            return removed
        for entry in self.directory.iterdir():
            try:
                if entry.is_dir() and not entry.is_symlink():
                    removed += sum(len(files) for _, _, files in os.walk(entry))
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    def sweep(self, now: float | None = None) -> SweepReport:
        """Delete files older than the cleanup age, then the oldest until within the size."""
        moment = time.time() if now is None else now
        kept: list[tuple[Path, os.stat_result]] = []
        old = 0
        for path, stat in self._files():
            if moment - stat.st_mtime > self.cleanup_age:
                path.unlink(missing_ok=True)
                old += 1
            else:
                kept.append((path, stat))
        total = sum(stat.st_size for _, stat in kept)
        for_size = 0
        for path, stat in sorted(kept, key=lambda item: item[1].st_mtime):
            if total <= self.max_size:
                break
            path.unlink(missing_ok=True)
            total -= stat.st_size
            for_size += 1
        return SweepReport(old, for_size, total)


class CacheJanitor:
    """Runs :meth:`FileCache.sweep` every ``interval`` seconds on a daemon thread."""

    def __init__(self, cache: FileCache, interval: float) -> None:
        self.cache = cache
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cache-janitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                report = self.cache.sweep()
                if report.removed_old or report.removed_for_size:
                    log.info(
                        "cache swept",
                        removed_old=report.removed_old,
                        removed_for_size=report.removed_for_size,
                        size=report.size_after,
                    )
            except OSError as exc:
                log.warning("cache sweep failed", error=str(exc))
            self._stop.wait(self.interval)
