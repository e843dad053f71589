"""Reading one Word story (the body, a header, a text box, a footnote) into blocks.

A story is a sequence of paragraphs and tables, read in document order. A
paragraph's runs give its text (fields, tabs, breaks, symbols, inline equations
as ``$LaTeX$``, hyperlinks as links); what floats in it (pictures, text boxes,
charts, display equations) becomes blocks after it. Text boxes are stories of
their own; ``mc:AlternateContent`` is read once, through its first choice, so
that the same text box is not read twice from its fallback. An ``w:altChunk``
(a part in another format imported where it stands: HTML, MHTML, RTF or plain
text, as HTML-to-Word converters write whole documents) is read by that
format's reader in its place.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser

from lxml import etree

from docworker.document import BlockKind, DocumentBuilder, Link, Table, TableCell
from docworker.formats.encoding import decode_text
from docworker.formats.ooxml.charts import add_chart, read_chart
from docworker.formats.ooxml.omml import M_NS, to_latex
from docworker.formats.ooxml.package import child, clean_alt_text, local_name
from docworker.formats.ooxml.word_styles import W_NS, ParagraphRoles
from docworker.formats.rtf.parser import add_rtf
from docworker.formats.text.plain import split_paragraphs
from docworker.formats.web.html import decode_html, parse_page, walk_page

_W = f"{{{W_NS}}}"
_M = f"{{{M_NS}}}"
_R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
_WP = "{http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing}"
_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_PIC = "{http://schemas.openxmlformats.org/drawingml/2006/picture}"
_C = "{http://schemas.openxmlformats.org/drawingml/2006/chart}"
_V = "{urn:schemas-microsoft-com:vml}"
_O = "{urn:schemas-microsoft-com:office:office}"

#: Elements that only wrap content (structured tags, custom XML, tracked insertions).
_WRAPPERS = frozenset({"sdt", "sdtContent", "customXml", "smartTag", "ins", "moveTo", "dir", "bdo"})
#: The tags (any namespace) of the elements a story's children may be to hold blocks:
#: paragraphs, tables, their wrappers (what :func:`_block_nodes` looks into).
BLOCK_HOLDERS = (
    "{*}p",
    "{*}tbl",
    "{*}altChunk",
    "{*}AlternateContent",
    *(f"{{*}}{n}" for n in _WRAPPERS),
)
#: An alternative format chunk's file extension → how it is read.
_CHUNK_KINDS = {
    ".htm": "html", ".html": "html", ".xhtml": "html", ".mht": "mhtml", ".mhtml": "mhtml",
    ".rtf": "rtf", ".txt": "text",
}  # fmt: skip
#: The most table cells an imported chunk may hold (Word's own tables are not counted).
_CHUNK_CELLS = 1_000_000
#: Elements whose content is not part of the current text.
_SKIPPED = frozenset({"del", "moveFrom", "pPr", "rPr", "sdtPr", "sdtEndPr"})
#: Fields whose shown value is layout noise (page numbers), not document text.
_PAGE_FIELDS = re.compile(r"^\s*(PAGE|NUMPAGES|SECTIONPAGES|PAGEREF)\b", re.IGNORECASE)
_HYPERLINK_FIELD = re.compile(r'^\s*HYPERLINK\s+(?:\\l\s+)?"?([^"\s]+)"?', re.IGNORECASE)
#: Run elements that stand for one character.
_RUN_CHARACTERS = {"tab": "\t", "ptab": "\t", "cr": "\n", "noBreakHyphen": "-"}
_ON = frozenset({None, "1", "true", "on"})
#: Word allows 63 columns; other writers a few more.
_MAX_GRID_COLUMNS = 1000


@dataclass
class _Field:
    instruction: str = ""
    in_result: bool = False
    start: int = 0


@dataclass
class _Inline:
    """What the runs of one paragraph hold."""

    parts: list[str] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    maths: list[str] = field(default_factory=list)
    displays: list[str] = field(default_factory=list)
    floating: list[etree._Element] = field(default_factory=list)
    page_break: bool = False
    fields: list[_Field] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def add(self, text: str) -> None:
        if not any(f.in_result and _PAGE_FIELDS.match(f.instruction) for f in self.fields):
            self.parts.append(text)

    def only_maths(self) -> bool:
        """True when the paragraph is nothing but equations."""
        return bool(self.maths) and not re.sub(r"\$[^$]*\$", "", self.text).strip()


@dataclass
class Story:
    """The package part a story lives in: its relationships resolve links and media."""

    zf: zipfile.ZipFile
    #: Relationship id → (type, target part name or URL).
    rels: dict[str, tuple[str, str]]


class StoryReader:
    """Emits the blocks of stories through a builder."""

    def __init__(
        self, builder: DocumentBuilder, roles: ParagraphRoles, tick: Callable[[], None]
    ) -> None:
        self.builder = builder
        self.roles = roles
        #: Called once per block read, for progress and cancellation.
        self.tick = tick
        #: ("footnote" or "endnote", the note's id) → the mark its reference shows, in
        #: the order the text refers to the notes (Word numbers them so).
        self.note_labels: dict[tuple[str, str], str] = {}

    # -- block level ---------------------------------------------------------

    def read(self, container: etree._Element, story: Story) -> None:
        """Read the paragraphs and tables under ``container`` (body, cell, text box)."""
        for node in container:
            self.read_node(node, story)

    def read_node(self, node: etree._Element, story: Story) -> None:
        """Read one child of a container: a paragraph, a table, or a wrapper of them
        (so that a body streamed a child at a time reads as the whole body would)."""
        for element in _block_nodes(node):
            name = local_name(element)
            if name == "p":
                self._paragraph(element, story)
            elif name == "tbl":
                self._table(element, story)
            elif name == "altChunk":
                self._alt_chunk(element, story)
            self.tick()

    def _alt_chunk(self, element: etree._Element, story: Story) -> None:
        """The blocks of an imported part, read by its own format's reader."""
        _, target = story.rels.get(element.get(f"{_R}id", ""), ("", ""))
        kind = _CHUNK_KINDS.get(posixpath.splitext(target)[1].lower())
        if kind is None or target not in story.zf.NameToInfo:
            return
        data = story.zf.read(target)
        if kind == "rtf":
            add_rtf(self.builder, data, _CHUNK_CELLS)
            return
        if kind == "text":
            for paragraph in split_paragraphs(decode_text(data, None).text):
                self.builder.add(BlockKind.PARAGRAPH, paragraph)
            return
        page = decode_html(data)[0] if kind == "html" else _mhtml_page(data)
        root = parse_page(page) if page else None
        if root is not None:
            walk_page(self.builder, root, _CHUNK_CELLS)

    def _paragraph(self, paragraph: etree._Element, story: Story) -> None:
        inline = self.inline(paragraph, story)
        props = child(paragraph, f"{_W}pPr")
        if _flag(child(props, f"{_W}pageBreakBefore")):
            self.builder.add(BlockKind.PAGE_BREAK)
        if inline.only_maths():
            for latex in inline.maths:
                self.builder.add(BlockKind.FORMULA, latex)
        else:
            role = self.roles.role(paragraph)
            text = inline.text.strip()
            if role.kind in {BlockKind.HEADING, BlockKind.TITLE}:
                text = " ".join(text.split())
            self.builder.add(
                role.kind, text, level=role.level, ordered=role.ordered, links=inline.links
            )
        for latex in inline.displays:
            self.builder.add(BlockKind.FORMULA, latex)
        for element in inline.floating:
            self._graphics(element, story, "")
        section_break = child(props, f"{_W}sectPr") is not None
        if inline.page_break or section_break:
            self.builder.add(BlockKind.PAGE_BREAK)

    def _table(self, table: etree._Element, story: Story) -> None:
        self.builder.add(BlockKind.TABLE, table=self.table(table, story))

    def table(self, table: etree._Element, story: Story) -> Table:
        """A ``w:tbl`` as a grid; ``gridSpan`` and ``vMerge`` become spans."""
        cells: list[TableCell] = []
        n_cols = 0
        header_rows = 0
        rows = list(_children(table, "tr"))
        for r, row in enumerate(rows):
            if header_rows == r and _flag(child(row, f"{_W}trPr", f"{_W}tblHeader")):
                header_rows += 1
            col = _grid_count(child(row, f"{_W}trPr", f"{_W}gridBefore"), 0)
            for tc in _children(row, "tc"):
                props = child(tc, f"{_W}tcPr")
                span = max(1, _grid_count(child(props, f"{_W}gridSpan"), 1))
                merge = child(props, f"{_W}vMerge")
                if merge is not None and merge.get(f"{_W}val", "continue") == "continue":
                    _extend_down(cells, r, col)
                else:
                    cells.append(
                        TableCell(row=r, col=col, col_span=span, text=self.cell_text(tc, story))
                    )
                col += span
            n_cols = max(n_cols, col)
        if header_rows == 0 and len(rows) > 1 and _first_row_styled(table):
            header_rows = 1
        for cell in cells:
            if cell.row >= header_rows:
                break
            cell.header = True
        return Table(n_rows=len(rows), n_cols=n_cols, cells=cells)

    def cell_text(self, container: etree._Element, story: Story) -> str:
        """Plain text of a cell (or header, footnote): nested tables and text boxes included."""
        lines: list[str] = []
        for element in _block_children(container):
            if local_name(element) == "tbl":
                rows: dict[int, list[str]] = {}
                for cell in self.table(element, story).cells:
                    rows.setdefault(cell.row, []).append(cell.text)
                lines += [" | ".join(t for t in row if t) for row in rows.values()]
                continue
            inline = self.inline(element, story)
            lines.append(inline.text.strip())
            lines += inline.displays
            for floating in inline.floating:
                lines += [self.cell_text(box, story) for box in _text_boxes(floating)]
        return "\n".join(line for line in lines if line.strip())

    # -- inline level --------------------------------------------------------

    def inline(self, paragraph: etree._Element, story: Story) -> _Inline:
        """The text, links, equations and floating objects of a paragraph."""
        inline = _Inline()
        self._runs(paragraph, inline, story)
        return inline

    def _runs(self, element: etree._Element, inline: _Inline, story: Story) -> None:
        for node in element:
            name = local_name(node)
            namespace = node.tag[: node.tag.find("}") + 1] if name else ""
            if namespace == _M:
                self._math(node, name, inline)
            elif namespace == _MC and name == "AlternateContent":
                chosen = _alternative(node)
                if chosen is not None:
                    self._runs(chosen, inline, story)
            elif namespace != _W or name in _SKIPPED:
                continue
            elif name == "r":
                self._run(node, inline)
            elif name == "hyperlink":
                start = len(inline.text)
                self._runs(node, inline, story)
                _add_link(inline, start, _hyperlink_target(node, story))
            elif name == "fldSimple":
                self._simple_field(node, inline, story)
            else:
                self._runs(node, inline, story)

    def _math(self, element: etree._Element, name: str, inline: _Inline) -> None:
        latex = to_latex(element)
        if not latex:
            return
        if name == "oMathPara":
            inline.displays.append(latex)
        elif name == "oMath":
            inline.maths.append(latex)
            inline.add(f"${latex}$")

    def _run(self, run: etree._Element, inline: _Inline) -> None:
        hidden = _flag(child(run, f"{_W}rPr", f"{_W}vanish"))
        for node in run:
            name = local_name(node)
            if hidden and name not in {"fldChar", "instrText"}:
                continue
            if name == "t":
                inline.add(node.text or "")
            elif name in _RUN_CHARACTERS:
                inline.add(_RUN_CHARACTERS[name])
            elif name == "br":
                if node.get(f"{_W}type") == "page":
                    inline.page_break = True
                inline.add("\n")
            elif name == "sym":
                inline.add(_symbol(node))
            elif name in {"drawing", "pict", "object", "AlternateContent"}:
                inline.floating.append(node)
            elif name in {"fldChar", "instrText"}:
                _field_event(node, name, inline)
            else:
                self._annotated(node, name, inline)

    def _annotated(self, node: etree._Element, name: str, inline: _Inline) -> None:
        """Ruby text and note references in a run."""
        if name == "ruby":
            # The base text; its reading guide (``w:rt``) sits above it in small type.
            for base in node.iterfind(f"{_W}rubyBase/{_W}r"):
                self._run(base, inline)
        elif name in {"footnoteReference", "endnoteReference"}:
            self._note_reference(node, name[: -len("Reference")], inline)

    def _note_reference(self, node: etree._Element, kind: str, inline: _Inline) -> None:
        """A footnote's or endnote's mark where the text refers to it, as ``[1]`` (``[i]``
        for endnotes, numbered apart as Word does), linked to ``#note-1``."""
        key = (kind, node.get(f"{_W}id", ""))
        label = self.note_labels.get(key)
        if label is None:
            count = 1 + sum(k == kind for k, _ in self.note_labels)
            label = str(count) if kind == "footnote" else _roman(count)
            self.note_labels[key] = label
        inline.add(f"[{label}]")
        inline.links.append(Link(text=f"[{label}]", url=f"#note-{label}"))

    def _simple_field(self, element: etree._Element, inline: _Inline, story: Story) -> None:
        instruction = element.get(f"{_W}instr", "")
        if _PAGE_FIELDS.match(instruction):
            return
        start = len(inline.text)
        self._runs(element, inline, story)
        target = _HYPERLINK_FIELD.match(instruction)
        if target:
            _add_link(inline, start, target.group(1))

    # -- floating objects ----------------------------------------------------

    def _graphics(self, element: etree._Element, story: Story, alt: str) -> None:
        """Pictures, charts and text boxes under a drawing, VML picture or OLE object."""
        name = local_name(element)
        if name == "AlternateContent":
            chosen = _alternative(element)
            if chosen is not None:
                for node in chosen:
                    self._graphics(node, story, alt)
            return
        if name == "txbxContent":
            self.read(element, story)
            return
        if element.tag in {f"{_WP}inline", f"{_WP}anchor"}:
            alt = _alt_text(element.find(f"{_WP}docPr")) or alt
        if element.tag == f"{_PIC}pic":
            own = _alt_text(element.find(f"{_PIC}nvPicPr/{_PIC}cNvPr"))
            self.builder.add(BlockKind.IMAGE, own or alt)
            return
        if element.tag == f"{_V}imagedata":
            parent = element.getparent()
            own = parent.get("alt", "") if parent is not None else ""
            self.builder.add(BlockKind.IMAGE, clean_alt_text(own or element.get(f"{_O}title", "")))
            return
        if element.tag == f"{_C}chart":
            self._chart(element, story, alt)
            return
        for node in element:
            if isinstance(node.tag, str):
                self._graphics(node, story, alt)

    def _chart(self, element: etree._Element, story: Story, alt: str) -> None:
        _, target = story.rels.get(element.get(f"{_R}id", ""), ("", ""))
        if target in story.zf.NameToInfo:
            add_chart(self.builder, read_chart(story.zf.read(target)), alt)


def _block_children(container: etree._Element) -> Iterator[etree._Element]:
    """Paragraphs and tables under ``container``, looking through content wrappers."""
    for node in container:
        yield from _block_nodes(node)


def _mhtml_page(data: bytes) -> str:
    """The HTML page of a web archive (MHTML): its first ``text/html`` part, decoded."""
    message = BytesParser(policy=policy.default).parsebytes(data)
    for part in message.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return decode_html(payload, part.get_content_charset())[0]
    return ""


def _block_nodes(node: etree._Element) -> Iterator[etree._Element]:
    """``node`` if it is a paragraph, a table or an imported chunk, else the ones a
    wrapper holds."""
    name = local_name(node)
    if name in {"p", "tbl", "altChunk"}:
        yield node
    elif name in _WRAPPERS:
        yield from _block_children(node)
    elif name == "AlternateContent":
        chosen = _alternative(node)
        if chosen is not None:
            yield from _block_children(chosen)


def _children(element: etree._Element, name: str) -> Iterator[etree._Element]:
    """Children called ``name`` (rows of a table, cells of a row), through wrappers."""
    for node in element:
        child_name = local_name(node)
        if child_name == name:
            yield node
        elif child_name in _WRAPPERS:
            yield from _children(node, name)


def _alternative(element: etree._Element) -> etree._Element | None:
    """The branch of ``mc:AlternateContent`` to read: the first choice, else the fallback."""
    chosen = element.find(f"{_MC}Choice")
    return chosen if chosen is not None else element.find(f"{_MC}Fallback")


def _text_boxes(element: etree._Element) -> Iterator[etree._Element]:
    """Outermost text box contents under a floating object, reading one alternative."""
    if local_name(element) == "AlternateContent":
        chosen = _alternative(element)
        if chosen is not None:
            yield from _text_boxes(chosen)
        return
    for node in element:
        if local_name(node) == "txbxContent":
            yield node
        elif isinstance(node.tag, str):
            yield from _text_boxes(node)


def _extend_down(cells: list[TableCell], row: int, col: int) -> None:
    """Grow the vertically merged cell above (``row``, ``col``) by one row."""
    for cell in reversed(cells):
        if cell.col == col and cell.row + cell.row_span == row:
            cell.row_span += 1
            return


def _first_row_styled(table: etree._Element) -> bool:
    """Whether the table style's first-row (header) formatting is switched on."""
    look = table.find(f"{_W}tblPr/{_W}tblLook")
    if look is None:
        return False
    first_row = look.get(f"{_W}firstRow")
    if first_row is not None:
        return first_row in {"1", "true", "on"}
    try:
        return bool(int(look.get(f"{_W}val", "0"), 16) & 0x0020)
    except ValueError:
        return False


def _field_event(element: etree._Element, name: str, inline: _Inline) -> None:
    """Track complex fields: hide page numbers, turn HYPERLINK fields into links."""
    if name == "instrText":
        if inline.fields and not inline.fields[-1].in_result:
            inline.fields[-1].instruction += element.text or ""
        return
    kind = element.get(f"{_W}fldCharType")
    if kind == "begin":
        inline.fields.append(_Field())
    elif kind == "separate" and inline.fields:
        inline.fields[-1].in_result = True
        inline.fields[-1].start = len(inline.text)
    elif kind == "end" and inline.fields:
        closed = inline.fields.pop()
        target = _HYPERLINK_FIELD.match(closed.instruction)
        if target:
            _add_link(inline, closed.start, target.group(1))


def _add_link(inline: _Inline, start: int, url: str | None) -> None:
    """Link the text added since ``start`` to ``url``."""
    text = inline.text[start:].strip()
    if url and text:
        inline.links.append(Link(text=text, url=url))


def _hyperlink_target(element: etree._Element, story: Story) -> str | None:
    rel_id = element.get(f"{_R}id")
    if rel_id and rel_id in story.rels:
        return story.rels[rel_id][1]
    anchor = element.get(f"{_W}anchor")
    return f"#{anchor}" if anchor else None


def _roman(number: int) -> str:
    """``number`` in lower-case Roman numerals (Word's endnote numbering)."""
    out = []
    for value, letters in (
        (1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"),
        (50, "l"), (40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i"),
    ):  # fmt: skip
        count, number = divmod(number, value)
        out.append(letters * count)
    return "".join(out)


def _symbol(element: etree._Element) -> str:
    """A ``w:sym`` character; symbol-font code points (private use area) are dropped."""
    try:
        char = chr(int(element.get(f"{_W}char", ""), 16))
    except (ValueError, OverflowError):
        return ""
    return "" if "\ue000" <= char <= "\uf8ff" else char


def _alt_text(properties: etree._Element | None) -> str:
    if properties is None:
        return ""
    return clean_alt_text(properties.get("descr") or properties.get("title") or "")


def _flag(element: etree._Element | None) -> bool:
    """An on/off property element: present without ``w:val`` means on."""
    return element is not None and element.get(f"{_W}val") in _ON


def _grid_count(element: etree._Element | None, default: int) -> int:
    """A count of grid columns (a span, a skip), capped so a forged one cannot
    make a table of millions of empty columns."""
    if element is None:
        return default
    try:
        return max(0, min(int(element.get(f"{_W}val", default)), _MAX_GRID_COLUMNS))
    except ValueError:
        return default
