"""Following jobs end to end: the event stream, the long poll and signed webhooks, against
a real server process and a real HTTP receiver on loopback (allow-listed)."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from standardwebhooks import Webhook

from bench.scoring import corpus_root
from docworker.api.app import create_app
from docworker.config import load_settings
from tests.e2e.server import Server

TEXT = corpus_root() / "text" / "plain-utf8.txt"
SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
#: What a test server needs to deliver promptly to a receiver on loopback.
WEBHOOK_ENV = {
    "DOCWORKER_EXECUTOR__WORKERS": "1",
    "DOCWORKER_WEBHOOKS__ALLOW_PRIVATE": '["127.0.0.1"]',
    "DOCWORKER_WEBHOOKS__BACKOFF": "0.2",
    "DOCWORKER_WEBHOOKS__POLL_INTERVAL": "0.2",
    "DOCWORKER_EVENTS__KEEPALIVE": "1",
}


class Receiver:
    """An HTTP server on 127.0.0.1 that records every webhook; a path may be told to
    answer 500 a number of times first."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.failures: dict[str, int] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    left = receiver.failures.get(self.path, 0)
                    receiver.failures[self.path] = max(left - 1, 0)
                    if not left:
                        receiver.received.append((self.path, dict(self.headers), body))
                self.send_response(500 if left else 204)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, path: str, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        """The payloads of the first ``count`` webhooks received on ``path``, each
        verified with the secret (Standard Webhooks' own library)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                got = [(h, b) for p, h, b in self.received if p == path]
            if len(got) >= count:
                return [Webhook(SECRET).verify(body, headers) for headers, body in got]
            time.sleep(0.05)
        raise AssertionError(f"{count} webhooks expected on {path}, got {len(got)}")

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(tmp_path_factory.mktemp("events"), **WEBHOOK_ENV) as srv:
        yield srv


def _submit(client: httpx.Client | TestClient, **fields: str) -> dict[str, Any]:
    response = client.post(
        "/api/v2/jobs",
        files={"file": (TEXT.name, TEXT.read_bytes())},
        data={"operation": "extract", **fields},
    )
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job


def _events(client: httpx.Client, job_id: str, last: int | None = None) -> list[dict[str, Any]]:
    """The events of the job's stream, read until the server ends it."""
    headers = {"Last-Event-ID": str(last)} if last is not None else {}
    events: list[dict[str, Any]] = []
    with client.stream("GET", f"/api/v2/jobs/{job_id}/events", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        frame: dict[str, str] = {}
        for line in response.iter_lines():
            if line.startswith(("id:", "event:", "data:")):
                name, _, value = line.partition(":")
                frame[name] = value.strip()
            elif not line and "data" in frame:
                data = json.loads(frame["data"])
                assert data["id"] == int(frame["id"]) and data["type"] == frame["event"]
                events.append(data)
                frame = {}
    return events


def test_the_event_stream_shows_the_job_and_resumes_after_the_last_id(server: Server) -> None:
    with server.client() as client:
        job = _submit(client)
        events = _events(client, job["id"])
        kinds = [e["type"] for e in events]
        assert kinds[:2] == ["queued", "started"] and kinds[-1] == "succeeded", kinds
        ids = [e["id"] for e in events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert all(e["job_id"] == job["id"] for e in events)

        later = _events(client, job["id"], last=events[1]["id"])
        assert later == events[2:]
        assert _events(client, job["id"], last=events[-1]["id"]) == []

        for wrong in ("seven", "\u00b2", "-1"):
            refused = client.get(
                f"/api/v2/jobs/{job['id']}/events",
                headers={"Last-Event-ID": wrong.encode("latin-1")},
            )
            assert refused.status_code == 422, wrong
            assert refused.json()["parameter"] == "Last-Event-ID"
        assert client.get("/api/v2/jobs/no-such-job/events").status_code == 404


def test_a_long_poll_answers_the_finished_job(server: Server) -> None:
    with server.client() as client:
        job = _submit(client)
        waited = client.get(f"/api/v2/jobs/{job['id']}", params={"wait": 30})
        assert waited.status_code == 200
        assert waited.json()["status"] == "succeeded"


def test_a_webhook_is_signed_and_verifies(server: Server, receiver: Receiver) -> None:
    url = f"{receiver.url}/signed"
    with server.client() as client:
        job = _submit(
            client, webhook_url=url, webhook_events="started,succeeded", webhook_secret=SECRET
        )
        assert job["webhook"] == {"url": url, "events": ["started", "succeeded"]}
        assert SECRET not in json.dumps(job)
        payloads = receiver.wait_for("/signed", 2)
    assert sorted(p["type"] for p in payloads) == ["job.started", "job.succeeded"]
    done = next(p for p in payloads if p["type"] == "job.succeeded")
    assert done["data"]["job_id"] == job["id"] and done["data"]["status"] == "succeeded"
    # The secret is sealed at rest: the database holds no trace of it.
    raw = (server.data_dir / "docworker.db").read_bytes()
    assert SECRET.encode() not in raw and SECRET[6:].encode() not in raw


def test_a_synchronous_route_takes_a_webhook_too(server: Server, receiver: Receiver) -> None:
    with server.client() as client:
        answer = client.post(
            "/api/v2/extract",
            files={"file": (TEXT.name, TEXT.read_bytes())},
            data={"webhook_url": f"{receiver.url}/sync", "webhook_secret": SECRET},
        )
        assert answer.status_code == 200, answer.text
        [payload] = receiver.wait_for("/sync", 1)
    assert payload["type"] == "job.succeeded"
    assert payload["data"]["job_id"] == answer.headers["x-job-id"]


def test_a_failing_receiver_gets_the_delivery_on_a_retry_with_the_attempts_logged(
    server: Server, receiver: Receiver
) -> None:
    receiver.failures["/flaky"] = 2
    with server.client() as client:
        job = _submit(client, webhook_url=f"{receiver.url}/flaky", webhook_secret=SECRET)
        [payload] = receiver.wait_for("/flaky", 1)
        assert payload["type"] == "job.succeeded"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            [delivery] = client.get(f"/api/v2/jobs/{job['id']}/webhooks").json()["deliveries"]
            if delivery["status"] == "delivered":
                break
            time.sleep(0.05)
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3
    assert [attempt["status"] for attempt in delivery["log"]] == [500, 500, 204]
    assert delivery["event"] == "succeeded" and delivery["subscription"] is None


def test_a_private_webhook_url_is_refused_unless_allow_listed(server: Server) -> None:
    with server.client() as client:
        for url in ("http://10.0.0.7/hook", "http://localhost:9/hook"):
            refused = client.post(
                "/api/v2/jobs",
                files={"file": (TEXT.name, TEXT.read_bytes())},
                data={"operation": "extract", "webhook_url": url, "webhook_secret": SECRET},
            )
            assert refused.status_code == 422, refused.text
            assert refused.json()["parameter"] == "webhook_url"
            assert "non-public address" in refused.json()["detail"]
        # Without a secret of its own, and none configured, nothing could sign it.
        stored = _submit(client)["input"]["sha256"]
        unsigned = client.post(
            "/api/v2/jobs",
            json={
                "operation": "extract",
                "input_uri": f"blob://inputs/{stored}",
                "webhook_url": f"{server.url}/hook",
            },
        )
        assert unsigned.status_code == 422, unsigned.text
        assert unsigned.json()["parameter"] == "webhook_secret"


def test_a_restart_delivers_what_the_outbox_held(tmp_path: Path, receiver: Receiver) -> None:
    def service(deliver: bool) -> TestClient:
        hooks = {"allow_private": ["127.0.0.1"], "deliver": deliver, "poll_interval": 0.2}
        settings = load_settings(data_dir=tmp_path, webhooks=hooks)
        # No executor: the job stays queued, and its "queued" event is what is sent.
        return TestClient(create_app(settings, start_executor=False))

    # The first service queues the webhook but does not deliver (webhooks.deliver off).
    with service(deliver=False) as client:
        job = _submit(
            client,
            webhook_url=f"{receiver.url}/restart",
            webhook_events="queued",
            webhook_secret=SECRET,
        )
        [delivery] = client.get(f"/api/v2/jobs/{job['id']}/webhooks").json()["deliveries"]
        assert delivery["status"] == "pending" and delivery["attempts"] == 0
    # A new service over the same data folder reads the outbox when it starts.
    with service(deliver=True):
        [payload] = receiver.wait_for("/restart", 1)
    assert payload["type"] == "job.queued" and payload["data"]["job_id"] == job["id"]


def test_a_quiet_stream_keeps_alive_and_ends_at_its_timeout_or_when_the_service_drains(
    tmp_path: Path,
) -> None:
    events = {"keepalive": 0.2, "stream_timeout": 1.0}
    app = create_app(load_settings(data_dir=tmp_path, events=events), start_executor=False)
    with TestClient(app) as client:
        job = _submit(client)  # no executor: it stays queued
        quiet = client.get(f"/api/v2/jobs/{job['id']}/events")
        assert quiet.text.startswith("retry: 2000\n\nid: 1\nevent: queued\n")
        assert ": keep-alive\n\n" in quiet.text
        app.state.drain.start()
        assert [e["type"] for e in _events(client, job["id"])] == ["queued"]


def test_another_tenants_job_has_no_events_and_no_webhooks(tmp_path: Path) -> None:
    app = create_app(load_settings(data_dir=tmp_path, auth={"enabled": True}), start_executor=False)
    with TestClient(app) as client:
        keys = app.state.services.keys
        acme = {"X-API-Key": keys.create("acme", ["read", "submit"])[1]}
        other = {"X-API-Key": keys.create("other", ["read", "submit"])[1]}
        client.headers.update(acme)
        job = _submit(client)
        for path in ("events", "webhooks"):
            url = f"/api/v2/jobs/{job['id']}/{path}"
            assert client.get(url, headers=other).status_code == 404
        assert client.get(f"/api/v2/jobs/{job['id']}/webhooks").json() == {"deliveries": []}
        assert client.get(f"/api/v2/jobs/{job['id']}", params={"wait": 0.1}).status_code == 200
        assert client.get(f"/api/v2/jobs/{job['id']}", headers=other).status_code == 404


def test_a_configured_subscription_hears_its_tenants_jobs_signed_with_its_secret(
    tmp_path: Path, receiver: Receiver
) -> None:
    own = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    subscription = {"url": f"{receiver.url}/subscribed", "events": ["queued"], "secret": own}
    hooks = {
        "allow_private": ["127.0.0.1"],
        "poll_interval": 0.2,
        "subscriptions": [
            {"name": "acme-queue", "tenant": "acme", **subscription},
            {"name": "elsewhere", "tenant": "other", **subscription},
        ],
    }
    settings = load_settings(data_dir=tmp_path, auth={"enabled": True}, webhooks=hooks)
    app = create_app(settings, start_executor=False)
    with TestClient(app) as client:
        client.headers["X-API-Key"] = app.state.services.keys.create("acme", ["read", "submit"])[1]
        job = _submit(client)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with receiver.lock:
                got = [(h, b) for p, h, b in receiver.received if p == "/subscribed"]
            if got:
                break
            time.sleep(0.05)
        [delivery] = client.get(f"/api/v2/jobs/{job['id']}/webhooks").json()["deliveries"]
    [(headers, body)] = got
    payload = Webhook(own).verify(body, headers)
    assert payload["type"] == "job.queued" and payload["data"]["job_id"] == job["id"]
    assert delivery["subscription"] == "acme-queue"
