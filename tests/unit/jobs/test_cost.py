"""The CPU time of a worker's process tree, as the supervisor reads it for a job."""

from __future__ import annotations

import subprocess
import sys
import time

from docworker.jobs.cost import _tree_cpu_seconds_psutil, tree_cpu_seconds

#: A grandchild that spins for a while, then the tree waits so it can be read.
_BURN = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\n"


def test_the_time_of_descendants_is_counted() -> None:
    tree = subprocess.Popen(
        ["bash", "-c", f'{sys.executable} -c "$0" & wait; sleep 5', _BURN],
    )
    try:
        deadline = time.monotonic() + 10
        while tree_cpu_seconds(tree.pid) < 0.4 and time.monotonic() < deadline:
            time.sleep(0.1)
        seconds = tree_cpu_seconds(tree.pid)
        assert 0.4 <= seconds < 5
        # The same figure as psutil's walk of every process finds (clock ticks apart).
        assert abs(seconds - _tree_cpu_seconds_psutil(tree.pid)) < 0.05
    finally:
        tree.kill()
        tree.wait()


def test_a_process_that_is_gone_costs_nothing() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert tree_cpu_seconds(gone.pid) == 0.0
