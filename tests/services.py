"""Private, restartable servers for the fault tests: PostgreSQL, Redis and RabbitMQ, each
on a free port of 127.0.0.1 with its files in a temporary folder of its own.

Unlike the session fixtures of ``tests/conftest.py`` (which use a shared server when one
answers), these are never shared: a test stops and starts them mid-run. ``stop()`` and
``start()`` keep the data folder and the port, so clients reconnect to the same URL and
find what the server kept (PostgreSQL's rows; Redis's append-only file; RabbitMQ's
durable queues and persistent messages).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import _free_port, _postgres_programs, _PrivatePostgres


def _answers(port: int, hello: bytes, expect: bytes) -> bool:
    """Whether a server on ``port`` of 127.0.0.1 answers ``hello`` with ``expect`` first."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.sendall(hello)
            return connection.recv(64).startswith(expect)
    except OSError:
        return False


def _wait(check: object, what: str, process: subprocess.Popen[bytes] | None, log: Path) -> None:
    deadline = time.monotonic() + 60
    while not check():  # type: ignore[operator]
        if (process is not None and process.poll() is not None) or time.monotonic() > deadline:
            text = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            pytest.fail(f"{what} did not start:\n{text}", pytrace=False)
        time.sleep(0.05)


class RestartablePostgres(_PrivatePostgres):
    """The suite's private PostgreSQL server, which a test may stop and start again on
    the same port and data folder."""

    def __init__(self) -> None:
        programs = _postgres_programs()
        if programs is None:
            pytest.skip("no PostgreSQL binaries (initdb, pg_ctl) found")
        super().__init__(*programs)
        self.url = ""
        self.options = ""

    def create(self) -> str:
        """Create the cluster and start it; the maintenance database's URL."""
        self.url = super().start()
        port = self.url.rsplit(":", 1)[1].split("/")[0]
        self.options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {self.folder}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        return self.url

    def stop(self) -> None:
        """Stop the server (``fast``: open sessions are ended, as a restart ends them)."""
        done = self._run(self.pg_ctl, "stop", f"--pgdata={self.data}", "--mode=fast", "--wait")
        assert done.returncode == 0, done.stderr

    def restart(self) -> None:
        """Start the stopped server again, on its port and data folder."""
        done = self._run(
            self.pg_ctl,
            "start",
            f"--pgdata={self.data}",
            f"--log={self.log}",
            "--wait",
            "--timeout=60",
            f"--options={self.options}",
        )
        assert done.returncode == 0, f"{done.stdout}{done.stderr}{self.log.read_text()[-2000:]}"


class PrivateRedis:
    """A ``redis-server`` of its own that keeps what it holds across a restart in an
    append-only file (as a broker's Redis should be run)."""

    def __init__(self) -> None:
        program = shutil.which("redis-server")
        if program is None:
            pytest.skip("no redis-server found")
        self.program = program
        self.folder = Path(tempfile.mkdtemp(prefix="docworker-redis-"))
        self.log = self.folder / "server.log"
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        arguments = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        arguments += ["--save", "", "--appendonly", "yes", "--logfile", str(self.log)]
        self.process = subprocess.Popen([self.program, *arguments], stdout=subprocess.DEVNULL)
        _wait(
            lambda: _answers(self.port, b"PING\r\n", b"+PONG"),
            "redis-server",
            self.process,
            self.log,
        )
        return self.url

    def stop(self) -> None:
        """Stop it as an operator would (SIGTERM: the append-only file is written out)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        self.process = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


#: Where Debian's package keeps the server's own start script (the one on PATH switches
#: to the ``rabbitmq`` user through ``su``, which drops the environment given here).
_RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
_RABBITMQ_USER = "rabbitmq"


class PrivateRabbitMQ:
    """A RabbitMQ node of its own (its own node name, AMQP and distribution ports,
    database, logs and configuration, no plugin), restartable: its durable queues and
    persistent messages are kept in its folder."""

    def __init__(self) -> None:
        program = _RABBITMQ_SERVER if _RABBITMQ_SERVER.is_file() else None
        if program is None and (found := shutil.which("rabbitmq-server")) is not None:
            program = Path(found)
        if program is None:
            pytest.skip("no rabbitmq-server found")
        self.program = program
        self.folder = Path(tempfile.mkdtemp(prefix="docworker-rabbitmq-"))
        self.port = _free_port()
        dist_port = _free_port()
        node = f"docworker-{uuid.uuid4().hex[:8]}@localhost"
        (self.folder / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        (self.folder / "enabled_plugins").write_text("[].\n")
        self.env = {
            **os.environ,
            "HOME": str(self.folder),
            "RABBITMQ_NODENAME": node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.folder / "node.pid"),
        }
        self.prefix: list[str] = []
        if os.geteuid() == 0:  # the node runs as its own user, as the package runs it
            account = pwd.getpwnam(_RABBITMQ_USER)
            for path in [self.folder, *self.folder.iterdir()]:
                os.chown(path, account.pw_uid, account.pw_gid)
            self.prefix = ["runuser", "-u", _RABBITMQ_USER, "--"]
        self.log = self.folder / "server.out"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*self.prefix, str(self.program)],
                env=self.env,
                cwd=self.folder,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait(
            lambda: _answers(self.port, b"AMQP\x00\x00\x09\x01", b"\x01"),
            "rabbitmq-server",
            self.process,
            self.log,
        )
        return self.url

    def stop(self) -> None:
        """Stop the node as an operator would (SIGTERM to the Erlang VM: a clean stop)."""
        if self.process is None:
            return
        pid_file = self.folder / "node.pid"
        if pid_file.exists() and pid_file.read_text().strip().isdigit():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
