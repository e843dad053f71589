"""The rate limit middleware in front of a small application, without API keys: each
client address is counted, every answer says how much is left, and one over the rate
gets 429 in the body its path's clients know."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Message

from docworker.api.auth import STATE_KEY, Authenticate
from docworker.api.ratelimit import RateLimit
from docworker.auth import Principal
from docworker.config import Settings, load_settings

PROBLEM = "application/problem+json"


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"hello": request.url.path})


def application(settings: Settings) -> Any:
    paths = ["/api/v2/things", "/api/v1/queue/stats", "/health/liveness"]
    app = Starlette(routes=[Route(path, hello) for path in paths])
    return Authenticate(RateLimit(app, settings), settings)


def get_all(settings: Settings, requests: list[tuple[str, str]]) -> list[httpx.Response]:
    """GET each (client address, path) in turn, through one application."""
    app = application(settings)

    async def run() -> list[httpx.Response]:
        answers = []
        for client, path in requests:
            transport = httpx.ASGITransport(app=app, client=(client, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                answers.append(await http.get(path))
        return answers

    return asyncio.run(run())


def open_settings(**rate: Any) -> Settings:
    return load_settings(auth={"enabled": False}, rate={"enabled": True, **rate})


def test_each_client_address_has_its_rate() -> None:
    settings = open_settings(default="3/minute")
    answers = get_all(
        settings, [("10.0.0.1", "/api/v2/things")] * 4 + [("10.0.0.2", "/api/v2/things")]
    )
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 200]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0", "2"]
    for answer in answers:
        assert answer.headers["RateLimit-Limit"] == "3"
        assert answer.headers["RateLimit-Policy"] == "3;w=60"
        assert 0 <= int(answer.headers["RateLimit-Reset"]) <= 60
    refused = answers[3]
    assert refused.headers["content-type"] == PROBLEM
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    body = refused.json()
    assert body["code"] == "rate-limited" and body["status"] == 429
    assert body["limit"] == 3 and body["window"] == 60
    assert "this client address may make 3 requests in 60 s" in body["detail"]


def test_health_probes_are_never_counted() -> None:
    answers = get_all(open_settings(default="1/hour"), [("10.0.0.1", "/health/liveness")] * 3)
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert "RateLimit-Limit" not in answers[0].headers


def test_v1_paths_answer_v1s_error_body() -> None:
    answers = get_all(open_settings(default="1/hour"), [("10.0.0.1", "/api/v1/queue/stats")] * 2)
    refused = answers[1]
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/json"
    assert int(refused.headers["Retry-After"]) > 1
    body = refused.json()
    assert body["success"] is False and body["code"] == 429
    assert body["path"] == "/api/v1/queue/stats" and "1 requests in 3600 s" in body["error"]


def test_rates_are_off_without_keys_unless_asked() -> None:
    answers = get_all(load_settings(auth={"enabled": False}), [("10.0.0.1", "/api/v2/things")])
    assert answers[0].status_code == 200 and "RateLimit-Limit" not in answers[0].headers


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_a_storage_down_lets_requests_through_or_refuses_them() -> None:
    down = f"redis://127.0.0.1:{_closed_port()}/0"
    through = get_all(open_settings(storage_url=down), [("10.0.0.1", "/api/v2/things")])[0]
    assert through.status_code == 200 and "RateLimit-Limit" not in through.headers
    closed = open_settings(storage_url=down, fail_open=False)
    refused = get_all(closed, [("10.0.0.1", "/api/v2/things")])[0]
    assert refused.status_code == 503 and refused.headers["content-type"] == PROBLEM
    assert refused.json()["code"] == "dependency-down"


def test_a_key_stored_with_a_rate_that_is_not_one_gets_the_default() -> None:
    settings = load_settings(auth={"enabled": True}, rate={"default": "2/minute"})
    app = Starlette(routes=[Route("/api/v2/things", hello)])
    limited = RateLimit(app, settings)
    key = Principal(tenant="t", key_id="k1", scopes=frozenset({"read"}), limits={"rate": "x"})

    async def run() -> list[int]:
        statuses = []
        for _ in range(3):
            sent: list[Message] = []

            async def receive() -> Message:
                return {"type": "http.request", "body": b""}

            async def send(message: Message, sent: list[Message] = sent) -> None:
                sent.append(message)

            scope = {
                "type": "http",
                "method": "GET",
                "path": "/api/v2/things",
                "headers": [],
                "query_string": b"",
                "state": {STATE_KEY: key},
            }
            await limited(scope, receive, send)
            statuses.append(sent[0]["status"])
        return statuses

    assert asyncio.run(run()) == [200, 200, 429]
