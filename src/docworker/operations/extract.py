"""The ``extract`` operation: any document → its text, Markdown, HTML or JSON model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field, SecretStr

from docworker.document import Block, Document
from docworker.engines.ocr import TesseractOcr, validate_languages
from docworker.formats.base import (
    HtmlContent,
    OcrPolicy,
    PageSelection,
    ParseContext,
    PrefetchedOcr,
)
from docworker.formats.detect import detect
from docworker.formats.registry import READ_THROUGH_LIBREOFFICE, TEXT_TRUNCATED, parse_path
from docworker.operations.base import (
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
from docworker.operations.ocr_parts import PDF, prefetched_pages
from docworker.render.document import OutputFormat, page_blocks, render


class DocumentInput(OperationParams):
    """How to read the input document: the parameters of every operation that parses one."""

    pages: PagesParam = Field(
        None,
        description="Pages to extract, 1-based: '1-3,5,9-'. Default: all.",
        examples=["1-3,5"],
    )
    password: SecretStr | None = Field(None, description="Password of an encrypted document.")
    ocr: OcrPolicy = Field(
        "auto",
        description="OCR of images and image-only pages: auto (where there is no usable "
        "text), force (every page), off.",
    )
    ocr_lang: str | None = Field(
        None,
        description="Tesseract languages for OCR joined by '+', e.g. 'eng+kor'. "
        "Default: the service's OCR language setting.",
        examples=["eng+kor"],
    )


#: What the ``content`` parameter says, for the API's forms and documents.
CONTENT_DESCRIPTION = (
    "What of a web page (HTML, XHTML, an e-mail's HTML body, an EPUB chapter) is read: "
    "full (all its visible text, the default) or main (only the article: without "
    "navigation, sidebars, footers, cookie banners, related links, edit links and "
    "reference lists; its headings, lists, tables, captions and links kept; the "
    "metadata gains the published and modified dates, byline, site name and canonical "
    "URL the page declares). Other formats ignore it."
)


class ExtractParams(DocumentInput):
    output: OutputFormat = Field(
        OutputFormat.MARKDOWN, description="text, markdown, html, or json (the document model)."
    )
    content: HtmlContent = Field("full", description=CONTENT_DESCRIPTION)
    per_page: bool = Field(False, description="Also return the output of each page on its own.")
    sheet_names: bool = Field(
        True,
        description="Open each sheet of a spreadsheet (xlsx, xls, ods) with a heading of its "
        "name. With false the sheets' tables follow one another without it; the names stay "
        "in the metadata (sheets) and, per page, as the page's label.",
    )


class DocumentOperation:
    """An operation that parses its input document, then makes its payload from it.

    A PDF with many pages to read by OCR is split: ``ocr`` parts read those pages
    on several workers, then the document is parsed once, whole, with what they
    read (so headings, running headers and reading order are decided on every
    page, as when nothing is split).
    """

    def payload(self, doc: Document, params: OperationParams) -> dict[str, Any]:
        raise NotImplementedError

    def structure(self, params: OperationParams) -> bool:
        """Whether the payload needs the document's structure, or its text is enough."""
        return True

    def engine(self, params: OperationParams, mime: str) -> Engine | None:
        """LibreOffice for the legacy binary Office files, which are read through it."""
        return Engine.LIBREOFFICE if mime in READ_THROUGH_LIBREOFFICE else None

    def run(self, ctx: OperationContext, source: InputFile, params: OperationParams) -> Result:
        assert isinstance(params, DocumentInput)
        doc = parse_input(ctx, source, params, structure=self.structure(params))
        return Result(payload=self.payload(doc, params), errors=limit_errors(doc))

    def split(
        self, ctx: OperationContext, source: InputFile, params: OperationParams, plan: SplitPlan
    ) -> list[SplitPart] | None:
        assert isinstance(params, DocumentInput)
        return split_ocr_pages(ctx, source, params, plan)

    def merge(
        self,
        ctx: OperationContext,
        source: InputFile,
        params: OperationParams,
        parts: list[PartResult],
    ) -> Result:
        assert isinstance(params, DocumentInput)
        pages = prefetched_pages(parts)
        doc = parse_input(ctx, source, params, structure=self.structure(params), ocr_pages=pages)
        return Result(
            payload=self.payload(doc, params), errors=merge_errors(parts) + limit_errors(doc)
        )


class ExtractOperation(DocumentOperation):
    name: ClassVar[str] = "extract"
    summary: ClassVar[str] = "Text, Markdown, HTML or the JSON document model of any document."
    queue: ClassVar[Family] = Family.DOCUMENTS
    Params: ClassVar[type[OperationParams]] = ExtractParams

    def payload(self, doc: Document, params: OperationParams) -> dict[str, Any]:
        assert isinstance(params, ExtractParams)
        return extract_payload(doc, params)

    def structure(self, params: OperationParams) -> bool:
        assert isinstance(params, ExtractParams)
        return params.output is not OutputFormat.TEXT


#: Pages of a PDF looked at to tell whether it has pages to read by OCR at all.
PROBE_PAGES = 8


def split_ocr_pages(
    ctx: OperationContext, source: InputFile, params: DocumentInput, plan: SplitPlan
) -> list[SplitPart] | None:
    """``ocr`` parts for the pages of a PDF that ``params`` have read by OCR, when there
    are enough of them for ``plan``; the parse that follows takes their results
    (:func:`~docworker.operations.ocr_parts.prefetched_pages`) instead of reading them."""
    if params.ocr == "off" or (source.mime or detect(source.path, source.name).mime) != PDF:
        return None
    # Imported here: the PDF parser loads with the first PDF, not with the operations.
    from docworker.formats.pdf.parser import pages_to_ocr

    parse_ctx = document_context(ctx, params)
    scans = pages_to_ocr(
        source.path, parse_ctx, sample=PROBE_PAGES, at_least=max(plan.min_pages, 2)
    )
    ranges = plan.page_ranges(scans)
    if not ranges:
        return None
    # The parts read exactly as the parse would: its languages, resolution and steps.
    common: dict[str, Any] = {"output": "json"}
    if params.ocr_lang:
        common["languages"] = params.ocr_lang
    if params.password:
        common["password"] = params.password.get_secret_value()
    return [SplitPart(params=common | {"pages": pages}, operation="ocr") for pages in ranges]


def document_context(
    ctx: OperationContext,
    params: DocumentInput,
    *,
    structure: bool = True,
    ocr_pages: Mapping[int, PrefetchedOcr | None] | None = None,
) -> ParseContext:
    """How the input document is parsed, from the operation's context and ``params``."""
    return ParseContext(
        password=params.password.get_secret_value() if params.password else None,
        pages=PageSelection.parse(params.pages) if params.pages else None,
        limits=ctx.limits,
        structure=structure,
        sheet_names=params.sheet_names if isinstance(params, ExtractParams) else True,
        progress=ctx.progress,
        cancelled=ctx.cancelled,
        convert=ctx.convert,
        ocr=TesseractOcr(languages=ctx.ocr_languages, psm=ctx.ocr_psm),
        ocr_policy=params.ocr,
        ocr_languages=params.ocr_lang,
        ocr_dpi=ctx.ocr_dpi,
        ocr_pages=ocr_pages,
        # Only extract reads a page's main content; other operations read it all.
        html_content=params.content if isinstance(params, ExtractParams) else "full",
    )


def parse_input(
    ctx: OperationContext,
    source: InputFile,
    params: DocumentInput,
    *,
    structure: bool = True,
    ocr_pages: Mapping[int, PrefetchedOcr | None] | None = None,
) -> Document:
    """The input document, parsed as ``params`` ask (``structure=False``: text is enough;
    ``ocr_pages``: pages already read by OCR)."""
    if params.ocr_lang is not None and params.ocr != "off":
        validate_languages(params.ocr_lang, "ocr_lang")
    return parse_path(
        source.path,
        document_context(ctx, params, structure=structure, ocr_pages=ocr_pages),
        name=source.name,
        mime=source.mime,
    )


def limit_errors(doc: Document) -> list[dict[str, Any]]:
    """Error items for the text a limit cut from the document: the job ends ``partial``."""
    return [
        {"code": TEXT_TRUNCATED, "detail": warning.message}
        for warning in doc.warnings
        if warning.code == TEXT_TRUNCATED
    ]


def selected_blocks(doc: Document, params: DocumentInput) -> list[Block]:
    """The blocks of the pages asked for (all of them when the format has no pages)."""
    if params.pages is None:
        return doc.blocks
    selection = PageSelection.parse(params.pages)
    if not doc.pages:
        return doc.blocks
    return [b for b in doc.blocks if b.page is None or b.page in selection]


def extract_payload(doc: Document, params: ExtractParams) -> dict[str, Any]:
    """The JSON body of an extract result."""
    blocks = selected_blocks(doc, params)
    payload: dict[str, Any] = {
        "output": params.output.value,
        "format": doc.format,
        "mime": doc.mime,
        "content": render(doc, params.output, blocks),
        "metadata": doc.metadata.model_dump(mode="json", exclude_none=True),
        "warnings": [w.model_dump(mode="json", exclude_none=True) for w in doc.warnings],
        "attachments": [a.model_dump(mode="json", exclude_none=True) for a in doc.attachments],
    }
    if params.per_page:
        chosen = {b.id for b in blocks}
        payload["pages"] = [
            {"page": number, "content": render(doc, params.output, page_list)}
            for number, page_list in page_blocks(doc).items()
            if number is not None and any(b.id in chosen for b in page_list)
        ]
    return payload
