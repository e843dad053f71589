"""Following batches end to end, on a real server with keys on: the batch's event stream
(resumed with Last-Event-ID), its long poll, and its own webhook delivered to a receiver
on loopback and verified with the Standard Webhooks library."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bench.scoring import corpus_root
from tests.e2e.server import Server
from tests.e2e.test_events import SECRET, WEBHOOK_ENV, Receiver

CORPUS = corpus_root()
FILES = [
    CORPUS / "text" / "plain-utf8.txt",
    CORPUS / "text" / "plain-utf8.txt",
    # Encrypted, and no password given: the child that fails, so the batch is partial.
    CORPUS / "pdf" / "encrypted-password-1234.pdf",
]
AUTH_SECRET = "q7Yc2Lx9Vd3Rt8Wz1Mb6Np4Fs0Gc5Jy7Ae2Ku4"
FINAL = {"batch.succeeded", "batch.partial", "batch.failed", "batch.cancelled"}


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(
        tmp_path_factory.mktemp("batch-events"),
        DOCWORKER_AUTH__ENABLED="true",
        DOCWORKER_AUTH__SECRET=AUTH_SECRET,
        DOCWORKER_EXECUTOR__MAX_ATTEMPTS="1",
        **WEBHOOK_ENV,
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def keys(server: Server) -> dict[str, str]:
    admin = server.keys("create", "--tenant", "ops", "--scope", "admin")
    made = {}
    with server.client() as client:
        for tenant in ("alpha", "beta"):
            answer = client.post(
                "/api/v2/keys",
                json={"tenant": tenant, "scopes": ["read", "submit"]},
                headers=_as(admin),
            )
            assert answer.status_code == 201, answer.text
            made[tenant] = answer.json()["token"]
    return made


def _submit(client: httpx.Client, key: str, **data: str) -> dict[str, Any]:
    response = client.post(
        "/api/v2/batches",
        data={"operation": "extract", **data},
        files=[("file", (f"{i}-{path.name}", path.read_bytes())) for i, path in enumerate(FILES)],
        headers=_as(key),
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def _events(
    client: httpx.Client, key: str, batch_id: str, last: int | None = None
) -> list[dict[str, Any]]:
    """The events of the batch's stream, read until the server ends it."""
    headers = _as(key) | ({"Last-Event-ID": str(last)} if last is not None else {})
    events: list[dict[str, Any]] = []
    url = f"/api/v2/batches/{batch_id}/events"
    with client.stream("GET", url, headers=headers, timeout=120) as response:
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


def test_the_stream_follows_the_batch_to_its_end_and_resumes(
    server: Server, keys: dict[str, str]
) -> None:
    with server.client() as client:
        batch = _submit(client, keys["alpha"])
        assert batch["links"]["events"] == f"/api/v2/batches/{batch['id']}/events"
        events = _events(client, keys["alpha"], batch["id"])
        kinds = [e["type"] for e in events]
        assert kinds[0] == "batch.queued" and kinds[-1] == "batch.partial", kinds
        assert set(kinds[1:-1]) <= {"batch.progress"}
        assert all(e["batch_id"] == batch["id"] for e in events)
        ids = [e["id"] for e in events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        end = events[-1]
        assert end["counts"]["succeeded"] == 2 and end["counts"]["failed"] == 1
        assert end["progress"] == 1.0 and end["total"] == 3

        # Resumed: the events after the id given; of the progress events, the latest only.
        resumed = _events(client, keys["alpha"], batch["id"], last=ids[0])
        assert resumed[-1] == events[-1] and all(e in events for e in resumed)
        assert all(e["id"] > ids[0] for e in resumed) and len(resumed) <= 2
        assert _events(client, keys["alpha"], batch["id"], last=ids[-1]) == []

        # A retry writes events after the end: a client that resumes gets them.
        retried = client.post(batch["links"]["retry"], headers=_as(keys["alpha"]))
        assert retried.headers["x-retried"] == "1"
        again = _events(client, keys["alpha"], batch["id"], last=ids[-1])
        assert again[0]["type"] == "batch.retried" and again[0]["retried"] == 1
        assert again[-1]["type"] == "batch.partial"

        refused = client.get(
            batch["links"]["events"], headers=_as(keys["alpha"]) | {"Last-Event-ID": "seven"}
        )
        assert refused.status_code == 422 and refused.json()["parameter"] == "Last-Event-ID"
        # Another tenant's batch does not exist for it.
        for link in ("events", "webhooks"):
            other = client.get(batch["links"][link], headers=_as(keys["beta"]))
            assert other.status_code == 404, link
        missing = client.get("/api/v2/batches/no-such-batch/events", headers=_as(keys["alpha"]))
        assert missing.status_code == 404


def test_a_long_poll_answers_the_ended_batch(server: Server, keys: dict[str, str]) -> None:
    with server.client() as client:
        batch = _submit(client, keys["alpha"])
        started = time.monotonic()
        waited = client.get(
            batch["links"]["self"], params={"wait": 60}, headers=_as(keys["alpha"]), timeout=90
        )
        assert waited.status_code == 200
        body = waited.json()
        assert body["status"] == "partial" and body["finished_at"] is not None
        assert time.monotonic() - started < 60
        # An ended batch is answered at once.
        again = client.get(batch["links"]["self"], params={"wait": 30}, headers=_as(keys["alpha"]))
        assert again.json()["status"] == "partial"
        refused = client.get(
            batch["links"]["self"], params={"wait": -1}, headers=_as(keys["alpha"])
        )
        assert refused.status_code == 422


def test_the_batch_webhook_is_signed_and_verifies(
    server: Server, keys: dict[str, str], receiver: Receiver
) -> None:
    url = f"{receiver.url}/batch"
    with server.client() as client:
        batch = _submit(
            client,
            keys["alpha"],
            webhook_url=url,
            webhook_events="batch.queued,batch.partial",
            webhook_secret=SECRET,
        )
        assert batch["webhook"] == {"url": url, "events": ["batch.queued", "batch.partial"]}
        assert SECRET not in json.dumps(batch)
        payloads = receiver.wait_for("/batch", 2)
        assert sorted(p["type"] for p in payloads) == ["batch.partial", "batch.queued"]
        end = next(p for p in payloads if p["type"] == "batch.partial")
        assert end["data"]["batch_id"] == batch["id"] and end["data"]["status"] == "partial"
        assert end["data"]["counts"]["failed"] == 1

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            listed = client.get(batch["links"]["webhooks"], headers=_as(keys["alpha"]))
            deliveries = listed.json()["deliveries"]
            if all(d["status"] == "delivered" for d in deliveries):
                break
            time.sleep(0.05)
        assert sorted(d["event"] for d in deliveries) == ["batch.partial", "batch.queued"]
        assert all(d["status"] == "delivered" and d["subscription"] is None for d in deliveries)
        # The children do not send their events to the batch's webhook.
        children = client.get(batch["links"]["jobs"], headers=_as(keys["alpha"])).json()["jobs"]
        for child in children:
            hooks = client.get(f"/api/v2/jobs/{child['id']}/webhooks", headers=_as(keys["alpha"]))
            assert hooks.json()["deliveries"] == []


def test_a_bad_batch_webhook_is_refused(server: Server, keys: dict[str, str]) -> None:
    with server.client() as client:
        for fields, parameter in [
            (
                {"webhook_url": "http://127.0.0.1:9/x", "webhook_events": "succeeded"},
                "webhook_events",
            ),
            ({"webhook_url": "http://10.0.0.7/hook", "webhook_secret": SECRET}, "webhook_url"),
            ({"webhook_events": "batch.partial"}, "webhook_url"),
            ({"webhook_url": "http://127.0.0.1:9/x", "webhook_secret": "nope"}, "webhook_secret"),
        ]:
            refused = client.post(
                "/api/v2/batches",
                data={"operation": "extract", **fields},
                files=[("file", ("a.txt", b"a"))],
                headers=_as(keys["alpha"]),
            )
            assert refused.status_code == 422, (fields, refused.text)
            assert refused.json()["parameter"] == parameter, fields
