"""Feature flags and settings reloads on a real ``docworker serve``: the HTML engine a
tenant's flag picks (stored in its job), an operation a flag closes to a tenant (403
naming the flag), the flag metric, and SIGHUP reading a changed settings file and flags
file again (a bad one refused, the old settings kept)."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.scoring import corpus_root
from tests.e2e.server import Server

CORPUS = corpus_root()
MARKDOWN = CORPUS / "web" / "wiki.md"
AUDIO = CORPUS / "media" / "cantina-band-3s.wav"
TWO_PAGES = CORPUS / "pdf" / "multi-column-2p.pdf"
SECRET = "r4Tq8Lm2Xv7Kd1Pz9Wc3Hn6Bf0Js5Ga2Ye8Ut4"
PROBLEM = "application/problem+json"

pytestmark = pytest.mark.skipif(not MARKDOWN.is_file(), reason=f"corpus not found at {CORPUS}")

FLAGS = """\
flags:
  convert.html-engine:
    variants: {weasyprint: weasyprint, chromium: chromium}
    default: weasyprint
    tenants: {alpha: chromium}
  operations.audio:
    default: on
    tenants: {beta: off}
"""


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path, Path]]:
    folder = tmp_path_factory.mktemp("flags")
    flags = folder / "flags.yaml"
    flags.write_text(FLAGS)
    config = folder / "docworker.yaml"
    config.write_text(f"flags:\n  file: {flags}\nlog:\n  level: INFO\n")
    server = Server(
        folder / "data",
        DOCWORKER_CONFIG_FILE=str(config),
        DOCWORKER_AUTH__ENABLED="true",
        DOCWORKER_AUTH__SECRET=SECRET,
        DOCWORKER_AUTH__CACHE_TTL="0.1",
    )
    with server:
        yield server, config, flags


@pytest.fixture(scope="module")
def keys(deployed: tuple[Server, Path, Path]) -> dict[str, str]:
    server = deployed[0]
    made = {"admin": server.keys("create", "--tenant", "ops", "--scope", "admin")}
    with server.client() as client:
        for tenant in ("alpha", "beta"):
            body = {"tenant": tenant, "scopes": ["read", "submit"]}
            created = client.post("/api/v2/keys", json=body, headers=_as(made["admin"]))
            assert created.status_code == 201, created.text
            made[tenant] = created.json()["token"]
    return made


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _convert(server: Server, key: str) -> dict[str, Any]:
    with server.client() as client:
        answer = client.post(
            "/api/v2/convert",
            files={"file": (MARKDOWN.name, MARKDOWN.read_bytes())},
            data={"page_size": "A5", "pages": "1"},
            headers={**_as(key), "Accept": "application/json"},
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        job = client.get(f"/api/v2/jobs/{body['job_id']}", headers=_as(key)).json()
    body["params"] = job["params"]
    return body


def _analyze(server: Server, key: str) -> httpx.Response:
    with server.client() as client:
        return client.post(
            "/api/v2/audio",
            files={"file": (AUDIO.name, AUDIO.read_bytes())},
            data={"action": "analyze"},
            headers=_as(key),
        )


def _hang_up(server: Server, event: str) -> dict[str, Any]:
    """Send SIGHUP; the log line ``event`` it makes (the server logs JSON)."""
    seen = server.log.read_text().count(f'"event": "{event}"')
    assert server.process is not None
    server.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        lines = [
            line for line in server.log.read_text().splitlines() if f'"event": "{event}"' in line
        ]
        if len(lines) > seen:
            found: dict[str, Any] = json.loads(lines[-1])
            return found
        time.sleep(0.05)
    raise AssertionError(f"no '{event}' in the log: {server.log.read_text()[-2000:]}")


def test_the_engine_flag_picks_the_engine_and_is_stored_in_the_job(
    deployed: tuple[Server, Path, Path], keys: dict[str, str]
) -> None:
    server = deployed[0]
    chosen = _convert(server, keys["alpha"])
    assert chosen["engine"] == "chromium"
    assert chosen["params"]["engine"] == "chromium"
    default = _convert(server, keys["beta"])
    assert default["engine"] == "weasyprint"
    assert default["params"]["engine"] == "weasyprint"
    with server.client() as client:
        metrics = client.get(
            "/metrics", headers={**_as(keys["admin"]), "Accept": "text/plain"}
        ).text
    assert (
        'docworker_flag_evaluations_total{flag="convert.html-engine",reason="targeting_match",'
        'variant="chromium"} 1.0' in metrics
    )
    assert (
        'docworker_flag_evaluations_total{flag="convert.html-engine",reason="static",'
        'variant="weasyprint"} 1.0' in metrics
    )


def test_a_flag_closes_an_operation_to_a_tenant(
    deployed: tuple[Server, Path, Path], keys: dict[str, str]
) -> None:
    server = deployed[0]
    refused = _analyze(server, keys["beta"])
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"] == PROBLEM
    problem = refused.json()
    assert problem["code"] == "feature-disabled"
    assert problem["flag"] == "operations.audio"
    assert "operations.audio" in problem["detail"]
    assert _analyze(server, keys["alpha"]).status_code == 200
    # The list of operations shows each caller what it may run.
    with server.client() as client:
        listed = {
            tenant: {
                op["name"]
                for op in client.get("/api/v2/operations", headers=_as(keys[tenant])).json()[
                    "operations"
                ]
            }
            for tenant in ("alpha", "beta")
        }
    assert "audio" in listed["alpha"]
    assert listed["beta"] == listed["alpha"] - {"audio"}


def test_sighup_reloads_the_settings_file_and_the_flags(
    deployed: tuple[Server, Path, Path], keys: dict[str, str]
) -> None:
    server, config, flags = deployed
    flags.write_text(FLAGS.replace("tenants: {beta: off}", "tenants: {}"))
    config.write_text(
        f"flags:\n  file: {flags}\nlog:\n  level: WARNING\nlimits:\n  max_pages: 1\n"
        "server:\n  idle_timeout: 99\n"
    )
    reloaded = _hang_up(server, "settings reloaded")
    assert sorted(reloaded["changed"]) == ["limits.max_pages", "log.level"]
    assert reloaded["restart_needed"] == ["server.idle_timeout"]
    assert reloaded["flags_reloaded"] is True
    # The flags file was read again: the audio operation is open to beta now.
    assert _analyze(server, keys["beta"]).status_code == 200
    # The workers took the new limit.
    with server.client() as client:
        answer = client.post(
            "/api/v2/extract",
            files={"file": (TWO_PAGES.name, TWO_PAGES.read_bytes())},
            headers=_as(keys["alpha"]),
        )
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "limit-exceeded"
    # At WARNING, requests are not logged any more.
    assert '"event": "request"' not in server.log.read_text().rsplit("settings reloaded", 1)[1]

    # Settings that do not validate are refused whole: the old ones stay.
    config.write_text(f"flags:\n  file: {flags}\nlimits:\n  max_pages: 0\n")
    refused = _hang_up(server, "settings reload refused: the service keeps its settings")
    assert any("limits.max_pages" in reason for reason in refused["reasons"])
    flags.write_text("flags:\n  operations.audio: {default: maybe}\n")
    config.write_text(f"flags:\n  file: {flags}\nlimits:\n  max_pages: 1\nlog:\n  level: WARNING\n")
    refused = _hang_up(server, "settings reload refused: the service keeps its settings")
    assert "operations.audio" in refused["reasons"][0]
    assert _analyze(server, keys["beta"]).status_code == 200
