"""The ``extract`` operation: any document → its text, Markdown, HTML or JSON model."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, SecretStr

from docworker.document import Block, Document
from docworker.engines.ocr import TesseractOcr, validate_languages
from docworker.formats.base import OcrPolicy, PageSelection, ParseContext
from docworker.formats.registry import parse_path
from docworker.operations.base import (
    InputFile,
    OperationContext,
    OperationParams,
    PagesParam,
    Result,
)
from docworker.render import OutputFormat, page_blocks, render


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


class ExtractParams(DocumentInput):
    output: OutputFormat = Field(
        OutputFormat.MARKDOWN, description="text, markdown, html, or json (the document model)."
    )
    per_page: bool = Field(False, description="Also return the output of each page on its own.")


class ExtractOperation:
    name: ClassVar[str] = "extract"
    summary: ClassVar[str] = "Text, Markdown, HTML or the JSON document model of any document."
    queue: ClassVar[str] = "documents"
    Params: ClassVar[type[OperationParams]] = ExtractParams

    def run(self, ctx: OperationContext, source: InputFile, params: OperationParams) -> Result:
        assert isinstance(params, ExtractParams)
        doc = parse_input(ctx, source, params, structure=params.output is not OutputFormat.TEXT)
        return Result(payload=extract_payload(doc, params))


def parse_input(
    ctx: OperationContext, source: InputFile, params: DocumentInput, *, structure: bool = True
) -> Document:
    """The input document, parsed as ``params`` ask (``structure=False``: text is enough)."""
    if params.ocr_lang is not None and params.ocr != "off":
        validate_languages(params.ocr_lang, "ocr_lang")
    return parse_path(
        source.path,
        ParseContext(
            password=params.password.get_secret_value() if params.password else None,
            pages=PageSelection.parse(params.pages) if params.pages else None,
            limits=ctx.limits,
            structure=structure,
            progress=ctx.progress,
            cancelled=ctx.cancelled,
            convert=ctx.convert,
            ocr=TesseractOcr(languages=ctx.ocr_languages, psm=ctx.ocr_psm),
            ocr_policy=params.ocr,
            ocr_languages=params.ocr_lang,
            ocr_dpi=ctx.ocr_dpi,
        ),
        name=source.name,
        mime=source.mime,
    )


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
