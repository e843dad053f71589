"""The API process's heap controls (docworker.memory), on this machine's glibc."""

from __future__ import annotations

import subprocess
import sys

from docworker.memory import give_back, limit_arenas


def test_arenas_are_capped_and_freed_memory_given_back() -> None:
    # In a process of its own: the cap holds for the rest of the process's life.
    code = (
        "from docworker.memory import limit_arenas, give_back\n"
        "assert limit_arenas(2)\n"
        "blocks = [bytearray(4096) for _ in range(50_000)]\n"
        "del blocks\n"
        "give_back()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_zero_arenas_leaves_the_default() -> None:
    assert limit_arenas(0) is False
    assert isinstance(give_back(), bool)
