"""The ``ocr`` operation: images and scanned PDFs → text, confidences and word boxes.

Images go through :class:`~docworker.formats.image.ImageParser` (frames,
EXIF orientation, pixel limit) with the Tesseract engine as its OCR reader;
PDF pages are rendered with pdfium at ``dpi`` and read the same way, whether
or not they have a text layer. The ``json`` output is hOCR-like: pages →
paragraphs → lines → words, each with its box in pixels of the page image
and its confidence (0..1).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
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
from docworker.formats.image import ImageParser
from docworker.formats.pdf_ocr import POINTS_PER_INCH, render_page
from docworker.operations.base import (
    InputFile,
    OperationContext,
    OperationParams,
    PagesParam,
    Result,
)

_PDF = "application/pdf"


class OcrOutput(StrEnum):
    TEXT = "text"
    JSON = "json"


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
        description="Prepare images first: scale small text up, turn pages upright, deskew.",
    )
    output: OcrOutput = Field(
        OcrOutput.TEXT,
        description="text: the text of each page; json: also paragraphs, lines and words "
        "with boxes (pixels of the page image) and confidences.",
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
    pages: list[OcrPage] = field(default_factory=list)

    def read(self, image: Image.Image, *, languages: str | None = None) -> OcrPage:
        page = self.engine.read(image, languages=languages)
        self.pages.append(page)
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
    queue: ClassVar[str] = "ocr"
    Params: ClassVar[type[OperationParams]] = OcrParams

    def run(self, ctx: OperationContext, source: InputFile, params: OperationParams) -> Result:
        assert isinstance(params, OcrParams)
        mime = source.mime or detect(source.path, source.name).mime
        languages = validate_languages(params.languages or ctx.ocr_languages, "languages")
        engine = TesseractOcr(
            languages=languages,
            psm=params.psm if params.psm is not None else ctx.ocr_psm,
            preprocessing=Preprocessing() if params.preprocess else Preprocessing.none(),
            dpi=params.dpi,
        )
        parse_ctx = ParseContext(
            pages=PageSelection.parse(params.pages) if params.pages else None,
            limits=ctx.limits,
            progress=ctx.progress,
            cancelled=ctx.cancelled,
        )
        if mime == _PDF:
            dpi = params.dpi or ctx.ocr_dpi
            password = params.password.get_secret_value() if params.password else None
            total, pages = _read_pdf(source, password, engine, parse_ctx, dpi)
            warnings: list[Warning] = []
        elif mime in ImageParser.media_types:
            total, pages, warnings = _read_image(source, mime, engine, parse_ctx)
        else:
            raise UnsupportedFormat(mime, f"the ocr operation reads images and PDFs, not {mime}")
        return Result(payload=_payload(params, mime, languages, total, pages, warnings))


def _read_image(
    source: InputFile, mime: str, engine: OcrReader, ctx: ParseContext
) -> tuple[int, list[_ReadPage], list[Warning]]:
    recorder = _Recorder(engine)
    reading = replace(ctx, ocr=recorder, ocr_policy="force")
    doc = ImageParser().parse(Source(source.path, mime, source.name), reading)
    # The parser asks the reader once per page it adds, in page order.
    pages = [
        _ReadPage(page.number, ocr) for page, ocr in zip(doc.pages, recorder.pages, strict=True)
    ]
    return doc.metadata.page_count or len(pages), pages, doc.warnings


def _read_pdf(
    source: InputFile, password: str | None, engine: OcrReader, ctx: ParseContext, dpi: int
) -> tuple[int, list[_ReadPage]]:
    try:
        pdf = pypdfium2.PdfDocument(str(source.path), password=password)
    except pypdfium2.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise (WrongPassword("pdf") if password else PasswordRequired("pdf")) from exc
        raise CorruptDocument("pdf", str(exc)) from exc
    try:
        total = len(pdf)
        pages = [
            _read_pdf_page(pdf, number, engine, dpi, ctx.limits.max_pixels)
            for number in ctx.each_page(ctx.select_pages(total), total)
        ]
    finally:
        pdf.close()
    return total, pages


def _read_pdf_page(
    pdf: pypdfium2.PdfDocument, number: int, engine: OcrReader, dpi: int, max_pixels: int
) -> _ReadPage:
    page = pdf[number - 1]
    try:
        image, points_per_pixel = render_page(page, dpi, max_pixels)
        dots_per_inch = round(POINTS_PER_INCH / points_per_pixel, 2)
        return _ReadPage(number, engine.read(image), dots_per_inch)
    finally:
        page.close()


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
