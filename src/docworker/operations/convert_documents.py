"""Documents through the document model, for the ``convert`` operation: any document
the service reads → Markdown, HTML or text (rendered), → DOCX (written by
:mod:`docworker.render.docx`), and → PDF (its HTML rendering laid out by WeasyPrint).

The document is parsed as the ``extract`` operation parses it (same parsers, same
limits, OCR where a page has no text), and the pages asked for are kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from docworker.document import Block, Document, Warning
from docworker.errors import InvalidParameter
from docworker.formats.detect import Detection
from docworker.operations.base import InputFile, OperationContext
from docworker.operations.extract import DocumentInput, parse_input, selected_blocks
from docworker.render.document import OutputFormat, render_html, render_markdown, render_text
from docworker.render.docx import write_docx
from docworker.render.html_pdf import html_to_pdf

if TYPE_CHECKING:
    from docworker.operations.convert import ConvertParams

_RENDERERS = {
    "markdown": (render_markdown, OutputFormat.MARKDOWN),
    "html": (render_html, OutputFormat.HTML),
    "text": (render_text, OutputFormat.TEXT),
}


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
        renderer, _ = _RENDERERS[to]
        target.write_text(renderer(doc, blocks), encoding="utf-8")
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
