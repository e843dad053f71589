"""The registry of operations: the single list of what the service can do.

HTTP routes, the OpenAPI schema, CLI commands and job validation are all built
from :data:`OPERATIONS`.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from docworker.errors import InvalidParameter, NotFound
from docworker.operations.base import Operation, OperationParams
from docworker.operations.chunk import ChunkOperation
from docworker.operations.convert import ConvertOperation
from docworker.operations.extract import ExtractOperation
from docworker.operations.image import ImageOperation
from docworker.operations.ocr import OcrOperation
from docworker.operations.pdf import PdfOperation
from docworker.operations.render import RenderOperation
from docworker.operations.screenshot import ScreenshotOperation
from docworker.operations.v1_media import V1MediaOperation
from docworker.operations.video import VideoOperation

OPERATIONS: dict[str, Operation] = {
    ExtractOperation.name: ExtractOperation(),
    ChunkOperation.name: ChunkOperation(),
    OcrOperation.name: OcrOperation(),
    PdfOperation.name: PdfOperation(),
    ImageOperation.name: ImageOperation(),
    RenderOperation.name: RenderOperation(),
    VideoOperation.name: VideoOperation(),
    ScreenshotOperation.name: ScreenshotOperation(),
    ConvertOperation.name: ConvertOperation(),
    V1MediaOperation.name: V1MediaOperation(),
}


def get_operation(name: str) -> Operation:
    try:
        return OPERATIONS[name]
    except KeyError:
        raise NotFound("operation", name) from None


def validate_params(operation: Operation, raw: dict[str, Any]) -> OperationParams:
    """The operation's parameters from ``raw``; :class:`InvalidParameter` names the first fault."""
    try:
        return operation.Params.model_validate(raw)
    except ValidationError as exc:
        raise InvalidParameter.first_of(exc.errors(), "params") from None


def dump_params(params: OperationParams) -> dict[str, Any]:
    """Parameters as stored with a job: JSON, secrets included (the job row is private)."""
    data = params.model_dump(mode="json", exclude_none=True)
    for name, value in params:
        if hasattr(value, "get_secret_value"):
            data[name] = value.get_secret_value()
    return data


def public_params(params: dict[str, Any]) -> dict[str, Any]:
    """Stored parameters as shown to clients: secrets masked."""
    return {k: ("********" if k in SECRET_PARAMS else v) for k, v in params.items()}


SECRET_PARAMS = frozenset({"password"})
#: The pdf operation's passwords for the file it encrypts.
SECRET_PARAMS |= {"user_password", "owner_password"}
