"""Inputs named instead of uploaded: ``uri`` (a storage URL under ``storage.read_roots``)
and ``url`` (fetched through the URL policy), on ``POST /api/v2/jobs`` (JSON and form)
and a sync route; what is refused is refused with a problem naming why, and leaves
nothing in the blob store. And the other way out: a job's files listed with their
links.

The app runs in process without an executor (the jobs stay queued): these tests are
about what is taken in. The web server is a real one on loopback.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from docworker.api.app import create_app
from docworker.config import FetchSettings, ServerSettings, StorageSettings, load_settings
from docworker.jobs.results import store_result
from docworker.operations.base import Artifact, Result

CORPUS = Path("/work/shared/corpus")
TEXT = CORPUS / "text" / "plain-utf8.txt"
LIMIT = 256 * 1024


class _Site(http.server.BaseHTTPRequestHandler):
    """A document, a redirect to the cloud metadata address, and bodies over the limit."""

    def do_GET(self) -> None:
        if self.path == "/docs/plain.txt":
            body = TEXT.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/to-metadata":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
        elif self.path == "/endless":
            # No length declared: cut while it streams in.
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            chunk = b"x" * 65536
            try:
                for _ in range(64):
                    self.wfile.write(chunk)
            except OSError:
                pass
        elif self.path == "/declared-large":
            self.send_response(200)
            self.send_header("Content-Length", str(LIMIT * 10))
            self.end_headers()
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    """A folder the service reads inputs from, with a file in it, one beside it, and a
    link from inside leading out."""
    root = tmp_path / "shared"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "plain.txt").write_bytes(TEXT.read_bytes())
    (root / "docs" / "large.bin").write_bytes(b"x" * (LIMIT + 1))
    (tmp_path / "secret.txt").write_text("not for you")
    (root / "docs" / "escape.txt").symlink_to(tmp_path / "secret.txt")
    return root


def _client(tmp_path: Path, shared: Path, private: list[str]) -> TestClient:
    settings = load_settings(
        data_dir=tmp_path / "data",
        server=ServerSettings(max_upload_bytes=LIMIT),
        storage=StorageSettings(read_roots=[f"file://{shared}/"]),
        fetch=FetchSettings(allow=["127.0.0.1", "169.254.169.254"], private_allow=private),
    )
    return TestClient(create_app(settings, start_executor=False))


@pytest.fixture
def client(tmp_path: Path, shared: Path) -> Iterator[TestClient]:
    """The service with the loopback web server allow-listed, its network included."""
    with _client(tmp_path, shared, ["127.0.0.1/32"]) as test_client:
        yield test_client


def _blobs(client: TestClient) -> set[str]:
    """What the blob store holds (inputs and half-written uploads)."""
    folder = Path(client.app.state.services.settings.data_dir) / "blobs"
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def _problem(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = answer.json()
    assert body["code"] == code, body
    return body


SHA256 = hashlib.sha256(TEXT.read_bytes()).hexdigest()


@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
def test_a_uri_under_a_read_root_is_copied_in(client: TestClient, shared: Path, form: bool) -> None:
    uri = f"file://{shared}/docs/plain.txt"
    if form:
        # Multipart text fields, without a file part.
        fields = {"operation": (None, "extract"), "uri": (None, uri)}
        answer = client.post("/api/v2/jobs", files=fields)
    else:
        answer = client.post("/api/v2/jobs", json={"operation": "extract", "uri": uri})
    assert answer.status_code == 202, answer.text
    job_input = answer.json()["input"]
    assert job_input["sha256"] == SHA256
    assert job_input["name"] == "plain.txt"
    assert job_input["size"] == TEXT.stat().st_size
    assert _blobs(client) == {f"inputs/{SHA256}"}


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("file://{tmp}/secret.txt", id="beside-the-root"),
        pytest.param("file://{shared}/docs/../../secret.txt", id="dot-dot"),
        pytest.param("file://{shared}/docs/escape.txt", id="link-leading-out"),
        pytest.param("file:///etc/passwd", id="system-file"),
        pytest.param("/etc/passwd", id="bare-path"),
        pytest.param("memory://{shared}/docs/plain.txt", id="other-protocol"),
        pytest.param("s3://bucket{shared}/docs/plain.txt", id="other-store"),
    ],
)
def test_a_uri_outside_the_read_roots_is_refused(
    client: TestClient, shared: Path, uri: str
) -> None:
    uri = uri.format(tmp=shared.parent, shared=shared)
    answer = client.post("/api/v2/jobs", json={"operation": "extract", "uri": uri})
    body = _problem(answer, 403, "uri-refused")
    assert "may not be read" in body["detail"]
    assert _blobs(client) == set()


def test_uri_refusals_missing_and_too_large(client: TestClient, shared: Path) -> None:
    missing = client.post(
        "/api/v2/jobs", json={"operation": "extract", "uri": f"file://{shared}/docs/none.txt"}
    )
    _problem(missing, 404, "not-found")
    large = client.post(
        "/api/v2/jobs", json={"operation": "extract", "uri": f"file://{shared}/docs/large.bin"}
    )
    assert "upload limit" in _problem(large, 422, "limit-exceeded")["detail"]
    both = client.post(
        "/api/v2/jobs",
        json={"operation": "extract", "uri": f"file://{shared}/docs/plain.txt", "url": "x"},
    )
    _problem(both, 422, "invalid-parameter")
    assert _blobs(client) == set()


def test_no_read_roots_no_uri(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    with TestClient(create_app(settings, start_executor=False)) as client:
        answer = client.post("/api/v2/jobs", json={"operation": "extract", "uri": f"file://{TEXT}"})
    assert "read_roots is empty" in _problem(answer, 403, "uri-refused")["detail"]


def test_a_url_is_fetched_into_the_store(client: TestClient, site: str) -> None:
    answer = client.post(
        "/api/v2/jobs", json={"operation": "extract", "url": f"{site}/docs/plain.txt"}
    )
    assert answer.status_code == 202, answer.text
    job_input = answer.json()["input"]
    assert job_input["sha256"] == SHA256
    assert job_input["name"] == "plain.txt"
    assert _blobs(client) == {f"inputs/{SHA256}"}


def test_a_sync_route_takes_a_url(client: TestClient, site: str) -> None:
    answer = client.post(
        "/api/v2/extract?wait=0", data={"url": f"{site}/docs/plain.txt", "output": "text"}
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["input"]["sha256"] == SHA256
    both = client.post(
        "/api/v2/extract?wait=0",
        data={"url": f"{site}/docs/plain.txt"},
        files={"file": ("a.txt", b"hello")},
    )
    assert "one way only" in _problem(both, 422, "invalid-parameter")["detail"]
    nothing = client.post("/api/v2/extract?wait=0", data={"output": "text"})
    assert "'uri' or 'url'" in _problem(nothing, 422, "invalid-parameter")["detail"]


def test_loopback_is_refused_unless_its_network_is_allowed(
    tmp_path: Path, shared: Path, site: str
) -> None:
    with _client(tmp_path, shared, []) as client:
        fields = {"operation": (None, "extract"), "url": (None, f"{site}/docs/plain.txt")}
        answer = client.post("/api/v2/jobs", files=fields)
        body = _problem(answer, 403, "url-refused")
        assert "non-public address (127.0.0.1)" in body["detail"]
        assert _blobs(client) == set()


def test_a_redirect_to_a_private_address_is_refused(client: TestClient, site: str) -> None:
    answer = client.post(
        "/api/v2/jobs", json={"operation": "extract", "url": f"{site}/to-metadata"}
    )
    body = _problem(answer, 403, "url-refused")
    assert "169.254.169.254" in body["detail"]
    assert _blobs(client) == set()


@pytest.mark.parametrize("path", ["/endless", "/declared-large"])
def test_a_body_over_the_limit_is_cut(client: TestClient, site: str, path: str) -> None:
    answer = client.post("/api/v2/jobs", json={"operation": "extract", "url": f"{site}{path}"})
    body = _problem(answer, 422, "limit-exceeded")
    assert body["maximum"] == LIMIT
    assert _blobs(client) == set()


def test_unreachable_and_refused_urls(client: TestClient, site: str) -> None:
    missing = client.post("/api/v2/jobs", json={"operation": "extract", "url": f"{site}/none"})
    assert "HTTP 404" in _problem(missing, 422, "url-unreadable")["detail"]
    unlisted = client.post(
        "/api/v2/jobs", json={"operation": "extract", "url": "http://example.invalid/a.pdf"}
    )
    assert "allow-list" in _problem(unlisted, 403, "url-refused")["detail"]
    scheme = client.post("/api/v2/jobs", json={"operation": "extract", "url": "file:///etc/passwd"})
    _problem(scheme, 403, "url-refused")


def test_artifacts_of_a_local_store_link_to_the_api(client: TestClient, tmp_path: Path) -> None:
    """A store that signs no links (a folder): the listing links to the artifact route."""
    answer = client.post(
        "/api/v2/jobs", files={"file": ("a.txt", b"hello")}, data={"operation": "extract"}
    )
    job_id = answer.json()["id"]
    services = client.app.state.services
    assert services.store.claim_next("test-worker").id == job_id
    made = tmp_path / "made.pdf"
    made.write_bytes(b"%PDF-1.4 a file the job made")
    artifact = Artifact("made.pdf", made, "application/pdf")
    ref = store_result(services.blobs, job_id, Result({"output": "x"}, artifacts=[artifact]))
    services.store.mark_succeeded(job_id, ref)

    job = client.get(f"/api/v2/jobs/{job_id}").json()
    listing = client.get(job["links"]["artifacts"])
    assert listing.status_code == 200, listing.text
    assert listing.json()["artifacts"] == [
        {
            "name": "made.pdf",
            "mime": "application/pdf",
            "size": made.stat().st_size,
            "url": f"/api/v2/jobs/{job_id}/artifacts/made.pdf",
            "presigned": False,
            "expires_at": None,
        }
    ]
    assert client.get(f"/api/v2/jobs/{job_id}/artifacts/made.pdf").content == made.read_bytes()
