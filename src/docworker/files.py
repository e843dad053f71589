"""Files at rest are private to the service's user: folders 0700, files 0600.

The service and its worker processes run with a umask that takes every permission
from group and others (:func:`restrict_umask`), so whatever they create — the data
folder, the SQLite database and its ``-wal``/``-shm`` companions, blobs, results,
caches, the generated key, engines' temporary files — only the service's user can
read. What the service names as its own and may have been made before that rule
(the data folder, the local blob folder, the database files) is made private at
start-up by :func:`make_private`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

#: Permissions the service never gives: all of group's and others'.
PRIVATE_UMASK = 0o077


def restrict_umask() -> None:
    """Let this process create nothing that group or others can read, write or enter."""
    os.umask(os.umask(PRIVATE_UMASK) | PRIVATE_UMASK)


def make_private(*paths: Path) -> None:
    """Take group's and others' permissions from each of ``paths`` that exists (a folder
    0700, a file 0600). One owned by another user, or a folder shared on purpose (the
    sticky bit, as /tmp has), is left as it is, with a warning if others may read it."""
    for path in paths:
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        if not info.st_mode & 0o077:
            continue
        shared = stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX
        if info.st_uid != os.geteuid() or shared:
            log.warning("other users may read this service's data", path=str(path))
            continue
        path.chmod(0o700 if stat.S_ISDIR(info.st_mode) else 0o600)
