"""API keys, tenants and scopes, end to end: a real server with keys on, keys made by the
``docworker keys`` command, and two tenants that must not see each other's work."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bench.scoring import corpus_root
from tests.e2e.server import Server

CORPUS = corpus_root()
TEXT = CORPUS / "text" / "plain-utf8.txt"
PROBLEM = "application/problem+json"
SECRET = "k7Hq2Lx9Vd3Rt8Wz1Mb6Np4Fs0Gc5Jy7Ae2Ku9"


@dataclass
class Keys:
    admin: str
    a: str
    b: str
    a_reader: str
    a_extract_only: str


def _keys_command(server: Server, *args: str) -> str:
    return server.keys(*args)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(
        tmp_path_factory.mktemp("auth"),
        DOCWORKER_AUTH__ENABLED="true",
        DOCWORKER_AUTH__SECRET=SECRET,
        DOCWORKER_AUTH__CACHE_TTL="30",
        DOCWORKER_GUARD__TENANTS='{"alpha": {"office_macros": "refuse"}}',
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def keys(server: Server) -> Keys:
    create = ("create", "--tenant")
    return Keys(
        admin=_keys_command(server, *create, "ops", "--scope", "admin"),
        a=_keys_command(server, *create, "alpha", "--scope", "read", "--scope", "submit"),
        b=_keys_command(server, *create, "beta", "--scope", "read", "--scope", "submit"),
        a_reader=_keys_command(server, *create, "alpha", "--scope", "read"),
        a_extract_only=_keys_command(
            server, *create, "alpha", "--scope", "read", "--scope", "submit:extract"
        ),
    )


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _submit(client: httpx.Client, key: str, **data: str) -> dict[str, object]:
    response = client.post(
        "/api/v2/jobs",
        files={"file": (TEXT.name, TEXT.read_bytes())},
        data={"operation": "extract", "params": '{"output": "text"}', **data},
        headers=_as(key),
    )
    assert response.status_code in (200, 202), response.text
    job: dict[str, object] = response.json()
    return job


def _finished(client: httpx.Client, key: str, job_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job: dict[str, object] = client.get(f"/api/v2/jobs/{job_id}", headers=_as(key)).json()
        if job["status"] not in {"queued", "running"}:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def test_no_key_is_401_before_the_upload(server: Server) -> None:
    with server.client() as client:
        response = client.post("/api/v2/extract", files={"file": ("a.txt", b"hello")})
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["code"] == "unauthorized"
        bad = client.get("/api/v2/jobs", headers=_as("dw_0123456789abcdef.not-the-secret"))
        assert bad.status_code == 401 and "not valid" in bad.json()["detail"]
        # v1 clients get v1's error body.
        v1 = client.get("/api/v1/queue/stats")
        assert v1.status_code == 401 and v1.json()["success"] is False
        # Probes and the API documents stay open.
        assert client.get("/health/liveness").status_code == 200
        schema = client.get("/openapi.json").json()
        assert {"bearer", "apiKeyHeader", "apiKeyQuery"} <= set(
            schema["components"]["securitySchemes"]
        )
        public = {"/health", "/health/liveness", "/health/readiness"}
        for path, methods in schema["paths"].items():
            for method, operation in methods.items():
                if path in public:
                    assert "security" not in operation, (method, path)
                    continue
                # Every route that needs a key documents the refusals it may answer.
                assert {"401", "403", "429"} <= set(operation["responses"]), (method, path)
                assert operation["security"], (method, path)


def test_the_generated_secret_and_database_are_private(tmp_path: Path) -> None:
    from docworker.auth import server_secret

    secret = server_secret(None, tmp_path / "data")
    assert len(secret) >= 32 and server_secret(None, tmp_path / "data") == secret
    mode = stat.S_IMODE((tmp_path / "data" / "auth.secret").stat().st_mode)
    assert mode == 0o600


def test_tenants_do_not_see_each_other(server: Server, keys: Keys) -> None:
    with server.client() as client:
        job = _submit(client, keys.a)
        job_id = str(job["id"])
        assert _finished(client, keys.a, job_id)["status"] == "succeeded"
        assert client.get(f"/api/v2/jobs/{job_id}/result", headers=_as(keys.a)).status_code == 200
        for path in (f"/api/v2/jobs/{job_id}", f"/api/v2/jobs/{job_id}/result"):
            other = client.get(path, headers=_as(keys.b))
            assert other.status_code == 404, path
            assert other.headers["content-type"] == PROBLEM
        artifact = client.get(f"/api/v2/jobs/{job_id}/artifacts/x", headers=_as(keys.b))
        assert artifact.status_code == 404
        assert client.delete(f"/api/v2/jobs/{job_id}", headers=_as(keys.b)).status_code == 404
        listed_b = client.get("/api/v2/jobs", headers=_as(keys.b)).json()["jobs"]
        assert job_id not in {j["id"] for j in listed_b}
        listed_a = client.get("/api/v2/jobs", headers=_as(keys.a)).json()["jobs"]
        assert job_id in {j["id"] for j in listed_a}
        listed_admin = client.get("/api/v2/jobs", headers=_as(keys.admin)).json()["jobs"]
        assert job_id in {j["id"] for j in listed_admin}
        # B cannot run A's stored input by naming it.
        uri = f"blob://inputs/{job['input']['sha256']}"  # type: ignore[index]
        reuse = client.post(
            "/api/v2/jobs",
            json={"operation": "extract", "input_uri": uri},
            headers=_as(keys.b),
        )
        assert reuse.status_code == 404
        own = client.post(
            "/api/v2/jobs", json={"operation": "extract", "input_uri": uri}, headers=_as(keys.a)
        )
        assert own.status_code == 202
        # v1's job routes answer the same way.
        assert client.get(f"/api/v1/job/{job_id}", headers=_as(keys.b)).status_code == 404
        assert client.get(f"/api/v1/job/{job_id}", headers=_as(keys.a)).status_code == 200


def test_the_guard_applies_the_policy_of_the_job_s_tenant(server: Server, keys: Keys) -> None:
    macros = CORPUS / "hostile" / "word-macros.docm"
    with server.client() as client:
        files = {"file": (macros.name, macros.read_bytes())}
        refused = client.post("/api/v2/extract", files=files, headers=_as(keys.a))
        assert refused.status_code == 422 and refused.json()["code"] == "content-refused"
        reported = client.post("/api/v2/extract", files=files, headers=_as(keys.b))
        assert reported.status_code == 200, reported.text
        kinds = {f["kind"] for f in reported.json()["security"]["findings"]}
        assert "office_macros" in kinds


def test_idempotency_keys_belong_to_their_tenant(server: Server, keys: Keys) -> None:
    with server.client() as client:
        first = _submit(client, keys.a, idempotency_key="same-key")
        second = _submit(client, keys.b, idempotency_key="same-key")
        assert first["id"] != second["id"]
        again = _submit(client, keys.a, idempotency_key="same-key")
        assert again["id"] == first["id"]


def test_scopes(server: Server, keys: Keys) -> None:
    with server.client() as client:
        refused = client.post(
            "/api/v2/jobs",
            files={"file": (TEXT.name, TEXT.read_bytes())},
            data={"operation": "extract"},
            headers=_as(keys.a_reader),
        )
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
        assert client.get("/api/v2/jobs", headers=_as(keys.a_reader)).status_code == 200
        chunk = client.post(
            "/api/v2/chunk",
            files={"file": (TEXT.name, TEXT.read_bytes())},
            headers=_as(keys.a_extract_only),
        )
        assert chunk.status_code == 403 and "submit:chunk" in chunk.json()["detail"]
        extract = client.post(
            "/api/v2/extract",
            files={"file": (TEXT.name, TEXT.read_bytes())},
            headers=_as(keys.a_extract_only),
        )
        assert extract.status_code == 200, extract.text
        assert client.get("/api/v2/keys", headers=_as(keys.a)).status_code == 403
        # A key of the same tenant reads the tenant's jobs.
        job_id = extract.json()["job_id"]
        assert client.get(f"/api/v2/jobs/{job_id}", headers=_as(keys.a_reader)).status_code == 200


def test_v1_clients_may_send_the_key_as_a_query_parameter(server: Server, keys: Keys) -> None:
    with server.client() as client:
        response = client.post(
            f"/api/v1/extract/text?api_key={keys.a}",
            files={"file": (TEXT.name, TEXT.read_bytes())},
        )
        assert response.status_code == 200, response.text
        assert "text" in response.json()
        header = client.get("/api/v1/queue/stats", headers={"X-API-Key": keys.b})
        assert header.status_code == 200


def test_admin_manages_keys_over_http(server: Server, keys: Keys) -> None:
    with server.client() as client:
        made = client.post(
            "/api/v2/keys",
            json={"tenant": "gamma", "scopes": ["read"], "name": "temp"},
            headers=_as(keys.admin),
        )
        assert made.status_code == 201, made.text
        token, key_id = made.json()["token"], made.json()["key"]["id"]
        assert token.startswith(f"dw_{key_id}.")
        me = client.get("/api/v2/keys/current", headers=_as(token)).json()
        assert me["tenant"] == "gamma" and me["scopes"] == ["read"]
        listed = client.get("/api/v2/keys?tenant=gamma", headers=_as(keys.admin)).json()["keys"]
        assert [k["id"] for k in listed] == [key_id]
        assert "token" not in listed[0] and "hash" not in listed[0]
        bad = client.post(
            "/api/v2/keys", json={"tenant": "gamma", "scopes": ["root"]}, headers=_as(keys.admin)
        )
        assert bad.status_code == 422 and bad.json()["parameter"] == "scopes"

        rotated = client.post(
            f"/api/v2/keys/{key_id}/rotate", json={"grace_seconds": 600}, headers=_as(keys.admin)
        )
        assert rotated.status_code == 201
        new_token = rotated.json()["token"]
        assert client.get("/api/v2/jobs", headers=_as(token)).status_code == 200  # grace
        assert client.get("/api/v2/jobs", headers=_as(new_token)).status_code == 200

        new_id = rotated.json()["key"]["id"]
        revoked = client.delete(f"/api/v2/keys/{new_id}", headers=_as(keys.admin))
        assert revoked.status_code == 200 and revoked.json()["active"] is False
        # Revoked here: refused at once, whatever the cache remembered.
        assert client.get("/api/v2/jobs", headers=_as(new_token)).status_code == 401


def test_the_keys_command_lists_and_revokes(server: Server) -> None:
    token = _keys_command(server, "create", "--tenant", "delta", "--scope", "read")
    key_id = token.removeprefix("dw_").split(".", 1)[0]
    assert key_id in _keys_command(server, "list", "--tenant", "delta")
    _keys_command(server, "revoke", key_id)
    assert key_id not in _keys_command(server, "list", "--tenant", "delta")
    assert key_id in _keys_command(server, "list", "--tenant", "delta", "--all")
    rotated = subprocess.run(
        [sys.executable, "-m", "docworker", "keys", "rotate", key_id],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert rotated.returncode == 1 and "revoked" in rotated.stderr


def _serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "docworker", "serve", *args],
        env={**os.environ, "DOCWORKER_DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_unsafe_settings_refuse_to_start(tmp_path: Path) -> None:
    production = _serve(tmp_path, "--port", "1", DOCWORKER_PROFILE="production")
    assert production.returncode == 2
    assert "auth.secret" in production.stderr
    weak = _serve(
        tmp_path,
        "--port",
        "1",
        DOCWORKER_PROFILE="production",
        DOCWORKER_AUTH__SECRET="changeme",
        DOCWORKER_CORS__ALLOW_CREDENTIALS="true",
    )
    assert weak.returncode == 2
    assert "weak" in weak.stderr and "allow_credentials" in weak.stderr
    open_remote = _serve(tmp_path, "--host", "0.0.0.0", "--port", "1")
    assert open_remote.returncode == 2 and "loopback" in open_remote.stderr
