"""Workers never outlive their supervisor: a server killed outright, in the middle of
long jobs, takes its busy worker processes (and the engines they started) and the
template they were forked from with it; the files they leave behind are deleted when
the server starts again."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import psutil

from bench.scoring import corpus_root
from docworker.jobs.workdirs import host_folder
from tests.e2e.server import Server

#: Long work: OCR of many pages of a long PDF, on one worker each (no split).
LONG_PDF = corpus_root() / "pdf" / "huge-619-pages.pdf"


def test_a_killed_server_leaves_no_busy_worker_behind(tmp_path: Path) -> None:
    server = Server(tmp_path / "server", DOCWORKER_EXECUTOR__SPLIT_MIN_PAGES="0").start()
    assert server.process is not None
    supervisor = psutil.Process(server.process.pid)
    with server.client() as client:
        jobs = [
            client.post(
                "/api/v2/jobs",
                files={"file": (LONG_PDF.name, LONG_PDF.read_bytes())},
                data={"operation": "ocr", "params": '{"pages": "1-60"}'},
            ).json()["id"]
            for _ in range(2)
        ]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = [client.get(f"/api/v2/jobs/{job}").json()["status"] for job in jobs]
            if states == ["running", "running"]:
                break
            time.sleep(0.2)
        assert states == ["running", "running"], states
    template, workers = _workers(supervisor)
    assert len(workers) == 2
    server.process.send_signal(signal.SIGKILL)  # no time to stop anything
    server.process.wait(10)
    # The jobs have minutes of OCR left: only their end by the watch stops them this soon.
    _, alive = psutil.wait_procs([*workers, template], timeout=5)
    assert not alive, f"workers or their template outlived their server: {alive}"


def _workers(supervisor: psutil.Process) -> tuple[psutil.Process, list[psutil.Process]]:
    """The server's worker template (multiprocessing's fork server, its child) and the
    worker processes forked from it."""
    (template,) = [
        child
        for child in supervisor.children()
        if "multiprocessing.forkserver" in " ".join(child.cmdline())
    ]
    return template, template.children()


def test_a_killed_servers_work_folders_are_deleted_when_it_starts_again(tmp_path: Path) -> None:
    server = Server(tmp_path / "server", DOCWORKER_EXECUTOR__WORKERS="1").start()
    assert server.process is not None
    work = host_folder(server.data_dir)
    with server.client() as client:
        job = client.post(
            "/api/v2/jobs",
            files={"file": (LONG_PDF.name, LONG_PDF.read_bytes())},
            data={"operation": "ocr", "params": '{"pages": "1-60"}'},
        ).json()["id"]
        deadline = time.monotonic() + 60
        while client.get(f"/api/v2/jobs/{job}").json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.2)
    (killed,) = work.iterdir()
    deadline = time.monotonic() + 30
    while not list(killed.glob("worker-*/docworker-job-*")):
        assert time.monotonic() < deadline, "the job's folder never appeared"
        time.sleep(0.1)
    _, workers = _workers(psutil.Process(server.process.pid))
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)
    psutil.wait_procs(workers, timeout=5)
    # Nobody was left to delete the job's files...
    assert list(killed.glob("worker-*/docworker-job-*"))
    restarted = server.start().process
    assert restarted is not None
    try:
        # ...until the service started again on the same data folder.
        assert not killed.exists()
        (current,) = work.iterdir()
        assert current.name.startswith(f"{restarted.pid}-")
    finally:
        server.stop()
