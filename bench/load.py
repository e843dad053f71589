"""The service under load: sync HTTP against the in-process rate of the same files.

``python -m bench.load [--workers 2] [--clients 4,50,200] [--seconds 60] [--mix small,large]
[--overload 4] [--deadline 30]`` starts a real ``docworker serve`` (local executor,
``--workers`` worker processes, a private data folder, loopback only) and measures, for
each file mix:

* **in process**: the same files extracted to Markdown by ``--workers`` processes
  calling the ``extract`` operation directly, for ``--seconds``: the rate the work
  itself allows on this machine, the ceiling for the HTTP path;
* **closed loop**: ``--clients`` keep-alive clients (each phase in turn) posting the
  files to ``POST /api/v2/extract`` one after the other for ``--seconds``, honouring
  ``Retry-After`` on 429/503 and giving up on a request after ``--deadline`` seconds
  (it then closes its connection, as a client that went away);
* **open loop**: requests arriving at ``--overload`` times the service's capacity (the
  best goodput of the closed-loop phases) whatever the answers, each on its own
  connection with the same deadline: the service over capacity, where its goodput must
  not collapse.

Printed per phase: requests answered per second, **goodput** (200 answers within the
deadline per second) and its ratio to the in-process rate, p50/p99 latency of the good
answers, answers by status (``timeout``: the deadline passed), the server's own CPU
time per answered request (the API process, executor's supervisor thread included;
workers not counted), the cores the load generator itself used, and the RSS of the API
process and of the workers at the start and end of the phase. Run it on an otherwise
idle machine; the load generator shares the cores with the server, as a client on the
same host would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.scoring import corpus_root

#: Files of the small mix: everyday documents of 1 to 270 KB that take 8 to 30 ms each to
#: extract in process here (DOCX, PPTX, PDF, HTML), as a service is mostly sent.
SMALL = (
    "office/word-tables.docx",
    "office/word-sample.docx",
    "office/textbox.docx",
    "office/equations.docx",
    "office/docx-with-embedded-pdf.docx",
    "office/powerpoint-sample.pptx",
    "pdf/arabic-rtl.pdf",
    "pdf/code-and-formula.pdf",
    "pdf/latex-multicolumn.pdf",
    "pdf/paper-page-with-table.pdf",
    "pdf/multi-page-article.pdf",
    "pdf/multi-column-2p.pdf",
    "web/with-scripts.html",
    "web/wiki-duck.html",
    "web/cp1252.html",
)
#: The large mix adds long PDFs (hundreds of pages, megabytes) to the small files.
LARGE = (*SMALL, "pdf/huge-619-pages.pdf", "pdf/ibm-redbook-sampled.pdf")
MIXES = {"small": SMALL, "large": LARGE}

_STATUS = re.compile(rb"HTTP/1\.[01] (\d{3})")
_HEADER = re.compile(rb"(?im)^([a-z0-9-]+): *(.*?)\r?$")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- the work itself, in process ------------------------------------------------------
def _extract_loop(paths: list[str], seconds: float, offset: int, guard: bool) -> tuple[int, float]:
    """Extract ``paths`` round-robin (from ``offset``) for ``seconds``, after one warm-up
    pass, each scanned by the content guard first when ``guard``; returns (documents,
    seconds taken)."""
    from docworker.config import Settings
    from docworker.formats.registry import preload
    from docworker.guard import security_section
    from docworker.operations import get_operation, validate_params
    from docworker.operations.base import InputFile, operation_context

    preload()
    settings = Settings()
    operation = get_operation("extract")
    params = validate_params(operation, {"output": "markdown"})

    def one(path: Path) -> None:
        if guard:
            security_section([(path, path.name, None)], settings.guard, None)
        operation.run(ctx, InputFile(path, path.name), params)

    with tempfile.TemporaryDirectory(prefix="dw-bench-") as workdir:
        ctx = operation_context(settings, workdir=Path(workdir))
        for path in paths:
            one(Path(path))
        done = 0
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            one(Path(paths[(offset + done) % len(paths)]))
            done += 1
    return done, elapsed


def in_process_rate(paths: list[Path], workers: int, seconds: float, *, guard: bool) -> float:
    """Documents per second that ``workers`` processes extract by themselves (after the
    content guard's scan of each, as a worker does, when ``guard``)."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers) as pool:
        runs = pool.starmap(
            _extract_loop,
            [([str(p) for p in paths], seconds, i * 3, guard) for i in range(workers)],
        )
    return sum(done / elapsed for done, elapsed in runs)


# -- the server -----------------------------------------------------------------------
@dataclass
class Server:
    workers: int
    env: dict[str, str] = field(default_factory=dict)
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="dw-load-")))
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            "DOCWORKER_DATA_DIR": str(self.folder),
            "DOCWORKER_EXECUTOR__WORKERS": str(self.workers),
            "DOCWORKER_LOG__LEVEL": "WARNING",
            # Every request runs: the same files again must not be answered from the cache.
            "DOCWORKER_CACHE__ENABLED": "false",
            **self.env,
        }
        command = [sys.executable, "-m", "docworker", "serve", "--port", str(self.port)]
        with (self.folder / "server.log").open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited; see {self.folder}/server.log")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health/readiness", timeout=1).status_code == 200:
                    return
            time.sleep(0.2)
        raise SystemExit("the server did not start")

    def cpu_seconds(self) -> float:
        assert self.process is not None
        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)

    def rss_mb(self) -> tuple[float, float]:
        """RSS of the API process, and of its workers (with their engines), in MiB."""
        assert self.process is not None
        api = psutil.Process(self.process.pid)
        workers = 0
        for child in api.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                workers += child.memory_info().rss
        return api.memory_info().rss / 2**20, workers / 2**20

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


# -- the clients ----------------------------------------------------------------------
def _request(path: Path, port: int, deadline: float) -> bytes:
    """``POST /api/v2/extract`` of ``path``, as raw HTTP/1.1 (the load generator shares
    the cores: a request costs it a write and a read, not an HTTP library's work)."""
    boundary = uuid.uuid4().hex
    body = b"".join(
        [
            f'--{boundary}\r\nContent-Disposition: form-data; name="output"\r\n\r\n'.encode(),
            b"markdown\r\n",
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode(),
            path.read_bytes(),
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    head = (
        f"POST /api/v2/extract?wait={deadline:g} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Accept: application/json\r\nContent-Length: {len(body)}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
    )
    return head.encode() + body


async def _answer(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes]]:
    """Read one response; its status and headers (the body is read and dropped)."""
    head = await reader.readuntil(b"\r\n\r\n")
    match = _STATUS.match(head)
    status = int(match.group(1)) if match else 0
    headers = {k.lower(): v for k, v in _HEADER.findall(head)}
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")
    else:
        await reader.readexactly(int(headers.get(b"content-length", b"0")))
    return status, headers


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    cpu: float = 0.0
    #: CPU-seconds the load generator (this process) used in the phase: it shares the
    #: machine's cores with the server.
    client_cpu: float = 0.0
    rss_start: tuple[float, float] = (0.0, 0.0)
    rss_end: tuple[float, float] = (0.0, 0.0)

    def record(self, status: str, latency: float | None = None) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if latency is not None and status == "200":
            self.latencies.append(latency)

    @property
    def answered(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != "timeout")

    @property
    def goodput(self) -> float:
        return len(self.latencies) / self.seconds

    def quantile_ms(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _closed_client(
    port: int, requests: list[bytes], start: int, until: float, deadline: float, phase: Phase
) -> None:
    """One client: a request, its answer, the next, until ``until``."""
    index = start
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while (now := time.perf_counter()) < until:
        request = requests[index % len(requests)]
        index += 1
        try:
            if connection is None:
                connection = await asyncio.open_connection("127.0.0.1", port)
            reader, writer = connection
            writer.write(request)
            status, headers = await asyncio.wait_for(_answer(reader), deadline)
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            phase.record("timeout" if isinstance(exc, TimeoutError) else "dropped")
            if connection is not None:
                connection[1].close()
            connection = None
            continue
        phase.record(str(status), time.perf_counter() - now)
        if headers.get(b"connection", b"").lower() == b"close":
            writer.close()
            connection = None
        if status in (429, 503):
            wait = float(headers.get(b"retry-after", b"1") or 1)
            await asyncio.sleep(min(wait, max(until - time.perf_counter(), 0)))
    if connection is not None:
        connection[1].close()


async def _one_shot(port: int, request: bytes, deadline: float, phase: Phase) -> None:
    started = time.perf_counter()
    writer = None
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        status, _ = await asyncio.wait_for(_answer(reader), deadline)
        phase.record(str(status), time.perf_counter() - started)
    except TimeoutError:
        phase.record("timeout")
    except (OSError, asyncio.IncompleteReadError):
        phase.record("dropped")
    finally:
        if writer is not None:
            writer.close()


async def closed_loop(
    server: Server, requests: list[bytes], clients: int, seconds: float, deadline: float
) -> Phase:
    phase = Phase(f"{clients} clients")
    return await _measure(
        server,
        phase,
        seconds,
        lambda until: [
            _closed_client(server.port, requests, i, until, deadline, phase) for i in range(clients)
        ],
    )


async def open_loop(
    server: Server, requests: list[bytes], rate: float, seconds: float, deadline: float
) -> Phase:
    phase = Phase(f"open {rate:.0f}/s")

    def arrivals(until: float) -> list[Coroutine[Any, Any, None]]:
        return [_arrive(server.port, requests, rate, until, deadline, phase)]

    return await _measure(server, phase, seconds, arrivals)


async def _arrive(
    port: int, requests: list[bytes], rate: float, until: float, deadline: float, phase: Phase
) -> None:
    tasks: set[asyncio.Task[None]] = set()
    sent = 0
    started = time.perf_counter()
    while (now := time.perf_counter()) < until:
        due = started + sent / rate
        if due > now:
            await asyncio.sleep(due - now)
        task = asyncio.create_task(_one_shot(port, requests[sent % len(requests)], deadline, phase))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        sent += 1
    if tasks:
        await asyncio.wait(tasks)


async def _measure(
    server: Server,
    phase: Phase,
    seconds: float,
    make: Callable[[float], list[Coroutine[Any, Any, None]]],
) -> Phase:
    phase.rss_start = server.rss_mb()
    cpu = server.cpu_seconds()
    client_cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*make(started + seconds))
    # Answers that arrive after the phase's end (open loop: within the deadline) count
    # toward it: the phase lasted until they came.
    phase.seconds = time.perf_counter() - started
    phase.cpu = server.cpu_seconds() - cpu
    phase.client_cpu = time.process_time() - client_cpu
    phase.rss_end = server.rss_mb()
    return phase


# -- the run --------------------------------------------------------------------------
def _print_phase(phase: Phase, ceiling: float) -> None:
    statuses = " ".join(f"{k}:{v}" for k, v in sorted(phase.statuses.items()))
    per_request = phase.cpu / max(phase.answered, 1) * 1000
    print(
        f"  {phase.name:>14}  {phase.answered / phase.seconds:7.1f}/s  good "
        f"{phase.goodput:7.1f}/s ({phase.goodput / ceiling:4.2f}×)  p50 "
        f"{phase.quantile_ms(0.5):7.0f} ms  p99 {phase.quantile_ms(0.99):7.0f} ms  "
        f"API cpu {per_request:5.1f} ms/req  clients {phase.client_cpu / phase.seconds:4.2f} "
        f"cores  RSS api {phase.rss_start[0]:.0f}→"
        f"{phase.rss_end[0]:.0f} MiB workers {phase.rss_start[1]:.0f}→{phase.rss_end[1]:.0f} "
        f"MiB  [{statuses}]",
        flush=True,
    )


async def run_mix(name: str, args: argparse.Namespace) -> None:
    paths = [corpus_root() / rel for rel in MIXES[name]]
    ceiling = in_process_rate(paths, args.workers, args.seconds, guard=False)
    guarded = in_process_rate(paths, args.workers, args.seconds, guard=True)
    print(f"\n{name} mix ({len(paths)} files), {args.workers} workers", flush=True)
    print(f"  {'in process':>14}  {ceiling:7.1f}/s  (the ceiling: ratios below are to it)")
    print(
        f"  {'+ guard scan':>14}  {guarded:7.1f}/s  ({guarded / ceiling:4.2f}×: the same "
        "files scanned by the content guard first, as a worker does)",
        flush=True,
    )
    server = Server(args.workers)
    server.start()
    try:
        requests = [_request(p, server.port, args.deadline) for p in paths]
        # Warm the workers (each parser's first file) before anything is measured.
        await closed_loop(server, requests, args.workers, max(len(paths) / 4, 2), args.deadline)
        capacity = 0.0
        for clients in args.clients:
            phase = await closed_loop(server, requests, clients, args.seconds, args.deadline)
            _print_phase(phase, ceiling)
            capacity = max(capacity, phase.goodput)
        if args.overload and capacity > 0:
            rate = args.overload * capacity
            phase = await open_loop(server, requests, rate, args.seconds, args.deadline)
            _print_phase(phase, ceiling)
            print(
                f"  {'':>14}  goodput at {args.overload:g}× the capacity offered: "
                f"{phase.goodput / capacity:.2f} of the capacity ({capacity:.1f}/s, the best "
                "goodput of the phases above)",
                flush=True,
            )
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--clients", type=lambda s: [int(x) for x in s.split(",")], default=[4, 50, 200]
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--mix", default="small,large")
    parser.add_argument("--overload", type=float, default=4.0, help="0: no open-loop phase")
    parser.add_argument("--deadline", type=float, default=30.0)
    args = parser.parse_args()
    for name in args.mix.split(","):
        asyncio.run(run_mix(name, args))


if __name__ == "__main__":
    main()
