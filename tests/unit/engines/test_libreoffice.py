"""The LibreOffice engine, with the real LibreOffice: conversions, warmth, limits, clean-up.

One engine serves the module; the tests that need a fresh or a differently set
engine make their own. "Gone" means no process left, zombies aside (a container's
init may reap late).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from bench.scoring import corpus_root
from docworker.config import LibreOfficeSettings
from docworker.engines.libreoffice import LibreOfficeEngine
from docworker.errors import CorruptDocument, DependencyDown, EngineTimeout, QueueFull

CORPUS = corpus_root()
WORD6 = CORPUS / "office" / "word6.doc"
SLIDES = CORPUS / "office" / "legacy-powerpoint.ppt"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not WORD6.is_file(), reason=f"corpus not found at {CORPUS}"),
    pytest.mark.skipif(
        not LibreOfficeEngine(LibreOfficeSettings()).status()["installed"],
        reason="LibreOffice (soffice, python3-uno) is not installed",
    ),
]


@dataclass
class Warm:
    engine: LibreOfficeEngine
    #: How long the first conversion took: LibreOffice's start included.
    cold_seconds: float


@pytest.fixture(scope="module")
def warm() -> Iterator[Warm]:
    with LibreOfficeEngine(LibreOfficeSettings(max_queue=0, idle_shutdown=0)) as engine:
        started = time.monotonic()
        engine.convert(WORD6, "docx").unlink()
        yield Warm(engine, time.monotonic() - started)


@pytest.fixture
def engine(warm: Warm) -> LibreOfficeEngine:
    return warm.engine


def instance_pids(engine: LibreOfficeEngine) -> set[int]:
    """The bridge of the running instance and everything under it (LibreOffice)."""
    bridge = engine.status()["pid"]
    assert bridge is not None
    process = psutil.Process(bridge)
    return {bridge, *(child.pid for child in process.children(recursive=True))}


def engine_folder(pids: set[int]) -> Path:
    """The engine's temporary folder, as its instance's bridge was told it."""
    for pid in pids:
        command = psutil.Process(pid).cmdline()
        if "--owned" in command:
            return Path(command[command.index("--owned") + 1])
    raise AssertionError("no bridge among the processes")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_converts_a_legacy_file_into_a_file_the_caller_owns(engine: LibreOfficeEngine) -> None:
    converted = engine.convert(WORD6, "docx")
    try:
        assert converted.suffix == ".docx"
        with zipfile.ZipFile(converted) as package:
            body = package.read("word/document.xml").decode()
        assert "The quick brown fox jumps over the lazy dog" in body
    finally:
        converted.unlink()
    assert not list(converted.parent.iterdir())


def test_a_warm_instance_converts_much_faster_than_a_cold_start(warm: Warm) -> None:
    warm.engine.convert(WORD6, "docx").unlink()
    starts = warm.engine.status()["starts"]
    started = time.monotonic()
    warm.engine.convert(WORD6, "docx").unlink()
    seconds = time.monotonic() - started
    assert warm.engine.status()["starts"] == starts
    assert seconds < warm.cold_seconds / 3, f"cold {warm.cold_seconds:.2f} s, warm {seconds:.2f} s"


def test_a_file_libreoffice_cannot_store_as_asked_is_refused_and_the_instance_lives(
    engine: LibreOfficeEngine,
) -> None:
    engine.convert(WORD6, "docx").unlink()
    before = engine.status()["pid"]
    with pytest.raises(CorruptDocument, match="could not open it or store it as xlsx"):
        engine.convert(WORD6, "xlsx")
    assert engine.status()["pid"] == before


def test_a_conversion_past_its_timeout_kills_the_instance_and_the_next_one_restarts(
    engine: LibreOfficeEngine,
) -> None:
    engine.convert(WORD6, "docx").unlink()
    old = instance_pids(engine)
    assert len(old) >= 2  # the bridge and LibreOffice
    with pytest.raises(EngineTimeout):
        engine.convert(SLIDES, "pptx", timeout=0.01)
    wait_for(lambda: all(gone(pid) for pid in old))
    assert engine.status()["running"] is False
    converted = engine.convert(SLIDES, "pptx")
    converted.unlink()
    assert engine.status()["pid"] not in old
    assert not list(converted.parent.iterdir())


def test_a_conversion_is_refused_while_another_runs_and_the_queue_is_full(
    engine: LibreOfficeEngine,
) -> None:
    engine.convert(WORD6, "docx").unlink()
    outputs: list[Path] = []
    # Slides to PDF: the slowest conversion at hand, so the window to refuse in is wide.
    running = threading.Thread(target=lambda: outputs.append(engine.convert(SLIDES, "pdf")))
    running.start()
    wait_for(lambda: bool(engine.status()["busy"]))
    with pytest.raises(QueueFull):
        engine.convert(WORD6, "docx")
    running.join(60)
    assert len(outputs) == 1
    outputs[0].unlink()


def test_an_instance_is_replaced_after_restart_after_conversions_and_none_is_left() -> None:
    with LibreOfficeEngine(LibreOfficeSettings(restart_after=2)) as engine:
        engine.convert(WORD6, "docx").unlink()
        first = instance_pids(engine)
        engine.convert(WORD6, "docx").unlink()
        assert engine.status()["running"] is False
        wait_for(lambda: all(gone(pid) for pid in first))
        engine.convert(WORD6, "docx").unlink()
        status = engine.status()
        assert (status["starts"], status["restarts"], status["conversions"]) == (2, 1, 3)
        second = instance_pids(engine)
        folder = engine_folder(second)
        engine.stop()
        wait_for(lambda: all(gone(pid) for pid in second))
        assert not folder.exists()


@pytest.mark.parametrize("setting", ["soffice_path", "python_path"])
def test_without_libreoffice_a_conversion_says_it_is_not_installed(
    setting: str, tmp_path: Path
) -> None:
    settings = LibreOfficeSettings.model_validate({setting: str(tmp_path / "missing")})
    with LibreOfficeEngine(settings) as engine:
        assert engine.status()["installed"] is False
        with pytest.raises(DependencyDown, match="LibreOffice is not installed here"):
            engine.convert(WORD6, "docx")


def test_a_python_without_uno_says_what_is_missing() -> None:
    settings = LibreOfficeSettings(python_path=Path(sys.executable))
    with LibreOfficeEngine(settings) as engine, pytest.raises(DependencyDown, match="python3-uno"):
        engine.convert(WORD6, "docx")


OWNER = """
import json, sys, time
from pathlib import Path
from docworker.config import LibreOfficeSettings
from docworker.engines.libreoffice import LibreOfficeEngine

engine = LibreOfficeEngine(LibreOfficeSettings())
engine.convert(Path(sys.argv[1]), "docx").unlink()
print("bridge", json.dumps(engine.status()["pid"]), flush=True)
time.sleep(120)
"""


def test_nothing_outlives_an_owning_process_that_is_killed() -> None:
    command = [sys.executable, "-c", OWNER, str(WORD6)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as owner:
        try:
            assert owner.stdout is not None
            # Other lines are the engine's log.
            line = next(line for line in owner.stdout if line.startswith("bridge "))
            bridge = psutil.Process(json.loads(line.split()[1]))
            pids = {bridge.pid, *(child.pid for child in bridge.children(recursive=True))}
            folder = engine_folder(pids)
            assert len(pids) >= 2 and folder.is_dir()
            os.kill(owner.pid, signal.SIGKILL)
            owner.wait(10)
            wait_for(lambda: all(gone(pid) for pid in pids))
            assert not folder.exists()
        finally:
            owner.kill()
