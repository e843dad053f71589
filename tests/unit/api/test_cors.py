"""CORS answers: v1's open '*' by default, a list of origins when configured."""

from __future__ import annotations

from docworker.api.v1.http import CorsPolicy


def _scope(origin: str | None) -> dict[str, object]:
    headers = [(b"origin", origin.encode())] if origin else []
    return {"type": "http", "headers": headers}


def test_any_origin_by_default_as_v1() -> None:
    assert CorsPolicy().headers(_scope("https://a.example")) == [
        (b"access-control-allow-origin", b"*")
    ]


def test_a_listed_origin_is_echoed_and_others_get_nothing() -> None:
    policy = CorsPolicy(origins=("https://app.example",), credentials=True)
    allowed = dict(policy.headers(_scope("https://app.example")))
    assert allowed[b"access-control-allow-origin"] == b"https://app.example"
    assert allowed[b"access-control-allow-credentials"] == b"true"
    assert allowed[b"vary"] == b"Origin"
    refused = dict(policy.headers(_scope("https://evil.example")))
    assert b"access-control-allow-origin" not in refused
    assert dict(policy.headers(_scope(None))) == {b"vary": b"Origin"}
