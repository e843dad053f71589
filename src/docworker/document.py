"""The document model: what every parser produces and every renderer reads.

A :class:`Document` holds pages, an ordered list of blocks (reading order), the
document's metadata, its embedded files and the warnings raised while parsing.
Every block carries its provenance: the page it came from, its box on that page
when known, and whether its text came from a text layer, OCR or the format's
native structure. The JSON form is versioned by ``schema_name``/``schema_version``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
)

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


class RowCells(Sequence[TableCell]):
    """A large table's cells held as rows of texts: a :class:`TableCell` is made only
    when one is asked for.

    A CSV or a sheet of a hundred thousand rows would otherwise hold a model object per
    cell, several times the memory of its text and about half the time of its reading.
    Held here are the rows of texts, the cells that span (model objects, at their
    top-left), the places that are not listed (those the spanning cells cover), how
    many leading rows are header rows, and whether an empty cell is listed: a sheet
    lists every cell of its range, a CSV only the filled ones (and the empty ones of
    its header row, up to the row's own length). Read as a sequence, it gives the cells
    a :class:`Table` of the same content built cell by cell lists, in the same order;
    :class:`Table`'s own methods read the rows directly.
    """

    __slots__ = ("_listed", "covered", "empty_listed", "header_rows", "n_cols", "rows", "spans")

    def __init__(
        self,
        rows: list[list[str]],
        n_cols: int,
        *,
        header_rows: int = 0,
        spans: Sequence[TableCell] = (),
        covered: set[tuple[int, int]] | None = None,
        empty_listed: bool = True,
    ) -> None:
        #: Cell texts by row; a row may stop short of ``n_cols`` (its last cells are empty).
        self.rows = rows
        self.n_cols = n_cols
        self.header_rows = header_rows
        #: The spanning cells, each at its top-left, cut to the table.
        self.spans = {(cell.row, cell.col): cell for cell in spans}
        #: The places not listed, whatever their text: by default those the spans cover.
        self.covered = _covered_by(self.spans.values()) if covered is None else covered
        self.empty_listed = empty_listed
        self._listed: list[TableCell] | None = None

    def _places(self) -> Iterator[tuple[int, int, str, bool, TableCell | None]]:
        """Each listed cell as (row, column, text, header, the spanning cell or None)."""
        spans, covered = self.spans, self.covered
        for r, texts in enumerate(self.rows):
            header = r < self.header_rows
            row = texts[: self.n_cols]
            if self.empty_listed and len(row) < self.n_cols:
                row += [""] * (self.n_cols - len(row))
            for c, text in enumerate(row):
                if covered and (r, c) in covered:
                    continue
                if spans and (r, c) in spans:
                    yield r, c, text, header, spans[(r, c)]
                elif text or header or self.empty_listed:
                    yield r, c, text, header, None

    def leading_header_rows(self) -> int:
        """The header rows that list a cell at all (a row wholly covered by spans does not)."""
        count = 0
        for r in range(min(self.header_rows, len(self.rows))):
            width = self.n_cols if self.empty_listed else min(len(self.rows[r]), self.n_cols)
            if all((r, c) in self.covered for c in range(width)):
                break
            count += 1
        return count

    def __iter__(self) -> Iterator[TableCell]:
        make = TableCell.model_construct
        for r, c, text, header, span in self._places():
            yield span if span is not None else make(row=r, col=c, text=text, header=header)

    def dumped(self) -> list[dict[str, Any]]:
        """The cells as the JSON form lists them (each a :class:`TableCell` dumped),
        made without the model objects."""
        return [
            span.model_dump()
            if span is not None
            else {"row": r, "col": c, "text": text, "row_span": 1, "col_span": 1, "header": header}
            for r, c, text, header, span in self._places()
        ]

    def __len__(self) -> int:
        return len(self._all())

    def __getitem__(self, index: Any) -> Any:
        return self._all()[index]

    def _all(self) -> list[TableCell]:
        """Every cell as a model object, made once: only for a reader that indexes."""
        if self._listed is None:
            # From the iterator: list(self) would ask this sequence's length first.
            self._listed = list(iter(self))
        return self._listed

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RowCells | list):
            return list(iter(self)) == list(iter(other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"RowCells({len(self.rows)} rows, {self.n_cols} columns)"


def _covered_by(spans: Iterable[TableCell]) -> set[tuple[int, int]]:
    """The places spanning cells cover, their own top-left places left out."""
    return {
        (r, c)
        for cell in spans
        for r in range(cell.row, cell.row + cell.row_span)
        for c in range(cell.col, cell.col + cell.col_span)
        if (r, c) != (cell.row, cell.col)
    }


#: A serialization context key (``model_dump(context={DEFER_ROW_CELLS: True})``): the
#: tables held as rows dump an empty ``cells`` list, for the caller to fill in with
#: :meth:`RowCells.dumped` (see ``render_json``).
DEFER_ROW_CELLS = "defer_row_cells"


class Table(_Model):
    """A table as a grid of cells; a spanning cell is listed once, at its top-left.

    ``cells`` is a list of :class:`TableCell`, or, for a large table read from rows
    (:meth:`from_rows`), a :class:`RowCells` that makes them only when asked: read
    a table through its methods (:meth:`grid`, :meth:`iter_grid`, :meth:`cell_texts`,
    :meth:`header_rows`), which read either form at its own pace. Both forms dump to
    the same JSON.
    """

    n_rows: int = Field(ge=0)
    n_cols: int = Field(ge=0)
    #: Validated, a list; a :class:`RowCells` when made by :meth:`from_rows`.
    cells: Sequence[TableCell] = Field(default_factory=list)

    @classmethod
    def from_rows(
        cls,
        rows: list[list[str]],
        n_cols: int | None = None,
        *,
        header_rows: int = 0,
        spans: Sequence[TableCell] = (),
        covered: set[tuple[int, int]] | None = None,
        empty_listed: bool = True,
    ) -> Table:
        """A table of cell texts by row, held as rows (see :class:`RowCells`).

        ``n_cols`` defaults to the longest row; ``spans`` are the spanning cells, cut to
        the table; ``covered`` the places not listed (by default those the spans cover);
        ``header_rows`` leading rows are header cells.
        """
        width = max((len(row) for row in rows), default=0) if n_cols is None else n_cols
        cells = RowCells(
            rows,
            width,
            header_rows=header_rows,
            spans=spans,
            covered=covered,
            empty_listed=empty_listed,
        )
        return cls.model_construct(n_rows=len(rows), n_cols=width, cells=cells)

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        cells = self.cells
        if not isinstance(cells, RowCells):
            return handler(self)
        # Asked to, leave the cells to the caller: pydantic copies whatever a serializer
        # returns once more in JSON mode, which for a large table is hundreds of megabytes.
        deferred = isinstance(info.context, dict) and info.context.get(DEFER_ROW_CELLS)
        listed = [] if deferred else cells.dumped()
        return {"n_rows": self.n_rows, "n_cols": self.n_cols, "cells": listed}

    def grid(self) -> list[list[str]]:
        """Rows of cell texts, a spanning cell's text repeated over the cells it covers."""
        return list(self.iter_grid())

    def iter_grid(self) -> Iterator[list[str]]:
        """The rows of :meth:`grid` one at a time, each of ``n_cols`` texts."""
        cells = self.cells
        if not isinstance(cells, RowCells):
            yield from self._cell_grid()
            return
        # What changes a row: places not listed (blank) and spans (their text spread).
        changes: dict[int, list[tuple[int, int, str]]] = {}
        for r, c in sorted(cells.covered):
            changes.setdefault(r, []).append((c, c + 1, ""))
        # In reading order, a later cell's text over an earlier one's, as in _cell_grid.
        listed = (span for place, span in sorted(cells.spans.items()) if place not in cells.covered)
        for cell in listed:
            for r in range(cell.row, min(cell.row + cell.row_span, self.n_rows)):
                changes.setdefault(r, []).append((cell.col, cell.col + cell.col_span, cell.text))
        width = self.n_cols
        for r, texts in enumerate(cells.rows):
            if len(texts) == width and r not in changes:
                yield texts
                continue
            row = (texts + [""] * (width - len(texts)))[:width]
            # The blanks come first, then the spans: a span's text wins over a blank.
            for start, end, text in changes.get(r, ()):
                stop = min(end, width)
                row[start:stop] = [text] * max(stop - start, 0)
            yield row

    def _cell_grid(self) -> list[list[str]]:
        rows = [["" for _ in range(self.n_cols)] for _ in range(self.n_rows)]
        for cell in self.cells:
            for r in range(cell.row, min(cell.row + cell.row_span, self.n_rows)):
                for c in range(cell.col, min(cell.col + cell.col_span, self.n_cols)):
                    rows[r][c] = cell.text
        return rows

    def cell_texts(self) -> Iterator[str]:
        """The text of each cell, a spanning cell's once (for counting words and characters)."""
        cells = self.cells
        if not isinstance(cells, RowCells) or cells.covered or cells.spans:
            yield from (cell.text for cell in cells)
            return
        for row in cells.rows:
            yield from row[: self.n_cols]

    def text_counts(self) -> tuple[int, int]:
        """Words and characters of the cells' texts, each cell counted once."""
        cells = self.cells
        if not isinstance(cells, RowCells) or cells.covered or cells.spans:
            texts = list(self.cell_texts())
            return sum(len(text.split()) for text in texts), sum(map(len, texts))
        words = chars = 0
        for texts in cells.rows:
            row = texts[: self.n_cols]
            # Joined by a space, a row splits into the words of its cells, one split a row.
            words += len(" ".join(row).split())
            chars += sum(map(len, row))
        return words, chars

    def text_size(self) -> int:
        """The length of the table's plain text: rows of tab-separated cells, a line each."""
        size = 0
        for row in self.iter_grid():
            size += sum(map(len, row)) + max(len(row) - 1, 0) + 1
        return max(size - 1, 0)

    def header_rows(self) -> int:
        """How many leading rows are made only of header cells."""
        if isinstance(self.cells, RowCells):
            return self.cells.leading_header_rows()
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
    #: Heading depth (1 = top) for headings, nesting depth (1 = top) for list items; for
    #: a code block inside a list item, the depth of that item.
    level: int | None = None
    #: For list items: numbered (True) or bulleted (False).
    ordered: bool | None = None
    #: For the first item of a numbered list: the number it starts at. An item with one
    #: begins a new list, even right after another list of the same depth.
    start: int | None = None
    #: For a footnote or endnote: the mark that refers to it in the text (``1`` for a
    #: ``[1]`` there, which is linked to ``#note-1``).
    label: str | None = None
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
            return "\n".join("\t".join(row) for row in block.table.iter_grid())
        return block.text

    def text_size(self, block: Block) -> int:
        """``len(self.text_of(block))``, without making the text of a table."""
        return block.table.text_size() if block.table is not None else len(block.text)


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
        self._measure(len(text) + (sum(map(len, table.cell_texts())) if table else 0))
        block = Block(id=f"b{self._next_id}", kind=kind, text=text, **fields)
        self._next_id += 1
        self.document.blocks.append(block)
        return block

    def add_line(self, block: Block, text: str, links: list[Link] | None = None) -> None:
        """Add a line to a block already added (a list item's second paragraph), counted
        against the limits as the block's own text is."""
        self.check_text(len(text) + 1)
        self.chars += len(text) + 1
        block.text = f"{block.text}\n{text}" if block.text else text
        if links:
            block.links = [*block.links, *links]

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

    def insert(self, before: dict[str, list[Block]], after: dict[str, list[Block]]) -> None:
        """Put new blocks before or after the blocks with the given ids (a block told apart
        from one already added), renumbering every block so that ids follow reading order.
        Their text is counted already: it was part of the block they come out of."""
        blocks = self.document.blocks
        blocks[:] = [
            new
            for block in blocks
            for new in (*before.get(block.id, ()), block, *after.get(block.id, ()))
        ]
        for number, block in enumerate(blocks, 1):
            block.id = f"b{number}"
        self._next_id = len(blocks) + 1

    def remove(self, doomed: set[str]) -> None:
        """Take the blocks whose ids are in ``doomed`` out of the document, renumbering
        the rest so that ids stay in reading order without gaps."""
        blocks = self.document.blocks
        blocks[:] = [block for block in blocks if block.id not in doomed]
        for number, block in enumerate(blocks, 1):
            block.id = f"b{number}"
        self._next_id = len(blocks) + 1

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
            if block.table is not None:  # each cell once, not once per place it spans
                block_words, block_chars = block.table.text_counts()
                words += block_words
                chars += block_chars
            else:
                words += len(block.text.split())
                chars += len(block.text)
        doc.metadata.word_count = words
        doc.metadata.char_count = chars
        if doc.pages and doc.metadata.page_count is None:
            doc.metadata.page_count = len(doc.pages)
        return doc


_TEXTLESS_KINDS = frozenset({BlockKind.PAGE_BREAK, BlockKind.IMAGE, BlockKind.TABLE})
