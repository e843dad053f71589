"""The OpenAPI document: FastAPI's own, completed so that it describes what is answered.

Two things FastAPI cannot know are put right here, once, when the document is built:

* Request bodies that a route reads itself (a job sent as multipart *or* JSON, v1's
  JSON bodies) are described in ``openapi_extra``, where a model is named by
  :func:`model_ref`. Every model so named gets its schema in ``components``, so that
  no ``$ref`` of the document points at nothing.
* FastAPI documents a ``422`` ``HTTPValidationError`` on every route with parameters,
  but the error handlers (:mod:`docworker.api.errors`) answer a malformed request with
  a problem (``application/problem+json``) under ``/api/v2`` and with v1's framework
  error (``400``) elsewhere. Those are what the document says.
* Every ``/api/v2`` route may answer ``503`` (``dependency-down``, with ``Retry-After``)
  when the job database does not answer (it keeps the jobs, the API keys, the usage
  counts): the document says so on each (:func:`_answer_store_down`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from docworker.api.errors import problem_responses
from docworker.api.v1.errors import V1FrameworkError

COMPONENTS = "#/components/schemas/"
_FASTAPI_VALIDATION = f"{COMPONENTS}HTTPValidationError"
_FASTAPI_SCHEMAS = ("HTTPValidationError", "ValidationError")


#: The models :func:`model_ref` has named, by name: a route module names them as it is
#: imported, before any document is built.
_NAMED: dict[str, type[BaseModel]] = {}


def model_ref(model: type[BaseModel]) -> dict[str, str]:
    """A schema naming ``model``, for ``openapi_extra`` and ``responses``: the document
    gets the model's schema in its components."""
    _NAMED.setdefault(model.__name__, model)
    return {"$ref": f"{COMPONENTS}{model.__name__}"}


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` build the completed document (see the module)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        _answer_validation_errors(document)
        _answer_store_down(document)
        _add_named_models(document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _add_named_models(document: dict[str, Any]) -> None:
    """The schema of each model the document names without having it (and of those it
    refers to) in the components."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    named = set(re.findall(rf'"{re.escape(COMPONENTS)}([^"]+)"', json.dumps(document)))
    missing = [_NAMED[name] for name in sorted(named - set(schemas)) if name in _NAMED]
    if not missing:
        return
    _, definitions = models_json_schema(
        [(model, "validation") for model in missing], ref_template=f"{COMPONENTS}{{model}}"
    )
    for name, schema in definitions.get("$defs", {}).items():
        schemas.setdefault(name, schema)


def _answer_validation_errors(document: dict[str, Any]) -> None:
    """FastAPI's ``422`` replaced by what the handlers answer (see the module)."""
    problem = problem_responses(422)[422]
    framework = {
        "description": "v1's framework error: a malformed request",
        "content": {"application/json": {"schema": model_ref(V1FrameworkError)}},
    }
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if not _is_fastapi_validation(responses.get("422")):
                continue
            del responses["422"]
            if path.lower().startswith("/api/v2"):
                responses["422"] = problem
            else:
                responses.setdefault("400", framework)
    schemas = document.get("components", {}).get("schemas", {})
    if _FASTAPI_VALIDATION not in json.dumps(document.get("paths")):
        for name in _FASTAPI_SCHEMAS:
            schemas.pop(name, None)


def _answer_store_down(document: dict[str, Any]) -> None:
    """A ``503`` problem on each ``/api/v2`` operation that does not list one yet."""
    problem = {
        **problem_responses(503)[503],
        "description": "Problem (RFC 9457): a dependency does not answer (the job "
        "database, the broker, the blob store); Retry-After says when to try again",
    }
    for path, operations in document.get("paths", {}).items():
        if not path.lower().startswith("/api/v2"):
            continue
        for operation in operations.values():
            operation.setdefault("responses", {}).setdefault("503", problem)


def _is_fastapi_validation(response: dict[str, Any] | None) -> bool:
    if not response:
        return False
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref") == _FASTAPI_VALIDATION)
