"""The ``convert`` operation: a document in one format → a file in another.

The input's type is detected from its content; the route taken depends on it and
on the target (``to``):

* office files (Word, Excel, PowerPoint, OpenDocument, RTF; legacy and OOXML,
  encrypted with a ``password``) → PDF or another office format, through the
  worker's supervised LibreOffice (:mod:`docworker.engines.libreoffice`), with PDF
  options: page ranges, landscape, PDF/A-1b or 2b, form fields. LibreOffice runs
  on a profile that follows no link and reaches no remote URL.
* HTML (one page, or a zip of a site with its ``index.html``) and Markdown → PDF,
  laid out by WeasyPrint (:mod:`docworker.render.html_pdf`) with the page set-up
  asked for; a page's resources are fetched only inside the upload and through
  the service's URL policy.
* any document the service reads → Markdown, HTML or text (the document model
  rendered, as ``extract`` parses it), → DOCX (:mod:`docworker.render.docx`, from
  the document model; office text documents go through LibreOffice, which is
  truer for them, see docs/convert.md), and → PDF (its HTML rendering laid out).

The file made is the result's artifact (``converted.<ext>``); the payload says
what was made: its type, size and pages, the engine, and what was left out.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import pikepdf
import pypdfium2
from pydantic import Field, SecretStr, field_validator

from docworker.document import Block, Document, Warning
from docworker.errors import InvalidParameter, UnsupportedFormat
from docworker.formats.detect import Detection, detect, format_of
from docworker.formats.registry import READ_THROUGH_LIBREOFFICE
from docworker.operations.base import (
    Artifact,
    Engine,
    Family,
    InputFile,
    OperationContext,
    OperationParams,
    PagesParam,
    Result,
)
from docworker.operations.convert_office import OFFICE_FORMATS, convert_office
from docworker.operations.convert_pages import page_to_pdf
from docworker.operations.extract import DocumentInput, parse_input, selected_blocks
from docworker.render.document import render_html, render_markdown, render_text
from docworker.render.docx import write_docx
from docworker.render.html_pdf import (
    PageSetup,
    check_margin,
    check_page_size,
    html_to_pdf,
)

PDF = "application/pdf"
#: The artifact's name, without its extension.
OUTPUT_STEM = "converted"


class ConvertTarget(StrEnum):
    PDF = "pdf"
    DOCX = "docx"
    XLSX = "xlsx"
    PPTX = "pptx"
    ODT = "odt"
    ODS = "ods"
    ODP = "odp"
    MARKDOWN = "markdown"
    HTML = "html"
    TEXT = "text"


#: Each target's file extension and media type.
TARGETS: dict[ConvertTarget, tuple[str, str]] = {
    ConvertTarget.PDF: ("pdf", PDF),
    ConvertTarget.DOCX: (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    ConvertTarget.XLSX: (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    ConvertTarget.PPTX: (
        "pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    ConvertTarget.ODT: ("odt", "application/vnd.oasis.opendocument.text"),
    ConvertTarget.ODS: ("ods", "application/vnd.oasis.opendocument.spreadsheet"),
    ConvertTarget.ODP: ("odp", "application/vnd.oasis.opendocument.presentation"),
    ConvertTarget.MARKDOWN: ("md", "text/markdown"),
    ConvertTarget.HTML: ("html", "text/html"),
    ConvertTarget.TEXT: ("txt", "text/plain"),
}


class PdfA(StrEnum):
    NONE = "none"
    A1B = "1b"
    A2B = "2b"


class Orientation(StrEnum):
    PORTRAIT = "portrait"
    LANDSCAPE = "landscape"


class HtmlEngine(StrEnum):
    WEASYPRINT = "weasyprint"
    CHROMIUM = "chromium"


class ConvertParams(OperationParams):
    to: ConvertTarget = Field(
        ConvertTarget.PDF,
        description="The output: pdf; docx, odt (text documents); xlsx, ods (spreadsheets); "
        "pptx, odp (presentations); markdown, html or text (any document the service reads).",
    )
    pages: PagesParam = Field(
        None,
        description="Pages to keep, 1-based: '1-3,5,9-' (PDF outputs, and documents with "
        "pages rendered to markdown, html, text or docx). Default: all.",
        examples=["1-3,5"],
    )
    password: SecretStr | None = Field(None, description="Password of an encrypted document.")
    landscape: bool = Field(
        False,
        description="PDF: turn the pages to landscape (office text documents and spreadsheets; "
        "HTML and Markdown unless `orientation` says otherwise).",
    )
    pdfa: PdfA = Field(
        PdfA.NONE, description="PDF: make a PDF/A of this level: none, 1b (PDF/A-1b), 2b."
    )
    export_form_fields: bool = Field(
        True,
        description="Office → PDF: keep the document's form fields as fillable PDF fields "
        "(false: only their printed look).",
    )
    page_size: str | None = Field(
        None,
        description="HTML/Markdown → PDF: A3, A4, A5, B4, B5, Letter, Legal, Ledger, or a "
        "width and height with units ('210mm x 297mm', '8.5in 11in'). Default: the page's "
        "own @page size, else A4.",
        examples=["A4", "Letter", "210mm x 297mm"],
    )
    orientation: Orientation | None = Field(
        None, description="HTML/Markdown → PDF: portrait or landscape."
    )
    margin_top: str | None = Field(None, description="HTML/Markdown → PDF: e.g. '2cm', '0.5in'.")
    margin_right: str | None = Field(None, description="HTML/Markdown → PDF: e.g. '2cm'.")
    margin_bottom: str | None = Field(None, description="HTML/Markdown → PDF: e.g. '2cm'.")
    margin_left: str | None = Field(None, description="HTML/Markdown → PDF: e.g. '2cm'.")
    header_html: str | None = Field(
        None,
        max_length=100_000,
        description="HTML/Markdown → PDF: an HTML fragment at the top of every page; elements "
        "of class pageNumber, totalPages, title and date are filled in.",
        examples=['<div style="font-size:9pt">Page <span class="pageNumber"></span></div>'],
    )
    footer_html: str | None = Field(
        None,
        max_length=100_000,
        description="HTML/Markdown → PDF: an HTML fragment at the bottom of every page, "
        "filled in as header_html is.",
    )
    css: str | None = Field(
        None,
        max_length=1_000_000,
        description="HTML/Markdown → PDF: extra CSS applied after the page's own.",
    )
    engine: HtmlEngine = Field(
        HtmlEngine.WEASYPRINT,
        description="HTML/Markdown → PDF: weasyprint, or chromium for pages that need "
        "JavaScript (PDF/A only with weasyprint). A job submitted without it gets the "
        "`convert.html-engine` feature flag's (docs/flags.md; weasyprint unless configured).",
    )

    @field_validator("page_size")
    @classmethod
    def _check_size(cls, value: str | None) -> str | None:
        return check_page_size(value) if value else None

    @field_validator("margin_top", "margin_right", "margin_bottom", "margin_left")
    @classmethod
    def _check_margin(cls, value: str | None) -> str | None:
        return check_margin(value) if value else None

    def page_setup(self) -> PageSetup:
        landscape = (
            self.orientation is Orientation.LANDSCAPE
            if self.orientation is not None
            else (True if self.landscape else None)
        )
        return PageSetup(
            size=self.page_size,
            landscape=landscape,
            margin_top=self.margin_top,
            margin_right=self.margin_right,
            margin_bottom=self.margin_bottom,
            margin_left=self.margin_left,
            header_html=self.header_html,
            footer_html=self.footer_html,
            css=self.css,
        )

    @property
    def secret(self) -> str | None:
        return self.password.get_secret_value() if self.password else None

    @property
    def pdfa_level(self) -> str | None:
        return None if self.pdfa is PdfA.NONE else self.pdfa.value


#: Inputs laid out as pages by the HTML engine.
_PAGE_FORMATS = frozenset({"html", "markdown", "zip"})


class ConvertOperation:
    name: ClassVar[str] = "convert"
    summary: ClassVar[str] = (
        "Office, HTML and Markdown to PDF; legacy office files to OOXML; any document "
        "to Markdown, HTML, text or DOCX."
    )
    queue: ClassVar[Family] = Family.CONVERT
    Params: ClassVar[type[OperationParams]] = ConvertParams

    def engine(self, params: OperationParams, mime: str) -> Engine | None:
        """LibreOffice for an office file made into PDF or another office file (or read,
        when it is a legacy one); Chromium for a web page printed by it."""
        assert isinstance(params, ConvertParams)
        fmt = format_of(mime)
        if fmt in OFFICE_FORMATS and params.to not in _MODEL_TARGETS:
            return Engine.LIBREOFFICE
        if mime in READ_THROUGH_LIBREOFFICE:
            return Engine.LIBREOFFICE
        chromium = params.engine is HtmlEngine.CHROMIUM and fmt in _PAGE_FORMATS
        return Engine.CHROMIUM if chromium and params.to is ConvertTarget.PDF else None

    def run(self, ctx: OperationContext, source: InputFile, params: OperationParams) -> Result:
        assert isinstance(params, ConvertParams)
        detection = detect(source.path, source.name)
        ext, mime = TARGETS[params.to]
        target = ctx.artifact_path(f"{OUTPUT_STEM}.{ext}")
        if detection.format in OFFICE_FORMATS and params.to not in _MODEL_TARGETS:
            made = convert_office(ctx, source.path, detection, params, ext, target)
        elif params.to is ConvertTarget.PDF and detection.format in _PAGE_FORMATS:
            made = page_to_pdf(
                ctx,
                source,
                params.page_setup(),
                target,
                engine=params.engine.value,
                pages=params.pages,
                pdfa=params.pdfa_level,
            )
        elif params.to is ConvertTarget.PDF:
            if detection.mime == PDF:
                raise UnsupportedFormat(PDF, "the input is a PDF already")
            if detection.format in _MEDIA_FORMATS:
                raise UnsupportedFormat(
                    detection.mime,
                    "images, audio and video are not converted to PDF here (a scan becomes a "
                    "searchable PDF with the ocr operation, output=searchable_pdf)",
                )
            if params.engine is HtmlEngine.CHROMIUM:
                raise InvalidParameter(
                    "engine",
                    "chromium lays out web pages (HTML, Markdown, a zipped site); "
                    "other documents are laid out by weasyprint",
                )
            made = document_pdf(ctx, source, params, target)
        else:
            made = convert_document(ctx, source, detection, params, target)
        payload = _payload(params, detection, mime, target, made)
        return Result(payload=payload, artifacts=[Artifact(target.name, target, mime)])


#: Inputs that are not documents laid out as pages.
_MEDIA_FORMATS = frozenset({"image", "audio", "video"})
#: Targets rendered from the document model, whatever the input.
_MODEL_TARGETS = frozenset({ConvertTarget.MARKDOWN, ConvertTarget.HTML, ConvertTarget.TEXT})


def _payload(
    params: ConvertParams,
    detection: Detection,
    mime: str,
    target: Path,
    made: dict[str, Any],
) -> dict[str, Any]:
    warnings: list[Warning] = made.get("warnings") or []
    pages = made.get("pages")
    if pages is None and mime == PDF:
        with pypdfium2.PdfDocument(str(target)) as pdf:
            pages = len(pdf)
    payload: dict[str, Any] = {
        "to": params.to.value,
        "input": {"mime": detection.mime, "format": detection.format},
        "output": {"name": target.name, "mime": mime, "size": target.stat().st_size},
        "engine": made["engine"],
        "warnings": [w.model_dump(mode="json", exclude_none=True) for w in warnings],
    }
    if pages is not None:
        payload["output"]["pages"] = pages
    if params.pdfa_level and mime == PDF:
        payload["output"]["pdfa"] = pdfa_claimed(target)
    return payload


def pdfa_claimed(path: Path) -> str | None:
    """The PDF/A level a PDF declares in its XMP metadata ('1a', '2b'), or None.

    LibreOffice 7.4 writes PDF/A-1 as level A (tagged), which meets level B too:
    the payload says what the file declares, not what was asked."""
    with pikepdf.open(path) as pdf:
        meta = pdf.open_metadata()
        part, conformance = meta.get("pdfaid:part"), meta.get("pdfaid:conformance")
    return f"{part}{conformance.lower()}" if part and conformance else None


# -- documents through the document model --------------------------------------------
_RENDERERS = {"markdown": render_markdown, "html": render_html, "text": render_text}


def _parsed(
    ctx: OperationContext, source: InputFile, params: ConvertParams
) -> tuple[Document, list[Block]]:
    reading = DocumentInput(
        pages=params.pages,
        password=SecretStr(params.secret) if params.secret else None,
    )
    ctx.progress(0.05, "reading the document")
    doc = parse_input(ctx, source, reading)
    return doc, selected_blocks(doc, reading)


def convert_document(
    ctx: OperationContext,
    source: InputFile,
    detection: Detection,
    params: ConvertParams,
    target: Path,
) -> dict[str, Any]:
    """``source`` rendered as Markdown, HTML or text, or written as DOCX, at ``target``."""
    to = params.to.value
    if to not in _RENDERERS and to != "docx":
        raise InvalidParameter(
            "to",
            f"the input ({detection.format}) cannot be converted to {to}: only office "
            "files become office formats other than docx",
        )
    doc, blocks = _parsed(ctx, source, params)
    if to == "docx":
        write_docx(doc, target, blocks)
        engine = "docx-writer"
    else:
        target.write_text(_RENDERERS[to](doc, blocks), encoding="utf-8")
        engine = f"{to}-renderer"
    return {"engine": engine, "pages": None, "warnings": doc.warnings}


def document_pdf(
    ctx: OperationContext, source: InputFile, params: ConvertParams, target: Path
) -> dict[str, Any]:
    """A document that is neither office nor a page, as a PDF of its HTML rendering."""
    doc, blocks = _parsed(ctx, source, params)
    assert ctx.workdir is not None
    folder = ctx.workdir / "site"
    folder.mkdir()
    ctx.progress(0.5, "laying out the pages")
    made = html_to_pdf(
        render_html(doc, blocks),
        folder,
        params.page_setup(),
        ctx.url_policy,
        target,
        pdfa=params.pdfa_level,
    )
    warnings: list[Warning] = [*doc.warnings, *made.warnings]
    return {"engine": "weasyprint", "pages": made.pages, "warnings": warnings}
