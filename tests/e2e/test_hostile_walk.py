"""Every file of the hostile corpus through the HTTP API, against a real server.

Each file of ``corpus/hostile/`` (zip and tar slips, zip and gzip quines, zip bombs,
an LZMA header asking for a huge dictionary, XXE, macros, a PDF with JavaScript,
EICAR, mislabelled and polyglot media) goes, untouched, as an upload through:

* the v2 routes ``extract``, ``chunk`` and ``ocr`` — each answers a 2xx result, or a
  4xx ``application/problem+json`` naming the fault; never a 5xx;
* the v1 routes that take an uploaded file (extraction, OCR, Markdown, office and
  HTML → PDF, the media pipelines for documents, images and video, synchronous and as
  jobs) — each answers a 2xx, or the
  route's own v1 error; v1's contract answers a processing failure 500 with the
  route's error text, and that is what is checked, never a crash (v1's framework
  ``Internal Server Error``).

The ``unpack`` operation does not exist yet; archives are refused as unsupported by
the routes above.

Meanwhile a normal document is extracted again and again alongside, and once after:
every one of those succeeds. Then: no job needed a second attempt, none died, none
ended with a service fault (worker crash, memory or time limit); no worker was
replaced; the workers' peak memory stayed under ``executor.memory_limit_mb``;
nothing was left in the data folder outside the blob store's inputs and results and
the databases, nor in the server's temporary folder outside its engines' folders;
the paths the slips aim at were not written.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from bench.scoring import corpus_root
from tests.e2e.server import Server

CORPUS = corpus_root()
HOSTILE = CORPUS / "hostile"
NORMAL = CORPUS / "pdf" / "minimal-document.pdf"
MEMORY_LIMIT_MB = 1536
PROBLEM = "application/problem+json"
#: What a slip aims at, relative to where it would be unpacked (the files name /tmp).
SLIP_TARGETS = (Path("/tmp/evil.txt"), Path("/evil.txt"))
#: Error codes that are the service's fault: none may end a job of the walk.
SERVICE_FAULTS = {
    "internal-error",
    "service-error",
    "engine-failed",
    "engine-timeout",
    "job-timeout",
    "memory-limit-exceeded",
    "dependency-down",
}
#: Lines of local files that must never appear in an answer (XXE, links to files).
LEAKS = re.compile(r"root:x?:0:0:|PRIVATE KEY-----")

pytestmark = pytest.mark.skipif(not HOSTILE.is_dir(), reason=f"corpus not found at {CORPUS}")

V2_ROUTES = [
    ("/api/v2/extract", "file", {}),
    ("/api/v2/chunk", "file", {}),
    ("/api/v2/ocr", "file", {}),
]
V1_ROUTES = [
    ("/api/v1/extract/text", "file", {}),
    ("/api/v1/extract/pdf-pages", "file", {}),
    ("/api/v1/extract/pdf-range", "file", {"start_page": "1", "end_page": "1"}),
    ("/api/v1/ocr/image", "file", {}),
    ("/api/v1/ocr/document", "file", {}),
    ("/api/v1/markdown/convert", "document", {}),
    ("/api/v1/markdown/convert/pdf", "pdf_file", {}),
    ("/api/v1/markdown/convert/office", "office_file", {}),
    ("/api/v1/pdf/generate/office", "office_file", {}),
    ("/api/v1/pdf/generate/html", "html_file", {}),
    ("/api/v1/sync/convert/document", "file", {}),
    ("/api/v1/sync/convert/image", "file", {}),
    ("/api/v1/sync/convert/video", "file", {}),
    ("/api/v1/process/image/convert", "file", {"format": "png"}),
]
V1_JOB_ROUTES = [
    ("/api/v1/extract/async/text", "file", {}),
    ("/api/v1/process/document", "file", {}),
    ("/api/v1/process/image", "file", {}),
    ("/api/v1/process/video", "file", {}),
]


def hostile_files() -> list[Path]:
    """The files MANIFEST.tsv lists under hostile/ (each must be there)."""
    manifest = (CORPUS / "MANIFEST.tsv").read_text().splitlines()
    paths = [line.split("\t", 1)[0] for line in manifest[1:] if line.startswith("hostile/")]
    files = [CORPUS / path for path in paths]
    assert files and all(f.is_file() for f in files)
    return files


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    temp = tmp_path_factory.mktemp("server-tmp")
    srv = Server(
        tmp_path_factory.mktemp("walk"),
        TMPDIR=str(temp),
        DOCWORKER_EXECUTOR__MEMORY_LIMIT_MB=str(MEMORY_LIMIT_MB),
        DOCWORKER_EXECUTOR__JOBS_PER_WORKER="10000",
        DOCWORKER_EXECUTOR__JOB_TIMEOUT="120",
        DOCWORKER_SERVER__DEFAULT_WAIT="120",
    ).start()
    srv.temp = temp  # type: ignore[attr-defined]
    try:
        yield srv
    finally:
        srv.stop()


def _files(tree: Path) -> set[str]:
    return {str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file()}


class Walk:
    """The requests of the walk and what was wrong with their answers."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.faults: list[str] = []
        self.answers = 0

    def fault(self, where: str, what: str) -> None:
        self.faults.append(f"{where}: {what}")

    def post(self, route: str, part: str, fields: dict[str, str], path: Path) -> httpx.Response:
        self.answers += 1
        files = {part: (path.name, path.read_bytes())}
        return self.client.post(route, files=files, data=fields)

    def v2(self, route: str, part: str, fields: dict[str, str], path: Path) -> None:
        where = f"{route} {path.name}"
        response = self.post(route, part, fields, path)
        status = response.status_code
        if LEAKS.search(response.text):
            self.fault(where, "a local file's content in the answer")
        if status == 202:
            self.job_ended(where, response.json()["id"])
        elif status >= 500:
            self.fault(where, f"{status} {response.text[:300]}")
        elif status >= 400:
            body = response.json()
            if response.headers["content-type"] != PROBLEM or not body.get("detail"):
                self.fault(where, f"{status} without a problem naming the fault: {body}")
            if body.get("code") in SERVICE_FAULTS:
                self.fault(where, f"{status} {body.get('code')}: {body.get('detail')}")

    def v1(self, route: str, part: str, fields: dict[str, str], path: Path) -> None:
        where = f"{route} {path.name}"
        response = self.post(route, part, fields, path)
        if LEAKS.search(response.text):
            self.fault(where, "a local file's content in the answer")
        if response.status_code < 400:
            return
        body = response.json()
        error = body.get("error")
        if not error or error == "Internal Server Error" or response.status_code > 500:
            self.fault(where, f"{response.status_code} {body}")

    def v1_job(self, route: str, part: str, fields: dict[str, str], path: Path) -> None:
        where = f"{route} {path.name}"
        response = self.post(route, part, fields, path)
        if response.status_code != 202:
            self.v1_refusal(where, response)
            return
        job_id = response.json()["job_id"]
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            job = self.client.get(f"/api/v1/job/{job_id}").json()
            if job["status"] in {"completed", "failed"}:
                if LEAKS.search(str(job)):
                    self.fault(where, "a local file's content in the job")
                return
            time.sleep(0.1)
        self.fault(where, f"job {job_id} did not end")

    def v1_refusal(self, where: str, response: httpx.Response) -> None:
        if response.status_code >= 500 or "error" not in response.json():
            self.fault(where, f"{response.status_code} {response.text[:300]}")

    def job_ended(self, where: str, job_id: str) -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            job = self.client.get(f"/api/v2/jobs/{job_id}").json()
            if job["status"] not in {"queued", "running"}:
                code = (job.get("error") or {}).get("code")
                if job["status"] == "dead" or code in SERVICE_FAULTS:
                    self.fault(where, f"job {job_id} {job['status']}: {job.get('error')}")
                return
            time.sleep(0.1)
        self.fault(where, f"job {job_id} did not end")


class Alongside(threading.Thread):
    """Extracts a normal document again and again until told to stop."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.stop = threading.Event()
        self.results: list[str] = []

    def run(self) -> None:
        with self.server.client() as client:
            while not self.stop.is_set():
                self.results.append(extract_normal(client))


def extract_normal(client: httpx.Client) -> str:
    """``ok``, or what went wrong extracting the normal document."""
    files = {"file": (NORMAL.name, NORMAL.read_bytes())}
    try:
        response = client.post("/api/v2/extract", files=files, data={"output": "text"})
    except httpx.HTTPError as exc:
        return f"no answer: {exc}"
    if response.status_code != 200:
        return f"{response.status_code} {response.text[:300]}"
    return "ok" if response.json()["content"].strip() else "empty content"


def _worker_peaks_mb(server: Server) -> list[float]:
    """Peak resident memory (VmHWM) of the server's worker processes, in MiB."""
    assert server.process is not None
    peaks = []
    for child in psutil.Process(server.process.pid).children(recursive=True):
        try:
            if "multiprocessing" not in " ".join(child.cmdline()):
                continue
            status = Path(f"/proc/{child.pid}/status").read_text()
        except (psutil.Error, OSError):
            continue
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        if match and "resource_tracker" not in " ".join(child.cmdline()):
            peaks.append(int(match.group(1)) / 1024)
    return peaks


def _restarts(client: httpx.Client) -> dict[str, float]:
    text = client.get("/metrics", headers={"Accept": "text/plain"}).text
    found = re.findall(
        r'^docworker_worker_restarts_total\{reason="(\w+)"\} ([\d.e+]+)$', text, re.M
    )
    return {reason: float(count) for reason, count in found}


def _all_jobs(client: httpx.Client) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 500}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v2/jobs", params=params).json()
        jobs.extend(page["jobs"])
        cursor = page.get("next_cursor")
        if not cursor:
            return jobs


def test_every_hostile_file_through_every_route(server: Server) -> None:
    files = hostile_files()
    data_before = _files(server.data_dir)
    temp: Path = server.temp  # type: ignore[attr-defined]
    temp_before = set(os.listdir(temp))
    slips_before = {target: target.exists() for target in SLIP_TARGETS}
    alongside = Alongside(server)
    with server.client() as client:
        assert extract_normal(client) == "ok"
        walk = Walk(client)
        alongside.start()
        try:
            for path in files:
                for route in V2_ROUTES:
                    walk.v2(*route, path)
                for route in V1_ROUTES:
                    walk.v1(*route, path)
                for route in V1_JOB_ROUTES:
                    walk.v1_job(*route, path)
        finally:
            alongside.stop.set()
            alongside.join(180)
        assert extract_normal(client) == "ok"
        jobs = _all_jobs(client)
        restarts = _restarts(client)
        peaks = _worker_peaks_mb(server)
    assert walk.faults == [], "\n".join(walk.faults)
    assert walk.answers == len(files) * (len(V2_ROUTES) + len(V1_ROUTES) + len(V1_JOB_ROUTES))
    assert alongside.results and set(alongside.results) == {"ok"}, alongside.results
    # No job was retried (a worker that died makes its job try again), died or hit a limit
    # of the service; no worker was replaced, and none came near its memory limit.
    assert not [j for j in jobs if j["attempts"] > 1 or j["status"] == "dead"]
    assert not [j for j in jobs if (j.get("error") or {}).get("code") in SERVICE_FAULTS]
    assert sum(restarts.values()) == 0, restarts
    assert peaks and max(peaks) < MEMORY_LIMIT_MB, peaks
    # Nothing written where it should not be: in the workers' folders, only the engines'
    # folders of the workers still running (their jobs' folders are gone); the metrics'
    # files of the service's processes (docs/observability.md).
    allowed = re.compile(
        r"^(blobs/inputs/|blobs/results/|docworker\.db|cache/|server\.log$|metrics/api-\d+/"
        r"|work/[^/]+/[^/]+/worker-\d+/docworker-(libreoffice|chromium)-)"
    )
    assert sorted(f for f in _files(server.data_dir) - data_before if not allowed.match(f)) == []
    engine_folders = re.compile(r"^docworker-(libreoffice|chromium)-")
    strays = set(os.listdir(temp)) - temp_before
    assert sorted(name for name in strays if not engine_folders.match(name)) == []
    assert {target: target.exists() for target in SLIP_TARGETS} == slips_before
