"""The registry of operations: the single list of what the service can do.

HTTP routes, the OpenAPI schema, CLI commands and job validation are all built
from :data:`OPERATIONS`.
"""

from __future__ import annotations

import functools
import typing
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from docworker.errors import InvalidParameter, NotFound
from docworker.operations.audio import AudioOperation
from docworker.operations.base import Operation, OperationParams
from docworker.operations.chunk import ChunkOperation
from docworker.operations.convert import ConvertOperation
from docworker.operations.extract import ExtractOperation
from docworker.operations.image import ImageOperation
from docworker.operations.ocr import OcrOperation
from docworker.operations.pdf import PdfOperation
from docworker.operations.render import RenderOperation
from docworker.operations.screenshot import ScreenshotOperation
from docworker.operations.unpack import UnpackOperation
from docworker.operations.v1_media import V1MediaOperation
from docworker.operations.video import VideoOperation
from docworker.sealing import SecretKeys, is_sealed

OPERATIONS: dict[str, Operation] = {
    ExtractOperation.name: ExtractOperation(),
    ChunkOperation.name: ChunkOperation(),
    OcrOperation.name: OcrOperation(),
    PdfOperation.name: PdfOperation(),
    ImageOperation.name: ImageOperation(),
    RenderOperation.name: RenderOperation(),
    VideoOperation.name: VideoOperation(),
    AudioOperation.name: AudioOperation(),
    ScreenshotOperation.name: ScreenshotOperation(),
    ConvertOperation.name: ConvertOperation(),
    V1MediaOperation.name: V1MediaOperation(),
    UnpackOperation.name: UnpackOperation(),
}


def get_operation(name: str) -> Operation:
    try:
        return OPERATIONS[name]
    except KeyError:
        raise NotFound("operation", name) from None


def operation_names() -> list[str]:
    """The names of every registered operation."""
    return list(OPERATIONS)


#: The integers a parameter may hold: signed 64-bit, what every JSON reader of a job's
#: parameters takes exactly (the worker's messages, PostgreSQL's ``jsonb`` readers).
INT_RANGE = range(-(2**63), 2**63)


def validate_params(operation: Operation, raw: dict[str, Any]) -> OperationParams:
    """The operation's parameters from ``raw``; :class:`InvalidParameter` names the first fault."""
    try:
        checked = operation.Params.model_validate(raw)
    except ValidationError as exc:
        raise InvalidParameter.first_of(exc.errors(), "params") from None
    huge = _huge_integer(checked.model_dump(), "")
    if huge is not None:
        # A bound of the field would say it better; this catches every field without one
        # (ge=1 alone lets 10**30 through, and the job could not be handed to a worker).
        raise InvalidParameter(huge, "the number is out of range")
    return checked


def _huge_integer(value: Any, path: str) -> str | None:
    """The path of the first integer in ``value`` outside :data:`INT_RANGE`, or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return None if value in INT_RANGE else path or "params"
    items: Any
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _huge_integer(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


@functools.cache
def secret_fields(model: type[BaseModel]) -> frozenset[str]:
    """The parameters of ``model`` that are secrets: those typed ``SecretStr`` (alone or in
    a union such as ``SecretStr | None``). Declaring a parameter so is all it takes for it
    to be sealed at rest, opened only by the worker that runs the job, and masked in
    every answer."""
    return frozenset(
        name for name, info in model.model_fields.items() if _is_secret(info.annotation)
    )


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or any(_is_secret(a) for a in typing.get_args(annotation))


def _secrets_of(operation: str) -> frozenset[str]:
    """The secret parameters of ``operation`` (none for an operation no longer known)."""
    known = OPERATIONS.get(operation)
    return secret_fields(known.Params) if known else frozenset()


def seal_params(operation: str, params: dict[str, Any], keys: SecretKeys) -> dict[str, Any]:
    """``params`` (JSON) with each secret of ``operation`` given in clear sealed by ``keys``."""
    secret = _secrets_of(operation)
    return {
        name: keys.seal(value) if name in secret and isinstance(value, str) else value
        for name, value in params.items()
    }


def dump_params(params: OperationParams, keys: SecretKeys) -> dict[str, Any]:
    """Parameters as stored with a job: JSON, each secret sealed (never in clear)."""
    data = params.model_dump(mode="json", exclude_none=True)
    for name in secret_fields(type(params)) & data.keys():
        value = getattr(params, name)
        data[name] = keys.seal(value.get_secret_value())
    return data


def open_params(operation: Operation, stored: dict[str, Any], keys: SecretKeys) -> OperationParams:
    """The operation's parameters from a stored job's, each sealed secret opened: what the
    worker does just before it runs the job. A secret no key opens raises
    :class:`~docworker.errors.SecretUnreadable`."""
    secret = secret_fields(operation.Params)
    opened = {
        name: keys.open(value) if name in secret and is_sealed(value) else value
        for name, value in stored.items()
    }
    return validate_params(operation, opened)


def reseal_params(
    operation: str, params: dict[str, Any], keys: SecretKeys
) -> dict[str, Any] | None:
    """``params`` with every secret sealed with the first of ``keys``: those sealed with
    an older key sealed again, those stored in clear (before sealing existed) sealed;
    None when there is nothing to change. A secret no key opens raises
    :class:`~docworker.errors.SecretUnreadable`."""
    secret = _secrets_of(operation)
    changed: dict[str, Any] = {}
    for name, value in params.items():
        if is_sealed(value):
            if not keys.current(value):
                changed[name] = keys.seal(keys.open(value))
        elif name in secret and isinstance(value, str):
            changed[name] = keys.seal(value)
    return params | changed if changed else None


def public_params(operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """Stored parameters as shown to clients: secrets masked (sealed or not)."""
    secret = _secrets_of(operation)
    return {
        name: MASK if name in secret or is_sealed(value) else value
        for name, value in params.items()
    }


#: What a client sees in place of a secret parameter.
MASK = "********"
