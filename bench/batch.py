"""A batch of many small files through the API against the same files sent as single jobs,
on the local executor: the API process's memory, and files per second.

    .venv/bin/python -m bench.batch [--files 2000] [--workers 2] [--clients 4]
    .venv/bin/python -m bench.batch --scaling 1000,4000,10000

Each run starts its own ``docworker serve`` (embedded: SQLite, local blob store, local
executor with ``--workers`` worker processes) over a fresh data folder, warms it with a
small batch, then:

* **batch**: one ``POST /api/v2/batches`` of ``--files`` distinct small text files
  (``extract`` to Markdown), its body streamed by the client; then waits for the batch
  to end;
* **single jobs**: the same files, each a ``POST /api/v2/jobs`` from ``--clients``
  threads (the documents family's queue bound is lifted for this run, so that no
  submission is refused), then waits for every job to end.

Printed per run: the API process's RSS (MiB) when warm, right after the submission,
at the end, and the highest seen (sampled every 50 ms); the seconds the submission took
and the files per second it accepted; the seconds until every child or job had ended
and the files per second end to end.

``--scaling``: for each count, a server without an executor (``executor.kind=none``:
the children stay queued) takes one batch of that many files; printed: the API
process's RSS when warm, after the submission, and the highest seen during it, and the
submission's files per second. Whether the API's memory grows with the count.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

MIB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str
    folder: Path


def serve(workers: int, **env: str) -> Served:
    folder = Path(tempfile.mkdtemp(prefix="batches_bench_"))
    port = _free_port()
    environment = {
        **os.environ,
        "DOCWORKER_DATA_DIR": str(folder),
        "DOCWORKER_EXECUTOR__WORKERS": str(workers),
        "DOCWORKER_LOG__LEVEL": "warning",
        # Every request runs: the same files again must not be answered from the cache.
        "DOCWORKER_CACHE__ENABLED": "false",
        "DOCWORKER_BATCHES__MAX_FILES": "100000",
        **env,
    }
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "docworker", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health/liveness", timeout=1).status_code == 200:
                return Served(process, url, folder)
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the server did not start: see {folder / 'server.log'}")


def stop(served: Served) -> None:
    served.process.send_signal(signal.SIGTERM)
    try:
        served.process.wait(60)
    except subprocess.TimeoutExpired:
        served.process.kill()
        served.process.wait()
    shutil.rmtree(served.folder, ignore_errors=True)


class RssWatch:
    """Samples a process's RSS every 50 ms; the highest seen."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> int:
        rss: int = self.process.memory_info().rss
        self.peak = max(self.peak, rss)
        return rss

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.now()

    def __enter__(self) -> RssWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def files(count: int, tag: str) -> Iterator[tuple[str, bytes]]:
    for index in range(count):
        yield f"{tag}/note-{index:05d}.txt", f"Note {index} of {tag}.\nLine two.\n".encode()


def multipart(count: int, tag: str, boundary: str) -> Iterator[bytes]:
    """A batch's body, made as it is sent."""
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="operation"\r\n\r\nextract\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="params"\r\n\r\n'
        '{"output":"markdown"}\r\n'
    ).encode()
    for name, data in files(count, tag):
        yield (
            (
                f"--{boundary}\r\nContent-Disposition: form-data; "
                f'name="file"; filename="{name}"\r\nContent-Type: text/plain\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        )
    yield f"--{boundary}--\r\n".encode()


def submit_batch(client: httpx.Client, count: int, tag: str) -> str:
    boundary = uuid.uuid4().hex
    response = client.post(
        "/api/v2/batches",
        content=multipart(count, tag, boundary),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    if response.status_code != 202:
        raise SystemExit(f"batch refused: {response.status_code} {response.text}")
    batch_id: str = response.json()["id"]
    return batch_id


def wait_batch(client: httpx.Client, batch_id: str) -> dict[str, object]:
    while True:
        batch: dict[str, object] = client.get(f"/api/v2/batches/{batch_id}").json()
        if batch["status"] != "running":
            return batch
        time.sleep(0.2)


def wait_jobs(client: httpx.Client) -> None:
    while True:
        page = client.get("/api/v2/jobs?status=queued&status=running&limit=1").json()
        if not page["jobs"]:
            return
        time.sleep(0.2)


@dataclass
class Run:
    name: str
    rss_warm: int
    rss_submitted: int
    rss_end: int
    rss_peak: int
    submit_s: float
    total_s: float
    files: int

    def row(self) -> str:
        return (
            f"| {self.name} | {self.files} | {self.rss_warm / MIB:.0f} | "
            f"{self.rss_submitted / MIB:.0f} | {self.rss_end / MIB:.0f} | "
            f"{self.rss_peak / MIB:.0f} | {self.submit_s:.1f} ({self.files / self.submit_s:.0f}/s) "
            f"| {self.total_s:.1f} ({self.files / self.total_s:.1f}/s) |"
        )


def run_batch(count: int, workers: int) -> Run:
    served = serve(workers)
    try:
        with httpx.Client(base_url=served.url, timeout=600) as client:
            wait_batch(client, submit_batch(client, 50, "warm"))
            with RssWatch(served.process.pid) as rss:
                warm = rss.now()
                rss.peak = warm
                started = time.perf_counter()
                batch_id = submit_batch(client, count, "batch")
                submitted = time.perf_counter()
                after_submit = rss.now()
                batch = wait_batch(client, batch_id)
                ended = time.perf_counter()
                end = rss.now()
            if batch["status"] != "succeeded":
                raise SystemExit(f"the batch ended {batch['status']}: {batch['counts']}")
            return Run(
                "batch",
                warm,
                after_submit,
                end,
                rss.peak,
                submitted - started,
                ended - started,
                count,
            )
    finally:
        stop(served)


def run_singles(count: int, workers: int, clients: int) -> Run:
    served = serve(workers, DOCWORKER_QUEUE__DOCUMENTS="0")
    try:
        with httpx.Client(base_url=served.url, timeout=600) as client:

            def one(item: tuple[str, bytes]) -> None:
                name, data = item
                response = client.post(
                    "/api/v2/jobs",
                    data={"operation": "extract", "params": '{"output":"markdown"}'},
                    files={"file": (name, data)},
                )
                if response.status_code != 202:
                    raise SystemExit(f"job refused: {response.status_code} {response.text}")

            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(one, files(50, "warm")))
            wait_jobs(client)
            with RssWatch(served.process.pid) as rss, ThreadPoolExecutor(clients) as pool:
                warm = rss.now()
                rss.peak = warm
                started = time.perf_counter()
                list(pool.map(one, files(count, "single")))
                submitted = time.perf_counter()
                after_submit = rss.now()
                wait_jobs(client)
                ended = time.perf_counter()
                end = rss.now()
            return Run(
                f"single jobs ({clients} clients)",
                warm,
                after_submit,
                end,
                rss.peak,
                submitted - started,
                ended - started,
                count,
            )
    finally:
        stop(served)


def run_scaling(counts: list[int]) -> None:
    print("| files | API RSS warm (MiB) | after submit | peak | submission s (files/s) |")
    print("|---|---|---|---|---|")
    for count in counts:
        served = serve(1, DOCWORKER_EXECUTOR__KIND="none")
        try:
            with httpx.Client(base_url=served.url, timeout=600) as client:
                submit_batch(client, 50, "warm")
                with RssWatch(served.process.pid) as rss:
                    warm = rss.now()
                    rss.peak = warm
                    started = time.perf_counter()
                    submit_batch(client, count, "batch")
                    took = time.perf_counter() - started
                    after = rss.now()
            print(
                f"| {count} | {warm / MIB:.0f} | {after / MIB:.0f} | {rss.peak / MIB:.0f} | "
                f"{took:.1f} ({count / took:.0f}/s) |"
            )
        finally:
            stop(served)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--scaling", help="counts of files, comma-separated (see above)")
    args = parser.parse_args()
    if args.scaling:
        run_scaling([int(n) for n in args.scaling.split(",")])
        return
    runs = [
        run_batch(args.files, args.workers),
        run_singles(args.files, args.workers, args.clients),
    ]
    print(
        f"{args.files} small text files, extract to Markdown, {args.workers} workers, "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    print(
        "| run | files | API RSS warm (MiB) | after submit | end | peak | "
        "submission s (files/s) | end to end s (files/s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for run in runs:
        print(run.row())


if __name__ == "__main__":
    main()
