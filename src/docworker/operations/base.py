"""What an operation is: a name, a parameter model, and a ``run`` that makes a result.

An operation does not know whether it runs in a worker process of the local
executor, in a Celery worker or in the CLI: it gets an :class:`OperationContext`
(limits, progress, cancellation) and the input on local disk, and returns a
:class:`Result` — a JSON payload — or raises a :mod:`docworker.errors` error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Protocol, runtime_checkable

from pydantic import AfterValidator, BaseModel, ConfigDict

from docworker.config import Settings
from docworker.engines.libreoffice import Converter
from docworker.errors import ProcessingFailed
from docworker.formats.base import PageSelection, ParseLimits
from docworker.url_policy import UrlPolicy


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
    #: The job's further input files, in the order they were given (the PDFs after the
    #: first of a merge, the files to attach, a watermark image); empty for most jobs.
    others: tuple[InputFile, ...] = ()


@dataclass
class OperationContext:
    limits: ParseLimits = field(default_factory=ParseLimits)
    progress: Callable[[float, str], None] = lambda _fraction, _message: None
    cancelled: Callable[[], bool] = lambda: False
    #: Converts a file through LibreOffice (``convert(path, "docx")``, options by
    #: keyword), handed to parsers as ``ParseContext.convert``; None where no
    #: LibreOffice runs.
    convert: Converter | None = None
    #: OCR defaults from the service's settings (``settings.ocr``): Tesseract
    #: languages, page segmentation mode and PDF render resolution.
    ocr_languages: str = "eng"
    ocr_psm: int = 3
    ocr_dpi: int = 300
    #: A private folder for files the operation makes (artifacts), removed by whoever
    #: runs the operation once the result is stored; None where nothing may be written.
    workdir: Path | None = None
    #: The service's settings, for operations and engines configured there.
    settings: Settings = field(default_factory=Settings)
    #: The tenant the job belongs to (its policies, e.g. the content guard's); None: none.
    tenant: str | None = None

    @property
    def url_policy(self) -> UrlPolicy:
        """What remote URLs this operation may fetch (the SSRF rule)."""
        return UrlPolicy.of(self.settings.fetch)

    def artifact_path(self, name: str) -> Path:
        """Where to write the artifact ``name`` (a plain file name, e.g. ``searchable.pdf``)."""
        if self.workdir is None:
            raise ProcessingFailed(
                "this operation's output is a file, and there is no place for it"
            )
        if "/" in name or name.startswith(".") or name == "result.json":
            raise ValueError(f"artifact name {name!r} is not a plain file name")
        return self.workdir / name


@dataclass(frozen=True)
class Artifact:
    """A file an operation made (a searchable PDF, an image), written under
    :meth:`OperationContext.artifact_path`; the runner stores it beside the result."""

    name: str
    path: Path
    mime: str


@dataclass
class Result:
    """What an operation made: a JSON payload, plus the errors of any parts that failed."""

    payload: dict[str, Any]
    #: Errors of parts that failed while the whole went on (pages, children):
    #: a non-empty list makes the job ``partial``.
    errors: list[dict[str, Any]] = field(default_factory=list)
    #: Files made beside the payload. The runner stores them and lists them in the
    #: payload as ``artifacts``: ``[{"name", "mime", "size"}]``, fetched by name.
    artifacts: list[Artifact] = field(default_factory=list)


def pages_processed(payload: dict[str, Any]) -> int | None:
    """The pages a result says were processed (for usage and quotas): its ``pages``
    list (pages rendered, read by OCR, extracted one by one), else the page count it
    names (``page_count``, the document's ``metadata.page_count``, a conversion's
    ``output.pages``); None when it names none (an image, a video)."""
    pages = payload.get("pages")
    if isinstance(pages, list):
        return len(pages)

    def named(value: Any, key: str) -> Any:
        return value.get(key) if isinstance(value, dict) else None

    candidates = (
        payload.get("page_count"),
        named(payload.get("metadata"), "page_count"),
        named(payload.get("output"), "pages"),
        pages,
    )
    for count in candidates:
        if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            return count
    return None


@dataclass(frozen=True)
class PartResult:
    """What one part of a split job ended with, handed to :meth:`Splittable.merge`."""

    part: int
    #: The part's own parameters (the job's, with the part's page range).
    params: dict[str, Any]
    #: ``succeeded``, ``partial``, ``failed``, ``dead`` or ``cancelled``.
    status: str
    #: The part's result payload; None when it has none (it failed).
    payload: dict[str, Any] | None = None
    #: The part's artifacts by name, on local disk.
    artifacts: dict[str, Path] = field(default_factory=dict)
    #: The part's error (``failed``, ``dead``) or its partial items.
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.payload is not None


class Family(StrEnum):
    """The families of operations: work of one family costs about alike and uses the same
    engines, so each has a queue of its own in a distributed deployment (the Celery
    queue its workers take) and a bound on its queued jobs at admission
    (``queue.<family>``), so that a flood of one kind of work never fills the queue of
    another."""

    #: Reading text and structure: ``extract``, ``chunk``.
    DOCUMENTS = "documents"
    #: Tesseract on images and scanned pages: ``ocr``.
    OCR = "ocr"
    #: Making other files from documents: office and HTML conversion, PDF tools, page
    #: images, browser screenshots: ``convert``, ``pdf``, ``render``, ``screenshot``.
    CONVERT = "convert"
    #: Images and audio/video: ``image``, ``video``, v1's media pipelines.
    MEDIA = "media"


class Operation(Protocol):
    """What the service can do. Every operation reads an input file (``run``'s
    ``source``, with its further files in ``source.others``): a job without one is
    refused when it is submitted, never left to fail in a worker."""

    name: ClassVar[str]
    summary: ClassVar[str]
    #: Its family: the queue it runs on in a distributed deployment, and the bound its
    #: jobs are admitted under.
    queue: ClassVar[Family]
    Params: ClassVar[type[OperationParams]]

    def run(self, ctx: OperationContext, source: InputFile, params: OperationParams) -> Result:
        """Do the work; raise a DocworkerError for anything the caller should see."""
        ...


class Engine(StrEnum):
    """The supervised engines a job may wait for, whose queues are bounded at admission."""

    LIBREOFFICE = "libreoffice"
    CHROMIUM = "chromium"


@runtime_checkable
class EngineBound(Protocol):
    """An operation that, for some inputs and parameters, runs on a supervised engine
    (LibreOffice, Chromium): a job of it is refused at admission while too many jobs
    wait for that engine already (the engine's ``max_queue``)."""

    def engine(self, params: OperationParams, mime: str) -> Engine | None:
        """The engine a job with ``params`` on an input of type ``mime`` (detected from
        its content) will run on, or None."""
        ...


@dataclass(frozen=True)
class SplitPart:
    """One part of a split job: a child job of ``operation`` (default: the job's own,
    with the job's parameters updated by ``params``; another operation gets ``params``
    alone)."""

    params: dict[str, Any]
    operation: str | None = None


@runtime_checkable
class Splittable(Protocol):
    """An operation whose slow work can be split into parts that run as child jobs on
    several workers at once (the pages of a long OCR), then merged into one result."""

    def split(
        self, ctx: OperationContext, source: InputFile, params: OperationParams, plan: SplitPlan
    ) -> list[SplitPart] | None:
        """The parts to run instead of the job, or None to run the job whole."""
        ...

    def merge(
        self,
        ctx: OperationContext,
        source: InputFile,
        params: OperationParams,
        parts: list[PartResult],
    ) -> Result:
        """The job's result from its parts' results (in part order)."""
        ...


@dataclass(frozen=True)
class SplitPlan:
    """How far a job may be split: at most ``parts`` parts, and only when it has at
    least ``min_pages`` pages of slow work."""

    parts: int
    min_pages: int

    def page_ranges(self, pages: Sequence[int]) -> list[str] | None:
        """``pages`` (ascending) cut into at most ``parts`` runs of near-equal length,
        each as a page selection ('3-5'); None when there are too few to split."""
        if self.parts < 2 or self.min_pages < 1 or len(pages) < max(self.min_pages, 2):
            return None
        count = min(self.parts, len(pages))
        size, extra = divmod(len(pages), count)
        ranges: list[str] = []
        start = 0
        for index in range(count):
            end = start + size + (1 if index < extra else 0)
            ranges.append(str(PageSelection.of(pages[start:end])))
            start = end
        return ranges


def merge_errors(parts: list[PartResult]) -> list[dict[str, Any]]:
    """The error items of a merged result: each failed part's error, with its pages, and
    the items of parts that were themselves partial."""
    errors: list[dict[str, Any]] = []
    for part in parts:
        if part.payload is None:
            error = dict(part.error or {"code": part.status})
            errors.append({**error, "part": part.part, "pages": part.params.get("pages")})
        elif part.error and part.error.get("items"):
            errors.extend(part.error["items"])
    return errors


def operation_context(settings: Settings, **hooks: Any) -> OperationContext:
    """The context the service's settings decide (limits, OCR defaults), plus ``hooks``
    (progress, cancellation, converter) from whoever runs the operation."""
    return OperationContext(
        limits=ParseLimits(**settings.limits.model_dump()),
        ocr_languages=settings.ocr.language,
        ocr_psm=settings.ocr.psm,
        ocr_dpi=settings.ocr.dpi,
        settings=settings,
        **hooks,
    )
