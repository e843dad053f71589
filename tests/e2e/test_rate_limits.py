"""Rate limits and the cap on a tenant's active jobs, end to end: real servers with API
keys on, keys made by ``docworker keys``, and 50 clients at once.

A key's rate holds exactly: of 50 concurrent requests under ``20/minute``, 20 pass and
30 get 429 with ``Retry-After``, whether one server counts in its memory or two servers
count in one Redis.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from bench.scoring import corpus_root
from tests.e2e.server import Server

TEXT = corpus_root() / "text" / "plain-utf8.txt"
PROBLEM = "application/problem+json"
SECRET = "r4Tq8Lm2Xv7Kd1Pz9Wc3Hn6Bf0Js5Ga2Ye8Ut4"
CLIENTS = 50


def _admin_key(server: Server) -> str:
    return server.keys("create", "--tenant", "ops", "--scope", "admin")


def _create_key(server: Server, admin: str, tenant: str, **limits: object) -> str:
    """A read and submit key of ``tenant``, made through the admin route."""
    body = {"tenant": tenant, "scopes": ["read", "submit"], "limits": limits or None}
    with server.client() as client:
        created = client.post("/api/v2/keys", json=body, headers=_as(admin))
    assert created.status_code == 201, created.text
    token: str = created.json()["token"]
    return token


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _keyed_server(data_dir: Path, **env: str) -> Server:
    # No executor: submitted jobs stay queued, which the cap on active jobs needs.
    return Server(
        data_dir,
        DOCWORKER_AUTH__ENABLED="true",
        DOCWORKER_AUTH__SECRET=SECRET,
        DOCWORKER_AUTH__CACHE_TTL="30",
        DOCWORKER_EXECUTOR__KIND="none",
        **env,
    )


@pytest.fixture(scope="module")
def admin(server: Server) -> str:
    return _admin_key(server)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = _keyed_server(
        tmp_path_factory.mktemp("rates"), DOCWORKER_EXECUTOR__MAX_ACTIVE_JOBS="3"
    ).start()
    try:
        yield srv
    finally:
        srv.stop()


def _at_once(urls: list[str], path: str, key: str) -> list[httpx.Response]:
    """GET ``path`` from ``len(urls)`` clients at once, each on its own connection to
    its server."""
    barrier = threading.Barrier(len(urls))

    def one(url: str) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=60) as client:
            client.get("/health/liveness")  # connected before the start
            barrier.wait(timeout=30)
            return client.get(path, headers=_as(key))

    with ThreadPoolExecutor(len(urls)) as pool:
        return list(pool.map(one, urls))


def _assert_exactly_twenty_of_fifty(answers: list[httpx.Response]) -> list[httpx.Response]:
    passed = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    assert (len(passed), len(refused)) == (20, CLIENTS - 20), [a.status_code for a in answers]
    for answer in refused:
        assert answer.headers["content-type"] == PROBLEM
        assert answer.json()["code"] == "rate-limited"
        assert 1 <= int(answer.headers["Retry-After"]) <= 60
        assert answer.headers["RateLimit-Remaining"] == "0"
    for answer in answers:
        assert answer.headers["RateLimit-Limit"] == "20"
        assert answer.headers["RateLimit-Policy"] == "20;w=60"
    return passed


def test_exactly_the_rate_passes_under_50_concurrent_clients(server: Server, admin: str) -> None:
    limited = _create_key(server, admin, "alpha", rate="20/minute")
    answers = _at_once([server.url] * CLIENTS, "/api/v2/jobs?limit=1", limited)
    passed = _assert_exactly_twenty_of_fifty(answers)
    # One process counts: each request that passed saw its own place in the window.
    assert sorted(int(a.headers["RateLimit-Remaining"]) for a in passed) == list(range(20))
    with server.client() as client:
        # Another key counts on its own, at the default rate.
        other_key = _create_key(server, admin, "beta")
        other = client.get("/api/v2/jobs?limit=1", headers=_as(other_key))
        assert other.status_code == 200
        assert (other.headers["RateLimit-Limit"], other.headers["RateLimit-Remaining"]) == (
            "1200",
            "1199",
        )
        # Probes are not counted, whoever calls.
        probe = client.get("/health/liveness", headers=_as(limited))
        assert probe.status_code == 200 and "RateLimit-Limit" not in probe.headers


def test_v1_routes_over_the_rate_answer_v1s_body(server: Server, admin: str) -> None:
    key = _create_key(server, admin, "delta", rate="2/minute")
    with server.client() as client:
        statuses = [
            client.get("/api/v1/queue/stats", headers={"X-API-Key": key}).status_code
            for _ in range(2)
        ]
        refused = client.get(f"/api/v1/queue/stats?api_key={key}")
    assert statuses == [200, 200]
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    body = refused.json()
    assert body["success"] is False and body["code"] == 429
    assert "2 requests in 60 s" in body["error"]


def test_the_api_document_lists_429_and_the_headers(server: Server) -> None:
    with server.client() as client:
        schema = client.get("/openapi.json").json()
    job = schema["paths"]["/api/v2/jobs/{job_id}"]["get"]["responses"]
    assert "Retry-After" in job["429"]["headers"]
    assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(
        job["200"]["headers"]
    )
    v1 = schema["paths"]["/api/v1/queue/stats"]["get"]["responses"]["429"]
    refs = [s["$ref"] for s in v1["content"]["application/json"]["schema"]["anyOf"]]
    assert refs == ["#/components/schemas/V1FrameworkError", "#/components/schemas/V1ErrorBody"]
    assert {"V1FrameworkError", "V1ErrorBody"} <= set(schema["components"]["schemas"])
    assert "429" not in schema["paths"]["/health/liveness"]["get"]["responses"]


def test_a_key_with_a_rate_that_is_not_one_is_refused(server: Server, admin: str) -> None:
    body = {"tenant": "zeta", "scopes": ["read"], "limits": {"rate": "fast"}}
    with server.client() as client:
        refused = client.post("/api/v2/keys", json=body, headers=_as(admin))
    assert refused.status_code == 422 and "is not a rate" in refused.json()["detail"]


def _submit(client: httpx.Client, key: str) -> httpx.Response:
    return client.post(
        "/api/v2/jobs",
        files={"file": (TEXT.name, TEXT.read_bytes())},
        data={"operation": "extract", "params": '{"output": "text"}'},
        headers=_as(key),
    )


def test_a_tenant_cannot_fill_the_queue(server: Server, admin: str) -> None:
    capped = _create_key(server, admin, "gamma", max_active_jobs=2)
    default = _create_key(server, admin, "epsilon")
    with server.client() as client:
        first, second = (_submit(client, capped) for _ in range(2))
        assert (first.status_code, second.status_code) == (202, 202)
        refused = _submit(client, capped)
        assert refused.status_code == 429 and refused.headers["content-type"] == PROBLEM
        assert int(refused.headers["Retry-After"]) >= 1
        problem = refused.json()
        assert problem["code"] == "active-jobs-limit"
        assert (problem["active_jobs"], problem["max_active_jobs"]) == (2, 2)
        assert "at most 2" in problem["detail"]
        # v1's routes refuse the same way, in v1's body.
        v1 = client.post(
            "/api/v1/extract/async/text",
            files={"file": (TEXT.name, TEXT.read_bytes())},
            headers=_as(capped),
        )
        assert v1.status_code == 429 and int(v1.headers["Retry-After"]) >= 1
        assert "at most 2" in v1.json()["details"]
        # A job that ends frees its place.
        cancelled = client.delete(f"/api/v2/jobs/{first.json()['id']}", headers=_as(capped))
        assert cancelled.status_code == 200
        assert _submit(client, capped).status_code == 202
        # Without a cap of its own, a tenant has the configured one.
        statuses = [_submit(client, default).status_code for _ in range(4)]
        assert statuses == [202, 202, 202, 429]


@pytest.mark.redis
def test_two_servers_sharing_redis_share_a_keys_rate(tmp_path: Path, redis_url: str) -> None:
    """Two API processes over one job store and one Redis: the key's 20 requests a
    minute hold across both, with the 50 clients split between them."""
    shared = {
        "DOCWORKER_RATE__STORAGE_URL": redis_url,
        "DOCWORKER_RATE__KEY_PREFIX": f"docworker-test-{uuid.uuid4().hex}",
    }
    first = _keyed_server(tmp_path, **shared).start()
    try:
        second = _keyed_server(tmp_path, **shared).start()
        try:
            key = _create_key(first, _admin_key(first), "alpha", rate="20/minute")
            urls = [(first.url, second.url)[i % 2] for i in range(CLIENTS)]
            answers = _at_once(urls, "/api/v2/jobs?limit=1", key)
        finally:
            second.stop()
    finally:
        first.stop()
    # Counting apart, each server would have let 20 of its 25 through.
    _assert_exactly_twenty_of_fifty(answers)
