"""Markdown documents: CommonMark plus pipe tables, read with markdown-it-py.

The token stream becomes blocks: headings, paragraphs, list items (nesting
depth and numbering kept), tables, fenced code with its language, quotes and
images. Block text keeps the words of inline markup (emphasis, code spans, link
labels) without the markup itself; link targets go to ``Block.links``. Raw HTML
blocks are read by the HTML walker, so an HTML list in Markdown is a list too.
A YAML front matter block is read as simple ``key: value`` lines into the
metadata, without a YAML parser (and so without YAML's surprises).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.rules_block.table import table as read_table
from markdown_it.token import Token

from docworker.document import (
    Block,
    BlockKind,
    Document,
    DocumentBuilder,
    Link,
    Metadata,
    Table,
    TableCell,
)
from docworker.errors import LimitExceeded
from docworker.formats.base import ParseContext, Source
from docworker.formats.encoding import decode_text
from docworker.formats.web.html import add_fragment

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S | re.M)
_KEY_VALUE = re.compile(r"^([A-Za-z_][\w.-]*)\s*:\s*(.*)$")
_LIST_ENTRY = re.compile(r"^\s*-\s+(.*)$")
_BREAK_TAG = re.compile(r"^<br\s*/?>$", re.I)
#: The quote and list markers at the start of a line read as plain text.
_CONTAINER_MARKERS = re.compile(r"^(?:[ \t]*(?:>|[-+*](?=\s)|\d{1,9}[.)](?=\s)))*[ \t]*")
#: How deep markdown-it's tokens may nest (its ``maxNesting``: a quote is one level, a
#: list item two). The CommonMark preset's 20 dropped the text of a quote 20 deep, or of
#: a list 10 deep, without a word; what is deeper than this is read as plain text.
MAX_NESTING = 100
#: The containers whose content markdown-it drops past :data:`MAX_NESTING`.
_CONTAINERS = frozenset(
    {"blockquote_open", "bullet_list_open", "ordered_list_open", "list_item_open"}
)


#: A table's delimiter row (``|---|:--:|``): nothing but pipes, dashes, colons, space.
_DELIMITER_ROW = re.compile(r"[ \t]*[-:|][-:| \t]*")


def _table_within(max_columns: int) -> Callable[[StateBlock, int, int, bool], bool]:
    """markdown-it's table rule, refusing a table of more than ``max_columns`` columns.

    markdown-it's work per column and per cell is slow in Python (a table of 100,000
    columns took 5.7 s), so the columns are counted on the delimiter row before it
    starts: such a row past the limit, under a header line with as many pipes, is
    refused.
    """

    def rule(state: StateBlock, start: int, end: int, silent: bool) -> bool:
        if start + 2 <= end:
            begin = state.bMarks[start + 1] + state.tShift[start + 1]
            stop = state.eMarks[start + 1]
            header = state.src.count("|", state.bMarks[start], state.eMarks[start])
            if min(header, state.src.count("|", begin, stop)) > max_columns:
                row = state.src[begin:stop]
                columns = len(row.strip().strip("|").split("|"))
                if columns > max_columns and _DELIMITER_ROW.fullmatch(row):
                    raise LimitExceeded(
                        "table columns",
                        columns,
                        max_columns,
                        f"a table has {columns} columns, over the configured limit of "
                        f"{max_columns} (limits.max_markdown_columns)",
                    )
        return read_table(state, start, end, silent)

    return rule


def _scalar(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _value(raw: str) -> str | list[str]:
    """A front matter value: a quoted or plain scalar, or a ``[a, b]`` flow list."""
    raw = raw.strip()
    if raw.startswith("[") and raw.endswith("]"):
        return [_scalar(item) for item in raw[1:-1].split(",") if item.strip()]
    return _scalar(raw)


def parse_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """The ``key: value`` pairs of a leading front matter block, and the text after it.

    Understands what front matter mostly holds: scalars, quoted scalars, flow
    lists (``[a, b]``) and block lists (``- item`` lines under a bare key).
    Anything else in it is skipped, not guessed at.
    """
    match = _FRONT_MATTER.match(text)
    if match is None:
        return {}, text
    fields: dict[str, Any] = {}
    key: str | None = None
    for line in match.group(1).splitlines():
        entry = _LIST_ENTRY.match(line)
        pair = _KEY_VALUE.match(line)
        if entry and key is not None and isinstance(fields.get(key), list):
            fields[key].append(_scalar(entry.group(1)))
        elif pair:
            key = pair.group(1)
            fields[key] = _value(pair.group(2)) if pair.group(2).strip() else []
    return fields, text[match.end() :]


def _strings(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if str(v).strip()]
    return [v.strip() for v in str(value).split(",") if v.strip()]


def front_matter_metadata(fields: dict[str, Any], metadata: Metadata) -> None:
    """Fill the usual metadata from front matter keys; keep all of them in ``extra``."""
    lower = {k.lower(): v for k, v in fields.items()}
    if isinstance(lower.get("title"), str):
        metadata.title = lower["title"]
    for key in ("author", "authors"):
        if key in lower:
            metadata.authors = _strings(lower[key])
    for key in ("tags", "keywords"):
        if key in lower:
            metadata.keywords = _strings(lower[key])
    for key in ("lang", "language"):
        if isinstance(lower.get(key), str):
            metadata.language = lower[key]
    metadata.extra["front_matter"] = fields


@dataclass
class _Inline:
    """What an inline token renders to: its text, its links, its images."""

    text: str = ""
    links: list[Link] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)


def render_inline(token: Token) -> _Inline:
    """The words of an inline token without markup; link targets and images aside."""
    out = _Inline()
    parts: list[str] = []
    link: tuple[str, int] | None = None
    for child in token.children or []:
        kind = child.type
        if kind in {"text", "code_inline"}:
            parts.append(child.content)
        elif kind == "softbreak":
            parts.append(" ")
        elif kind == "hardbreak" or (kind == "html_inline" and _BREAK_TAG.match(child.content)):
            parts.append("\n")
        elif kind == "link_open":
            link = (str(child.attrs.get("href", "")), len(parts))
        elif kind == "link_close" and link is not None:
            label = " ".join("".join(parts[link[1] :]).split())
            if label and link[0]:
                out.links.append(Link(text=label, url=link[0]))
            link = None
        elif kind == "image":
            alt = " ".join(child.content.split())
            out.images.append((alt, str(child.attrs.get("src", ""))))
    lines = ("".join(parts)).split("\n")
    out.text = "\n".join(" ".join(line.split()) for line in lines).strip()
    return out


class _Walker:
    """Turns markdown-it's flat token stream into blocks, tracking lists and quotes."""

    def __init__(self, builder: DocumentBuilder, max_cells: int, source: str) -> None:
        self.builder = builder
        #: The source, for what is nested too deep to have tokens; its lines once needed.
        self.source = source
        self.lines: list[str] | None = None
        self.max_cells = max_cells
        self.cells = 0
        #: Whether each open list is numbered, outermost first.
        self.lists: list[bool] = []
        #: What a paragraph inside each open list item or quote becomes, innermost last.
        self.containers: list[tuple[BlockKind, int | None, bool | None]] = []
        #: The number the numbered list just opened starts at, until its first item takes it.
        self.start: int | None = None

    def run(self, tokens: list[Token]) -> None:
        i = 0
        while i < len(tokens):
            i = self._token(tokens, i)

    def _token(self, tokens: list[Token], i: int) -> int:
        """Handle ``tokens[i]``; return the index of the next token to handle."""
        token = tokens[i]
        kind = token.type
        if kind in _CONTAINERS and token.level >= MAX_NESTING - 1:
            return self._plain(tokens, i)
        if kind == "heading_open":
            self._text_block(tokens[i + 1], BlockKind.HEADING, int(token.tag[1:]), None)
            return i + 3
        if kind == "paragraph_open":
            self._text_block(tokens[i + 1], *self._paragraph_kind())
            return i + 3
        if kind in {"bullet_list_open", "ordered_list_open"}:
            self.lists.append(kind == "ordered_list_open")
            self.start = _start(token) if self.lists[-1] else self.start
        elif kind in {"bullet_list_close", "ordered_list_close"}:
            self.lists.pop()
        elif kind == "list_item_open":
            self.containers.append((BlockKind.LIST_ITEM, len(self.lists), self.lists[-1]))
        elif kind == "blockquote_open":
            self.containers.append((BlockKind.QUOTE, None, None))
        elif kind in {"list_item_close", "blockquote_close"}:
            self.containers.pop()
            self.start = None  # an item without text does not pass its number on
        elif kind in {"fence", "code_block"}:
            self._code(token)
        elif kind == "html_block":
            self.cells += add_fragment(self.builder, token.content, self.max_cells - self.cells)
        elif kind == "table_open":
            return self._table(tokens, i)
        return i + 1

    def _code(self, token: Token) -> None:
        """A code block; inside a list item it belongs to the item and takes its depth."""
        language = token.info.split()[0] if token.info.strip() else None
        inner = self.containers[-1] if self.containers else None
        level = inner[1] if inner and inner[0] is BlockKind.LIST_ITEM else None
        code = token.content.rstrip("\n")
        self.builder.add(BlockKind.CODE, code, language=language, level=level)

    def _plain(self, tokens: list[Token], i: int) -> int:
        """A container at the nesting limit, whose content has no tokens: its lines as
        one text block, markers left out; return the index after its closing token."""
        if self.lines is None:
            self.lines = self.source.replace("\r\n", "\n").replace("\r", "\n").split("\n")
            self.builder.warn(
                "nested-too-deep", "quotes and lists nested too deep were read as plain text"
            )
        start, end = tokens[i].map or (0, 0)
        text = " ".join(_CONTAINER_MARKERS.sub("", line) for line in self.lines[start:end])
        kind, level, ordered = self._paragraph_kind()
        self.builder.add(kind, " ".join(text.split()), level=level, ordered=ordered)
        depth = 0
        while True:
            depth += tokens[i].nesting
            i += 1
            if depth <= 0 or i >= len(tokens):
                return i

    def _paragraph_kind(self) -> tuple[BlockKind, int | None, bool | None]:
        if self.containers:
            return self.containers[-1]
        return BlockKind.PARAGRAPH, None, None

    def _text_block(
        self, token: Token, kind: BlockKind, level: int | None, ordered: bool | None
    ) -> None:
        inline = render_inline(token)
        start = None
        if kind is BlockKind.LIST_ITEM and ordered:  # the first item says where its list starts
            start, self.start = self.start, None
        fields = {"start": start} if start is not None else {}
        self.builder.add(
            kind, inline.text, level=level, ordered=ordered, links=inline.links, **fields
        )
        for alt, src in inline.images:
            links = [Link(text=alt, url=src)] if src else []
            self.builder.add(BlockKind.IMAGE, alt, links=links)

    def _table(self, tokens: list[Token], i: int) -> int:
        """Read a table from ``table_open`` to ``table_close``; return the index after it."""
        cells: list[TableCell] = []
        links: list[Link] = []
        row = col = n_cols = -1
        while tokens[i].type != "table_close":
            token = tokens[i]
            if token.type == "tr_open":
                row, col = row + 1, -1
            elif token.type in {"th_open", "td_open"}:
                col += 1
                n_cols = max(n_cols, col)
                inline = render_inline(tokens[i + 1])
                links.extend(inline.links)
                header = token.type == "th_open"
                cells.append(TableCell(row=row, col=col, text=inline.text, header=header))
            i += 1
        table = Table(n_rows=row + 1, n_cols=n_cols + 1, cells=cells)
        self.cells += table.n_rows * table.n_cols
        if self.cells > self.max_cells:
            raise LimitExceeded("cells", self.cells, self.max_cells)
        self.builder.add(BlockKind.TABLE, table=table, links=links)
        return i + 1


def _start(token: Token) -> int:
    """The number an ordered list starts at (markdown-it leaves out ``start`` for 1)."""
    value = token.attrs.get("start", 1)
    return value if isinstance(value, int) else int(str(value) or 1)


def _first_title(blocks: list[Block]) -> str | None:
    """A Markdown file's title is its first top-level heading, when it has no front matter one."""
    return next((b.text for b in blocks if b.kind == BlockKind.HEADING and b.level == 1), None)


class MarkdownParser:
    """``text/markdown``: CommonMark with tables, front matter into metadata."""

    name: ClassVar[str] = "markdown"
    media_types: ClassVar[frozenset[str]] = frozenset({"text/markdown", "text/x-markdown"})

    def parse(self, source: Source, ctx: ParseContext) -> Document:
        decoded = decode_text(source.path.read_bytes())
        fields, body = parse_front_matter(decoded.text)
        metadata = Metadata(encoding=decoded.encoding)
        if fields:
            front_matter_metadata(fields, metadata)
        builder = DocumentBuilder(self.name, source.mime, metadata, limits=ctx.limits)
        reader = MarkdownIt("commonmark", {"maxNesting": MAX_NESTING})
        reader.enable(["table", "strikethrough"])
        reader.block.ruler.at(
            "table",
            _table_within(ctx.limits.max_markdown_columns),
            {"alt": ["paragraph", "reference"]},
        )
        tokens = reader.parse(body)
        _Walker(builder, ctx.limits.max_cells, body).run(tokens)
        if metadata.title is None:
            metadata.title = _first_title(builder.document.blocks)
        if not builder.document.blocks:
            builder.warn("empty", "the document holds no text")
        ctx.progress(1.0, f"{len(builder.document.blocks)} blocks")
        return builder.finish()
