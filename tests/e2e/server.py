"""A real ``docworker serve`` process on a free port of 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """One ``docworker serve`` process over a data folder; restartable."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DOCWORKER_DATA_DIR": str(data_dir),
            "DOCWORKER_EXECUTOR__WORKERS": "2",
            "DOCWORKER_EXECUTOR__RETRY_DELAY": "0.2",
            "DOCWORKER_LOG__FORMAT": "json",
            # A job still running when a test stops its server is waited for this long.
            "DOCWORKER_SERVER__DRAIN_TIMEOUT": "5",
            # Tests submit the same files again and again to watch them run: the result
            # cache would answer them instead. Its own tests turn it on.
            "DOCWORKER_CACHE__ENABLED": "false",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "server.log"

    def start(self, **env: str) -> Server:
        self.env.update(env)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "docworker",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health/liveness", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server did not start: {self.log.read_text()[-3000:]}")

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120)

    def keys(self, *args: str) -> str:
        """What ``docworker keys ARGS`` prints, run with the server's settings."""
        done = subprocess.run(
            [sys.executable, "-m", "docworker", "keys", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


def finished(client: httpx.Client, job: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    """The job (as the API answers it) once it has ended, asserted ``succeeded``."""
    deadline = time.monotonic() + timeout
    while job["status"] in {"queued", "running"}:
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
        job = client.get(job["links"]["self"]).json()
    assert job["status"] == "succeeded", job
    return job
