"""Batches end to end, on a real server with keys on and running workers: corpus files as
children, results as NDJSON and zip, a bad child, retry, cancel, tenants, the limits,
and the memory of the API process through a large batch."""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psutil
import pytest

from bench.scoring import corpus_root
from tests.e2e.server import Server

CORPUS = corpus_root()
FILES = [
    CORPUS / "text" / "plain-utf8.txt",
    CORPUS / "pdf" / "minimal-document.pdf",
    CORPUS / "office" / "handbook-1p.docx",
    # Encrypted, and no password given: the bad child.
    CORPUS / "pdf" / "encrypted-password-1234.pdf",
]
PROBLEM = "application/problem+json"
SECRET = "b4Tc9Lx2Vd3Rt8Wz1Mb6Np4Fs0Gc5Jy7Ae2Ku9"
#: Files per batch the server takes (batches.max_files).
MAX_FILES = 1000


@dataclass
class Keys:
    admin: str
    a: str
    b: str
    a_reader: str


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(
        tmp_path_factory.mktemp("batches"),
        DOCWORKER_AUTH__ENABLED="true",
        DOCWORKER_AUTH__SECRET=SECRET,
        DOCWORKER_EXECUTOR__MAX_ATTEMPTS="1",
        DOCWORKER_BATCHES__MAX_FILES=str(MAX_FILES),
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def keys(server: Server) -> Keys:
    """One admin key made by the command, the others by it over HTTP (quicker)."""
    admin = server.keys("create", "--tenant", "ops", "--scope", "admin")

    def create(tenant: str, *scopes: str) -> str:
        with server.client() as client:
            made = client.post(
                "/api/v2/keys", json={"tenant": tenant, "scopes": list(scopes)}, headers=_as(admin)
            )
        assert made.status_code == 201, made.text
        token: str = made.json()["token"]
        return token

    return Keys(
        admin=admin,
        a=create("alpha", "read", "submit"),
        b=create("beta", "read", "submit"),
        a_reader=create("alpha", "read"),
    )


def _submit(client: httpx.Client, key: str, **data: str) -> dict[str, Any]:
    response = client.post(
        "/api/v2/batches",
        data={"operation": "extract", "params": '{"output": "markdown"}', **data},
        files=[("file", (path.name, path.read_bytes())) for path in FILES],
        headers=_as(key),
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def _ended(client: httpx.Client, key: str, batch_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        batch: dict[str, Any] = client.get(f"/api/v2/batches/{batch_id}", headers=_as(key)).json()
        if batch["status"] != "running":
            return batch
        time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} did not end")


@pytest.fixture(scope="module")
def ended(server: Server, keys: Keys) -> dict[str, Any]:
    """A batch of the corpus files, run to its end, of tenant alpha."""
    with server.client() as client:
        batch = _submit(client, keys.a)
        return _ended(client, keys.a, batch["id"])


def test_a_batch_runs_each_file_as_a_child(
    server: Server, keys: Keys, ended: dict[str, Any]
) -> None:
    assert ended["total"] == len(FILES) and ended["status"] == "partial"
    assert ended["counts"]["succeeded"] == 3 and ended["counts"]["failed"] == 1
    assert ended["progress"] == 1.0 and ended["finished_at"] is not None
    with server.client() as client:
        first = client.get(f"{ended['links']['jobs']}?limit=3", headers=_as(keys.a)).json()
        rest = client.get(
            f"{ended['links']['jobs']}?cursor={first['next_cursor']}", headers=_as(keys.a)
        ).json()
        children = first["jobs"] + rest["jobs"]
        assert rest["next_cursor"] is None
        assert [c["input"]["name"] for c in children] == [p.name for p in FILES]
        assert all(c["batch_id"] == ended["id"] and c["operation"] == "extract" for c in children)
        assert [c["batch_index"] for c in children] == list(range(len(FILES)))
        # A child is an ordinary job: its own result, listed with its batch only.
        alone = client.get(f"/api/v2/jobs/{children[0]['id']}/result", headers=_as(keys.a))
        assert "test document" in alone.json()["content"]
        listed = client.get("/api/v2/jobs", headers=_as(keys.a)).json()["jobs"]
        assert all(job["batch_id"] is None for job in listed)
        by_batch = client.get(f"/api/v2/jobs?batch_id={ended['id']}", headers=_as(keys.a))
        assert len(by_batch.json()["jobs"]) == len(FILES)


def test_results_as_ndjson_and_zip(server: Server, keys: Keys, ended: dict[str, Any]) -> None:
    with server.client() as client:
        response = client.get(ended["links"]["results"], headers=_as(keys.a))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in response.text.splitlines()]
        assert [line["name"] for line in lines] == [p.name for p in FILES]
        text, pdf, docx, locked = lines
        assert text["status"] == "succeeded" and "test document" in text["result"]["content"]
        assert pdf["result"]["format"] == "pdf" and pdf["result"]["content"].strip()
        assert docx["result"]["format"] == "docx"
        assert locked["status"] == "failed" and "result" not in locked
        assert locked["error"]["code"] == "password-required"

        as_zip = client.get(
            ended["links"]["results"], headers=_as(keys.a) | {"Accept": "application/zip"}
        )
        assert as_zip.headers["content-type"] == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(as_zip.content))
        assert archive.testzip() is None
        manifest = [json.loads(x) for x in archive.read("manifest.ndjson").splitlines()]
        assert [m["job_id"] for m in manifest] == [line["job_id"] for line in lines]
        assert json.loads(archive.read("00000-plain-utf8.txt.json")) == text["result"]
        error = json.loads(archive.read("00003-encrypted-password-1234.pdf.error.json"))
        assert error["code"] == "password-required"
        assert manifest[3]["entries"] == ["00003-encrypted-password-1234.pdf.error.json"]
        same = client.get(f"{ended['links']['results']}?format=zip", headers=_as(keys.a))
        assert zipfile.ZipFile(io.BytesIO(same.content)).namelist() == archive.namelist()
        bad = client.get(f"{ended['links']['results']}?format=tar", headers=_as(keys.a))
        assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM


def test_retry_queues_the_failed_children_again(
    server: Server, keys: Keys, ended: dict[str, Any]
) -> None:
    with server.client() as client:
        retried = client.post(ended["links"]["retry"], headers=_as(keys.a))
        assert retried.status_code == 200 and retried.headers["x-retried"] == "1"
        assert retried.json()["counts"]["failed"] == 0
        again = _ended(client, keys.a, ended["id"])
        # The same input fails the same way; the others kept their results.
        assert again["status"] == "partial" and again["counts"]["succeeded"] == 3
        child = client.get(ended["links"]["jobs"], headers=_as(keys.a)).json()["jobs"][3]
        assert child["status"] == "failed" and child["attempts"] == 1


def test_batches_belong_to_their_tenant(server: Server, keys: Keys, ended: dict[str, Any]) -> None:
    links = ended["links"]
    with server.client() as client:
        for method, url in [
            ("GET", links["self"]),
            ("GET", links["jobs"]),
            ("GET", links["results"]),
            ("POST", links["cancel"]),
            ("POST", links["retry"]),
        ]:
            response = client.request(method, url, headers=_as(keys.b))
            assert response.status_code == 404, (method, url)
            assert response.headers["content-type"] == PROBLEM
        assert (
            client.get(f"/api/v2/jobs?batch_id={ended['id']}", headers=_as(keys.b)).json()["jobs"]
            == []
        )
        assert client.get(links["self"], headers=_as(keys.admin)).status_code == 200
        assert client.get(links["self"], headers=_as(keys.a_reader)).status_code == 200
        # Reading is not submitting.
        assert client.post(links["cancel"], headers=_as(keys.a_reader)).status_code == 403
        refused = client.post(
            "/api/v2/batches",
            data={"operation": "extract"},
            files=[("file", ("a.txt", b"a"))],
            headers=_as(keys.a_reader),
        )
        assert refused.status_code == 403


def test_an_idempotency_key_makes_one_batch(server: Server, keys: Keys) -> None:
    key = f"batch-{uuid.uuid4()}"
    with server.client() as client:
        first = _submit(client, keys.a, idempotency_key=key)
        again = client.post(
            "/api/v2/batches",
            data={"operation": "extract", "params": '{"output": "markdown"}'},
            files=[("file", (path.name, path.read_bytes())) for path in FILES],
            headers=_as(keys.a) | {"Idempotency-Key": key},
        )
        assert again.status_code == 200 and again.json()["id"] == first["id"]
        other = client.post(
            "/api/v2/batches",
            data={"operation": "extract", "idempotency_key": key},
            files=[("file", ("other.txt", b"other"))],
            headers=_as(keys.a),
        )
        assert other.status_code == 409
        # Another tenant's same key is its own.
        theirs = _submit(client, keys.b, idempotency_key=key)
        assert theirs["id"] != first["id"]


def _tiny(count: int, tag: str) -> Iterator[tuple[str, bytes]]:
    for index in range(count):
        yield f"d/{tag}-{index}.txt", f"{tag} file {index}\n".encode()


def _multipart(fields: dict[str, str], files: Iterator[tuple[str, bytes]], boundary: str):  # type: ignore[no-untyped-def]
    """A multipart body made as it is sent (httpx would build it whole first)."""
    for name, value in fields.items():
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    for filename, data in files:
        yield (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="{filename}"\r\nContent-Type: text/plain\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        )
    yield f"--{boundary}--\r\n".encode()


def _post_tiny(client: httpx.Client, key: str, count: int, tag: str) -> httpx.Response:
    boundary = uuid.uuid4().hex
    return client.post(
        "/api/v2/batches",
        content=_multipart({"operation": "extract"}, _tiny(count, tag), boundary),
        headers=_as(key) | {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )


def test_cancel_stops_the_children_not_ended(server: Server, keys: Keys) -> None:
    count = 300
    with server.client() as client:
        response = _post_tiny(client, keys.a, count, "cancel")
        assert response.status_code == 202
        batch = response.json()
        assert batch["status"] == "running" and batch["total"] == count
        cancelled = client.post(batch["links"]["cancel"], headers=_as(keys.a)).json()
        # The workers took a few before the cancel; the others never run.
        assert cancelled["counts"]["queued"] == 0 and cancelled["counts"]["cancelled"] > 0
        ended = _ended(client, keys.a, batch["id"])
        assert ended["status"] == "cancelled" and ended["finished_at"] is not None
        assert ended["counts"]["succeeded"] + ended["counts"]["cancelled"] == count
        lines = client.get(batch["links"]["results"], headers=_as(keys.a)).text.splitlines()
        assert len(lines) == count and json.loads(lines[0])["name"] == "d/cancel-0.txt"
        statuses = {json.loads(line)["status"] for line in lines}
        assert statuses <= {"succeeded", "cancelled"}
        # Nothing failed: nothing to retry.
        retried = client.post(batch["links"]["retry"], headers=_as(keys.a))
        assert retried.headers["x-retried"] == "0"


def test_bad_requests_are_refused(server: Server, keys: Keys) -> None:
    with server.client() as client:
        too_many = _post_tiny(client, keys.a, MAX_FILES + 1, "many")
        assert too_many.status_code == 413 and too_many.headers["content-type"] == PROBLEM
        assert too_many.json()["limit"] == "batch files"
        cases = [
            ({"operation": "extract", "url": "https://example.org/a.pdf"}, [], "url"),
            ({"operation": "extract"}, [("archives", ("a.zip", b"PK"))], "archives"),
            ({"operation": "extract"}, [("files", ("a.txt", b"a"))], "files"),
            ({"operation": "extract"}, [], "file"),
            ({"operation": "extract", "params": "[1]"}, [("file", ("a.txt", b"a"))], "params"),
            ({"operation": "extract", "priority": "900"}, [("file", ("a.txt", b"a"))], "priority"),
        ]
        for data, files, named in cases:
            response = client.post(
                "/api/v2/batches", data=data, files=files or {"x": (None, "y")}, headers=_as(keys.a)
            )
            assert response.status_code == 422, (named, response.text)
            assert response.json()["parameter"] == named, response.json()
        unknown = client.post(
            "/api/v2/batches",
            data={"operation": "nope"},
            files=[("file", ("a.txt", b"a"))],
            headers=_as(keys.a),
        )
        assert unknown.status_code == 404
        as_json = client.post("/api/v2/batches", json={"operation": "extract"}, headers=_as(keys.a))
        assert as_json.status_code == 415


def test_a_large_batch_does_not_grow_the_api_process(server: Server, keys: Keys) -> None:
    assert server.process is not None
    process = psutil.Process(server.process.pid)
    with server.client() as client:
        # Warm: the first requests load what every later one uses.
        warm = _post_tiny(client, keys.b, 200, "warm")
        assert warm.status_code == 202
        client.post(warm.json()["links"]["cancel"], headers=_as(keys.b))
        before = process.memory_info().rss
        response = _post_tiny(client, keys.b, MAX_FILES, "large")
        after = process.memory_info().rss
        assert response.status_code == 202, response.text
        batch = response.json()
        assert batch["total"] == MAX_FILES
        cancelled = client.post(batch["links"]["cancel"], headers=_as(keys.b)).json()
        assert cancelled["counts"]["queued"] == 0
    # A few hundred bytes kept per file (its stored reference); no file held.
    assert after - before < 40 * 1024 * 1024, (before, after)


def test_a_large_archive_does_not_grow_the_api_process(server: Server, keys: Keys) -> None:
    """An archive's entries are stored one at a time too: a thousand in one zip take the
    API process no more than a thousand parts do."""
    assert server.process is not None
    process = psutil.Process(server.process.pid)
    with server.client() as client:
        warm = client.post(
            "/api/v2/batches",
            data={"operation": "extract"},
            files=[("archive", ("warm.zip", _zipped(100, "warm")))],
            headers=_as(keys.b),
        )
        assert warm.status_code == 202, warm.text
        client.post(warm.json()["links"]["cancel"], headers=_as(keys.b))
        before = process.memory_info().rss
        response = client.post(
            "/api/v2/batches",
            data={"operation": "extract"},
            files=[("archive", ("large.zip", _zipped(MAX_FILES, "zipped")))],
            headers=_as(keys.b),
        )
        after = process.memory_info().rss
        assert response.status_code == 202, response.text
        batch = response.json()
        assert batch["total"] == MAX_FILES
        first = client.get(f"{batch['links']['jobs']}?limit=1", headers=_as(keys.b)).json()
        assert first["jobs"][0]["input"]["name"] == "d/zipped-0.txt"
        client.post(batch["links"]["cancel"], headers=_as(keys.b))
    assert after - before < 40 * 1024 * 1024, (before, after)


def _zipped(count: int, tag: str) -> bytes:
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in _tiny(count, tag):
            archive.writestr(name, data)
    return packed.getvalue()


def test_any_operation_and_its_files_in_the_zip(server: Server, keys: Keys) -> None:
    images = [CORPUS / "images" / "english-and-korean.png", CORPUS / "images" / "exif-gps.jpg"]
    with server.client() as client:
        response = client.post(
            "/api/v2/batches",
            data={"operation": "image", "params": '{"width": 64, "format": "webp"}'},
            files=[("file", (path.name, path.read_bytes())) for path in images],
            headers=_as(keys.a),
        )
        assert response.status_code == 202, response.text
        batch = _ended(client, keys.a, response.json()["id"])
        assert batch["status"] == "succeeded" and batch["params"]["width"] == 64
        zipped = client.get(f"{batch['links']['results']}?format=zip", headers=_as(keys.a))
        archive = zipfile.ZipFile(io.BytesIO(zipped.content))
        made = archive.read("00001-exif-gps.jpg/image.webp")
        assert made[:4] == b"RIFF" and made[8:12] == b"WEBP"
        assert json.loads(archive.read("00001-exif-gps.jpg.json"))["artifacts"][0]["name"] == (
            "image.webp"
        )
