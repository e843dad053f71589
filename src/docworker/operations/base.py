"""What an operation is: a name, a parameter model, and a ``run`` that makes a result.

An operation does not know whether it runs in a worker process of the local
executor, in a Celery worker or in the CLI: it gets an :class:`OperationContext`
(limits, progress, cancellation) and the input on local disk, and returns a
:class:`Result` — a JSON payload — or raises a :mod:`docworker.errors` error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict

from docworker.config import Settings
from docworker.formats.base import PageSelection, ParseLimits


def _check_pages(value: str | None) -> str | None:
    if value is not None and value.strip():
        PageSelection.parse(value)
        return value.strip()
    return None


#: A page selection parameter ('1-3,5,9-'), checked when the parameters are read.
PagesParam = Annotated[str | None, AfterValidator(_check_pages)]


class OperationParams(BaseModel):
    """Base of every operation's parameters: unknown names are refused."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class InputFile:
    """The job's input, on local disk, with what is known about it."""

    path: Path
    name: str | None = None
    mime: str | None = None
    sha256: str | None = None


@dataclass
class OperationContext:
    limits: ParseLimits = field(default_factory=ParseLimits)
    progress: Callable[[float, str], None] = lambda _fraction, _message: None
    cancelled: Callable[[], bool] = lambda: False
    #: Converts a file through LibreOffice (``convert(path, "docx")``), handed to
    #: parsers as ``ParseContext.convert``; None where no LibreOffice runs.
    convert: Callable[[Path, str], Path] | None = None
    #: OCR defaults from the service's settings (``settings.ocr``): Tesseract
    #: languages, page segmentation mode and PDF render resolution.
    ocr_languages: str = "eng"
    ocr_psm: int = 3
    ocr_dpi: int = 300


@dataclass
class Result:
    """What an operation made: a JSON payload, plus the errors of any parts that failed."""

    payload: dict[str, Any]
    #: Errors of parts that failed while the whole went on (pages, children):
    #: a non-empty list makes the job ``partial``.
    errors: list[dict[str, Any]] = field(default_factory=list)


class Operation(Protocol):
    name: ClassVar[str]
    summary: ClassVar[str]
    #: The queue family it runs on in a distributed deployment.
    queue: ClassVar[str]
    Params: ClassVar[type[OperationParams]]

    def run(self, ctx: OperationContext, source: InputFile, params: OperationParams) -> Result:
        """Do the work; raise a DocworkerError for anything the caller should see."""
        ...


def operation_context(settings: Settings, **hooks: Any) -> OperationContext:
    """The context the service's settings decide (limits, OCR defaults), plus ``hooks``
    (progress, cancellation, converter) from whoever runs the operation."""
    return OperationContext(
        limits=ParseLimits(**settings.limits.model_dump()),
        ocr_languages=settings.ocr.language,
        ocr_psm=settings.ocr.psm,
        ocr_dpi=settings.ocr.dpi,
        **hooks,
    )
