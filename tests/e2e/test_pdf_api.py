"""``/api/v2/pdf/*`` end to end, against a real server process with its worker pool:
each answer opened and checked against the uploaded PDFs."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import httpx
import pikepdf
import pikepdf.pdfa
import pypdfium2
import pytest

from bench.scoring import corpus_root

CORPUS = corpus_root()
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="test corpus not present")
ARTICLE = CORPUS / "pdf" / "multi-page-article.pdf"
MINIMAL = CORPUS / "pdf" / "minimal-document.pdf"
ENCRYPTED = CORPUS / "pdf" / "encrypted-password-1234.pdf"
LATEX = CORPUS / "pdf" / "latex-multicolumn.pdf"
SCANNED = CORPUS / "pdf" / "scanned-ocr-test.pdf"
HUGE = CORPUS / "pdf" / "huge-619-pages.pdf"
PROBLEM = "application/problem+json"


def texts(data: bytes, password: str | None = None) -> list[str]:
    pdf = pypdfium2.PdfDocument(data, password=password)
    try:
        found = []
        for page in pdf:
            textpage = page.get_textpage()
            found.append(" ".join(textpage.get_text_range().split()))
            textpage.close()
            page.close()
        return found
    finally:
        pdf.close()


def _file(path: Path) -> tuple[str, bytes, str]:
    return (path.name, path.read_bytes(), "application/pdf")


def test_merge_answers_one_pdf_with_the_pages_in_upload_order(client: httpx.Client) -> None:
    files = [("files", _file(MINIMAL)), ("files", _file(ARTICLE)), ("files", _file(MINIMAL))]
    answer = client.post("/api/v2/pdf/merge", files=files)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["x-job-id"]
    minimal, article = texts(MINIMAL.read_bytes()), texts(ARTICLE.read_bytes())
    assert texts(answer.content) == minimal + article + minimal


def test_split_answers_a_zip_of_the_parts(client: httpx.Client) -> None:
    answer = client.post(
        "/api/v2/pdf/split", files={"file": _file(ARTICLE)}, data={"ranges": "1-2,3-5"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    source = texts(ARTICLE.read_bytes())
    with zipfile.ZipFile(io.BytesIO(answer.content)) as bundle:
        assert bundle.namelist() == ["part-1.pdf", "part-2.pdf"]
        assert texts(bundle.read("part-1.pdf")) == source[:2]
        assert texts(bundle.read("part-2.pdf")) == source[2:]


def test_json_when_the_client_accepts_only_json(client: httpx.Client) -> None:
    answer = client.post(
        "/api/v2/pdf/split",
        files={"file": _file(ARTICLE)},
        data={"every": "2"},
        headers={"Accept": "application/json"},
    )
    body = answer.json()
    assert [a["name"] for a in body["artifacts"]] == ["part-1.pdf", "part-2.pdf", "part-3.pdf"]
    part = client.get(f"/api/v2/jobs/{body['job_id']}/artifacts/part-3.pdf")
    assert texts(part.content) == texts(ARTICLE.read_bytes())[4:]


def _finished(client: httpx.Client, job_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job: dict[str, object] = client.get(f"/api/v2/jobs/{job_id}").json()
        if job["status"] not in {"queued", "running"}:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def test_not_finished_within_wait_answers_the_job(client: httpx.Client) -> None:
    # Compressing 619 pages takes seconds: with wait=0 the answer is the job.
    answer = client.post("/api/v2/pdf/compress", params={"wait": 0}, files={"file": _file(HUGE)})
    assert answer.status_code == 202
    job_id = answer.json()["id"]
    assert _finished(client, job_id)["status"] == "succeeded"
    result = client.get(f"/api/v2/jobs/{job_id}/result").json()
    assert result["bytes_after"] < result["bytes_before"] == HUGE.stat().st_size
    pdf = client.get(f"/api/v2/jobs/{job_id}/artifacts/compressed.pdf")
    with pikepdf.open(io.BytesIO(pdf.content)) as compressed:
        assert len(compressed.pages) == 619


def test_merge_as_a_job_with_several_files(client: httpx.Client) -> None:
    created = client.post(
        "/api/v2/jobs",
        data={"operation": "pdf", "params": json.dumps({"action": "merge"})},
        files=[("files", _file(ARTICLE)), ("files", _file(MINIMAL))],
    )
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    assert _finished(client, job_id)["status"] == "succeeded"
    merged = client.get(f"/api/v2/jobs/{job_id}/artifacts/merged.pdf")
    assert texts(merged.content) == texts(ARTICLE.read_bytes()) + texts(MINIMAL.read_bytes())
    listed = client.get("/api/v2/operations").json()["operations"]
    pdf = next(op for op in listed if op["name"] == "pdf")
    assert pdf["queue"] == "convert"
    assert "merge" in pdf["params_schema"]["$defs"]["PdfAction"]["enum"]


def test_rotate_and_metadata(client: httpx.Client) -> None:
    rotated = client.post(
        "/api/v2/pdf/rotate", files={"file": _file(ARTICLE)}, data={"angle": "270", "pages": "1"}
    )
    with pikepdf.open(io.BytesIO(rotated.content)) as pdf:
        assert [int(p.obj.get("/Rotate", 0)) for p in pdf.pages] == [270, 0, 0, 0, 0]
    values = {"title": "Rotated", "Department": "Finance"}
    written = client.post(
        "/api/v2/pdf/metadata",
        files={"file": ("rotated.pdf", rotated.content, "application/pdf")},
        data={"set_metadata": json.dumps(values)},
    )
    assert written.headers["content-type"] == "application/pdf"
    read = client.post(
        "/api/v2/pdf/metadata", files={"file": ("m.pdf", written.content, "application/pdf")}
    )
    assert read.headers["content-type"].startswith("application/json")
    body = read.json()
    assert body["metadata"]["title"] == "Rotated" and body["xmp"]["dc:title"] == "Rotated"
    assert body["custom"] == {"Department": "Finance"}


def test_encrypt_then_decrypt(client: httpx.Client) -> None:
    encrypted = client.post(
        "/api/v2/pdf/encrypt",
        files={"file": _file(MINIMAL)},
        data={"user_password": "open", "owner_password": "own", "permissions": "print,copy"},
    )
    assert encrypted.status_code == 200, encrypted.text
    with pytest.raises(pikepdf.PasswordError):
        pikepdf.open(io.BytesIO(encrypted.content))
    with pikepdf.open(io.BytesIO(encrypted.content), password="open") as pdf:
        assert pdf.allow.print_lowres and pdf.allow.extract and not pdf.allow.modify_other
    upload = {"file": ("e.pdf", encrypted.content, "application/pdf")}
    missing = client.post("/api/v2/pdf/decrypt", files=upload)
    assert missing.status_code == 422 and missing.json()["code"] == "password-required"
    wrong = client.post("/api/v2/pdf/decrypt", files=upload, data={"password": "nope"})
    assert wrong.json()["code"] == "wrong-password"
    decrypted = client.post("/api/v2/pdf/decrypt", files=upload, data={"password": "own"})
    with pikepdf.open(io.BytesIO(decrypted.content)) as pdf:
        assert not pdf.is_encrypted
    assert texts(decrypted.content) == texts(MINIMAL.read_bytes())


def test_attach_embeds_the_uploaded_files(client: httpx.Client) -> None:
    notes = b"line one\nline two\n"
    answer = client.post(
        "/api/v2/pdf/attach",
        files=[
            ("file", _file(MINIMAL)),
            ("attachments", ("notes.txt", notes, "text/plain")),
            ("attachments", _file(ARTICLE)),
        ],
        data={"descriptions": ["Reader's notes"]},
    )
    assert answer.status_code == 200, answer.text
    with pikepdf.open(io.BytesIO(answer.content)) as pdf:
        assert pdf.attachments["notes.txt"].get_file().read_bytes() == notes
        assert pdf.attachments["notes.txt"].description == "Reader's notes"
        embedded = pdf.attachments["multi-page-article.pdf"].get_file().read_bytes()
        assert embedded == ARTICLE.read_bytes()


def test_pdfa_answers_a_validated_file_or_the_findings(client: httpx.Client) -> None:
    answer = client.post("/api/v2/pdf/pdfa", files={"file": _file(LATEX)}, data={"level": "2b"})
    assert answer.status_code == 200, answer.text
    assert pikepdf.pdfa.validate_written(io.BytesIO(answer.content), "2b").passed
    refused = client.post("/api/v2/pdf/pdfa", files={"file": _file(SCANNED)}, data={"level": "1b"})
    assert refused.status_code == 422
    assert refused.json()["verdict"] == "fail" and refused.json()["findings"]
    lenient = client.post(
        "/api/v2/pdf/pdfa",
        files={"file": _file(SCANNED)},
        data={"level": "1b", "strict": "false"},
        headers={"Accept": "application/json"},
    )
    assert lenient.json()["pdfa"]["verdict"] == "fail"


def test_errors_are_problems(client: httpx.Client) -> None:
    not_pdf = client.post(
        "/api/v2/pdf/flatten", files={"file": ("a.pdf", b"just some text\n", "application/pdf")}
    )
    assert not_pdf.status_code == 415
    assert not_pdf.headers["content-type"].startswith(PROBLEM)
    corrupt = client.post(
        "/api/v2/pdf/compress",
        files={"file": ("c.pdf", b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", "application/pdf")},
    )
    assert corrupt.status_code == 422 and corrupt.json()["code"] == "corrupt-document"
    bad = client.post("/api/v2/pdf/rotate", files={"file": _file(MINIMAL)}, data={"angle": "45"})
    assert bad.status_code == 422 and bad.json()["parameter"] == "angle"
    one = client.post("/api/v2/pdf/merge", files=[("files", _file(MINIMAL))])
    assert one.status_code == 422 and one.json()["parameter"] == "files"
    encrypted = client.post("/api/v2/pdf/flatten", files={"file": _file(ENCRYPTED)})
    assert encrypted.json()["code"] == "password-required"


def test_openapi_documents_every_route_and_its_errors(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    actions = [
        "merge",
        "split",
        "rotate",
        "extract_pages",
        "flatten",
        "compress",
        "pdfa",
        "metadata",
        "encrypt",
        "decrypt",
        "attach",
    ]
    for action in actions:
        operation = paths[f"/api/v2/pdf/{action}"]["post"]
        assert operation["operationId"] == f"pdf_{action}"
        assert {"200", "202", "413", "415", "422", "429", "503"} <= set(operation["responses"])
        assert "multipart/form-data" in operation["requestBody"]["content"]
