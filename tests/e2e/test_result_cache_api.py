"""The result cache over HTTP, with API keys on: a hit is a job marked ``cached``, the
``cache=false`` bypass, tenants apart, and the cache routes (v2 and v1) for admins only."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from bench.scoring import corpus_root
from tests.e2e.server import Server

PDF = corpus_root() / "pdf" / "minimal-document.pdf"
SECRET = "Qw8Zr3Lp0Xn6Vb1Tm9Kc4Hs7Dg2Fy5Ju8Ea3Wt6"


@dataclass
class Keys:
    admin: str
    alpha: str
    beta: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(
        tmp_path_factory.mktemp("result-cache"),
        DOCWORKER_AUTH__ENABLED="true",
        DOCWORKER_AUTH__SECRET=SECRET,
        DOCWORKER_CACHE__ENABLED="true",
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def keys(server: Server) -> Keys:
    admin = server.keys("create", "--tenant", "ops", "--scope", "admin")
    with server.client() as client:

        def key(tenant: str) -> str:
            body = {"tenant": tenant, "scopes": ["read", "submit"]}
            made = client.post("/api/v2/keys", json=body, headers=_as(admin))
            assert made.status_code == 201, made.text
            token: str = made.json()["token"]
            return token

        return Keys(admin=admin, alpha=key("alpha"), beta=key("beta"))


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _finished(client: httpx.Client, key: str, job_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job: dict[str, object] = client.get(f"/api/v2/jobs/{job_id}", headers=_as(key)).json()
        if job["status"] not in {"queued", "running"}:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def _extract(client: httpx.Client, key: str, query: str = "") -> tuple[dict[str, object], str]:
    """The JSON answer of a sync extraction and its job, as the job route shows it."""
    answer = client.post(
        f"/api/v2/extract{query}",
        files={"file": (PDF.name, PDF.read_bytes(), "application/pdf")},
        data={"output": "markdown"},
        headers=_as(key),
    )
    assert answer.status_code == 200, answer.text
    job = client.get(f"/api/v2/jobs/{answer.headers['X-Job-Id']}", headers=_as(key)).json()
    body: dict[str, object] = answer.json()
    body.pop("job_id", None)
    return body, job


def test_a_repeated_request_is_a_cached_job(server: Server, keys: Keys) -> None:
    with server.client() as client:
        cold, first = _extract(client, keys.alpha)
        hot, second = _extract(client, keys.alpha)
        assert first["cached"] is False and second["cached"] is True
        assert second["status"] == "succeeded" and second["attempts"] == 0
        assert hot == cold
        _, bypassed = _extract(client, keys.alpha, "?cache=false")
        assert bypassed["cached"] is False and bypassed["attempts"] == 1
        # Another tenant sending the same bytes runs its own job.
        _, other = _extract(client, keys.beta)
        assert other["cached"] is False
        # The jobs route: the form field, and the query.
        for query, field in (("", {"cache": "false"}), ("?cache=false", {})):
            response = client.post(
                f"/api/v2/jobs{query}",
                files={"file": (PDF.name, PDF.read_bytes(), "application/pdf")},
                headers=_as(keys.alpha),
                data={"operation": "extract", "params": '{"output":"markdown"}', **field},
            )
            assert response.status_code == 202 and response.json()["cached"] is False
        served = client.post(
            "/api/v2/jobs",
            files={"file": (PDF.name, PDF.read_bytes(), "application/pdf")},
            headers=_as(keys.alpha),
            data={"operation": "extract", "params": '{"output":"markdown"}'},
        ).json()
        assert served["cached"] is True and served["status"] == "succeeded"
        # Named in JSON: the stored input, with "cache": false, then without.
        sha256 = served["input"]["sha256"]
        body = {"operation": "extract", "input_uri": f"blob://inputs/{sha256}"}
        bypassed = client.post(
            "/api/v2/jobs", json=body | {"cache": False}, headers=_as(keys.alpha)
        ).json()
        assert bypassed["cached"] is False
        first = client.post("/api/v2/jobs", json=body, headers=_as(keys.alpha)).json()
        _finished(client, keys.alpha, first["id"])
        again = client.post("/api/v2/jobs", json=body, headers=_as(keys.alpha)).json()
        assert first["cached"] is False and again["cached"] is True
        bad = client.post(
            "/api/v2/jobs",
            files={"file": (PDF.name, PDF.read_bytes(), "application/pdf")},
            headers=_as(keys.alpha),
            data={"operation": "extract", "cache": "maybe"},
        )
        assert bad.status_code == 422 and bad.json()["parameter"] == "cache"


def test_the_cache_routes_are_for_admins(server: Server, keys: Keys) -> None:
    with server.client() as client:
        _extract(client, keys.alpha)
        _extract(client, keys.alpha)
        assert client.get("/api/v2/cache", headers=_as(keys.alpha)).status_code == 403
        assert client.delete("/api/v2/cache", headers=_as(keys.alpha)).status_code == 403
        assert client.get("/api/v2/cache").status_code == 401
        stats = client.get("/api/v2/cache", headers=_as(keys.admin)).json()
        assert stats["enabled"] is True
        tiers = {tier["tier"]: tier for tier in stats["tiers"]}
        assert set(tiers) == {"memory", "disk"}
        assert tiers["disk"]["entries"] >= 1 and tiers["disk"]["bytes"] > 0
        assert tiers["memory"]["hits"] + tiers["disk"]["hits"] >= 1
        assert tiers["disk"]["misses"] >= 1
        # Kept as privately as results: the service's user only.
        kept = server.data_dir / "result-cache"
        modes = {stat.S_IMODE(p.stat().st_mode) for p in kept.rglob("*") if p.is_file()}
        folders = {stat.S_IMODE(p.stat().st_mode) for p in [kept, *kept.rglob("*")] if p.is_dir()}
        assert modes == {0o600} and folders == {0o700}

        scraped = {"Accept": "text/plain"} | _as(keys.admin)
        metrics = client.get("/metrics", headers=scraped).text
        assert 'docworker_result_cache_hits_total{tier="memory"}' in metrics
        assert 'docworker_result_cache_misses_total{tier="disk"}' in metrics

        v1 = client.get("/api/v1/cache/stats", headers=_as(keys.admin)).json()
        assert v1["cache"]["enabled"] is True and v1["result_cache"]["enabled"] is True
        assert (
            "result_cache" not in client.get("/api/v1/cache/stats", headers=_as(keys.alpha)).json()
        )

        unknown = client.delete("/api/v2/cache?operation=nope", headers=_as(keys.admin))
        assert unknown.status_code == 404
        wrong = client.delete("/api/v2/cache?prefix=extract:xyz", headers=_as(keys.admin))
        assert wrong.status_code == 422 and wrong.json()["parameter"] == "prefix"
        none = client.delete("/api/v2/cache?operation=ocr", headers=_as(keys.admin)).json()
        assert none == {"enabled": True, "deleted": {"memory": 0, "disk": 0}}
        cleared = client.delete("/api/v2/cache?operation=extract", headers=_as(keys.admin))
        assert cleared.status_code == 200 and cleared.json()["deleted"]["disk"] >= 1
        _, job = _extract(client, keys.alpha)
        assert job["cached"] is False  # forgotten: it ran again, and was kept again
        _, job = _extract(client, keys.alpha)
        assert job["cached"] is True
        assert client.delete("/api/v1/cache/clear", headers=_as(keys.admin)).status_code == 200
        _, job = _extract(client, keys.alpha)
        assert job["cached"] is False
