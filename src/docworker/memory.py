"""The API process's heap: fewer malloc arenas, and freed memory given back.

The API process runs many threads (the event loop, a pool of worker threads for what
blocks, the executor's supervisor). glibc's malloc gives each thread that allocates
under contention an arena of its own, up to eight per core, and keeps the memory freed
in an arena for that arena: after a burst of a few hundred concurrent uploads the
process keeps the high-water mark of every arena, tens of MiB it no longer uses.
:func:`limit_arenas` caps the arenas (``server.malloc_arenas``; before the threads
start), and :func:`give_back` asks malloc to return the free pages of its heaps to the
system (``malloc_trim``), which the service does every ``server.memory_trim_interval``
seconds. Both are glibc's; elsewhere (musl, macOS) they do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

#: glibc's ``mallopt`` parameter for the most arenas.
_M_ARENA_MAX = -8


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
        return None
    return libc


def limit_arenas(arenas: int) -> bool:
    """Cap malloc's arenas at ``arenas`` (0: leave glibc's default); whether it was done."""
    libc = _libc()
    if arenas <= 0 or libc is None:
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, arenas))


def give_back() -> bool:
    """Return the free memory of malloc's heaps to the system; whether any was. Blocking
    (it walks the heaps): call it in a worker thread."""
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
