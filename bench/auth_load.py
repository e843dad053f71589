"""What API keys and rate limits cost a request, under many concurrent clients.

``python -m bench.auth_load [--clients 50] [--seconds 8] [--rounds 3] [--redis-url URL]``
starts real ``docworker serve`` processes (no executor: only the HTTP path is measured),
one per set-up:

* ``open``: no keys, no rate limits (the baseline);
* ``keys``: API keys on, rate limits off;
* ``keys+rate``: keys and a rate per key, counted in the server's memory;
* ``keys+rate(redis)``: the same, counted in Redis (``--redis-url``, else the local
  Redis on 127.0.0.1:6379 when it answers; left out without one).

Each set-up then answers the most common request of a client, polling its job
(``GET /api/v2/jobs/{id}``), from ``--clients`` keep-alive connections at once for
``--seconds``; the set-ups take turns for ``--rounds`` rounds and the median round is
kept. The figure that matters is the server's CPU time per request (from the kernel's
account of the server process, so the load generator sharing the machine does not
blur it): its excess over ``open`` is what authentication and rate limiting cost a
request. Throughput and latencies are printed beside it, with ratios to ``open`` of the
same run.

Last, each rate-limited server gets 50 requests at once under a key allowed 20 a
minute, and the bench prints how many passed (it must be exactly 20).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from starlette.types import Message, Receive, Scope, Send

SECRET = "b3nchK8Lq2Xv7Md1Pz9Wc3Hn6Rf0Js5Ga2Ye8Ut"
#: A rate no benchmark client reaches, so every request is counted and passes.
BENCH_RATE = "1000000/hour"
_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _redis_answers(url: str) -> bool:
    host_port = url.split("://", 1)[1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port or 6379)), 1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except (OSError, ValueError):
        return False


@dataclass
class Setup:
    name: str
    env: dict[str, str]
    keyed: bool
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="dw-bench-")))
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None
    key: str | None = None
    job_id: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "DOCWORKER_DATA_DIR": str(self.folder),
            "DOCWORKER_EXECUTOR__KIND": "none",
            "DOCWORKER_LOG__FORMAT": "json",
            "DOCWORKER_AUTH__SECRET": SECRET,
            **self.env,
        }

    def start(self) -> None:
        command = [sys.executable, "-m", "docworker", "serve", "--port", str(self.port)]
        with (self.folder / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                command, env=self.environment(), stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name}: the server exited; see {self.folder}")
            try:
                if httpx.get(f"{self.url}/health/liveness", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise SystemExit(f"{self.name}: the server did not start")
        if self.keyed:
            self.key = self.make_key(BENCH_RATE)
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=60) as client:
            job = client.post(
                "/api/v2/jobs",
                files={"file": ("a.txt", b"hello")},
                data={"operation": "extract", "params": '{"output": "text"}'},
            )
            job.raise_for_status()
            self.job_id = job.json()["id"]

    def make_key(self, rate: str) -> str:
        command = [sys.executable, "-m", "docworker", "keys", "create", "--tenant", "bench"]
        limits = json.dumps({"rate": rate})
        done = subprocess.run(
            [*command, "--scope", "read", "--scope", "submit", "--limits", limits],
            env=self.environment(),
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    def cpu_seconds(self) -> float:
        assert self.process is not None
        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class Round:
    requests: int
    seconds: float
    cpu: float
    latencies: list[float]
    statuses: dict[int, int]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.cpu / self.requests * 1e6

    def latency_ms(self, quantile: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] * 1000


async def _client(
    setup: Setup, request: bytes, until: float, latencies: list[float], statuses: dict[int, int]
) -> None:
    """One keep-alive connection sending ``request`` again and again until ``until``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", setup.port)
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = _LENGTH.search(head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            latencies.append(time.perf_counter() - started)
            status = int(head[9:12])
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


def _request(setup: Setup) -> bytes:
    lines = [f"GET /api/v2/jobs/{setup.job_id} HTTP/1.1", f"Host: 127.0.0.1:{setup.port}"]
    lines += [f"{name}: {value}" for name, value in setup.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _load(setup: Setup, clients: int, seconds: float) -> Round:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    request = _request(setup)
    cpu_before = setup.cpu_seconds()
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(
        *(_client(setup, request, until, latencies, statuses) for _ in range(clients))
    )
    elapsed = time.perf_counter() - started
    return Round(len(latencies), elapsed, setup.cpu_seconds() - cpu_before, latencies, statuses)


async def _burst(setup: Setup, key: str, count: int) -> dict[int, int]:
    """``count`` requests at once with ``key``, each on its own connection."""
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=setup.url, limits=limits, timeout=60) as client:
        path = f"/api/v2/jobs/{setup.job_id}"
        answers = await asyncio.gather(
            *(client.get(path, headers={"Authorization": f"Bearer {key}"}) for _ in range(count))
        )
    found: dict[int, int] = {}
    for answer in answers:
        found[answer.status_code] = found.get(answer.status_code, 0) + 1
        if answer.status_code == 429 and "retry-after" not in answer.headers:
            found[-1] = found.get(-1, 0) + 1
    return found


async def _trivial_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _middleware_cost(redis_url: str | None, calls: int) -> dict[str, float]:
    """CPU µs per request of the authentication and rate limit middleware themselves, in
    this process, around an application that answers at once (no network, no route)."""
    from docworker.api.auth import Authenticate, Authenticator
    from docworker.api.ratelimit import RateLimit
    from docworker.config import load_settings
    from docworker.jobs.keys import KeyStore
    from docworker.jobs.store import JobStore

    folder = Path(tempfile.mkdtemp(prefix="dw-bench-"))
    store = JobStore(f"sqlite:///{folder / 'jobs.db'}")
    store.migrate()
    keys = KeyStore(store, SECRET.encode())
    _, token = keys.create("bench", ["read"], limits={"rate": BENCH_RATE})
    stacks: dict[str, Any] = {"none": _trivial_app}
    storages = {"memory": "memory://"} | ({"redis": redis_url} if redis_url else {})
    for label, enabled, storage in [("keys", False, "memory://")] + [
        (f"keys+rate({name})", True, url) for name, url in storages.items()
    ]:
        settings = load_settings(
            auth={"enabled": True, "secret": SECRET},
            rate={"enabled": enabled, "storage_url": storage, "key_prefix": f"bench{os.getpid()}"},
        )
        authenticate = Authenticate(RateLimit(_trivial_app, settings), settings)
        authenticate.authenticator = Authenticator(keys, ttl=3600)
        stacks[label] = authenticate
    headers = [(b"authorization", f"Bearer {token}".encode())]

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        return None

    async def measure(app: Any) -> float:
        def scope() -> Scope:
            return {
                "type": "http",
                "method": "GET",
                "path": "/api/v2/jobs/x",
                "headers": headers,
                "query_string": b"",
                "client": ("127.0.0.1", 40000),
            }

        for _ in range(200):  # warm: the key checked once, connections open
            await app(scope(), receive, send)
        started = time.process_time()
        for _ in range(calls):
            await app(scope(), receive, send)
        return (time.process_time() - started) / calls * 1e6

    try:
        return {label: asyncio.run(measure(app)) for label, app in stacks.items()}
    finally:
        store.close()
        shutil.rmtree(folder, ignore_errors=True)


def _setups(redis_url: str | None) -> list[Setup]:
    keys_on = {"DOCWORKER_AUTH__ENABLED": "true"}
    setups = [
        Setup("open", {"DOCWORKER_AUTH__ENABLED": "false"}, keyed=False),
        Setup("keys", {**keys_on, "DOCWORKER_RATE__ENABLED": "false"}, keyed=True),
        Setup("keys+rate", {**keys_on, "DOCWORKER_RATE__ENABLED": "true"}, keyed=True),
    ]
    if redis_url:
        prefix = f"docworker-bench-{os.getpid()}"
        setups.append(
            Setup(
                "keys+rate(redis)",
                {
                    **keys_on,
                    "DOCWORKER_RATE__ENABLED": "true",
                    "DOCWORKER_RATE__STORAGE_URL": redis_url,
                    "DOCWORKER_RATE__KEY_PREFIX": prefix,
                },
                keyed=True,
            )
        )
    return setups


def _report(results: dict[str, list[Round]]) -> None:
    def median(rounds: list[Round]) -> Round:
        return sorted(rounds, key=lambda r: r.cpu_us)[len(rounds) // 2]

    base = median(results["open"])
    print(
        f"\n{'set-up':<18}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU µs/req':>12}"
        f"{'+µs vs open':>13}{'req/s ratio':>13}{'CPU ratio':>11}  statuses"
    )
    for name, rounds in results.items():
        kept = median(rounds)
        spread = statistics.pstdev(r.cpu_us for r in rounds) if len(rounds) > 1 else 0.0
        print(
            f"{name:<18}{kept.rps:>9.0f}{kept.latency_ms(0.5):>9.2f}{kept.latency_ms(0.99):>9.2f}"
            f"{kept.cpu_us:>9.0f}±{spread:<3.0f}{kept.cpu_us - base.cpu_us:>12.0f}"
            f"{kept.rps / base.rps:>13.2f}{kept.cpu_us / base.cpu_us:>11.2f}  {kept.statuses}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument(
        "--calls", type=int, default=20000, help="requests per in-process measurement"
    )
    args = parser.parse_args(argv)
    redis_url = args.redis_url
    if redis_url is None and _redis_answers("redis://127.0.0.1:6379/0"):
        redis_url = "redis://127.0.0.1:6379/0"
    cost = _middleware_cost(redis_url, args.calls)
    print("In process, CPU µs per request of the middleware around an app that answers at once:")
    for label, micros in cost.items():
        print(f"  {label:<18} {micros:7.1f} µs   (+{micros - cost['none']:.1f} µs)")
    setups = _setups(redis_url)
    try:
        for setup in setups:
            setup.start()
        for setup in setups:  # warm-up: imports, connections, caches
            asyncio.run(_load(setup, args.clients, 1.0))
        results: dict[str, list[Round]] = {setup.name: [] for setup in setups}
        for number in range(args.rounds):
            # Each round starts with another set-up, so that none is always measured
            # right after the same neighbour.
            shift = number % len(setups)
            for setup in setups[shift:] + setups[:shift]:
                measured = asyncio.run(_load(setup, args.clients, args.seconds))
                results[setup.name].append(measured)
                print(
                    f"round {number + 1} {setup.name:<18} {measured.rps:7.0f} req/s "
                    f"{measured.cpu_us:6.0f} µs CPU/req  {measured.statuses}",
                    flush=True,
                )
        _report(results)
        print("\n50 requests at once under a key allowed 20/minute:")
        for setup in setups:
            if setup.name.startswith("keys+rate"):
                found = asyncio.run(_burst(setup, setup.make_key("20/minute"), 50))
                print(f"  {setup.name:<18} {found}  (200: passed, 429: refused)")
    finally:
        for setup in setups:
            setup.stop()


if __name__ == "__main__":
    main()
