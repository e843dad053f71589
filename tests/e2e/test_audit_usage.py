"""The audit trail, usage figures and daily quotas, end to end: a real server with keys on,
keys made by the ``docworker keys`` command, jobs run on real corpus files."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.scoring import corpus_root
from tests.e2e.server import Server
from tests.e2e.test_auth import SECRET, _as, _keys_command

CORPUS = corpus_root()
TEXT = CORPUS / "text" / "plain-utf8.txt"
ARTICLE = CORPUS / "pdf" / "multi-page-article.pdf"
LOCKED = CORPUS / "pdf" / "encrypted-password-1234.pdf"
OCR_IMAGE = CORPUS / "images" / "ocr-text.png"
HUGE = CORPUS / "pdf" / "huge-619-pages.pdf"
PROBLEM = "application/problem+json"


@dataclass
class Keys:
    admin: str
    alpha: str
    alpha_reader: str
    beta: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(
        tmp_path_factory.mktemp("audit"),
        DOCWORKER_AUTH__ENABLED="true",
        DOCWORKER_AUTH__SECRET=SECRET,
        DOCWORKER_AUDIT__FLUSH_INTERVAL="0.2",
    ) as srv:
        yield srv


def _key(server: Server, tenant: str, *scopes: str, limits: dict[str, Any] | None = None) -> str:
    args = ["create", "--tenant", tenant]
    for scope in scopes:
        args += ["--scope", scope]
    if limits:
        args += ["--limits", json.dumps(limits)]
    return _keys_command(server, *args)


@pytest.fixture(scope="module")
def keys(server: Server) -> Keys:
    return Keys(
        admin=_key(server, "ops", "admin"),
        alpha=_key(server, "alpha", "read", "submit"),
        alpha_reader=_key(server, "alpha", "read"),
        beta=_key(server, "beta", "read", "submit"),
    )


def _key_id(token: str) -> str:
    return token.removeprefix("dw_").split(".", 1)[0]


def _submit(
    client: httpx.Client, key: str, path: Path, operation: str = "extract", **params: Any
) -> httpx.Response:
    return client.post(
        "/api/v2/jobs",
        files={"file": (path.name, path.read_bytes())},
        data={"operation": operation, "params": json.dumps(params)},
        headers=_as(key),
    )


def _job(client: httpx.Client, key: str, path: Path, operation: str = "extract", **p: Any) -> str:
    response = _submit(client, key, path, operation, **p)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _until(check: Callable[[], Any], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("the condition never held")


def _ended(client: httpx.Client, key: str, job_id: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/api/v2/jobs/{job_id}", headers=_as(key)).json()
        return job if job["status"] not in {"queued", "running"} else None

    found: dict[str, Any] = _until(ended)
    return found


def _events(client: httpx.Client, admin: str, **query: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v2/audit", params=query, headers=_as(admin))
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def test_every_ended_job_leaves_an_audit_event(server: Server, keys: Keys) -> None:
    with server.client() as client:
        ok = _job(client, keys.alpha, ARTICLE, output="text")
        locked = _job(client, keys.alpha, LOCKED)
        ocr = _job(client, keys.alpha, OCR_IMAGE, "ocr")
        slow = _job(client, keys.alpha, HUGE, "ocr")
        _until(
            lambda: (
                client.get(f"/api/v2/jobs/{slow}", headers=_as(keys.alpha)).json()["status"]
                == "running"
            )
        )
        assert client.delete(f"/api/v2/jobs/{slow}", headers=_as(keys.alpha)).status_code == 200
        states = {job: _ended(client, keys.alpha, job)["status"] for job in (ok, locked, ocr, slow)}
        assert states == {ok: "succeeded", locked: "failed", ocr: "succeeded", slow: "cancelled"}

        events = {e["job_id"]: e for e in _events(client, keys.admin, kind="job", tenant="alpha")}
        first = events[ok]
        assert (first["key_id"], first["tenant"], first["client"]) == (
            _key_id(keys.alpha),
            "alpha",
            "127.0.0.1",
        )
        assert first["operation"] == "extract" and first["outcome"] == "succeeded"
        assert first["input_sha256"] == hashlib.sha256(ARTICLE.read_bytes()).hexdigest()
        assert first["input_bytes"] == ARTICLE.stat().st_size
        assert first["pages"] == 5 and first["duration_seconds"] > 0
        assert events[locked]["outcome"] == "failed"
        assert events[locked]["detail"]["error"] == "password-required"
        # OCR runs Tesseract: its CPU time is counted, and shown on the job too.
        assert events[ocr]["cpu_seconds"] > 0 and events[ocr]["pages"] == 1
        job = client.get(f"/api/v2/jobs/{ocr}", headers=_as(keys.alpha)).json()
        assert job["usage"]["cpu_seconds"] == pytest.approx(events[ocr]["cpu_seconds"])
        assert events[slow]["outcome"] == "cancelled"


def test_the_audit_trail_is_for_admins_and_pages(server: Server, keys: Keys) -> None:
    with server.client() as client:
        for _ in range(3):
            _ended(client, keys.beta, _job(client, keys.beta, TEXT, output="text"))
        refused = client.get("/api/v2/audit", headers=_as(keys.beta))
        assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
        seen: list[int] = []
        query: dict[str, Any] = {"tenant": "beta", "kind": "job", "limit": 2}
        while True:
            page = client.get("/api/v2/audit", params=query, headers=_as(keys.admin)).json()
            seen += [e["id"] for e in page["events"]]
            assert all(e["tenant"] == "beta" for e in page["events"])
            if not page.get("next_cursor"):
                break
            query["cursor"] = page["next_cursor"]
        assert len(seen) == len(set(seen)) >= 3 and seen == sorted(seen, reverse=True)
        failed = _events(client, keys.admin, tenant="beta", outcome="failed")
        assert failed == []
        bad = client.get("/api/v2/audit", params={"kind": "nope"}, headers=_as(keys.admin))
        assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM


def test_refused_requests_are_audited_in_batches(server: Server, keys: Keys) -> None:
    wrong = "dw_0123456789abcdef.not-the-secret"
    with server.client() as client:
        for _ in range(3):
            assert client.get("/api/v2/jobs", headers=_as(wrong)).status_code == 401
        assert client.get("/api/v2/keys", headers=_as(keys.alpha_reader)).status_code == 403

        def all_three() -> list[dict[str, Any]]:
            found = _events(client, keys.admin, kind="auth.invalid-key")
            return found if sum(e["detail"]["count"] for e in found) == 3 else []

        # One event with a count, or a few when the refusals straddled a flush.
        invalid = _until(all_three)
        assert len(invalid) <= 3
        for event in invalid:
            assert event["key_id"] == "0123456789abcdef" and event["outcome"] == "refused"
            assert event["detail"]["path"] == "/api/v2/jobs"
        forbidden = _until(
            lambda: _events(client, keys.admin, kind="auth.forbidden", tenant="alpha")
        )
        assert forbidden[0]["key_id"] == _key_id(keys.alpha_reader)
        assert forbidden[0]["detail"]["status"] == 403


def test_key_changes_are_audited(server: Server, keys: Keys) -> None:
    with server.client() as client:
        created = _events(client, keys.admin, kind="key.create")
        by_cli = [e for e in created if e["detail"]["key"] == _key_id(keys.alpha)]
        assert by_cli and by_cli[0]["client"].startswith("cli:")
        made = client.post(
            "/api/v2/keys", json={"tenant": "delta", "scopes": ["read"]}, headers=_as(keys.admin)
        ).json()["key"]
        client.delete(f"/api/v2/keys/{made['id']}", headers=_as(keys.admin))
        mine = _events(client, keys.admin, key_id=_key_id(keys.admin))
        changes = [(e["kind"], e["detail"]["key"]) for e in mine if e["kind"].startswith("key.")]
        assert changes[:2] == [("key.revoke", made["id"]), ("key.create", made["id"])]


def test_usage_figures_match_the_jobs_run(server: Server, keys: Keys) -> None:
    gamma = _key(server, "gamma", "read", "submit")
    with server.client() as client:
        jobs = [
            _job(client, gamma, TEXT, output="text"),
            _job(client, gamma, ARTICLE, output="text"),
            _job(client, gamma, LOCKED),
        ]
        ended = [_ended(client, gamma, job) for job in jobs]
        response = client.get("/api/v2/usage", params={"group_by": "operation"}, headers=_as(gamma))
        assert response.status_code == 200, response.text
        report = response.json()
        (group,) = report["groups"]
        assert group["group"] == {"operation": "extract"}
        assert group["jobs"] == 3 and group["outcomes"] == {"succeeded": 2, "failed": 1}
        sizes = [TEXT.stat().st_size, ARTICLE.stat().st_size, LOCKED.stat().st_size]
        assert group["input_bytes"] == sum(sizes)
        assert group["pages"] == sum(job["usage"]["pages"] or 0 for job in ended)
        assert group["cpu_seconds"] == pytest.approx(
            sum(job["usage"]["cpu_seconds"] for job in ended), abs=0.01
        )
        assert report["total"]["jobs"] == 3
        # An admin sees the same for gamma; gamma sees nothing of other tenants.
        admin = client.get(
            "/api/v2/usage",
            params={"tenant": "gamma", "group_by": ["tenant", "key_id"]},
            headers=_as(keys.admin),
        ).json()
        assert admin["groups"][0]["group"] == {"tenant": "gamma", "key_id": _key_id(gamma)}
        assert admin["groups"][0]["jobs"] == 3
        other = client.get("/api/v2/usage", params={"tenant": "alpha"}, headers=_as(gamma))
        assert other.json()["groups"] == [] and other.json()["total"]["jobs"] == 0
        # The same figures as metrics, by tenant and operation.
        metrics = client.get("/metrics", headers={**_as(keys.admin), "Accept": "text/plain"}).text
        line = next(
            m
            for m in metrics.splitlines()
            if m.startswith("docworker_usage_jobs_total{")
            and 'tenant="gamma"' in m
            and 'outcome="succeeded"' in m
        )
        assert line.endswith(" 2.0")


def _quota_problem(response: httpx.Response, quota: str) -> dict[str, Any]:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == PROBLEM
    assert int(response.headers["retry-after"]) > 0
    body: dict[str, Any] = response.json()
    assert body["code"] == "quota-exceeded" and body["quota"] == quota
    return body


def test_a_spent_request_quota_answers_429(server: Server) -> None:
    key = _key(server, "epsilon", "read", "submit", limits={"requests_per_day": 2})
    with server.client() as client:
        for _ in range(2):
            _job(client, key, TEXT)
        body = _quota_problem(_submit(client, key, TEXT), "requests_per_day")
        assert (body["limit"], body["used"]) == (2, 2)
        assert "per UTC day" in body["detail"] and body["resets_at"].endswith("T00:00:00Z")
        sync = client.post(
            "/api/v2/extract", files={"file": (TEXT.name, TEXT.read_bytes())}, headers=_as(key)
        )
        _quota_problem(sync, "requests_per_day")
        v1 = client.post(
            f"/api/v1/extract/text?api_key={key}", files={"file": (TEXT.name, TEXT.read_bytes())}
        )
        assert v1.status_code == 429 and "retry-after" in v1.headers
        state = client.get("/api/v2/usage/quota", headers=_as(key)).json()
        assert state["quotas"]["requests_per_day"] == {"limit": 2, "used": 2, "remaining": 0}
        assert state["quotas"]["pages_per_day"]["limit"] is None
        # Reading is not work: the key still reads its jobs.
        assert client.get("/api/v2/jobs", headers=_as(key)).status_code == 200


def test_quotas_hold_under_concurrent_clients(server: Server) -> None:
    size = TEXT.stat().st_size
    by_requests = _key(server, "zeta", "submit", limits={"requests_per_day": 5})
    by_bytes = _key(server, "zeta", "submit", limits={"bytes_per_day": 3 * size})

    def statuses(key: str, count: int) -> list[int]:
        def one(_: int) -> int:
            with server.client() as client:
                return _submit(client, key, TEXT).status_code

        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(one, range(count)))

    assert sorted(statuses(by_requests, 12)) == [202] * 5 + [429] * 7
    assert sorted(statuses(by_bytes, 8)) == [202] * 3 + [429] * 5


def test_a_spent_bytes_quota_refuses_before_the_upload(server: Server, tmp_path: Path) -> None:
    key = _key(server, "eta", "submit", limits={"bytes_per_day": 300_000})
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_bytes(os.urandom(100_000).hex().encode()[:200_000])
    second.write_bytes(os.urandom(100_000).hex().encode()[:200_000])
    with server.client() as client:
        assert _submit(client, key, first).status_code == 202
        body = _quota_problem(_submit(client, key, second), "bytes_per_day")
        assert body["used"] == 200_000
        # Refused on its declared length: the file never reached the blob store.
        digest = hashlib.sha256(second.read_bytes()).hexdigest()
        assert not (server.data_dir / "blobs" / "inputs" / digest).exists()
        whole = tmp_path / "whole.txt"
        whole.write_bytes(b"x" * 400_000)
        too_big = _submit(client, key, whole)
        assert too_big.status_code == 413 and too_big.json()["limit"] == "bytes_per_day"


def test_pages_and_cpu_quotas_admit_while_under(server: Server) -> None:
    by_pages = _key(server, "theta", "read", "submit", limits={"pages_per_day": 1})
    by_cpu = _key(server, "theta", "read", "submit", limits={"cpu_seconds_per_day": 0.001})
    with server.client() as client:
        _ended(client, by_pages, _job(client, by_pages, ARTICLE, output="text"))
        body = _quota_problem(_submit(client, by_pages, TEXT), "pages_per_day")
        assert body["used"] == 5
        _ended(client, by_cpu, _job(client, by_cpu, OCR_IMAGE, "ocr"))
        body = _quota_problem(_submit(client, by_cpu, TEXT), "cpu_seconds_per_day")
        assert body["used"] > 0.001
