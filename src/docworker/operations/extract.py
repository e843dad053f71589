"""The ``extract`` operation: any document → its text, Markdown, HTML or JSON model."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, SecretStr, field_validator

from docworker.document import Block, Document
from docworker.formats.base import PageSelection, ParseContext
from docworker.formats.registry import parse_path
from docworker.operations.base import (
    InputFile,
    OperationContext,
    OperationParams,
    Result,
)
from docworker.render import OutputFormat, page_blocks, render


class ExtractParams(OperationParams):
    output: OutputFormat = Field(
        OutputFormat.MARKDOWN, description="text, markdown, html, or json (the document model)."
    )
    pages: str | None = Field(
        None,
        description="Pages to extract, 1-based: '1-3,5,9-'. Default: all.",
        examples=["1-3,5"],
    )
    per_page: bool = Field(False, description="Also return the output of each page on its own.")
    password: SecretStr | None = Field(None, description="Password of an encrypted document.")

    @field_validator("pages")
    @classmethod
    def _check_pages(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            PageSelection.parse(value)
            return value.strip()
        return None


class ExtractOperation:
    name: ClassVar[str] = "extract"
    summary: ClassVar[str] = "Text, Markdown, HTML or the JSON document model of any document."
    queue: ClassVar[str] = "documents"
    Params: ClassVar[type[OperationParams]] = ExtractParams

    def run(self, ctx: OperationContext, source: InputFile, params: OperationParams) -> Result:
        assert isinstance(params, ExtractParams)
        doc = parse_path(
            source.path,
            ParseContext(
                password=params.password.get_secret_value() if params.password else None,
                pages=PageSelection.parse(params.pages) if params.pages else None,
                limits=ctx.limits,
                structure=params.output is not OutputFormat.TEXT,
                progress=ctx.progress,
                cancelled=ctx.cancelled,
            ),
            name=source.name,
            mime=source.mime,
        )
        return Result(payload=extract_payload(doc, params))


def _selected_blocks(doc: Document, params: ExtractParams) -> list[Block]:
    if params.pages is None:
        return doc.blocks
    selection = PageSelection.parse(params.pages)
    if not doc.pages:
        return doc.blocks
    return [b for b in doc.blocks if b.page is None or b.page in selection]


def extract_payload(doc: Document, params: ExtractParams) -> dict[str, Any]:
    """The JSON body of an extract result."""
    blocks = _selected_blocks(doc, params)
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
