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

import psutil


def tree_cpu_seconds(pid: int) -> float:
    """CPU-seconds used so far by process ``pid``, its descendants and the children
    they have reaped; 0 when the process is gone."""
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
            continue  # ended since: its time is now in its parent's children times
        total += times.user + times.system + times.children_user + times.children_system
    return total
