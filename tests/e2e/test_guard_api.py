"""The content guard through the HTTP API: findings in every result, refusals as 422."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.scoring import corpus_root
from tests.e2e.server import Server
from tests.unit.guard import hostile_files as build

PROBLEM = "application/problem+json"
MACROS = corpus_root() / "hostile" / "word-macros.docm"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Macros refused by the operator's policy; EICAR refused by default.
    with Server(
        tmp_path_factory.mktemp("guard"), DOCWORKER_GUARD__POLICY__OFFICE_MACROS="refuse"
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    eicar = folder / "eicar.txt"
    eicar.write_bytes(b"a test file\n" + build.EICAR + b"\n")
    return {
        "eicar": eicar,
        "actions": build.pdf_with_actions(folder / "actions.pdf"),
        "template": build.docx_with_remote_template(folder / "template.docx"),
    }


def _upload(path: Path) -> dict[str, tuple[str, bytes]]:
    return {"file": (path.name, path.read_bytes())}


def _refused(response: httpx.Response, kind: str) -> dict[str, object]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, object] = response.json()
    assert body["code"] == "content-refused"
    assert body["type"] == "urn:docworker:problem:content-refused"
    assert kind in str(body["detail"])
    assert [f["kind"] for f in body["findings"]] == [kind]  # type: ignore[attr-defined]
    return body


def test_eicar_is_refused_with_a_problem_naming_it(
    client: httpx.Client, files: dict[str, Path]
) -> None:
    body = _refused(client.post("/api/v2/extract", files=_upload(files["eicar"])), "eicar")
    assert body["status"] == 422


def test_findings_are_reported_in_the_result(client: httpx.Client, files: dict[str, Path]) -> None:
    response = client.post("/api/v2/extract", files=_upload(files["actions"]))
    assert response.status_code == 200, response.text
    security = response.json()["security"]
    assert security["detected"] == {"mime": "application/pdf", "format": "pdf"}
    assert security["claimed"]["name"] == "actions.pdf"
    kinds = {f["kind"] for f in security["findings"]}
    assert {"pdf_javascript", "pdf_launch_action", "pdf_embedded_file"} <= kinds
    launch = next(f for f in security["findings"] if f["kind"] == "pdf_launch_action")
    assert set(launch) == {"kind", "detail", "location", "count"}


def test_a_job_of_another_operation_reports_too(
    client: httpx.Client, files: dict[str, Path]
) -> None:
    created = client.post(
        "/api/v2/jobs",
        files=_upload(files["template"]),
        data={"operation": "chunk", "params": '{"max_tokens": 64}'},
    )
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    deadline = time.monotonic() + 60
    while client.get(f"/api/v2/jobs/{job_id}").json()["status"] in {"queued", "running"}:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    result = client.get(f"/api/v2/jobs/{job_id}/result")
    assert result.status_code == 200, result.text
    kinds = {f["kind"] for f in result.json()["security"]["findings"]}
    assert {"remote_template", "external_reference", "xxe"} <= kinds


def test_the_operators_policy_refuses_macros(client: httpx.Client) -> None:
    response = client.post("/api/v2/extract", files=_upload(MACROS))
    body = _refused(response, "office_macros")
    assert "VBA macros" in str(body["findings"])


def test_a_refused_job_answers_its_problem_on_the_result_route(
    client: httpx.Client, files: dict[str, Path]
) -> None:
    created = client.post(
        "/api/v2/jobs", files=_upload(files["eicar"]), data={"operation": "extract"}
    )
    job_id = created.json()["id"]
    deadline = time.monotonic() + 60
    while (job := client.get(f"/api/v2/jobs/{job_id}").json())["status"] in {"queued", "running"}:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert job["status"] == "failed"
    assert job["attempts"] == 1  # bad input: not retried
    _refused(client.get(f"/api/v2/jobs/{job_id}/result"), "eicar")


def test_v1_refuses_in_its_own_error_body(client: httpx.Client, files: dict[str, Path]) -> None:
    response = client.post("/api/v1/extract/text", files=_upload(files["eicar"]))
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "Text extraction failed"
    assert "eicar" in body["details"]
    assert set(body) == {"error", "details"}


def test_v1_results_keep_their_shape(client: httpx.Client, files: dict[str, Path]) -> None:
    response = client.post("/api/v1/extract/text", files=_upload(files["actions"]))
    assert response.status_code == 200, response.text
    assert "security" not in response.json()


def test_the_openapi_document_lists_the_refusals(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "422" in paths["/api/v2/extract"]["post"]["responses"]
    v1 = paths["/api/v1/extract/text"]["post"]["responses"]["422"]
    assert "Text extraction failed" in v1["description"]
