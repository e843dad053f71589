"""Schemathesis against the live OpenAPI document of a real server: every operation, positive
and negative requests, every response checked against what the document says.

One test per operation of the document, a few cases each (``SCHEMATHESIS_EXAMPLES``,
default 3 positive and 2 negative), from a fixed seed. Every check schemathesis has runs,
but for these:

* ``positive_data_acceptance`` is left out everywhere: a schema cannot say which bytes
  are a PDF, nor which strings are a cursor of an earlier page, so a schema-valid
  request may be refused with a clear 4xx.
* Under ``/api/v1`` (and v1's ``/health``, ``/metrics``), v1's contract rules: its
  routes accept what v1 accepted (``negative_data_rejection`` left out), answer a wrong
  method with 404 (``unsupported_method`` left out), and answer some failures with 500
  and a documented ``error`` text (docs/v1.md). There, a 5xx must be one of the
  route's documented v1 errors, never a crash (v1's ``Internal Server Error``).

Everywhere else: no 5xx at all, and every error is a problem (``application/problem+json``)
whose ``status`` is the HTTP status. Longer runs: see docs/testing.md.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.schemas import OpenApiSchema

from docworker.api.app import create_app
from docworker.config import load_settings
from tests.e2e.server import Server

PROBLEM = "application/problem+json"
#: Cases per operation and generation mode: ``positive,negative``.
EXAMPLES = tuple(int(n) for n in os.environ.get("SCHEMATHESIS_EXAMPLES", "3,2").split(","))
#: The seed every run starts from; another one explores other requests.
SEED = int(os.environ.get("SCHEMATHESIS_SEED", "20260801"))


def _operations() -> list[tuple[str, str]]:
    """``(METHOD, path)`` of every operation of the document, read from the app in process."""
    app = create_app(load_settings(data_dir=Path("/nonexistent")), start_executor=False)
    return [
        (method.upper(), path)
        for path, methods in app.openapi()["paths"].items()
        for method in methods
    ]


OPERATIONS = _operations()


def _v1(path: str) -> bool:
    return not path.startswith("/api/v2")


def _checks(path: str) -> list[Callable[..., Any]]:
    load_all_checks()
    left_out = {"positive_data_acceptance"}
    if _v1(path):
        left_out |= {"not_a_server_error", "negative_data_rejection", "unsupported_method"}
    return [check for check in CHECKS.get_all() if getattr(check, "__name__", "") not in left_out]


@pytest.fixture(scope="module", params=["open", "keys"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The open development server, and one with API keys on (every request then carries
    an admin key: the routes answer as for a caller allowed everything, and the document
    lists the refusals a key may meet). The second is sent valid requests only."""
    keys = {"DOCWORKER_AUTH__ENABLED": "true"} if request.param == "keys" else {}
    with Server(
        tmp_path_factory.mktemp("contract"),
        **keys,
        DOCWORKER_SERVER__MAX_UPLOAD_BYTES=str(8 * 1024 * 1024),
        # Synchronous routes answer 202 (v1: their failure) rather than wait long.
        DOCWORKER_SERVER__DEFAULT_WAIT="3",
        DOCWORKER_SERVER__MAX_WAIT="3",
        DOCWORKER_EXECUTOR__JOB_TIMEOUT="20",
        DOCWORKER_EXECUTOR__MAX_ATTEMPTS="1",
        # The cache's routes answer with their tiers, and hits are answered too.
        DOCWORKER_CACHE__ENABLED="true",
        DOCWORKER_CHROMIUM__TIMEOUT="5",
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def schema(server: Server) -> OpenApiSchema:
    loaded = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    assert isinstance(loaded, OpenApiSchema)
    return loaded


@pytest.fixture(scope="module")
def session(server: Server) -> Iterator[requests.Session]:
    with requests.Session() as http:
        if server.env.get("DOCWORKER_AUTH__ENABLED") == "true":
            key = server.keys("create", "--tenant", "contract", "--scope", "admin")
            http.headers["Authorization"] = f"Bearer {key}"
        yield http


def test_every_operation_is_tested(schema: OpenApiSchema) -> None:
    live = set()
    for result in schema.get_all_operations():
        operation = result.ok()  # an operation schemathesis cannot read fails here
        live.add((operation.method.upper(), operation.path))
    assert live == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_the_operation_keeps_its_contract(
    schema: OpenApiSchema, server: Server, session: requests.Session, method: str, path: str
) -> None:
    operation = schema[path][method]
    checks = _checks(path)
    sent = 0

    for mode, count in zip(
        (GenerationMode.POSITIVE, GenerationMode.NEGATIVE), EXAMPLES, strict=True
    ):
        if count == 0 or (mode is GenerationMode.NEGATIVE and not _negatable(operation)):
            continue
        if mode is GenerationMode.NEGATIVE and "Authorization" in session.headers:
            # With keys on, the requests the open server was sent invalid are not sent
            # again: schemathesis would make the key itself invalid, and the refusal
            # that answers it (401) is checked against the document by the positive ones.
            continue

        @settings(
            max_examples=count,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @seed(SEED)
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Case) -> None:
            nonlocal sent
            sent += 1
            response = case.call_and_validate(
                base_url=server.url, session=session, checks=checks, timeout=60
            )
            _check_error_body(case, response)

        run()
    assert sent > 0, f"no request was sent to {method} {path}"


#: Schemas that any text fits: a parameter of such a schema cannot be made invalid.
_ANY_TEXT = (
    {"type": "string"},
    {"anyOf": [{"type": "string"}, {"type": "null"}]},
)


def _negatable(operation: APIOperation) -> bool:
    """Whether some part of a request to ``operation`` can be made invalid."""
    raw = operation.definition.raw
    if "requestBody" in raw:
        return True
    for parameter in raw.get("parameters", []):
        schema = {k: v for k, v in parameter["schema"].items() if k not in {"title", "description"}}
        if schema not in _ANY_TEXT:
            return True
    return False


def _check_error_body(case: Case, response: Response) -> None:
    status = response.status_code
    if status < 400:
        return
    media_type = response.headers.get("content-type", [""])[0].partition(";")[0]
    body = json.loads(response.content)
    if not _v1(case.operation.path):
        assert media_type == PROBLEM, f"{status} answered as {media_type}: {response.text}"
        assert body["status"] == status, body
        assert body["type"] and body["title"] and body["detail"], body
    elif status >= 500:
        documented = _v1_errors(case, status)
        assert body.get("error") in documented, f"{status} {body} is not among {documented}"


def _v1_errors(case: Case, status: int) -> set[str]:
    """The ``error`` texts the document lists for a v1 route's ``status``."""
    responses: dict[str, Any] = case.operation.definition.raw.get("responses", {})
    description = str(responses.get(str(status), {}).get("description", ""))
    return set(re.findall(r"`([^`]+)`", description))
