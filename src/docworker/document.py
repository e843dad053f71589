"""The document model: what every parser produces and every renderer reads.

A :class:`Document` holds pages, an ordered list of blocks (reading order), the
document's metadata, its embedded files and the warnings raised while parsing.
Every block carries its provenance: the page it came from, its box on that page
when known, and whether its text came from a text layer, OCR or the format's
native structure. The JSON form is versioned by ``schema_name``/``schema_version``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from docworker.errors import LimitExceeded

SCHEMA_NAME = "docworker.document"
SCHEMA_VERSION = "1.0"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BlockKind(StrEnum):
    TITLE = "title"
    HEADING = "heading"
    PARAGRAPH = "paragraph"
    LIST_ITEM = "list_item"
    TABLE = "table"
    IMAGE = "image"
    CODE = "code"
    FORMULA = "formula"
    CAPTION = "caption"
    QUOTE = "quote"
    FOOTNOTE = "footnote"
    HEADER = "header"
    FOOTER = "footer"
    PAGE_BREAK = "page_break"


class TextSource(StrEnum):
    TEXT = "text"
    OCR = "ocr"
    MIXED = "mixed"


class BlockSource(StrEnum):
    TEXT_LAYER = "text-layer"
    OCR = "ocr"
    NATIVE = "native"


class BBox(_Model):
    """A box in page coordinates: points from the page's top-left corner."""

    x0: float
    y0: float
    x1: float
    y1: float


class TableCell(_Model):
    row: int = Field(ge=0)
    col: int = Field(ge=0)
    text: str
    row_span: int = Field(default=1, ge=1)
    col_span: int = Field(default=1, ge=1)
    header: bool = False


class Table(_Model):
    """A table as a grid of cells; a spanning cell is listed once, at its top-left."""

    n_rows: int = Field(ge=0)
    n_cols: int = Field(ge=0)
    cells: list[TableCell] = Field(default_factory=list)

    def grid(self) -> list[list[str]]:
        """Rows of cell texts, a spanning cell's text repeated over the cells it covers."""
        rows = [["" for _ in range(self.n_cols)] for _ in range(self.n_rows)]
        for cell in self.cells:
            for r in range(cell.row, min(cell.row + cell.row_span, self.n_rows)):
                for c in range(cell.col, min(cell.col + cell.col_span, self.n_cols)):
                    rows[r][c] = cell.text
        return rows

    def header_rows(self) -> int:
        """How many leading rows are made only of header cells."""
        count = 0
        for r in range(self.n_rows):
            row_cells = [c for c in self.cells if c.row == r]
            if row_cells and all(c.header for c in row_cells):
                count += 1
            else:
                break
        return count


class Link(_Model):
    text: str
    url: str


class Word(_Model):
    """A word OCR found, with its box on the page and its recognition confidence (0..1)."""

    text: str
    bbox: BBox
    confidence: float


class Block(_Model):
    id: str
    kind: BlockKind
    text: str = ""
    #: Heading depth (1 = top) for headings, nesting depth (1 = top) for list items.
    level: int | None = None
    #: For list items: numbered (True) or bulleted (False).
    ordered: bool | None = None
    page: int | None = None
    bbox: BBox | None = None
    table: Table | None = None
    links: list[Link] = Field(default_factory=list)
    #: Programming language of a code block. (An image's alt text is its ``text``.)
    language: str | None = None
    source: BlockSource = BlockSource.NATIVE
    confidence: float | None = None
    #: The words of an OCR block, each with its box and confidence.
    words: list[Word] | None = None


class Page(_Model):
    number: int = Field(ge=1)
    width: float | None = None
    height: float | None = None
    rotation: int = 0
    text_source: TextSource = TextSource.TEXT
    confidence: float | None = None
    #: A name for pages that have one: a sheet name, a slide title.
    label: str | None = None


class Attachment(_Model):
    """A file embedded in the document (attachment, OLE object, e-mail part)."""

    name: str
    mime: str
    size: int = Field(ge=0)
    sha256: str
    #: Where in the parent it sits, e.g. ``word/embeddings/oleObject1.bin``.
    path: str | None = None


class Warning(_Model):
    code: str
    message: str
    page: int | None = None


class Metadata(_Model):
    title: str | None = None
    authors: list[str] = Field(default_factory=list)
    subject: str | None = None
    keywords: list[str] = Field(default_factory=list)
    created: datetime | None = None
    modified: datetime | None = None
    language: str | None = None
    producer: str | None = None
    creator: str | None = None
    encoding: str | None = None
    encrypted: bool = False
    page_count: int | None = None
    word_count: int = 0
    char_count: int = 0
    #: Format-specific fields (sheet names, form fields, ...), JSON values only.
    extra: dict[str, Any] = Field(default_factory=dict)


class Document(_Model):
    schema_name: str = SCHEMA_NAME
    schema_version: str = SCHEMA_VERSION
    format: str
    mime: str
    metadata: Metadata = Field(default_factory=Metadata)
    pages: list[Page] = Field(default_factory=list)
    blocks: list[Block] = Field(default_factory=list)
    attachments: list[Attachment] = Field(default_factory=list)
    warnings: list[Warning] = Field(default_factory=list)

    def text_of(self, block: Block) -> str:
        """Plain text of a block; tables become tab-separated rows."""
        if block.table is not None:
            return "\n".join("\t".join(row) for row in block.table.grid())
        return block.text


class BuildLimits(Protocol):
    """How much a document may hold while it is built (``ParseLimits`` has these)."""

    @property
    def max_output_chars(self) -> int: ...

    @property
    def max_blocks(self) -> int: ...


class DocumentBuilder:
    """Collects blocks in reading order, numbering them, and finishes the document.

    Parsers use it so that block ids, word and character counts and page counts
    are computed the same way for every format. It is also the one place where a
    document's text accumulates, so it is where the text is measured: past
    ``limits.max_output_chars`` characters or ``limits.max_blocks`` blocks the parse
    stops with :class:`~docworker.errors.LimitExceeded` as soon as the block that
    passes is added, before a document that unpacks to hundreds of megabytes of
    text has piled it up in memory.
    """

    def __init__(
        self,
        fmt: str,
        mime: str,
        metadata: Metadata | None = None,
        *,
        limits: BuildLimits | None = None,
    ) -> None:
        self.document = Document(format=fmt, mime=mime, metadata=metadata or Metadata())
        self._next_id = 1
        self._limits = limits
        #: Characters of text added so far (table cells included).
        self.chars = 0

    @property
    def metadata(self) -> Metadata:
        return self.document.metadata

    def add(self, kind: BlockKind, text: str = "", **fields: Any) -> Block | None:
        """Append a block; a text block whose text is only whitespace is dropped."""
        table = fields.get("table")
        # ``text.isspace()`` is ``not text.strip()`` for text that is not empty, without a copy.
        if kind not in _TEXTLESS_KINDS and table is None and (not text or text.isspace()):
            return None
        self._measure(len(text) + (sum(len(c.text) for c in table.cells) if table else 0))
        block = Block(id=f"b{self._next_id}", kind=kind, text=text, **fields)
        self._next_id += 1
        self.document.blocks.append(block)
        return block

    def chars_left(self) -> int | None:
        """Characters of text the document may still take (None: no limit)."""
        if self._limits is None:
            return None
        return self._limits.max_output_chars - self.chars

    def check_text(self, pending: int) -> None:
        """Refuse now if ``pending`` more characters, read but not yet added, pass the
        limit: for a reader that sees the text of one block pile up before the block is
        complete (a paragraph of millions of runs)."""
        if self._limits is not None and self.chars + pending > self._limits.max_output_chars:
            raise self._too_much_text(self.chars + pending)

    def _too_much_text(self, chars: int) -> LimitExceeded:
        assert self._limits is not None
        most = self._limits.max_output_chars
        return LimitExceeded(
            "output characters",
            chars,
            most,
            f"the document's text passed {most:,} characters (limits.max_output_chars) "
            "while it was read: reading stopped there",
        )

    def _measure(self, chars: int) -> None:
        """Count one more block of ``chars`` characters against the limits."""
        self.chars += chars
        if self._limits is None:
            return
        if self.chars > self._limits.max_output_chars:
            raise self._too_much_text(self.chars)
        if len(self.document.blocks) >= self._limits.max_blocks:
            raise LimitExceeded(
                "blocks",
                len(self.document.blocks) + 1,
                self._limits.max_blocks,
                f"the document holds more than {self._limits.max_blocks:,} blocks "
                "(paragraphs, headings, tables, ...; limits.max_blocks): reading stopped there",
            )

    def move_to_front(self, start: int) -> None:
        """Move the blocks added since the document held ``start`` before all the others,
        renumbering every block so that ids follow reading order: for a reader that
        meets what comes first (a Word document's page headers) only after the rest."""
        blocks = self.document.blocks
        blocks[:] = blocks[start:] + blocks[:start]
        for number, block in enumerate(blocks, 1):
            block.id = f"b{number}"

    def add_page(self, number: int, **fields: Any) -> Page:
        page = Page(number=number, **fields)
        self.document.pages.append(page)
        return page

    def warn(self, code: str, message: str, page: int | None = None) -> None:
        self.document.warnings.append(Warning(code=code, message=message, page=page))

    def attach(self, attachment: Attachment) -> None:
        self.document.attachments.append(attachment)

    def finish(self) -> Document:
        """Fill in the derived metadata (counts) and return the document."""
        doc = self.document
        words = chars = 0
        for block in doc.blocks:
            # A table counts each cell once (not once per grid position it spans).
            texts = [c.text for c in block.table.cells] if block.table else [block.text]
            for text in texts:
                words += len(text.split())
                chars += len(text)
        doc.metadata.word_count = words
        doc.metadata.char_count = chars
        if doc.pages and doc.metadata.page_count is None:
            doc.metadata.page_count = len(doc.pages)
        return doc


_TEXTLESS_KINDS = frozenset({BlockKind.PAGE_BREAK, BlockKind.IMAGE, BlockKind.TABLE})
