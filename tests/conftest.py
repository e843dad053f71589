"""Fixtures shared by the whole test suite.

PostgreSQL
    ``postgres_url`` (session) is the URL of a PostgreSQL server's maintenance
    database. It is ``DOCWORKER_TEST_POSTGRES_URL`` when that is set; otherwise a
    private server is started for the session: ``initdb`` into a temporary folder,
    ``pg_ctl start`` on a free port of 127.0.0.1 with its socket in that folder,
    stopped and deleted at the end. As root, the server runs as the ``postgres``
    system user (PostgreSQL refuses root). Without PostgreSQL binaries the tests
    that need it are skipped, except under ``CI``, where they fail: the set-up
    scripts install PostgreSQL there.

    ``postgres_db_url`` (function) is the URL of a new empty database on that
    server, dropped after the test. Tests using either fixture are marked
    ``@pytest.mark.postgres``.

Redis
    ``redis_url`` (session): see the fixture.

Google Cloud Storage
    ``gcs_endpoint`` (session) is the endpoint of ``gcp-storage-emulator`` (PyPI) started
    for the session on a free port of 127.0.0.1, in memory; gcsfs reaches it through
    ``STORAGE_EMULATOR_HOST``, set for the session.

S3
    ``s3_endpoint`` (session) is the endpoint of a real S3-compatible server: a
    ``moto_server`` started for the session on a free port of 127.0.0.1 (its state in
    memory, gone when it stops). ``s3_bucket`` (function) is a new bucket on it, with
    the settings that reach it as ``DOCWORKER_STORAGE__S3__*`` variables.

RabbitMQ
    ``amqp_url`` (session): ``DOCWORKER_TEST_AMQP_URL``, else the local server on port
    5672 (guest) when it answers; tests using it are marked ``@pytest.mark.rabbitmq``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

# Before any test loads pyvips: the order the service keeps (see engines/vips.py), so
# that Tesseract reads with its own image libraries in every test process.
import docworker.engines.vips  # noqa: F401

POSTGRES_URL_VARIABLE = "DOCWORKER_TEST_POSTGRES_URL"
_POSTGRES_USER = "postgres"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in {"", "0", "false", "no"}


def _unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it under CI where PostgreSQL must be present."""
    if _in_ci():
        pytest.fail(f"PostgreSQL is needed under CI: {reason}", pytrace=False)
    pytest.skip(f"{reason}; set {POSTGRES_URL_VARIABLE} or install PostgreSQL")


def _postgres_programs() -> tuple[Path, Path] | None:
    """``initdb`` and ``pg_ctl`` of the newest installed PostgreSQL, if any."""

    def version(bindir: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in bindir.parent.name.split(".") if part.isdigit())

    bindirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for bindir in bindirs:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir / "initdb", bindir / "pg_ctl"
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(initdb), Path(pg_ctl)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class _PrivatePostgres:
    """A throw-away PostgreSQL server living in one temporary folder."""

    def __init__(self, initdb: Path, pg_ctl: Path) -> None:
        self.initdb, self.pg_ctl = initdb, pg_ctl
        self.folder = Path(tempfile.mkdtemp(prefix="docworker-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam(_POSTGRES_USER)
            os.chown(self.folder, account.pw_uid, account.pw_gid)
            self.prefix = ["runuser", "-u", _POSTGRES_USER, "--"]

    def _run(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.prefix, *map(str, args)],
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def start(self) -> str:
        """Create the cluster, start it and return its maintenance database's URL."""
        # --no-sync: a throw-away cluster need not survive a power cut.
        done = self._run(
            self.initdb,
            f"--pgdata={self.data}",
            f"--username={_POSTGRES_USER}",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )
        if done.returncode != 0:
            pytest.fail(f"initdb failed:\n{done.stdout}{done.stderr}", pytrace=False)
        # Another process may take the probed port before the server binds it.
        for _ in range(3):
            port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {port} -k {self.folder}"
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            done = self._run(
                self.pg_ctl,
                "start",
                f"--pgdata={self.data}",
                f"--log={self.log}",
                "--wait",
                "--timeout=60",
                f"--options={options}",
            )
            if done.returncode == 0:
                return f"postgresql+psycopg://{_POSTGRES_USER}@127.0.0.1:{port}/postgres"
        log = self.log.read_text(errors="replace") if self.log.exists() else ""
        pytest.fail(f"PostgreSQL did not start:\n{done.stdout}{done.stderr}\n{log}", pytrace=False)

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(self.pg_ctl, "stop", f"--pgdata={self.data}", "--mode=immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


def _with_psycopg(url: str) -> URL:
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    return parsed


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a PostgreSQL server's maintenance database (see the module docstring)."""
    given = os.environ.get(POSTGRES_URL_VARIABLE)
    if given:
        yield _with_psycopg(given).render_as_string(hide_password=False)
        return
    programs = _postgres_programs()
    if programs is None:
        _unavailable("no PostgreSQL binaries (initdb, pg_ctl) found")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(_POSTGRES_USER)
        except KeyError:
            _unavailable(f"running as root and there is no '{_POSTGRES_USER}' user to run as")
    server = _PrivatePostgres(*programs)
    try:
        yield server.start()
    finally:
        server.destroy()


@pytest.fixture
def postgres_db_url(postgres_url: str) -> Iterator[str]:
    """URL of a new, empty PostgreSQL database, dropped after the test."""
    with new_postgres_database(postgres_url) as url:
        yield url


@contextlib.contextmanager
def new_postgres_database(postgres_url: str) -> Iterator[str]:
    """URL of a new, empty database on the server of ``postgres_url``, dropped at the
    block's end (for fixtures of a wider scope than a test)."""
    name = f"test_{uuid.uuid4().hex}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as connection:
            # FORCE ends connections a failed test left open.
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


REDIS_URL_VARIABLE = "DOCWORKER_TEST_REDIS_URL"
#: The Redis a developer's machine may run; used when it answers.
_LOCAL_REDIS = ("127.0.0.1", 6379)


def _redis_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a Redis server: ``DOCWORKER_TEST_REDIS_URL``, else the local one on port
    6379 when it answers, else a private ``redis-server`` started for the session on a
    free port of 127.0.0.1, with its files in a temporary folder. Tests share it: each
    keeps its keys apart under a prefix of its own. Without Redis the tests that need it
    are skipped, except under ``CI``, where they fail."""
    given = os.environ.get(REDIS_URL_VARIABLE)
    if given:
        yield given
        return
    if _redis_answers(*_LOCAL_REDIS):
        yield "redis://{}:{}/0".format(*_LOCAL_REDIS)
        return
    program = shutil.which("redis-server")
    if program is None:
        if _in_ci():
            pytest.fail("Redis is needed under CI: no redis-server found", pytrace=False)
        pytest.skip(f"no Redis; set {REDIS_URL_VARIABLE} or install redis-server")
    folder = Path(tempfile.mkdtemp(prefix="docworker-redis-"))
    port = _free_port()
    arguments = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)]
    arguments += ["--save", "", "--appendonly", "no"]
    server = subprocess.Popen([program, *arguments], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not _redis_answers("127.0.0.1", port):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("redis-server did not start", pytrace=False)
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


# The GCS emulator has no storage-control (gRPC) API: gcsfs's probe of a bucket's
# layout through it would wait for a minute before falling back to what it then does.
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"


def _serve_on_loopback(arguments: list[str], port: int, name: str) -> subprocess.Popen[bytes]:
    """Start a server program, and wait until it listens on ``port`` of 127.0.0.1."""
    module = arguments[2] if arguments[1] == "-m" else None
    if module is not None and importlib.util.find_spec(module.partition(".")[0]) is None:
        if _in_ci():
            pytest.fail(f"{name} is needed under CI: the test extra installs it", pytrace=False)
        pytest.skip(f"{name} is not installed (the test extra installs it)")
    server = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"{name} did not start", pytrace=False)
            time.sleep(0.05)


@pytest.fixture(scope="session")
def gcs_endpoint() -> Iterator[str]:
    """Endpoint of a GCS emulator on loopback, for the session (see the module)."""
    port = _free_port()
    arguments = [sys.executable, "-m", "gcp_storage_emulator", "start"]
    arguments += ["--host", "127.0.0.1", "--port", str(port), "--in-memory"]
    server = _serve_on_loopback(arguments, port, "gcp-storage-emulator")
    endpoint = f"http://127.0.0.1:{port}"
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = endpoint
    try:
        yield endpoint
    finally:
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous
        server.terminate()
        server.wait(10)


#: Azurite's well-known development account (the same in every Azurite).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
AZURITE = Path(__file__).parent / "tools" / "azurite" / "node_modules" / ".bin" / "azurite-blob"


@pytest.fixture(scope="session")
def azure_connection(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Connection string of Azurite's blob service on loopback, for the session (installed
    by ``scripts/bootstrap dev`` from npm); set as ``AZURE_STORAGE_CONNECTION_STRING``,
    where adlfs finds its credentials as it would find Azure's."""
    if not AZURITE.exists():
        message = "Azurite is not installed: run scripts/bootstrap dev"
        if _in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    port = _free_port()
    folder = tmp_path_factory.mktemp("azurite")
    arguments = [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port)]
    arguments += ["--location", str(folder), "--silent", "--skipApiVersionCheck", "--loose"]
    server = _serve_on_loopback(arguments, port, "Azurite")
    connection = (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
        f"AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
    )
    previous = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    os.environ["AZURE_STORAGE_CONNECTION_STRING"] = connection
    try:
        yield connection
    finally:
        if previous is None:
            os.environ.pop("AZURE_STORAGE_CONNECTION_STRING", None)
        else:
            os.environ["AZURE_STORAGE_CONNECTION_STRING"] = previous
        server.terminate()
        server.wait(10)


#: Credentials moto takes (any are taken; botocore needs some to sign with).
S3_KEY, S3_SECRET = "docworker-test", "docworker-test-secret"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Endpoint of a ``moto_server`` on loopback, for the session (see the module)."""
    port = _free_port()
    arguments = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    server = _serve_on_loopback(arguments, port, "moto_server")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


@dataclass(frozen=True)
class S3Bucket:
    """A new bucket on the test server, and what reaches it."""

    endpoint: str
    name: str

    @property
    def env(self) -> dict[str, str]:
        """The service's settings for this server, as environment variables."""
        return {
            "DOCWORKER_STORAGE__S3__ENDPOINT_URL": self.endpoint,
            "DOCWORKER_STORAGE__S3__REGION": "us-east-1",
            "DOCWORKER_STORAGE__S3__ACCESS_KEY_ID": S3_KEY,
            "DOCWORKER_STORAGE__S3__SECRET_ACCESS_KEY": S3_SECRET,
            "DOCWORKER_STORAGE__S3__PATH_STYLE": "true",
        }

    def client(self) -> Any:
        """A boto3 client of the server, to look at what the service stored."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
        )

    def keys(self, prefix: str = "") -> list[str]:
        """The keys stored in the bucket under ``prefix``."""
        listed = self.client().list_objects_v2(Bucket=self.name, Prefix=prefix)
        return [item["Key"] for item in listed.get("Contents", [])]

    @property
    def settings(self) -> dict[str, object]:
        """The same settings, as the ``storage.s3`` section."""
        return {
            "endpoint_url": self.endpoint,
            "region": "us-east-1",
            "access_key_id": S3_KEY,
            "secret_access_key": S3_SECRET,
            "path_style": True,
        }


def new_bucket(endpoint: str) -> S3Bucket:
    """A new, empty bucket on the S3 server at ``endpoint``."""
    bucket = S3Bucket(endpoint, f"docworker-{uuid.uuid4().hex[:16]}")
    bucket.client().create_bucket(Bucket=bucket.name)
    return bucket


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> S3Bucket:
    """A new, empty bucket on the session's ``moto_server``."""
    return new_bucket(s3_endpoint)


#: The loopback listener fixture (``listener``) of tests/listener.py, for every test.
pytest_plugins = ["tests.listener"]


AMQP_URL_VARIABLE = "DOCWORKER_TEST_AMQP_URL"
#: The RabbitMQ a developer's machine may run; used when it answers.
_LOCAL_AMQP = ("127.0.0.1", 5672)


def _amqp_answers(host: str, port: int) -> bool:
    """Whether an AMQP 0-9-1 server answers the protocol header with its own."""
    try:
        with socket.create_connection((host, port), timeout=1) as connection:
            connection.sendall(b"AMQP\x00\x00\x09\x01")
            return connection.recv(8)[:1] == b"\x01"  # a Connection.Start method frame
    except OSError:
        return False


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """URL of a RabbitMQ server: ``DOCWORKER_TEST_AMQP_URL``, else the local one on port
    5672 (user guest) when it answers; without one the tests that need it are skipped,
    except under ``CI``, where they fail."""
    given = os.environ.get(AMQP_URL_VARIABLE)
    if given:
        return given
    if _amqp_answers(*_LOCAL_AMQP):
        return "amqp://guest:guest@{}:{}//".format(*_LOCAL_AMQP)
    if _in_ci():
        pytest.fail("RabbitMQ is needed under CI", pytrace=False)
    pytest.skip(f"no RabbitMQ; set {AMQP_URL_VARIABLE} or run rabbitmq-server")
