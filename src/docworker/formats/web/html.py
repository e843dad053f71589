"""HTML and XHTML pages: decoding, metadata, and the walk from elements to blocks.

Decoding follows the HTML rules in miniature: a byte-order mark first, then a
charset declared in the first kilobyte (``<meta charset>``, ``http-equiv`` or
an XML declaration), then :func:`decode_text`'s sniffing. lxml parses the text
the way browsers repair it. What a reader never sees (scripts, styles,
templates, inline SVG, the head) is dropped. When the page marks its main
content (``main``, ``article``, ``role=main``), its banner and footer
landmarks are dropped too, since only then is it clear they are site chrome;
the rest of the body stays, navigation included, because on measured pages
keeping it lost less text than cutting down to the main element did. Asked for
the main content alone (``content=main``), the reader walks only the element
:mod:`~docworker.formats.web.main_content` chooses as the article.

:class:`HtmlWalker` is also what the Markdown parser uses for raw HTML blocks.
"""

from __future__ import annotations

import html.parser
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import ClassVar

import lxml.html
from lxml import etree

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
from docworker.errors import CorruptDocument, LimitExceeded
from docworker.formats.base import HtmlContent, ParseContext, Source
from docworker.formats.encoding import bom_encoding, decode_text
from docworker.formats.web.main_content import emptied_headings, main_content, page_heading
from docworker.formats.web.page_meta import add_excerpt, page_metadata

#: The HTML standard's prescan looks at this many bytes for a declared charset.
_PRESCAN_BYTES = 1024
_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)
_XML_DECLARATION = re.compile(r"""^\s*<\?xml[^>]*\?>""")
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([\w.:-]+)""")

#: Elements whose content is never shown as text.
_INVISIBLE = frozenset(
    [
        "script",
        "style",
        "noscript",
        "template",
        "svg",
        "math",
        "head",
        "iframe",
        "object",
        "canvas",
        "audio",
        "video",
        "select",
        "input",
        "textarea",
        "map",
        # A ruby's reading guide (``rt``, with ``rp``'s fallback brackets) sits above its
        # base text in small type: the text is the base, as the Word and ODF readers read it.
        "rt",
        "rp",
    ]
)
#: The page's banner and footer: a ``header``/``footer`` outside any sectioning
#: element, or an element with that ARIA role (the HTML-AAM mapping).
_CHROME_XPATH = etree.XPath(
    "self::*[@role='banner' or @role='contentinfo'] | self::*[(self::header or self::footer)"
    " and not(ancestor::article or ancestor::aside or ancestor::main or ancestor::nav"
    " or ancestor::section)]"
)
#: The only tags that can be chrome without an ARIA role.
_HEADER_FOOTER = frozenset(["header", "footer"])
#: Elements that end the line of text before them and start a new one.
_BLOCK = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "caption",
        "center",
        "dd",
        "details",
        "dialog",
        "dir",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hgroup",
        "hr",
        "html",
        "legend",
        "li",
        "main",
        "menu",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    ]
)
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_DISPLAY_NONE = re.compile(r"display\s*:\s*none", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")
_SOFT_HYPHENS = re.compile(r"\xad|&(?:shy|#0*173|#x0*ad);", re.IGNORECASE)
#: A document type declaration's internal subset: after the prolog (XML declaration,
#: comments, space), the name and external identifier, its declarations from ``[`` to
#: ``]`` (quoted literals and comments may hold a ``]``). Possessive throughout: one
#: pass, whatever the text, and no match for a subset never closed.
_INTERNAL_SUBSET = re.compile(
    r"\A\ufeff?(?:\s++|<\?[^>]*+>|<!--(?:(?!-->).)*+-->)*+<!DOCTYPE\b[^\[>]*+"
    r"(\[(?:[^\]\"'<]++|\"[^\"]*+\"|'[^']*+'|<!--(?:(?!-->).)*+-->|<(?!!--))*+\])",
    re.IGNORECASE | re.DOTALL,
)
#: How pages mark their main content; each test stops at the first match.
_MARKS_MAIN_CONTENT = etree.XPath(
    "boolean(//main) or boolean(//article) or boolean(//@role[. = 'main'])"
)
_LANGUAGE_CLASS = re.compile(r"\b(?:language|lang)-([\w+#.-]+)")
#: Browsers cap spans at these values; a larger one is an error or an attack.
_MAX_COLSPAN = 1000
_MAX_ROWSPAN = 65534


def declared_charset(data: bytes) -> str | None:
    """The charset a page declares in its first kilobyte, if any."""
    head = data[:_PRESCAN_BYTES]
    match = _XML_ENCODING.match(head) or _META_CHARSET.search(head)
    return match.group(1).decode("ascii") if match else None


def decode_html(data: bytes, transport_charset: str | None = None) -> tuple[str, str]:
    """The page's text and encoding: BOM, then the declared charset, then sniffing.

    A charset the transport names (an e-mail part's ``Content-Type``) comes
    before the page's own declaration, as the HTML standard orders them.
    """
    declared = None if bom_encoding(data) else transport_charset or declared_charset(data)
    decoded = decode_text(data, declared)
    # lxml refuses str input that still carries an encoding declaration.
    return _XML_DECLARATION.sub("", decoded.text, count=1), decoded.encoding


def _space(text: str | None) -> str:
    """Inline text as a reader sees it: each run of whitespace one space."""
    return _WHITESPACE.sub(" ", text) if text else ""


def _elements(node: etree._Element, path: etree.XPath) -> list[etree._Element]:
    """The elements an XPath expression selects from ``node``."""
    found = path(node)
    return [e for e in found if isinstance(e, etree._Element)] if isinstance(found, list) else []


def _children(
    element: etree._Element, *names: str, nested_in: set[str] | frozenset[str] = frozenset()
) -> list[etree._Element]:
    """Children named ``names`` in document order, also those one level down in ``nested_in``.

    Matched by local name, so XHTML in its namespace reads like HTML.
    """
    found: list[etree._Element] = []
    for child in element:
        tag = _tag(child)
        if tag in names:
            found.append(child)
        elif tag in nested_in:
            found.extend(c for c in child if _tag(c) in names)
    return found


def _tag(element: etree._Element) -> str:
    """The element's lower-case local name; '' for comments and processing instructions."""
    tag = element.tag
    return _local_name(tag) if isinstance(tag, str) else ""


@lru_cache(maxsize=1024)
def _local_name(tag: str) -> str:
    """A tag's lower-case local name: ``{namespace}P`` reads as ``p``."""
    return tag.rsplit("}", 1)[-1].lower()


#: Elements nested deeper than this are read as plain text. libxml2 keeps 255 levels,
#: but each costs the walk a few Python calls (a heading four): a page of 250 nested
#: headings would exhaust the call stack. Real pages stay far below.
MAX_DEPTH = 120


def flat_text(element: etree._Element) -> str:
    """All the visible text under ``element`` on one line, blocks set apart by spaces."""
    if len(element) == 0:
        # Most links and cells hold text alone; that needs no walk.
        tag = _tag(element)
        if tag == "img":
            # An image in a cell or a link stands for its alt text.
            return " ".join((element.get("alt") or "").split())
        if not tag or tag in _INVISIBLE:
            return ""
        return " ".join((element.text or "").split())
    parts: list[str] = []
    _visible_text(element, parts)
    return " ".join("".join(parts).split())


def _visible_text(node: etree._Element, parts: list[str]) -> None:
    """Append the text :func:`flat_text` reads under ``node`` to ``parts``."""
    tag = _tag(node)
    if tag == "img":
        parts.append(f" {node.get('alt') or ''} ")
    elif tag and tag not in _INVISIBLE:
        block = tag in _BLOCK
        if block or tag == "br":
            parts.append(" ")
        parts.append(node.text or "")
        for child in node:
            _visible_text(child, parts)
            parts.append(child.tail or "")
        if block:
            parts.append(" ")


def raw_text(element: etree._Element) -> str:
    """The text under ``element`` as written, whitespace and all.

    Built from text and tails rather than ``tostring(method="text")``, which
    would expand entity references that the parser deliberately left alone.
    """
    parts = [element.text or ""]
    for child in element:
        if isinstance(child.tag, str):
            parts.append(raw_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _hidden(element: etree._Element) -> bool:
    """Hidden by the ``hidden`` attribute or an inline ``display: none`` style."""
    if element.get("hidden") is not None:
        return True
    style = element.get("style")
    return bool(style) and _DISPLAY_NONE.search(style or "") is not None


@dataclass(frozen=True)
class _Context:
    """What the inline text gathered now becomes when it is flushed."""

    kind: BlockKind = BlockKind.PARAGRAPH
    level: int | None = None
    ordered: bool | None = None


_HEADING_CONTEXTS = {h: _Context(BlockKind.HEADING, level=n) for h, n in _HEADINGS.items()}
_QUOTE_CONTEXT = _Context(BlockKind.QUOTE)
_CAPTION_CONTEXT = _Context(BlockKind.CAPTION)


def _list_start(element: etree._Element) -> int:
    """The number an ``ol`` starts at: its ``start``, 1 when it has none that is a number."""
    value = (element.get("start") or "").strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) < 10 else 1


@lru_cache(maxsize=64)
def _list_item_context(depth: int, ordered: bool) -> _Context:
    return _Context(BlockKind.LIST_ITEM, level=depth, ordered=ordered)


class HtmlWalker:
    """Walks an element tree in document order and adds its blocks to a builder.

    Inline text is gathered until a block-level element starts or ends, then
    flushed as one block of the kind the enclosing context says (paragraph,
    list item, heading, quote, caption).
    """

    def __init__(self, builder: DocumentBuilder, max_cells: int, drop_chrome: bool = False) -> None:
        self.builder = builder
        self.max_cells = max_cells
        self.drop_chrome = drop_chrome
        self.cells = 0
        self._inline: list[str] = []
        #: Where in ``_inline`` each ``<br>`` came: the only line breaks there are.
        self._breaks: list[int] = []
        self._links: list[Link] = []
        self._contexts: list[_Context] = [_Context()]
        self._list_depth = 0
        #: The list item being read and its context: its further paragraphs are its lines.
        self._item: tuple[Block, _Context] | None = None
        #: The number the numbered list being read starts at, until its first item has it.
        self._start: int | None = None
        #: How deep the walk is, and whether it went past MAX_DEPTH.
        self._depth = 0
        self._deep = False
        #: Counts the elements read other than as plain inline text (hidden,
        #: dropped, block-level or handled): while it stays put, the text
        #: gathered is exactly what :func:`flat_text` reads.
        self._non_inline = 0

    def walk(self, element: etree._Element) -> None:
        """Add the blocks of ``element`` and everything under it."""
        self._children(element)
        self.flush()

    def read(self, element: etree._Element) -> None:
        """Add the blocks of ``element`` itself, read as its tag says (a heading as a
        heading), and everything under it."""
        self._element(element)
        self.flush()

    def flush(self) -> None:
        """Turn the inline text gathered so far into one block."""
        inline = self._inline
        if not inline:
            self._breaks.clear()
            if self._links:
                self._links = []
            return
        if self._breaks:
            # Each line's whitespace, source line breaks included, is collapsed.
            bounds = pairwise([0, *self._breaks, len(inline)])
            lines = (" ".join("".join(inline[a:b]).split()) for a, b in bounds)
            text = "\n".join(line for line in lines if line)
            self._breaks.clear()
        else:
            text = " ".join("".join(inline).split())
        # Cleared in place: the walk holds on to this list while it fills it.
        inline.clear()
        if text:
            context = self._contexts[-1]
            item = self._item
            # Only straight after the item: text after a table in it keeps its place.
            if (
                item is not None
                and item[1] is context
                and self.builder.document.blocks[-1] is item[0]
            ):
                self.builder.add_line(item[0], text, self._links)
            else:
                start, self._start = self._start, None
                block = self.builder.add(
                    context.kind,
                    text,
                    level=context.level,
                    ordered=context.ordered,
                    links=self._links,
                    **({"start": start} if start is not None and context.ordered else {}),
                )
                if block is not None and context.kind is BlockKind.LIST_ITEM:
                    self._item = (block, context)
        self._links = []

    def _children(self, element: etree._Element) -> None:
        # Whitespace is collapsed when the text is flushed.
        append = self._inline.append
        text = element.text
        if text:
            append(text)
        for child in element:
            self._element(child)
            tail = child.tail
            if tail:
                append(tail)

    def _element(self, element: etree._Element) -> None:
        tag = _tag(element)
        if not tag or tag in _INVISIBLE:
            return
        if self._depth >= MAX_DEPTH:
            self._too_deep(element)
            return
        # No try/finally: a walk that raises is not walked further.
        self._depth += 1
        self._read(element, tag)
        self._depth -= 1

    def _too_deep(self, element: etree._Element) -> None:
        """An element past :data:`MAX_DEPTH`: its text, read without the walk."""
        if not self._deep:
            self._deep = True
            self.builder.warn(
                "nested-too-deep",
                f"elements nested more than {MAX_DEPTH} deep were read as plain text",
            )
        self._non_inline += 1
        self._inline.append(f" {flat_text(element)} ")

    def _read(self, element: etree._Element, tag: str) -> None:
        if _hidden(element) or (
            self.drop_chrome
            and (tag in _HEADER_FOOTER or element.get("role"))
            and _elements(element, _CHROME_XPATH)
        ):
            self._non_inline += 1
            return
        handler = _HANDLERS.get(tag)
        if handler is not None:
            self._non_inline += 1
            handler(self, element)
        elif tag in _BLOCK:
            self._non_inline += 1
            self.flush()
            self._children(element)
            self.flush()
        else:
            # Inline elements are most of a page: their children are read here
            # rather than through another call.
            append = self._inline.append
            text = element.text
            if text:
                append(text)
            for child in element:
                self._element(child)
                tail = child.tail
                if tail:
                    append(tail)

    def _in_context(self, element: etree._Element, context: _Context) -> None:
        self.flush()
        self._contexts.append(context)
        self._children(element)
        self.flush()
        self._contexts.pop()

    def _heading(self, element: etree._Element) -> None:
        self._in_context(element, _HEADING_CONTEXTS[_tag(element)])

    def _list(self, element: etree._Element) -> None:
        self.flush()
        self._list_depth += 1
        ordered = _tag(element) == "ol"
        # Its first item starts a list of its own, even right after another.
        start = _list_start(element) if ordered else None
        for child in element:
            if _tag(child) == "li":
                # Each item is one block: paragraphs after its first go on as its lines.
                self._item = None
                self._start, start = start, None
                self._in_context(child, _list_item_context(self._list_depth, ordered))
                self._item = None
            else:
                self._element(child)
        self._start = None
        self._list_depth -= 1

    def _quote(self, element: etree._Element) -> None:
        self._in_context(element, _QUOTE_CONTEXT)

    def _caption(self, element: etree._Element) -> None:
        self._in_context(element, _CAPTION_CONTEXT)

    def _code(self, element: etree._Element) -> None:
        self.flush()
        # Like browsers, drop the one line break that may follow the opening tag.
        text = raw_text(element).removeprefix("\n").rstrip()
        # In a list item the code belongs to the item: it takes the item's depth.
        context = self._contexts[-1]
        level = context.level if context.kind is BlockKind.LIST_ITEM else None
        self.builder.add(BlockKind.CODE, text, language=code_language(element), level=level)

    def _line_break(self, _element: etree._Element) -> None:
        self._breaks.append(len(self._inline))

    def _anchor(self, element: etree._Element) -> None:
        start, non_inline = len(self._inline), self._non_inline
        self._children(element)
        href = element.get("href")
        if href and not href.startswith("javascript:"):
            if self._non_inline == non_inline:
                # Only inline text under the link: what was just gathered is its text.
                text = " ".join("".join(self._inline[start:]).split())
            else:
                text = flat_text(element)
            if text:
                self._links.append(Link(text=text, url=href))

    def _image(self, element: etree._Element) -> None:
        self.flush()
        src = element.get("src") or ""
        alt = _space(element.get("alt")).strip()
        links = [Link(text=alt, url=src)] if src and not src.startswith("data:") else []
        self.builder.add(BlockKind.IMAGE, alt, links=links)

    def _table(self, element: etree._Element) -> None:
        self.flush()
        if is_layout_table(element):
            # Read as the page it lays out: each cell's content in reading order.
            for row in _children(element, "tr", nested_in=_ROW_GROUPS):
                for cell in _children(row, "td", "th"):
                    self._children(cell)
                    self.flush()
            return
        for caption in _children(element, "caption"):
            self._caption(caption)
        table = build_table(element, self.max_cells - self.cells)
        self.cells += table.n_rows * table.n_cols
        anchors = [(flat_text(a), a.get("href")) for a in element.iter("a")]
        links = [Link(text=text, url=href) for text, href in anchors if text and href]
        if table.cells:
            self.builder.add(BlockKind.TABLE, table=table, links=links)


_Handler = Callable[[HtmlWalker, etree._Element], None]
_HANDLERS: dict[str, _Handler] = {
    **{h: HtmlWalker._heading for h in _HEADINGS},
    "ul": HtmlWalker._list,
    "ol": HtmlWalker._list,
    "blockquote": HtmlWalker._quote,
    "figcaption": HtmlWalker._caption,
    "pre": HtmlWalker._code,
    "br": HtmlWalker._line_break,
    "a": HtmlWalker._anchor,
    "img": HtmlWalker._image,
    "table": HtmlWalker._table,
}


_ROW_GROUPS = frozenset({"thead", "tbody", "tfoot"})
#: Content no data table's cell holds, but the cells of a table laying out a page
#: (an e-mail's, an old site's) do: headings, lists, quotes, code.
_LAYOUT_TAGS = ("h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "blockquote", "pre")
#: What a table of one cell holds when it only frames content: paragraphs, a table.
_FRAMING_TAGS = ("p", "table", "div")
#: Paths to a table's own cells: in its rows, in its row groups' rows.
_CELL_PATHS = ("tr/td", "tr/th", "tbody/tr/td", "tbody/tr/th", "tfoot/tr/td", "tfoot/tr/th")


def is_layout_table(element: etree._Element) -> bool:
    """Whether a table lays out a page rather than holding data.

    It says so (``role="presentation"``), or, without header cells, caption or
    header row group, a cell of it holds headings, lists, quotes or code, or it is
    one cell framing paragraphs or a table. A data table nested in a cell does not
    make its table a layout: it is read into that cell.
    """
    if (element.get("role") or "").lower() in {"presentation", "none"}:
        return True
    if any(_tag(child) in {"caption", "thead"} for child in element):
        return False
    if any(next(element.iterfind(path), None) is not None for path in _CELL_PATHS[1::2]):
        return False  # a header cell
    cells = itertools.islice(
        itertools.chain.from_iterable(element.iterfind(path) for path in _CELL_PATHS[::2]), 2
    )
    only = list(cells)
    if len(only) == 1 and _holds(only[0], _FRAMING_TAGS):
        return True
    # Searched by libxml2 as one walk, nested tables included: a data table's cells
    # hold none of these, so the first found settles it.
    return _holds(element, _LAYOUT_TAGS)


def _holds(element: etree._Element, tags: tuple[str, ...]) -> bool:
    return next(element.iter(*tags), None) is not None


def code_language(element: etree._Element) -> str | None:
    """The language a ``pre`` block names in its class or its ``code`` child's."""
    for node in (element, *element.iter("code")):
        match = _LANGUAGE_CLASS.search(node.get("class") or "")
        if match:
            return match.group(1)
    return None


def _span(cell: etree._Element, name: str, maximum: int) -> int:
    try:
        value = int((cell.get(name) or "1").strip())
    except ValueError:
        return 1
    return min(max(value, 1), maximum)


def build_table(element: etree._Element, max_cells: int) -> Table:
    """The grid of an HTML table, its spans placed as browsers place them.

    Only the table's own rows count: a table nested in a cell is part of that
    cell's text. A cell goes in the first grid slot of its row that no earlier
    row's rowspan has taken. Spans count against ``max_cells`` as the slots
    they cover, so a few huge spans cannot make a huge grid; and so does the grid,
    every row as wide as the widest (what a rendering lays out), so one wide row over
    many narrow ones cannot either.
    """
    rows = _children(element, "tr", nested_in={"thead", "tbody", "tfoot"})
    taken: set[tuple[int, int]] = set()
    cells: list[TableCell] = []
    n_cols = 0
    for r, row in enumerate(rows):
        c = 0
        for cell in _children(row, "td", "th"):
            while (r, c) in taken:
                c += 1
            row_span = min(_span(cell, "rowspan", _MAX_ROWSPAN), len(rows) - r)
            col_span = _span(cell, "colspan", _MAX_COLSPAN)
            if len(taken) + row_span * col_span > max_cells:
                raise LimitExceeded("cells", len(taken) + row_span * col_span, max_cells)
            grid = len(rows) * max(n_cols, c + col_span)
            if grid > max_cells:
                raise LimitExceeded("cells", grid, max_cells)
            taken.update((r + dr, c + dc) for dr in range(row_span) for dc in range(col_span))
            cells.append(
                TableCell(
                    row=r,
                    col=c,
                    text=flat_text(cell),
                    row_span=row_span,
                    col_span=col_span,
                    header=_tag(cell) == "th",
                )
            )
            c += col_span
        n_cols = max(n_cols, c)
    n_cols = max([n_cols, *(col + 1 for _, col in taken)])
    return Table(n_rows=len(rows), n_cols=n_cols, cells=cells)


def page_title(root: etree._Element) -> str:
    """The text of the page's ``<title>`` ('' when it has none)."""
    element = root.find("head/title")
    return flat_text(element) if element is not None else ""


def marks_main_content(root: etree._Element) -> bool:
    """Whether the page says where its main content is (``main``, ``article``, role)."""
    return _MARKS_MAIN_CONTENT(root) is True


def add_fragment(builder: DocumentBuilder, markup: str, max_cells: int) -> int:
    """Add the blocks of an HTML fragment (raw HTML in Markdown); returns the cells used."""
    try:
        root = lxml.html.fragment_fromstring(markup, create_parent="div", parser=_html_parser())
    except (etree.ParserError, ValueError):
        return 0
    walker = HtmlWalker(builder, max_cells)
    walker.walk(root)
    return walker.cells


def parse_page(text: str) -> etree._Element | None:
    """The element tree of a whole page's text; None when the text is only whitespace.

    Soft hyphens, written or as references, go first: they only say where a word may
    break, and left in they split it in two for a search.
    """
    if not text.strip():
        return None
    text = _SOFT_HYPHENS.sub("", without_internal_subset(text))
    try:
        # libxml2 reads UTF-8 bytes faster than the str it would first convert.
        markup: str | bytes = text.encode("utf-8")
        parser = _page_parser("utf-8")
    except UnicodeEncodeError:
        markup, parser = text, _page_parser()
    try:
        root = lxml.html.document_fromstring(markup, parser=parser)
    except (etree.ParserError, ValueError) as exc:
        raise CorruptDocument("html", str(exc)) from exc
    if any(error.type_name == "ERR_RESOURCE_LIMIT" for error in parser.error_log):
        # libxml2 stops at elements nested 256 deep, dropping the rest of the page
        # (the deep text and everything after it): read it again without that limit.
        return capped_tree(text, TREE_DEPTH)
    return root


def without_internal_subset(text: str) -> str:
    """``text`` without the internal subset of its document type declaration, if any.

    XHTML may declare entities and attributes in ``<!DOCTYPE html [...]>``. An HTML
    parser ends the declaration at the subset's first ``>`` and reads the rest as
    markup and text, so a stray ``]>`` would open the page. The subset is only
    declarations: it goes whole, and the ``<!DOCTYPE ...>`` around it stays.
    """
    found = _INTERNAL_SUBSET.match(text)
    return text if found is None else text[: found.start(1)] + text[found.end(1) :]


#: How deep :func:`capped_tree` nests elements; deeper ones are read into the deepest.
TREE_DEPTH = 200
#: Elements that have no end tag.
_VOID = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    }
)


#: Characters an element tree cannot hold (XML 1.0): C0 controls but tab, newline and
#: carriage return, surrogates, and the two noncharacters at the end of the BMP.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


#: The names of elements and attributes the rebuilt tree takes (plain XML names, without
#: a namespace prefix); others are left out.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("", text)


class _CappedBuilder(html.parser.HTMLParser):
    """Builds an element tree from a page with the standard library's tokenizer, which
    reads any nesting without recursion, opening elements no deeper than ``depth``: the
    tags below are left out and their text goes to the deepest element open. A page
    libxml2 cannot read whole (nested deeper than it allows) keeps all its text so.
    Characters a tree cannot hold are dropped, and a tag whose name it cannot hold is
    left out (its text kept)."""

    def __init__(self, depth: int) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = depth
        self.builder = etree.TreeBuilder()
        self.open: list[str] = []
        #: Start tags left out (below the depth, or unnamable), not yet closed.
        self.beyond = 0
        self.builder.start("html", {})
        self.open.append("html")

    def _start(self, tag: str, attrs: list[tuple[str, str | None]]) -> bool:
        """Open ``tag`` in the tree; False when the tree cannot hold its name (checked
        first: a tree builder that refuses a name is left unusable)."""
        if not _NAME.fullmatch(tag):
            return False
        clean: dict[str | bytes, str | bytes] = {
            name: _xml_text(value or "") for name, value in attrs if _NAME.fullmatch(name)
        }
        self.builder.start(tag, clean)
        return True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "html":
            return
        if tag in _VOID:
            if len(self.open) < self.depth and self._start(tag, attrs):
                self.builder.end(tag)
            return
        if len(self.open) >= self.depth or not self._start(tag, attrs):
            self.beyond += 1
            return
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID or tag == "html":
            return
        if self.beyond:
            self.beyond -= 1
            return
        if tag not in self.open[1:]:
            return  # an end tag with no start: left out
        while self.open[-1] != tag:
            self.builder.end(self.open.pop())
        self.builder.end(self.open.pop())

    def handle_data(self, data: str) -> None:
        self.builder.data(_xml_text(data))

    def close(self) -> etree._Element:  # type: ignore[override]
        super().close()
        while self.open:
            self.builder.end(self.open.pop())
        root: etree._Element = self.builder.close()
        return root


def capped_tree(text: str, depth: int) -> etree._Element:
    """The element tree of a page, nested at most ``depth`` deep (see
    :class:`_CappedBuilder`), with a ``<body>`` as :func:`walk_page` looks for."""
    reader = _CappedBuilder(depth)
    reader.feed(text)
    root = reader.close()
    if root.find("body") is None:
        body = etree.SubElement(root, "body")
        for child in [c for c in root if c.tag not in ("head", "body")]:
            body.append(child)
    return root


def walk_page(
    builder: DocumentBuilder, root: etree._Element, max_cells: int, content: HtmlContent = "full"
) -> int:
    """Add the blocks of a page's body (e-mail HTML bodies and, in ``main`` mode, EPUB
    chapters go here too); returns the table cells used.

    ``content="main"`` reads only the article (:mod:`.main_content`), headed by the
    page's title heading when the article's element does not hold it, and drops the
    headings its clutter leaves empty; the tree is changed in place then.
    """
    if content == "main":
        article = main_content(root)
        heading = page_heading(root, article.element, page_title(root))
        start = len(builder.document.blocks)
        walker = HtmlWalker(builder, max_cells)
        if heading is not None:
            walker.read(heading)
        walker.read(article.element)
        builder.remove(emptied_headings(builder.document.blocks[start:], article.cut_under))
        return walker.cells
    body = root.find("body")
    walker = HtmlWalker(builder, max_cells, marks_main_content(root))
    walker.walk(body if body is not None else root)
    return walker.cells


class HtmlParser:
    """``text/html`` and XHTML: headings, paragraphs, lists, tables, code, quotes, images."""

    name: ClassVar[str] = "html"
    media_types: ClassVar[frozenset[str]] = frozenset({"text/html", "application/xhtml+xml"})

    def parse(self, source: Source, ctx: ParseContext) -> Document:
        text, encoding = decode_html(source.path.read_bytes())
        root = parse_page(text)
        metadata = (
            page_metadata(root, page_title(root), ctx.html_content)
            if root is not None
            else Metadata()
        )
        metadata.encoding = encoding
        builder = DocumentBuilder(self.name, source.mime, metadata, limits=ctx.limits)
        if root is not None:
            walk_page(builder, root, ctx.limits.max_cells, ctx.html_content)
            if ctx.html_content == "main":
                add_excerpt(builder.document)
        if not builder.document.blocks:
            builder.warn("empty", "the page holds no visible text")
        ctx.progress(1.0, f"{len(builder.document.blocks)} blocks")
        return builder.finish()


def _html_parser() -> lxml.html.HTMLParser:
    # No network, ever; comments and processing instructions are not content.
    return lxml.html.HTMLParser(remove_comments=True, remove_pis=True, no_network=True)


def _page_parser(encoding: str | None = None) -> etree.HTMLParser:
    """The same parser with lxml's own element classes and no table of ids.

    lxml.html's classes are looked up by a Python call for every element the
    walk touches; nothing here uses their extra methods, nor looks up ids.
    """
    return etree.HTMLParser(
        encoding=encoding,
        remove_comments=True,
        remove_pis=True,
        no_network=True,
        collect_ids=False,
    )
