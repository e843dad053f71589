"""The API's memory while it serves a large result to several clients at once.

``python -m bench.result_memory [--chars 60000000] [--clients 4] [--output text]``
writes a Word document with ``--chars`` characters of text (:mod:`bench.large_docx`),
starts a real ``docworker serve`` (one worker, its output limits raised to fit),
extracts the document as a job, then fetches ``GET /api/v2/jobs/{id}/result`` from
``--clients`` clients at once, each reading the whole body. Meanwhile the server
process's resident memory (the API and the executor's supervisor; the workers are
processes of their own and do not count) is sampled every 20 ms, and
``/health/liveness`` is asked every 100 ms.

Printed: the result's size, the server's resident memory before the fetches and at its
peak during them, and the slowest liveness answer. The figures of a run are in
docs/limits.md ("Serving large results").
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from bench.large_docx import paragraphs_for, write_docx

MIB = 1024 * 1024


@dataclass
class FetchMeasure:
    """What happened while clients fetched one URL at once."""

    #: Bytes each client read.
    sizes: list[int] = field(default_factory=list)
    #: The server's resident memory before the fetches, and its highest sample during them.
    rss_before: int = 0
    rss_peak: int = 0
    #: Seconds of each liveness answer during the fetches.
    liveness: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def growth(self) -> int:
        return self.rss_peak - self.rss_before


def fetch_in_parallel(url: str, path: str, clients: int, pid: int) -> FetchMeasure:
    """Fetch ``url + path`` from ``clients`` threads at once, each reading the whole body,
    while sampling the memory of process ``pid`` and timing ``/health/liveness``."""
    measure = FetchMeasure(rss_before=psutil.Process(pid).memory_info().rss)
    measure.rss_peak = measure.rss_before
    done = threading.Event()

    def fetch() -> None:
        read = 0
        with httpx.Client(base_url=url, timeout=300) as client, client.stream("GET", path) as got:
            got.raise_for_status()
            for chunk in got.iter_raw(1024 * 1024):
                read += len(chunk)
        measure.sizes.append(read)

    def sample() -> None:
        process = psutil.Process(pid)
        while not done.is_set():
            measure.rss_peak = max(measure.rss_peak, process.memory_info().rss)
            time.sleep(0.02)

    def probe() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            while not done.is_set():
                started = time.perf_counter()
                client.get("/health/liveness").raise_for_status()
                measure.liveness.append(time.perf_counter() - started)
                time.sleep(0.1)

    watchers = [threading.Thread(target=sample), threading.Thread(target=probe)]
    fetchers = [threading.Thread(target=fetch) for _ in range(clients)]
    started = time.perf_counter()
    for thread in watchers + fetchers:
        thread.start()
    for thread in fetchers:
        thread.join()
    measure.seconds = time.perf_counter() - started
    done.set()
    for thread in watchers:
        thread.join()
    return measure


def extract_job(client: httpx.Client, document: Path, output: str, timeout: float) -> str:
    """Submit ``document`` as an extract job and wait for it; its id."""
    with document.open("rb") as body:
        created = client.post(
            "/api/v2/jobs",
            files={"file": (document.name, body)},
            data={"operation": "extract", "params": f'{{"output": "{output}"}}'},
        )
    created.raise_for_status()
    job_id: str = created.json()["id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v2/jobs/{job_id}").json()
        if job["status"] not in {"queued", "running"}:
            if job["status"] != "succeeded":
                raise SystemExit(f"the job ended {job['status']}: {job.get('error')}")
            return job_id
        time.sleep(0.2)
    raise SystemExit(f"the job did not end within {timeout} s")


def main(argv: list[str] | None = None) -> None:
    # Imported here: the bench runs from the repository root, where ``tests`` is found.
    from tests.e2e.server import Server

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chars", type=int, default=60_000_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--output", default="text", choices=["text", "markdown", "html"])
    args = parser.parse_args(argv)
    limit = str(2 * args.chars)
    with tempfile.TemporaryDirectory(prefix="dw-bench-") as folder:
        document = write_docx(Path(folder) / "large.docx", paragraphs_for(args.chars))
        packed = document.stat().st_size
        server = Server(
            Path(folder) / "server",
            DOCWORKER_EXECUTOR__WORKERS="1",
            DOCWORKER_LIMITS__MAX_TEXT_CHARS=limit,
            DOCWORKER_LIMITS__MAX_OUTPUT_CHARS=limit,
        ).start()
        try:
            assert server.process is not None
            with server.client() as client:
                job_id = extract_job(client, document, args.output, timeout=600)
                client.get(f"/api/v2/jobs/{job_id}").raise_for_status()
            path = f"/api/v2/jobs/{job_id}/result"
            measure = fetch_in_parallel(server.url, path, args.clients, server.process.pid)
        finally:
            server.stop()
    print(f"document: {packed / MIB:.1f} MiB, {args.chars:,} characters")
    print(f"result: {max(measure.sizes) / MIB:.1f} MiB, fetched by {args.clients} clients")
    print(f"in {measure.seconds:.1f} s")
    print(f"server RSS before: {measure.rss_before / MIB:.0f} MiB")
    print(f"server RSS peak:   {measure.rss_peak / MIB:.0f} MiB (+{measure.growth / MIB:.0f} MiB)")
    print(f"slowest liveness:  {max(measure.liveness, default=0.0) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
