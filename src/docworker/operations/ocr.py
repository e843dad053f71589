"""The ``ocr`` operation: images and scanned PDFs → text, confidences and word boxes.

Images go through :class:`~docworker.formats.image.parser.ImageParser` (frames,
EXIF orientation, pixel limit) with the Tesseract engine as its OCR reader;
PDF pages are rendered with pdfium at ``dpi`` and read the same way, whether
or not they have a text layer. The ``json`` output is hOCR-like: pages →
paragraphs → lines → words, each with its box in pixels of the page image
and its confidence (0..1). ``searchable_pdf`` makes, beside the text, a PDF
of the pages with the words as invisible text (:mod:`docworker.render.searchable_pdf`);
``v1`` is documents-worker v1's result (:mod:`docworker.operations.ocr_v1`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import partial
from typing import Any, ClassVar

import pypdfium2
from PIL import Image
from pydantic import Field, SecretStr, field_validator

from docworker.document import Warning
from docworker.engines.ocr import Preprocessing, TesseractOcr, check_psm, validate_languages
from docworker.errors import CorruptDocument, PasswordRequired, UnsupportedFormat, WrongPassword
from docworker.formats.base import (
    OcrLine,
    OcrPage,
    OcrParagraph,
    OcrReader,
    PageSelection,
    ParseContext,
    PixelBox,
    Source,
)
from docworker.formats.detect import detect
from docworker.formats.image.parser import ImageParser
from docworker.formats.pdf.ocr import render_page
from docworker.formats.pdf.raster import POINTS_PER_INCH
from docworker.operations.base import (
    Artifact,
    Engine,
    Family,
    InputFile,
    OperationContext,
    OperationParams,
    PagesParam,
    PartResult,
    Result,
    SplitPart,
    SplitPlan,
    merge_errors,
)
from docworker.operations.ocr_parts import failed_parts, join_pdfs, page_count, selected_pages
from docworker.operations.ocr_v1 import (
    V1_ALLOWED_CHARACTERS,
    as_pdf,
    converted_to_pdf,
    document_metadata,
    image_metadata,
    v1_result,
    v1_text,
)
from docworker.render.searchable_pdf import SearchablePdf

_PDF = "application/pdf"
SEARCHABLE_PDF = "searchable.pdf"


class OcrOutput(StrEnum):
    TEXT = "text"
    JSON = "json"
    SEARCHABLE_PDF = "searchable_pdf"
    V1 = "v1"


class OcrParams(OperationParams):
    languages: str | None = Field(
        None,
        description="Tesseract languages joined by '+', e.g. 'eng+kor'. "
        "Default: the service's OCR language setting.",
        examples=["eng", "eng+kor"],
    )
    psm: int | None = Field(
        None,
        ge=0,
        le=13,
        description="Tesseract page segmentation mode (3: automatic, 6: one block, "
        "11: sparse text; 0 and 2 find no text). Default: the service's setting.",
    )
    dpi: int | None = Field(
        None,
        ge=50,
        le=1200,
        description="PDFs: the resolution pages are rendered at (default: the service's "
        "setting, 300). Images: the scan resolution to assume when the file records none.",
    )
    pages: PagesParam = Field(
        None, description="Pages (PDF) or frames (TIFF, GIF) to read, 1-based: '1-3,5'."
    )
    password: SecretStr | None = Field(None, description="Password of an encrypted PDF.")
    preprocess: bool = Field(
        True,
        description="Prepare images first: scale small text up, turn pages upright, deskew. "
        "A job submitted without it gets the `ocr.preprocessing` feature flag's "
        "(docs/flags.md; on unless configured).",
    )
    allowed_characters: str | None = Field(
        None,
        max_length=1000,
        description="The only characters Tesseract may output (its character whitelist), "
        "e.g. '0123456789'; empty: any. Default: any, except for the v1 output, which "
        "keeps to v1's: ASCII letters and digits, ğüşıöçĞÜŞİÖÇ, space and .,!?:;()-",
    )
    output: OcrOutput = Field(
        OcrOutput.TEXT,
        description="text: the text of each page; json: also paragraphs, lines and words "
        "with boxes (pixels of the page image) and confidences; searchable_pdf: the text, "
        f"and the artifact {SEARCHABLE_PDF}: the pages read, as they look, with the words "
        "as invisible text to select and search; v1: documents-worker v1's OCR result "
        "(text, confidence, language, page_count, metadata), of a document's first page.",
    )

    @field_validator("psm")
    @classmethod
    def _check_psm(cls, value: int | None) -> int | None:
        if value is not None:
            check_psm(value)
        return value


@dataclass
class _Recorder:
    """Passes images to the engine and keeps what it read, page by page, for the payload."""

    engine: OcrReader
    #: Called with each image and what was read in it (to add it to a searchable PDF).
    then: Callable[[Image.Image, OcrPage], None] | None = None
    pages: list[OcrPage] = field(default_factory=list)

    def read(
        self, image: Image.Image, *, languages: str | None = None, picture: bool = False
    ) -> OcrPage:
        page = self.engine.read(image, languages=languages, picture=picture)
        self.pages.append(page)
        if self.then is not None:
            self.then(image, page)
        return page


@dataclass(frozen=True)
class _ReadPage:
    number: int
    ocr: OcrPage
    #: The resolution the page image was rendered at (PDF pages only).
    dpi: float | None = None


class OcrOperation:
    name: ClassVar[str] = "ocr"
    summary: ClassVar[str] = "Text, confidences and word boxes of images and scanned PDFs."
    queue: ClassVar[Family] = Family.OCR
    Params: ClassVar[type[OperationParams]] = OcrParams

    def engine(self, params: OperationParams, mime: str) -> Engine | None:
        """LibreOffice for v1's OCR of a document that is not a PDF (converted first)."""
        assert isinstance(params, OcrParams)
        v1 = params.output is OcrOutput.V1
        convert = v1 and mime not in ImageParser.media_types and converted_to_pdf(mime)
        return Engine.LIBREOFFICE if convert else None

    def run(self, ctx: OperationContext, source: InputFile, params: OperationParams) -> Result:
        assert isinstance(params, OcrParams)
        mime = source.mime or detect(source.path, source.name).mime
        languages = validate_languages(params.languages or ctx.ocr_languages, "languages")
        psm = params.psm if params.psm is not None else ctx.ocr_psm
        if params.output is OcrOutput.V1:
            return _run_v1(ctx, source, mime, params, languages, psm)
        if mime != _PDF and mime not in ImageParser.media_types:
            raise UnsupportedFormat(mime, f"the ocr operation reads images and PDFs, not {mime}")
        engine = _engine(params, languages, psm, params.allowed_characters)
        parse_ctx = _parse_context(ctx, params.pages)
        making_pdf = params.output is OcrOutput.SEARCHABLE_PDF
        target = ctx.artifact_path(SEARCHABLE_PDF) if making_pdf else None
        artifacts: list[Artifact] = []
        with SearchablePdf() if making_pdf else nullcontext() as searchable:
            if mime == _PDF:
                dpi = params.dpi or ctx.ocr_dpi
                password = params.password.get_secret_value() if params.password else None
                total, pages = _read_pdf(source, password, engine, parse_ctx, dpi, searchable)
                warnings: list[Warning] = []
            else:
                then = None
                if searchable is not None:
                    jpeg = source.path if mime == "image/jpeg" else None
                    then = partial(searchable.add_image_page, dpi=params.dpi, jpeg=jpeg)
                total, pages, warnings = _read_image(source, mime, engine, parse_ctx, then)
            if searchable is not None and target is not None:
                searchable.save(target)
                warnings += searchable.warnings
                artifacts.append(Artifact(SEARCHABLE_PDF, target, _PDF))
        payload = _payload(params, mime, languages, total, pages, warnings)
        return Result(payload=payload, artifacts=artifacts)

    def split(
        self, ctx: OperationContext, source: InputFile, params: OperationParams, plan: SplitPlan
    ) -> list[SplitPart] | None:
        """Page ranges of a long PDF (or of an image's many frames), read on several workers."""
        assert isinstance(params, OcrParams)
        if params.output is OcrOutput.V1:
            return None
        mime = source.mime or detect(source.path, source.name).mime
        if mime != _PDF and mime not in ImageParser.media_types:
            return None
        password = params.password.get_secret_value() if params.password else None
        total = page_count(source.path, mime, password)
        if total is None:
            return None
        pages = selected_pages(total, params.pages)
        if len(pages) > ctx.limits.max_pages:
            return None  # refused whole, with the limit named
        ranges = plan.page_ranges(pages)
        return [SplitPart({"pages": pages}) for pages in ranges] if ranges else None

    def merge(
        self,
        ctx: OperationContext,
        source: InputFile,
        params: OperationParams,
        parts: list[PartResult],
    ) -> Result:
        """The payload the job would have made whole, from its parts' (and their PDFs joined)."""
        assert isinstance(params, OcrParams)
        failed_parts(parts)
        done = [part for part in parts if part.payload is not None]
        payloads = [part.payload for part in done if part.payload is not None]
        pages = [page for payload in payloads for page in payload["pages"]]
        words = sum(page.get("word_count", 0) for page in pages)
        confidence = (
            sum(page["confidence"] * page.get("word_count", 0) for page in pages) / words
            if words
            else 0.0
        )
        first = payloads[0]
        payload = first | {
            "confidence": round(confidence, 4),
            "content": "\n\n".join(p["content"] for p in payloads if p["content"]),
            "pages": pages,
            "warnings": [w for p in payloads for w in p.get("warnings") or []],
        }
        payload.pop("artifacts", None)
        artifacts: list[Artifact] = []
        if params.output is OcrOutput.SEARCHABLE_PDF:
            target = ctx.artifact_path(SEARCHABLE_PDF)
            join_pdfs([part.artifacts[SEARCHABLE_PDF] for part in done], target)
            artifacts.append(Artifact(SEARCHABLE_PDF, target, _PDF))
        return Result(payload=payload, errors=merge_errors(parts), artifacts=artifacts)


def _engine(
    params: OcrParams, languages: str, psm: int, allowed_characters: str | None
) -> TesseractOcr:
    return TesseractOcr(
        languages=languages,
        psm=psm,
        preprocessing=Preprocessing() if params.preprocess else Preprocessing.none(),
        dpi=params.dpi,
        allowed_characters=allowed_characters,
    )


def _parse_context(ctx: OperationContext, pages: str | None) -> ParseContext:
    return ParseContext(
        pages=PageSelection.parse(pages) if pages else None,
        limits=ctx.limits,
        progress=ctx.progress,
        cancelled=ctx.cancelled,
    )


def _run_v1(
    ctx: OperationContext,
    source: InputFile,
    mime: str,
    params: OcrParams,
    languages: str,
    psm: int,
) -> Result:
    """v1's OCR: an image's frames, or a document's first page (converted to PDF when it
    is not one), read with v1's character whitelist unless the caller gave one."""
    allowed = params.allowed_characters
    engine = _engine(params, languages, psm, V1_ALLOWED_CHARACTERS if allowed is None else allowed)
    dpi = params.dpi or ctx.ocr_dpi
    name = source.name or source.path.name
    if mime in ImageParser.media_types:
        _, pages, _ = _read_image(source, mime, engine, _parse_context(ctx, params.pages))
        metadata = image_metadata(name, psm, dpi)
    else:
        password = params.password.get_secret_value() if params.password else None
        with as_pdf(source.path, name, mime, ctx.convert) as (path, pdf_name):
            document = InputFile(path, pdf_name, _PDF)
            _, pages = _read_pdf(document, password, engine, _parse_context(ctx, "1"), dpi)
        metadata = document_metadata(pdf_name, psm, dpi)
    text = v1_text([page.ocr for page in pages])
    return Result(payload=v1_result(text, languages, metadata))


def _read_image(
    source: InputFile,
    mime: str,
    engine: OcrReader,
    ctx: ParseContext,
    then: Callable[[Image.Image, OcrPage], None] | None = None,
) -> tuple[int, list[_ReadPage], list[Warning]]:
    recorder = _Recorder(engine, then)
    reading = replace(ctx, ocr=recorder, ocr_policy="force")
    doc = ImageParser().parse(Source(source.path, mime, source.name), reading)
    # The parser asks the reader once per page it adds, in page order.
    pages = [
        _ReadPage(page.number, ocr) for page, ocr in zip(doc.pages, recorder.pages, strict=True)
    ]
    return doc.metadata.page_count or len(pages), pages, doc.warnings


def _read_pdf(
    source: InputFile,
    password: str | None,
    engine: OcrReader,
    ctx: ParseContext,
    dpi: int,
    searchable: SearchablePdf | None = None,
) -> tuple[int, list[_ReadPage]]:
    try:
        pdf = pypdfium2.PdfDocument(str(source.path), password=password)
    except pypdfium2.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise (WrongPassword("pdf") if password else PasswordRequired("pdf")) from exc
        raise CorruptDocument("pdf", str(exc)) from exc
    try:
        total = len(pdf)
        numbers = ctx.select_pages(total)
        if searchable is not None:
            searchable.copy_pdf_pages(pdf, numbers)
        pages = [
            _read_pdf_page(pdf, number, engine, dpi, ctx.limits.max_pixels, searchable)
            for number in ctx.each_page(numbers, total)
        ]
    finally:
        pdf.close()
    return total, pages


def _read_pdf_page(
    pdf: pypdfium2.PdfDocument,
    number: int,
    engine: OcrReader,
    dpi: int,
    max_pixels: int,
    searchable: SearchablePdf | None,
) -> _ReadPage:
    page = pdf[number - 1]
    try:
        image, points_per_pixel = render_page(page, dpi, max_pixels)
        dots_per_inch = round(POINTS_PER_INCH / points_per_pixel, 2)
        ocr = engine.read(image)
    finally:
        page.close()
    if searchable is not None:
        searchable.add_pdf_words(number, ocr, points_per_pixel)
    return _ReadPage(number, ocr, dots_per_inch)


def _payload(
    params: OcrParams,
    mime: str,
    languages: str,
    total: int,
    pages: list[_ReadPage],
    warnings: list[Warning],
) -> dict[str, Any]:
    words = [
        word for page in pages for paragraph in page.ocr.paragraphs for word in paragraph.words
    ]
    confidence = sum(word.confidence for word in words) / len(words) if words else 0.0
    return {
        "output": params.output.value,
        "mime": mime,
        "languages": languages,
        "page_count": total,
        "confidence": round(confidence, 4),
        "content": "\n\n".join(page.ocr.text for page in pages if page.ocr.paragraphs),
        "pages": [_page_json(page, params.output) for page in pages],
        "warnings": [w.model_dump(mode="json", exclude_none=True) for w in warnings],
    }


def _page_json(page: _ReadPage, output: OcrOutput) -> dict[str, Any]:
    ocr = page.ocr
    described: dict[str, Any] = {
        "page": page.number,
        "confidence": ocr.confidence,
        "word_count": sum(len(paragraph.words) for paragraph in ocr.paragraphs),
        "text": ocr.text,
    }
    if output is OcrOutput.JSON:
        described |= {
            "width": ocr.width,
            "height": ocr.height,
            "unit": "px",
            "dpi": page.dpi,
            "rotation_applied": ocr.rotation_applied,
            "skew_degrees": ocr.skew_degrees,
            "scale": ocr.scale,
            "paragraphs": [_paragraph_json(paragraph) for paragraph in ocr.paragraphs],
        }
    return described


def _box(box: PixelBox) -> list[float]:
    return list(box)


def _paragraph_json(paragraph: OcrParagraph) -> dict[str, Any]:
    return {
        "text": paragraph.text,
        "bbox": _box(paragraph.bbox),
        "confidence": paragraph.confidence,
        "lines": [_line_json(line) for line in paragraph.lines],
    }


def _line_json(line: OcrLine) -> dict[str, Any]:
    return {
        "text": line.text,
        "bbox": _box(line.bbox),
        "confidence": line.confidence,
        "words": [
            {"text": word.text, "bbox": _box(word.bbox), "confidence": word.confidence}
            for word in line.words
        ],
    }
