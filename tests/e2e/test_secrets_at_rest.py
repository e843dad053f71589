"""Secrets and data at rest, against a real server: passwords never reach the database, the
blob folder, the logs or an answer; what the service keeps is private to its user; a
job deleted with ``purge=true`` is gone from the store and from the blob folder."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pikepdf
import pytest
from typer.testing import CliRunner

from bench.scoring import corpus_root
from docworker.cli import app
from docworker.jobs.store import JobStore
from tests.e2e.server import Server

CORPUS = corpus_root()
ARTICLE = CORPUS / "pdf" / "multi-page-article.pdf"
HUGE = CORPUS / "pdf" / "huge-619-pages.pdf"
SCAN = CORPUS / "pdf" / "scanned-ocr-test.pdf"
#: Distinctive enough that finding it anywhere can only mean it was kept.
PASSWORD = "Quokka-Lantern-5821-Vermilion"
USER_PASSWORD = "Tamarind-Glacier-3307-Ochre"
OWNER_PASSWORD = "Basalt-Heron-9146-Saffron"
SECRETS = (PASSWORD, USER_PASSWORD, OWNER_PASSWORD)
#: The encrypted input's file name, stored with its job: the search must find it.
NAME = "locked-article-7f3e.pdf"

pytestmark = pytest.mark.skipif(not ARTICLE.is_file(), reason="test corpus not present")


@pytest.fixture
def locked_pdf(tmp_path: Path) -> bytes:
    """The five-page article, encrypted with :data:`PASSWORD` (with a salt of its own: an
    input no other test's jobs share)."""
    path = tmp_path / NAME
    with pikepdf.open(ARTICLE) as pdf:
        pdf.save(path, encryption=pikepdf.Encryption(user=PASSWORD, owner=PASSWORD, R=6))
    return path.read_bytes()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # A data folder the test makes with the usual umask (0755): the service tightens it.
    data = tmp_path_factory.mktemp("secrets") / "data"
    srv = Server(
        data,
        DOCWORKER_LOG__LEVEL="DEBUG",
        DOCWORKER_DATABASE__ECHO="true",
        DOCWORKER_EXECUTOR__SPLIT_MIN_PAGES="2",
        DOCWORKER_EXECUTOR__SPLIT_PARTS="2",
        DOCWORKER_RENDER__SPLIT_MIN_PAGES="2",
        DOCWORKER_OCR__DPI="150",
    )
    srv.log = data.parent / "server.log"  # beside the data folder, not in it
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def _poll(client: httpx.Client, job_id: str, timeout: float = 120) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v2/jobs/{job_id}").json()
        if job["status"] not in {"queued", "running"}:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def _submit(client: httpx.Client, name: str, body: bytes, operation: str, params: str) -> str:
    response = client.post(
        "/api/v2/jobs",
        files={"file": (name, body)},
        data={"operation": operation, "params": params},
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _render_job(client: httpx.Client, locked_pdf: bytes) -> dict[str, object]:
    params = json.dumps({"password": PASSWORD, "dpi": 30, "format": "jpeg"})
    job = _poll(client, _submit(client, NAME, locked_pdf, "render", params))
    assert job["status"] == "succeeded", job
    return job


def _locked_scan(folder: Path) -> bytes:
    """Two scanned pages (no text layer) in a PDF encrypted with :data:`PASSWORD`."""
    path = folder / "locked-scan.pdf"
    with pikepdf.open(SCAN) as pdf:
        pdf.pages.append(pdf.pages[0])
        pdf.save(path, encryption=pikepdf.Encryption(user=PASSWORD, owner=PASSWORD, R=6))
    return path.read_bytes()


def test_passwords_are_kept_nowhere(
    server: Server, client: httpx.Client, locked_pdf: bytes, tmp_path: Path
) -> None:
    # Rendered by parts of its own operation, which take the job's parameters.
    job = _render_job(client, locked_pdf)
    assert job["parts"] == {"total": 2, "pending": 0}
    # Read by OCR in parts of another operation, given the password by the job.
    scan = _submit(
        client,
        "scan.pdf",
        _locked_scan(tmp_path),
        "extract",
        json.dumps({"password": PASSWORD, "output": "text"}),
    )
    read = _poll(client, scan)
    assert read["status"] == "succeeded", read
    encrypt = json.dumps(
        {"action": "encrypt", "user_password": USER_PASSWORD, "owner_password": OWNER_PASSWORD}
    )
    encrypted = _poll(client, _submit(client, "plain.pdf", ARTICLE.read_bytes(), "pdf", encrypt))
    assert encrypted["status"] == "succeeded", encrypted
    extracted = client.post(
        "/api/v2/extract", files={"file": (NAME, locked_pdf)}, data={"password": PASSWORD}
    )
    assert extracted.status_code == 200, extracted.text

    # Answers: the jobs, their parts, the list, the v1 views, results.
    parts = [
        part
        for parent in (job["id"], scan)
        for part in client.get("/api/v2/jobs", params={"parent_id": parent}).json()["jobs"]
    ]
    assert sorted(p["operation"] for p in parts) == ["ocr", "ocr", "render", "render"]
    assert {p["params"]["password"] for p in parts} == {"********"}
    assert job["params"]["password"] == "********"  # type: ignore[index]
    answers = {
        "job": client.get(f"/api/v2/jobs/{job['id']}").text,
        "encrypt job": client.get(f"/api/v2/jobs/{encrypted['id']}").text,
        "list": client.get("/api/v2/jobs", params={"limit": 500}).text,
        "parts": client.get("/api/v2/jobs", params={"limit": 500, "parent_id": scan}).text,
        "v1 job": client.get(f"/api/v1/job/{job['id']}").text,
        "v1 processing job": client.get(f"/api/v1/jobs/{encrypted['id']}").text,
        "result": client.get(f"/api/v2/jobs/{scan}/result").text,
        "extract": extracted.text,
    }
    assert _holding(answers) == []

    # The database (with its write-ahead log), the blob folder and the logs.
    data = server.data_dir
    database = b"".join(path.read_bytes() for path in data.glob("docworker.db*"))
    assert NAME.encode() in database  # the search does find what the database holds
    kept = {str(path): path.read_bytes() for path in _files(data / "blobs")}
    assert len(kept) > 10  # inputs, results, page images, the parts' results
    log = server.log.read_bytes()
    assert scan.encode() in log and b"SELECT" in log  # job lines, SQL statements
    assert _holding({"database": database, "log": log, **kept}) == []


def _holding(places: dict[str, str | bytes]) -> list[tuple[str, str]]:
    """(place, secret) for each of the secrets found in each place."""
    return [
        (where, secret)
        for where, data in places.items()
        for secret in SECRETS
        if (secret.encode() if isinstance(data, bytes) else secret) in data
    ]


def test_what_the_service_keeps_is_private(
    server: Server, client: httpx.Client, locked_pdf: bytes
) -> None:
    _render_job(client, locked_pdf)
    data = server.data_dir

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(data) == 0o700
    assert mode(data / "secret.key") == 0o600
    database = [data / name for name in ("docworker.db", "docworker.db-wal", "docworker.db-shm")]
    assert all(path.exists() for path in database)
    assert {mode(path) for path in database} == {0o600}
    # Everything under the data folder: blobs, results, the v1 cache folder, ...
    folders = [p for p in data.rglob("*") if p.is_dir()]
    assert {"blobs", "cache", "inputs", "results"} <= {folder.name for folder in folders}
    assert {mode(folder) for folder in folders} == {0o700}
    assert {mode(path) for path in _files(data)} == {0o600}


def test_purge_removes_the_job_its_parts_and_their_files(
    server: Server, client: httpx.Client, locked_pdf: bytes
) -> None:
    job = _render_job(client, locked_pdf)
    parts = [
        p["id"] for p in client.get("/api/v2/jobs", params={"parent_id": job["id"]}).json()["jobs"]
    ]
    blobs = server.data_dir / "blobs"
    results = [blobs / "results" / str(each) for each in (job["id"], *parts)]
    assert all(folder.is_dir() for folder in results)
    sha256 = job["input"]["sha256"]  # type: ignore[index]
    # A second job on the same input: the input stays while it names it.
    other = _poll(client, _submit(client, NAME, locked_pdf, "pdf", '{"action": "metadata"}'))
    assert other["status"] in {"failed", "succeeded"}

    refused = client.delete(f"/api/v2/jobs/{parts[0]}", params={"purge": "true"})
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")

    deleted = client.delete(f"/api/v2/jobs/{job['id']}", params={"purge": "true"})
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert client.get(f"/api/v2/jobs/{job['id']}").status_code == 404
    store = JobStore(f"sqlite:///{server.data_dir / 'docworker.db'}")
    try:
        left = {r.id for r in store.list(limit=500, include_parts=True)[0]}
    finally:
        store.close()
    assert not left & {job["id"], *parts}
    assert other["id"] in left
    assert not any(folder.exists() for folder in results)
    assert (blobs / "inputs" / sha256).is_file()

    # The command line asks the same.
    deleted_by_cli = CliRunner().invoke(
        app, ["jobs", "delete", str(other["id"]), "--server", server.url]
    )
    assert deleted_by_cli.exit_code == 0, deleted_by_cli.output
    assert client.get(f"/api/v2/jobs/{other['id']}").status_code == 404
    assert not (blobs / "inputs" / sha256).exists()
    again = client.delete(f"/api/v2/jobs/{job['id']}", params={"purge": "true"})
    assert again.status_code == 404


def test_purge_cancels_a_running_job_first(server: Server, client: httpx.Client) -> None:
    response = client.post(
        "/api/v2/extract", params={"wait": 0}, files={"file": (HUGE.name, HUGE.read_bytes())}
    )
    assert response.status_code == 202
    job_id = response.json()["id"]
    deleted = client.delete(f"/api/v2/jobs/{job_id}", params={"purge": "true"})
    assert deleted.status_code == 204, deleted.text
    assert client.get(f"/api/v2/jobs/{job_id}").status_code == 404
    blobs = server.data_dir / "blobs"
    assert not (blobs / "results" / job_id).exists()
    assert not (blobs / "inputs" / response.json()["input"]["sha256"]).exists()
