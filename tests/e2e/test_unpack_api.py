"""``POST /api/v2/unpack`` and ``unpack`` jobs through a real server: the tree, the files
downloaded as artifacts, hostile archives answered ``partial`` or refused, the worker alive."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.scoring import corpus_root
from tests.e2e.server import Server

CORPUS = corpus_root()
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="test corpus not present")
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(
        tmp_path_factory.mktemp("unpack"),
        DOCWORKER_EXECUTOR__WORKERS="1",
        DOCWORKER_ARCHIVES__MAX_ENTRIES="200",
    ) as srv:
        yield srv


def _upload(path: Path) -> dict[str, tuple[str, bytes]]:
    return {"file": (path.name, path.read_bytes())}


def _unpack(client: httpx.Client, path: Path, **data: str) -> httpx.Response:
    return client.post("/api/v2/unpack", files=_upload(path), data=data)


def test_the_tree_and_each_file_to_download(client: httpx.Client) -> None:
    answer = _unpack(client, CORPUS / "archives/test-documents.tar.gz")
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Job-Status"] == "succeeded"
    body = answer.json()
    assert len(body["entries"]) == 9 and body["counts"]["ok"] == 9
    assert {a["name"] for a in body["artifacts"]} == {e["artifact"] for e in body["entries"]}
    pdf = next(e for e in body["entries"] if e["path"] == "test-documents/testPDF.pdf")
    download = client.get(f"/api/v2/jobs/{body['job_id']}/artifacts/{pdf['artifact']}")
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/pdf"
    assert hashlib.sha256(download.content).hexdigest() == pdf["sha256"]


def test_the_password_opens_an_encrypted_7z(client: httpx.Client) -> None:
    path = CORPUS / "archives/encrypted-password-Tika.7z"
    opened = _unpack(client, path, password="Tika").json()
    assert opened["entries"][0]["status"] == "ok"
    locked = _unpack(client, path)
    assert locked.headers["X-Job-Status"] == "partial"
    assert locked.json()["entries"][0]["code"] == "password-required"


@pytest.mark.parametrize(
    "name",
    [
        "zip-slip.zip",
        "zip-slip-windows.zip",
        "tar-slip.tar",
        "zip-quine-droste.zip",
        "gzip-quine.gz",
        "zip-bomb-flat.zip",
        "zip-bomb-recursive.zip",
    ],
)
def test_hostile_archives_end_partial_with_their_reasons(client: httpx.Client, name: str) -> None:
    answer = _unpack(client, CORPUS / "hostile" / name)
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Job-Status"] == "partial"
    refused = [e for e in answer.json()["entries"] if e["status"] != "ok"]
    assert refused and all(e["code"] and e["reason"] for e in refused)


RARS = Path(__file__).resolve().parents[1] / "fixtures" / "rar"


def test_a_rar_is_unpacked_and_an_encrypted_one_refused(client: httpx.Client) -> None:
    answer = _unpack(client, RARS / "rar5-subdirs.rar")
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Job-Status"] == "succeeded"
    paths = {e["path"] for e in answer.json()["entries"]}
    assert "sub/üȵĩöḋè/file.txt" in paths and len(paths) == 4
    locked = _unpack(client, RARS / "rar5-hpsw.rar")
    assert locked.status_code == 415 and locked.headers["content-type"].startswith(PROBLEM)
    assert "encrypted RAR" in locked.json()["detail"]


def test_what_cannot_be_unpacked_is_a_problem(client: httpx.Client) -> None:
    oom = _unpack(client, CORPUS / "hostile/lzma-oom")
    assert oom.status_code == 422 and oom.headers["content-type"].startswith(PROBLEM)
    assert "max_decoder_memory" in oom.json()["detail"]
    text = _unpack(client, CORPUS / "hostile/eicar.txt")
    assert text.status_code in (415, 422) and text.headers["content-type"].startswith(PROBLEM)


def test_an_unpack_job_and_the_worker_after_the_bombs(client: httpx.Client) -> None:
    answer = client.post(
        "/api/v2/jobs",
        files=_upload(CORPUS / "archives/zip-of-zip.zip"),
        data={"operation": "unpack"},
    )
    assert answer.status_code == 202, answer.text
    job = _finished(client, answer.json()["id"])
    assert job["status"] == "succeeded"
    result = client.get(f"/api/v2/jobs/{job['id']}/result").json()
    assert [e["path"] for e in result["entries"]] == [
        "html-within-zip.zip",
        "html-within-zip.zip/text.html",
    ]


def _finished(client: httpx.Client, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/api/v2/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")
