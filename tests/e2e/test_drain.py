"""Holding under load and draining, on a real ``docworker serve``: a full family queue
answers 429 with Retry-After, and on SIGTERM the server refuses the requests already
under way with 503 and Retry-After (in each API's body), lets the running job finish,
leaves the queued one for the next start, and exits."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from bench.scoring import corpus_root
from docworker.jobs.store import JobStatus, JobStore
from tests.e2e.server import Server

LONG_PDF = corpus_root() / "pdf" / "huge-619-pages.pdf"
PROBLEM = "application/problem+json"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not LONG_PDF.is_file(), reason=f"corpus not found at {LONG_PDF}"),
]
#: OCR of a page of a scan: seconds of work on one worker.
OCR = {"operation": "ocr", "params": json.dumps({"pages": "1"})}


class RawRequest:
    """A request sent by hand on its own connection: its headers and half its body now,
    the rest later (a slow upload under way while the server is told to stop)."""

    def __init__(self, server: Server, path: str, **form: object) -> None:
        built = httpx.Request("POST", f"{server.url}{path}", **form)  # type: ignore[arg-type]
        body = built.read()
        head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
        head += [f"{k}: {v}" for k, v in built.headers.items() if k.lower() != "host"]
        self.rest = body[len(body) // 2 :]
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body[: len(body) // 2])

    def finish(self) -> tuple[int, dict[str, str], bytes]:
        """Send the rest of the body; the status, headers and body answered."""
        self.sock.sendall(self.rest)
        raw = b""
        while not raw.endswith(b"}") or b"\r\n\r\n" not in raw:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            raw += chunk
        self.sock.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        return int(status_line.split()[1]), headers, body


def _wait_for(client: httpx.Client, job_id: str, status: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if client.get(f"/api/v2/jobs/{job_id}").json()["status"] == status:
            return
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never became {status}")


def test_a_full_queue_and_a_sigterm_drain_on_a_real_server(tmp_path: Path) -> None:
    server = Server(
        tmp_path / "server",
        DOCWORKER_EXECUTOR__WORKERS="1",
        DOCWORKER_EXECUTOR__SPLIT_MIN_PAGES="0",
        # ocr: 2 places; normal priority may fill 1 of them.
        DOCWORKER_QUEUE__OCR="2",
        DOCWORKER_SERVER__DRAIN_TIMEOUT="150",
    ).start()
    assert server.process is not None
    scan = {"file": (LONG_PDF.name, LONG_PDF.read_bytes())}
    with server.client() as client:
        running = client.post("/api/v2/jobs", files=scan, data=OCR).json()["id"]
        _wait_for(client, running, "running")
        queued = client.post("/api/v2/jobs", files=scan, data=OCR).json()["id"]
        full = client.post("/api/v2/jobs", files=scan, data=OCR)
        assert full.status_code == 429, full.text
        assert full.headers["content-type"] == PROBLEM
        assert full.json()["code"] == "queue-full" and full.json()["family"] == "ocr"
        assert int(full.headers["retry-after"]) >= 1
    # Two uploads under way, on v2 and on v1, when the signal comes.
    text = {"file": ("a.txt", b"a few words of text " * 200)}
    v2 = RawRequest(server, "/api/v2/jobs", files=text, data={"operation": "extract"})
    v1 = RawRequest(server, "/api/v1/extract/async/text", files=text)
    time.sleep(0.5)
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    for request, api in ((v2, "v2"), (v1, "v1")):
        status, headers, body = request.finish()
        assert status == 503, (api, body)
        assert headers["retry-after"] == "5", api  # server.drain_retry_after
        answer = json.loads(body)
        if api == "v2":
            assert answer["code"] == "draining"
        else:
            assert answer["error"] == "Failed to submit text extraction job"
    # New connections are no longer taken; the server waits for the running job.
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/health/liveness", timeout=2)
    server.process.wait(180)
    store = JobStore(f"sqlite:///{server.data_dir / 'docworker.db'}")
    try:
        assert store.get(running).status is JobStatus.SUCCEEDED  # finished, not re-queued
        assert store.get(queued).status is JobStatus.QUEUED  # left for the next start
    finally:
        store.close()
    log = server.log.read_text()
    assert "service draining" in log and "waiting for running jobs" in log
