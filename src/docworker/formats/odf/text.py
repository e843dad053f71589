"""OpenDocument text content as blocks: paragraphs, headings, lists, tables, frames, notes.

:class:`TextReader` walks the ``text:`` elements of a text document's body, a
text box, a slide's shape or a header, and adds their blocks to a builder.
``text:h`` is a HEADING of its outline level; a paragraph whose style derives
from ``Title`` is the TITLE; lists nest, numbered or bulleted as their list
style says at each level. Whitespace follows the ODF rule (runs of spaces,
tabs and newlines in the XML are one space; ``text:s``, ``text:tab`` and
``text:line-break`` are the real ones). A frame anchored in a paragraph (image,
text box, table) follows the paragraph; a footnote follows it as a FOOTNOTE
block, and endnotes are kept for the end of the document; the text shows a note's
citation where it stands (``[1]``, linked to ``#note-1``), and the note carries it
as its label. Tracked deletions,
comments and generated indexes (tables of contents) are not document text.

An embedded object is read in place when it is a chart (its title and data);
an embedded text, spreadsheet or presentation and an OLE object
(``draw:object-ole``) are noted in :attr:`TextReader.objects` for the caller to
read through the embedded-document dispatch, their description shown in place.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from docworker.document import BlockKind, DocumentBuilder, Link
from docworker.errors import LimitExceeded
from docworker.formats.odf.tables import TABLE, grid_table, read_grid
from docworker.formats.ooxml.charts import MAX_CHART_CELLS, Chart, Series, add_chart
from docworker.formats.ooxml.package import clean_alt_text

TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
DRAW = "{urn:oasis:names:tc:opendocument:xmlns:drawing:1.0}"
STYLE = "{urn:oasis:names:tc:opendocument:xmlns:style:1.0}"
OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
SVG = "{urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0}"
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
_CHART = "{urn:oasis:names:tc:opendocument:xmlns:chart:1.0}"
_ODF = "application/vnd.oasis.opendocument."
#: The body element of an embedded document → its media type and file extension.
_SUBDOCUMENTS = {
    f"{OFFICE}text": (f"{_ODF}text", ".odt"),
    f"{OFFICE}spreadsheet": (f"{_ODF}spreadsheet", ".ods"),
    f"{OFFICE}presentation": (f"{_ODF}presentation", ".odp"),
}

_P, _H = f"{TEXT}p", f"{TEXT}h"
_LIST, _ITEM, _LIST_HEADER = f"{TEXT}list", f"{TEXT}list-item", f"{TEXT}list-header"
_TABLE = f"{TABLE}table"
_NOTE = f"{TEXT}note"
_ANNOTATION = f"{OFFICE}annotation"
#: Drawing elements that may hold text or an image, read as frames.
_SHAPES = frozenset(
    f"{DRAW}{name}"
    for name in (
        "frame",
        "custom-shape",
        "rect",
        "ellipse",
        "circle",
        "polygon",
        "polyline",
        "path",
        "regular-polygon",
        "caption",
        "g",
        "a",
    )
)
#: Not document text: change tracking, comments, declarations, generated indexes.
_SKIPPED = frozenset(
    {
        f"{TEXT}tracked-changes",
        f"{TEXT}sequence-decls",
        f"{TEXT}variable-decls",
        f"{TEXT}user-field-decls",
        f"{TEXT}table-of-content",
        f"{TEXT}illustration-index",
        f"{TEXT}table-index",
        f"{TEXT}object-index",
        f"{TEXT}user-index",
        f"{TEXT}alphabetical-index",
        f"{TEXT}bibliography",
        f"{OFFICE}forms",
        f"{TABLE}named-expressions",
        f"{TABLE}calculation-settings",
        _ANNOTATION,
        f"{OFFICE}annotation-end",
        f"{TEXT}soft-page-break",
        f"{SVG}title",
        f"{SVG}desc",
    }
)
#: Inline elements whose content is not part of the line they sit in (``text:number``
#: is the cached label of a numbered heading, which the heading level already says).
_INLINE_SKIPPED = frozenset(
    {
        _ANNOTATION,
        f"{TEXT}note-citation",
        f"{TEXT}ruby-text",
        f"{TEXT}tracked-changes",
        f"{TEXT}number",
    }
)
#: ``chart:class`` → the kind of plot, named as the DrawingML chart reader names it.
_CHART_KINDS = {
    "bar": "Bar", "line": "Line", "area": "Area", "circle": "Pie", "ring": "Doughnut",
    "scatter": "Scatter", "bubble": "Bubble", "radar": "Radar", "filled-radar": "Radar",
    "stock": "Stock", "surface": "Surface",
}  # fmt: skip
#: A cell with no display paragraph shows its value: the attributes to try, in order.
_VALUES = tuple(
    f"{OFFICE}{name}"
    for name in ("string-value", "value", "date-value", "time-value", "boolean-value")
)
_WHITESPACE = re.compile(r"[ \t\r\n]+")
#: Where a word may break when it is set; it is not part of the word.
_SOFT_HYPHEN = "\xad"
_HEADING_STYLE = re.compile(r"^Heading_20_(\d+)$")


class Styles:
    """What the styles say about structure: list numbering and title/heading styles."""

    def __init__(self, *roots: etree._Element | None) -> None:
        #: List style → {level: numbered (True), bulleted (False) or unmarked (None)}.
        self.lists: dict[str, dict[int, bool | None]] = {}
        self.parents: dict[str, str] = {}
        #: Text styles that hide what they are applied to (``text:display="none"``).
        self.hidden: set[str] = set()
        for root in roots:
            if root is not None:
                self._read(root)

    def _read(self, root: etree._Element) -> None:
        for list_style in root.iter(f"{TEXT}list-style"):
            levels: dict[int, bool | None] = {}
            for level in list_style:
                marker: bool | None = False
                # A numbering level with an empty format shows no label at all.
                if level.tag == f"{TEXT}list-level-style-number":
                    marker = True if level.get(f"{STYLE}num-format", "1") else None
                levels[_int(level.get(f"{TEXT}level"), 1)] = marker
            name = list_style.get(f"{STYLE}name")
            if name:
                self.lists[name] = levels
        for style in root.iter(f"{STYLE}style"):
            name, parent = style.get(f"{STYLE}name"), style.get(f"{STYLE}parent-style-name")
            if name and parent:
                self.parents[name] = parent
            properties = style.find(f"{STYLE}text-properties")
            if name and properties is not None and properties.get(f"{TEXT}display") == "none":
                self.hidden.add(name)

    def drop_hidden(self, root: etree._Element) -> None:
        """Take the spans set in a hidden style out of ``root``, keeping the text after each."""
        if not self.hidden:
            return
        for span in list(root.iter(f"{TEXT}span")):
            if self._hides(span.get(f"{TEXT}style-name")):
                _remove_keeping_tail(span)

    def _hides(self, name: str | None) -> bool:
        seen = 0
        while name and seen < 20:
            if name in self.hidden:
                return True
            name, seen = self.parents.get(name), seen + 1
        return False

    def marker(self, list_style: str | None, level: int) -> bool | None:
        """Whether items at ``level`` of ``list_style`` are numbered (True), bulleted
        (False) or shown without a label (None); beyond the deepest level defined, as there."""
        levels = self.lists.get(list_style or "", {})
        if not levels:
            return False
        defined = [k for k in levels if k <= level]
        return levels[max(defined) if defined else min(levels)]

    def role(self, paragraph_style: str | None) -> tuple[BlockKind, int | None]:
        """A paragraph's kind from its style's ancestry: TITLE, HEADING (level) or PARAGRAPH."""
        name, seen = paragraph_style, 0
        while name and seen < 20:
            if name == "Title":
                return BlockKind.TITLE, None
            heading = _HEADING_STYLE.match(name)
            if heading:
                return BlockKind.HEADING, max(int(heading.group(1)), 1)
            name, seen = self.parents.get(name), seen + 1
        return BlockKind.PARAGRAPH, None


@dataclass
class Inline:
    """A paragraph's text, its links, and what is anchored in it."""

    parts: list[str] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    notes: list[etree._Element] = field(default_factory=list)
    frames: list[etree._Element] = field(default_factory=list)

    @property
    def text(self) -> str:
        joined = "".join(self.parts).replace(_SOFT_HYPHEN, "")
        lines = (" ".join(line.split()) for line in joined.split("\n"))
        return "\n".join(line for line in lines if line)


def _remove_keeping_tail(element: etree._Element) -> None:
    parent = element.getparent()
    if parent is None:
        return
    tail = element.tail or ""
    previous = element.getprevious()
    if previous is not None:
        previous.tail = (previous.tail or "") + tail
    else:
        parent.text = (parent.text or "") + tail
    parent.remove(element)


def note_label(note: etree._Element) -> str:
    """The mark a note's citation shows in the text (``1``, ``i``, ``*``), or ""."""
    citation = note.find(f"{TEXT}note-citation")
    if citation is None:
        return ""
    return " ".join("".join(map(str, citation.itertext())).split())


def read_inline(element: etree._Element, into: Inline | None = None) -> Inline:
    """The inline content of a paragraph, heading or span."""
    inline = into or Inline()
    inline.parts.append(_WHITESPACE.sub(" ", element.text or ""))
    for node in element:
        tag = node.tag
        if tag == f"{TEXT}s":
            inline.parts.append(" " * min(_int(node.get(f"{TEXT}c"), 1), 100))
        elif tag == f"{TEXT}tab":
            inline.parts.append("\t")
        elif tag == f"{TEXT}line-break":
            inline.parts.append("\n")
        elif tag == _NOTE:
            inline.notes.append(node)
            label = note_label(node)
            if label:  # the mark the text shows, linked to the note as Word's reader links it
                inline.parts.append(f"[{label}]")
                inline.links.append(Link(text=f"[{label}]", url=f"#note-{label}"))
        elif tag in _SHAPES:
            inline.frames.append(node)
        elif tag == f"{TEXT}a":
            _link(node, inline)
        elif isinstance(tag, str) and tag not in _INLINE_SKIPPED:
            read_inline(node, inline)
        inline.parts.append(_WHITESPACE.sub(" ", node.tail or ""))
    return inline


def _link(anchor: etree._Element, inline: Inline) -> None:
    start = len(inline.parts)
    read_inline(anchor, inline)
    text = " ".join("".join(inline.parts[start:]).replace(_SOFT_HYPHEN, "").split())
    url = anchor.get(_XLINK_HREF, "")
    if text and url:
        inline.links.append(Link(text=text, url=url))


def flat_text(element: etree._Element) -> str:
    """Every paragraph under ``element`` (a cell, a note body) on its own line."""
    lines: list[str] = []
    for node in element.iter(_P, _H, _ANNOTATION):
        if node.tag == _ANNOTATION or any(a.tag == _ANNOTATION for a in node.iterancestors()):
            continue
        text = read_inline(node).text
        if text:
            lines.append(text)
    return "\n".join(lines)


def cell_text(cell: etree._Element) -> str:
    """What a table cell shows: its paragraphs, else its typed value."""
    text = flat_text(cell)
    if text:
        return text
    for name in _VALUES:
        value = cell.get(name)
        if value:
            return value.strip()
    return ""


def read_chart(root: etree._Element) -> Chart | None:
    """An embedded chart object's title, kind and data (its own local table)."""
    chart = next(root.iter(f"{_CHART}chart"), None)
    if chart is None:
        return None
    title = chart.find(f"{_CHART}title")
    kind = chart.get(f"{_CHART}class", "").removeprefix("chart:")
    found = Chart(
        title=(flat_text(title) or None) if title is not None else None,
        kind=_CHART_KINDS.get(kind, "Other") + " chart",
    )
    data = chart.find(f"{TABLE}table")
    try:
        rows = read_grid(data, cell_text, MAX_CHART_CELLS).rows if data is not None else []
    except LimitExceeded:
        rows = []  # a chart too big to tabulate keeps its title
    if len(rows) > 1:
        names = rows[0]
        for col in range(1, max(len(row) for row in rows)):
            found.series.append(
                Series(
                    name=names[col] if col < len(names) else "",
                    categories=[row[0] if row else "" for row in rows[1:]],
                    values=[row[col] if col < len(row) else "" for row in rows[1:]],
                )
            )
    return found


@dataclass(frozen=True)
class EmbeddedObject:
    """An object the content shows, to be read as an embedded document.

    ``name`` is where it sits in the package (``Object 1``): a folder holding
    a sub-document of type ``mime`` (name it with ``extension``), or, when
    ``mime`` is None, a file holding an OLE object. ``page`` is the sheet or
    slide showing it.
    """

    name: str
    page: int | None
    mime: str | None = None
    extension: str = ""


def alt_text(frame: etree._Element) -> str:
    """A drawing's description (``svg:desc``), else its title (``svg:title``)."""
    for tag in (f"{SVG}desc", f"{SVG}title"):
        found = frame.find(tag)
        if found is not None and (found.text or "").strip():
            return clean_alt_text(found.text or "")
    return ""


class TextReader:
    """Adds the blocks of ODF text content to a builder.

    ``fields`` (page, bbox) go on every block added; ``max_cells`` bounds the
    cells of all the tables read; endnotes wait in ``endnotes`` for the caller.
    """

    def __init__(
        self,
        builder: DocumentBuilder,
        styles: Styles,
        max_cells: int,
        load: Callable[[str], etree._Element | None] = lambda _name: None,
    ) -> None:
        self.builder = builder
        self.styles = styles
        self.max_cells = max_cells
        #: Reads a part of the package (an embedded object's ``content.xml``).
        self.load = load
        self.cells = 0
        self.fields: dict[str, Any] = {}
        #: Each endnote's text and the mark the text shows for it.
        self.endnotes: list[tuple[str, str | None]] = []
        #: The embedded documents and OLE objects met, in reading order.
        self.objects: list[EmbeddedObject] = []

    def read(self, container: etree._Element) -> None:
        """Add the blocks of every child of ``container``."""
        for child in container:
            self.block(child)

    def block(self, element: etree._Element) -> None:
        tag = element.tag
        if tag in {_P, _H}:
            self.paragraph(element)
        elif tag == _LIST:
            self.read_list(element, 1, None)
        elif tag == _TABLE:
            self.table(element)
        elif tag in _SHAPES:
            self.shape(element)
        elif isinstance(tag, str) and tag not in _SKIPPED:
            self.read(element)  # sections, index bodies, unknown containers

    def paragraph(self, element: etree._Element) -> None:
        inline = read_inline(element)
        level: int | None
        if element.tag == _H:
            kind, level = BlockKind.HEADING, _int(element.get(f"{TEXT}outline-level"), 1)
        else:
            kind, level = self.styles.role(element.get(f"{TEXT}style-name"))
        self.builder.add(kind, inline.text, level=level, links=inline.links, **self.fields)
        self.anchored(inline)

    def anchored(self, inline: Inline) -> None:
        """What a paragraph holds besides its text: notes, then frames."""
        for note in inline.notes:
            body = note.find(f"{TEXT}note-body")
            text = flat_text(body) if body is not None else ""
            label = note_label(note) or None
            if note.get(f"{TEXT}note-class") == "endnote":
                self.endnotes.append((text, label))
            else:
                self.builder.add(BlockKind.FOOTNOTE, text, label=label, **self.fields)
        for frame in inline.frames:
            self.shape(frame)

    def read_list(self, element: etree._Element, depth: int, style: str | None) -> None:
        style = element.get(f"{TEXT}style-name") or style
        marker = self.styles.marker(style, depth)
        for item in element:
            if item.tag in {_ITEM, _LIST_HEADER}:
                # A list header is a paragraph inside the list, without a label.
                self._item(item, depth, style, marker if item.tag == _ITEM else None)

    def _item(
        self, item: etree._Element, depth: int, style: str | None, marker: bool | None
    ) -> None:
        """A list item's paragraphs as one item; nested lists and tables after it."""
        pending: list[Inline] = []
        for child in item:
            if child.tag == _P:
                pending.append(read_inline(child))
                continue
            self._add_item(pending, depth, marker)
            pending = []
            if child.tag == _LIST:
                self.read_list(child, depth + 1, style)
            else:
                self.block(child)
        self._add_item(pending, depth, marker)

    def _add_item(self, paragraphs: list[Inline], depth: int, marker: bool | None) -> None:
        if not paragraphs:
            return
        text = "\n".join(p.text for p in paragraphs if p.text)
        links = [link for p in paragraphs for link in p.links]
        if marker is None:
            self.builder.add(BlockKind.PARAGRAPH, text, links=links, **self.fields)
        else:
            self.builder.add(
                BlockKind.LIST_ITEM, text, level=depth, ordered=marker, links=links, **self.fields
            )
        for paragraph in paragraphs:
            self.anchored(paragraph)

    def table(self, element: etree._Element) -> None:
        budget = self.max_cells - self.cells
        table = grid_table(read_grid(element, flat_text, budget), budget)
        self.cells += table.n_rows * table.n_cols
        links = [link for cell in element.iter(_P, _H) for link in read_inline(cell).links]
        if table.cells:
            self.builder.add(BlockKind.TABLE, table=table, links=links, **self.fields)

    def shape(self, shape: etree._Element) -> None:
        """A frame or shape: its table, text box, text or image (in that preference)."""
        if shape.tag in {f"{DRAW}g", f"{DRAW}a"}:
            for child in shape:
                if child.tag in _SHAPES:
                    self.shape(child)
            return
        table = shape.find(_TABLE)
        box = shape.find(f"{DRAW}text-box")
        if table is not None:
            self.table(table)
        elif box is not None:
            self.read(box)
        elif shape.find(f"{DRAW}object") is not None:
            self._object(shape)
        elif shape.find(f"{DRAW}object-ole") is not None:
            self._ole_object(shape)
        elif shape.find(f"{DRAW}image") is not None:
            self._image(shape)
        else:
            self.read(shape)  # a shape's own paragraphs

    def _object(self, frame: etree._Element) -> None:
        """An embedded object: a chart is read as the DrawingML charts are, else an image.

        An embedded text, spreadsheet or presentation is also noted in :attr:`objects`.
        """
        name = _package_name(frame.find(f"{DRAW}object"))
        root = self.load(f"{name}/content.xml") if name else None
        chart = read_chart(root) if root is not None else None
        if chart is not None:
            add_chart(self.builder, chart, alt_text(frame), **self.fields)
            return
        body = root.find(f"{OFFICE}body") if root is not None else None
        parts = list(body) if body is not None else []
        kind = next((_SUBDOCUMENTS[c.tag] for c in parts if c.tag in _SUBDOCUMENTS), None)
        if kind is not None:
            self.objects.append(EmbeddedObject(name, self.fields.get("page"), *kind))
        self._image(frame)

    def _ole_object(self, frame: etree._Element) -> None:
        """An OLE object (a file in the package): noted in :attr:`objects`, shown as an image."""
        name = _package_name(frame.find(f"{DRAW}object-ole"))
        if name:
            self.objects.append(EmbeddedObject(name, self.fields.get("page")))
        self._image(frame)

    def _image(self, frame: etree._Element) -> None:
        alt = alt_text(frame)
        image = frame.find(f"{DRAW}image")
        href = image.get(_XLINK_HREF, "") if image is not None else ""
        # An embedded object (chart, formula) is shown only when it is described.
        if image is None and not alt:
            return
        links = [Link(text=alt, url=href)] if alt and href.startswith(("http:", "https:")) else []
        self.builder.add(BlockKind.IMAGE, alt, links=links, **self.fields)


def _package_name(link: etree._Element | None) -> str:
    """The package path an object's ``xlink:href`` names; '' for none or one outside it."""
    href = link.get(_XLINK_HREF, "") if link is not None else ""
    if ":" in href or href.startswith(("/", "../", "#")):
        return ""  # a URL or a file beside the document: not part of the package
    return href.removeprefix("./").strip("/")


def _int(value: str | None, default: int) -> int:
    try:
        return max(int(value), 1) if value else default
    except ValueError:
        return default
