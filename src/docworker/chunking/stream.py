"""A document's blocks as one text, each block's place in it known.

Chunkers cut this text, but only ever into spans whose blocks are known: every
block that is kept becomes a :class:`Segment` of the stream carrying its heading
path, its section, its top-level section and its page. What is kept, and how:

- page headers, page footers and page breaks are dropped (they repeat on every
  page and would break sentences apart), as are blocks without text;
- a table is written as a Markdown pipe table, one line a row;
- code keeps its inner indentation; every other block is its text, stripped;
- blocks are apart by a blank line, the items of one list by a line break.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from docworker.document import Block, BlockKind, Document
from docworker.render.document import render_markdown

DROPPED_KINDS = frozenset({BlockKind.HEADER, BlockKind.FOOTER, BlockKind.PAGE_BREAK})
_HEADING_KINDS = frozenset({BlockKind.TITLE, BlockKind.HEADING})


@dataclass(frozen=True)
class Segment:
    """One block's text in the stream, ``text[start:end]``, with its context."""

    block: Block
    start: int
    end: int
    #: The texts of the headings it sits under, outermost first; a heading's own
    #: path ends with itself.
    path: tuple[str, ...]
    #: The heading that opens its section (itself for a heading), or None.
    section: Block | None
    #: The number of the top-level section it is in (0 before the first one).
    top: int
    #: Its page, or the page of the block before it when it has none.
    page: int | None
    #: For a list item: the number of its list (items of one list share it).
    list_run: int | None

    @property
    def is_heading(self) -> bool:
        return self.block.kind in _HEADING_KINDS


@dataclass
class Stream:
    """The text chunkers cut, and the blocks it is made of, in order."""

    text: str
    segments: list[Segment] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ends = [s.end for s in self.segments]

    def covering(self, start: int, end: int) -> list[Segment]:
        """The segments that share at least one character with ``text[start:end]``."""
        first = bisect.bisect_right(self._ends, start)
        found = []
        for segment in self.segments[first:]:
            if segment.start >= end:
                break
            found.append(segment)
        return found

    def segment_at(self, offset: int) -> Segment:
        """The segment holding ``offset``, or the first one after it."""
        index = min(bisect.bisect_right(self._ends, offset), len(self.segments) - 1)
        return self.segments[index]


def block_text(doc: Document, block: Block) -> str:
    """What a kept block contributes to the stream ("" for nothing)."""
    if block.kind in DROPPED_KINDS:
        return ""
    if block.table is not None:
        return render_markdown(doc, [block]).strip("\n")
    if block.kind is BlockKind.CODE:
        return block.text.strip("\n")
    return block.text.strip()


def table_header_rows(block: Block) -> int:
    """How many leading rows of a table's Markdown act as its header: the rows
    marked as header cells, and at least the first row, which Markdown shows as
    the header whatever it holds."""
    return max(block.table.header_rows() if block.table else 0, 1)


class _Outline:
    """The headings open at a point of the document, outermost first, and how many
    top-level sections have begun (a title, or a heading of the shallowest level)."""

    def __init__(self, doc: Document) -> None:
        levels = [b.level or 1 for b in doc.blocks if b.kind is BlockKind.HEADING]
        self.top_level = min(levels, default=1)
        self.open: list[tuple[int, Block]] = []
        self.top = 0

    def enter(self, heading: Block) -> None:
        level = 0 if heading.kind is BlockKind.TITLE else heading.level or 1
        if level <= self.top_level:
            self.top += 1
        while self.open and self.open[-1][0] >= level:
            self.open.pop()
        self.open.append((level, heading))

    def path(self) -> tuple[str, ...]:
        return tuple(" ".join(h.text.split()) for _, h in self.open)

    def section(self) -> Block | None:
        return self.open[-1][1] if self.open else None


def build_stream(doc: Document) -> Stream:
    """The document's kept blocks as one text, each with its heading path and page."""
    outline = _Outline(doc)
    parts: list[str] = []
    segments: list[Segment] = []
    offset = list_run = 0
    page: int | None = None
    previous: Block | None = None
    for block in doc.blocks:
        page = block.page if block.page is not None else page
        text = block_text(doc, block)
        if not text.strip():
            continue
        if block.kind in _HEADING_KINDS:
            outline.enter(block)
        in_list = block.kind is BlockKind.LIST_ITEM
        continues_list = in_list and previous is not None and previous.kind is BlockKind.LIST_ITEM
        if in_list and not continues_list:
            list_run += 1
        if parts:
            parts.append("\n" if continues_list else "\n\n")
            offset += len(parts[-1])
        parts.append(text)
        segments.append(
            Segment(
                block=block,
                start=offset,
                end=offset + len(text),
                path=outline.path(),
                section=outline.section(),
                top=outline.top,
                page=page,
                list_run=list_run if in_list else None,
            )
        )
        offset += len(text)
        previous = block
    return Stream("".join(parts), segments)
