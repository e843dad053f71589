"""The local executor's worker processes: forked from the preloaded template, working
in folders under the data folder that are deleted whenever a worker is ended and, for
executors that are gone, when another starts."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from bench.scoring import corpus_root
from docworker.config import load_settings
from docworker.jobs.store import JobStatus
from docworker.jobs.workdirs import host_folder
from tests.integration.test_local_executor import SMALL_TEXT, Harness, _done, _settings

HUGE_PDF = corpus_root() / "pdf" / "huge-619-pages.pdf"

LEGACY_WORD = corpus_root() / "office" / "legacy-word.doc"
ARTICLE = corpus_root() / "pdf" / "multi-page-article.pdf"


@pytest.fixture
def harness(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Harness]:
    marker = request.node.get_closest_marker("executor")
    h = Harness(_settings(tmp_path, **(marker.kwargs if marker else {})))
    h.executor.start()
    try:
        yield h
    finally:
        h.executor.stop()
        h.store.close()


def _eventually(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"never true: {check}")
        time.sleep(0.05)


def _running_from(folder: Path) -> list[psutil.Process]:
    """The processes whose command line names a path in ``folder`` (engines' profiles)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if str(folder) in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


# -- folders ------------------------------------------------------------------------------


@pytest.mark.executor(job_timeout=3.0)
def test_a_job_works_under_the_data_folder_and_a_killed_attempt_leaves_nothing(
    harness: Harness, tmp_path: Path
) -> None:
    folder = harness.executor.folder.path
    assert folder.parent == host_folder(tmp_path)
    # OCR of 60 pages: minutes of work, killed at its limit.
    record = harness.submit(HUGE_PDF, "ocr", pages="1-60")
    harness.running_pid(record.id)
    worker = folder / "worker-1"
    # The job's folder and its input's local copy are in the worker's folder.
    _eventually(lambda: any(p.name.startswith("docworker-job-") for p in worker.iterdir()))
    done = harness.wait_until(record.id, _done, timeout=60)
    assert (done.status, done.error and done.error["code"]) == (JobStatus.DEAD, "job-timeout")
    assert not worker.exists()
    assert [p.name for p in folder.iterdir()] == ["worker-2"]
    # The new worker works in its own folder, empty between jobs.
    after = harness.submit(SMALL_TEXT, output="text")
    assert harness.wait_until(after.id, _done).status is JobStatus.SUCCEEDED
    assert list((folder / "worker-2").iterdir()) == []


@pytest.mark.executor(jobs_per_worker=1)
def test_a_recycled_worker_takes_its_libreoffice_and_profile_with_it(harness: Harness) -> None:
    record = harness.submit(LEGACY_WORD, output="text")
    pid = harness.running_pid(record.id)
    worker = harness.executor.folder.path / "worker-1"
    # LibreOffice starts from the worker, its profile in the worker's folder.
    _eventually(lambda: _running_from(worker), timeout=60)
    done = harness.wait_until(record.id, _done, timeout=120)
    assert done.status is JobStatus.SUCCEEDED, done.error
    _eventually(lambda: pid not in harness.executor.pids())
    assert not worker.exists()
    assert _running_from(worker) == []


def test_a_stopped_executor_deletes_its_folder(tmp_path: Path) -> None:
    h = Harness(_settings(tmp_path))
    h.executor.start()
    folder = h.executor.folder.path
    assert (folder / "worker-1").is_dir()
    h.executor.stop()
    h.store.close()
    assert not folder.exists()


def test_the_folders_of_gone_executors_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    """Two services on one data folder: the one starting sweeps only what is no one's."""
    running = Harness(_settings(tmp_path))
    running.executor.start()
    ours = psutil.Process()
    gone = subprocess.Popen(["true"])
    gone.wait()
    host = host_folder(tmp_path)
    left = [
        # An executor whose process ended.
        host / f"{gone.pid}-{int(ours.create_time())}-0badc0de",
        # One whose process id is used again now, by a process that started after it.
        host / f"{os.getpid()}-{int(ours.create_time()) - 600}-0badf00d",
    ]
    for folder in left:
        (folder / "worker-1" / "docworker-job-x").mkdir(parents=True)
        (folder / "worker-1" / "docworker-job-x" / "input.pdf").write_bytes(b"%PDF")
    other = host / "not-an-executor"
    other.mkdir()
    starting = Harness(_settings(tmp_path))
    starting.executor.start()
    try:
        assert not any(folder.exists() for folder in left)
        assert other.is_dir()
        assert running.executor.folder.path.is_dir()
        # Both go on running jobs in their own folders.
        for h in (running, starting):
            record = h.submit(SMALL_TEXT, output="text")
            assert h.wait_until(record.id, _done).status is JobStatus.SUCCEEDED
    finally:
        starting.executor.stop()
        assert running.executor.folder.path.is_dir()
        running.executor.stop()
        for h in (running, starting):
            h.store.close()


# -- the template ---------------------------------------------------------------------------


def _template_of(harness: Harness) -> psutil.Process:
    (parent,) = {psutil.Process(pid).parent() for pid in harness.executor.pids()}
    assert parent is not None
    return parent


@pytest.mark.executor(jobs_per_worker=1)
def test_recycled_workers_are_forked_from_the_template(harness: Harness) -> None:
    seen = set(harness.executor.pids())
    for _ in range(4):
        record = harness.submit(SMALL_TEXT, output="text")
        assert harness.wait_until(record.id, _done).status is JobStatus.SUCCEEDED
        # Each job's worker is replaced by a new one, forked in time for the next job.
        _eventually(lambda: not set(harness.executor.pids()) <= seen)
        seen.update(harness.executor.pids())
    assert len(seen) == 5
    template = _template_of(harness)
    assert template.pid != os.getpid()
    assert "multiprocessing.forkserver" in " ".join(template.cmdline())
    # It forks from a single thread (OpenBLAS stops its pool before every fork), with no
    # connection open (a database's or a network's would be shared by every worker).
    assert template.num_threads() == 1
    assert template.net_connections(kind="inet") == []
    assert not [f for f in template.open_files() if f.path.endswith((".db", ".sqlite"))]


def test_executors_of_one_process_share_the_template_not_their_settings(tmp_path: Path) -> None:
    strict = Harness(
        load_settings(
            data_dir=tmp_path / "strict",
            executor={"workers": 1, "poll_interval": 0.1},
            limits={"max_pages": 1},
        )
    )
    loose = Harness(_settings(tmp_path / "loose"))
    for h in (strict, loose):
        h.executor.start()
    try:
        assert _template_of(strict).pid == _template_of(loose).pid
        refused = strict.submit(ARTICLE, output="text")
        read = loose.submit(ARTICLE, output="text")
        failed = strict.wait_until(refused.id, _done)
        assert failed.status is JobStatus.FAILED
        assert failed.error is not None and failed.error["code"] == "limit-exceeded"
        assert loose.wait_until(read.id, _done).status is JobStatus.SUCCEEDED
    finally:
        for h in (strict, loose):
            h.executor.stop()
            h.store.close()


@pytest.mark.executor(worker_start="spawn")
def test_workers_can_still_start_afresh(harness: Harness) -> None:
    assert _template_of(harness).pid == os.getpid()
    record = harness.submit(SMALL_TEXT, output="text")
    assert harness.wait_until(record.id, _done).status is JobStatus.SUCCEEDED
