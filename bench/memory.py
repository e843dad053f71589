"""A process's own peak memory, for the benchmarks that measure in child processes."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_kib() -> int:
    """This process's peak resident memory so far, in KiB. It is read from VmHWM, not
    ``ru_maxrss``: Linux carries ``ru_maxrss`` over an exec, so a child process would
    report its parent's peak at the fork whenever the parent was the larger."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
