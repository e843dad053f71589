"""What a job costs in CPU time: its worker process's and that of everything it started.

The supervisor reads the CPU time of a worker's process tree when it hands the
worker a job and again when the job ends, or just before it kills the worker, so a
cancelled, timed-out or runaway job is measured too. The difference is the job's
CPU-seconds. A worker that dies on its own takes its figure with it: that attempt
is counted as 0.

Counted, user and system time alike:

* every thread of the worker process (parsers, the OCR library, libvips);
* the programs it ran and waited for (FFmpeg, pdftoppm, Ghostscript ...): the
  kernel adds a reaped child's time to its parent's ``children`` times;
* the engines it keeps running between jobs (its LibreOffice, a Chromium),
  read live from ``/proc``: their time during the job is the difference.

Not counted: a process that left the tree before it ended (one that detached
itself and was re-parented to init). The kernel counts in clock ticks, so a
figure is exact to about 10 ms.
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil

#: Clock ticks per second, the unit of the CPU times in ``/proc/<pid>/stat``.
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PROC = Path("/proc")


def tree_cpu_seconds(pid: int) -> float:
    """CPU-seconds used so far by process ``pid``, its descendants and the children
    they have reaped; 0 when the process is gone.

    Read from ``/proc`` directly, following each process's ``children`` list: the
    supervisor reads it twice per job, and psutil finds descendants by reading the
    status of every process on the machine."""
    if not _children_lists(pid):
        return _tree_cpu_seconds_psutil(pid)
    total = 0
    found = False
    for each in _walk(pid):
        ticks = _ticks_of(each)
        if ticks is not None:
            total += ticks
            found = True
    return total / _TICKS if found else 0.0


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (empty when it is gone): by the kernel's
    children lists, else by psutil, which reads every process of the machine."""
    if _children_lists(pid):
        return _walk(pid)
    try:
        return [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
    except psutil.Error:
        return []


def _children_lists(pid: int) -> bool:
    """Whether ``/proc`` lists ``pid``'s children: not on a kernel without
    CONFIG_PROC_CHILDREN, nor for a process that is gone."""
    return (_PROC / str(pid) / "task" / str(pid) / "children").exists()


def _walk(pid: int) -> list[int]:
    """``pid`` and every process below it, by the kernel's per-thread children lists."""
    found = [pid]
    index = 0
    while index < len(found):
        try:
            tasks = list((_PROC / str(found[index]) / "task").iterdir())
        except OSError:
            tasks = []  # ended since
        for task in tasks:
            try:
                found += [int(child) for child in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
        index += 1
    return found


def _ticks_of(pid: int) -> int | None:
    """User and system ticks of ``pid`` and of the children it reaped; None if gone."""
    try:
        stat = (_PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None  # ended since: its time is now in its parent's children times
    # Fields after the command (which may hold spaces and parentheses): state is the
    # 3rd field, utime, stime, cutime and cstime the 14th to 17th.
    fields = stat[stat.rindex(b")") + 2 :].split()
    return sum(int(value) for value in fields[11:15])


def _tree_cpu_seconds_psutil(pid: int) -> float:
    """The same, through psutil, where ``/proc`` has no children lists."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total
