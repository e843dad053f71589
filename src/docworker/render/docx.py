"""The document model → a DOCX file, written with python-docx.

Each block becomes what Word would have made of it: titles and headings in
Word's ``Title`` and ``Heading n`` styles (so they show in the navigation pane
and a table of contents), paragraphs with their links as real hyperlinks, list
items in Word's bulleted and numbered list styles and in nine-level Word lists
(their depth is the numbering level readers go by), page headers and footers in
the section's header and footer (each text once), tables as Word tables
(merged cells kept, header rows marked to repeat), code in a monospaced style,
quotes, captions and footnotes in their styles, page breaks as page breaks. The
document's title, authors, subject and keywords go to the core properties.
Images are referred to by their alt text: the model keeps no picture data.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import docx
from docx.enum.text import WD_BREAK
from docx.opc.constants import RELATIONSHIP_TYPE
from docx.oxml import OxmlElement, parse_xml
from docx.oxml.ns import nsdecls, qn
from docx.shared import Pt

from docworker.document import Block, BlockKind, Document, Link, Table
from docworker.render.document import _link_segments, _safe_url

#: Word's built-in list styles, by depth (Word has three of each).
_BULLETS = ("List Bullet", "List Bullet 2", "List Bullet 3")
_NUMBERS = ("List Number", "List Number 2", "List Number 3")
_MAX_HEADING = 9
#: Numbering levels a Word list has.
_MAX_LIST_LEVELS = 9
#: Characters XML 1.0 cannot hold (a parser's control characters), dropped.
_XML_INVALID = dict.fromkeys([*range(0, 9), 11, 12, *range(14, 32)])


def write_docx(doc: Document, target: Path, blocks: Sequence[Block] | None = None) -> None:
    """Write ``doc`` (or only ``blocks`` of it) as a DOCX file at ``target``."""
    out = docx.Document()
    _properties(out, doc)
    lists = _Lists(out)
    for block in doc.blocks if blocks is None else blocks:
        if block.kind is BlockKind.LIST_ITEM:
            lists.add(block)
            continue
        lists.end_run()
        _block(out, block)
    out.save(str(target))


def _properties(out: Any, doc: Document) -> None:
    meta = doc.metadata
    core = out.core_properties
    if meta.title:
        core.title = _clean(meta.title)[:255]
    if meta.authors:
        core.author = _clean("; ".join(meta.authors))[:255]
    if meta.subject:
        core.subject = _clean(meta.subject)[:255]
    if meta.keywords:
        core.keywords = _clean(", ".join(meta.keywords))[:255]
    if meta.language:
        core.language = meta.language


def _block(out: Any, block: Block) -> None:
    kind = block.kind
    if kind is BlockKind.TITLE:
        _paragraph(out, block, "Title")
    elif kind is BlockKind.HEADING:
        level = min(max(block.level or 1, 1), _MAX_HEADING)
        _paragraph(out, block, f"Heading {level}")
    elif kind in (BlockKind.HEADER, BlockKind.FOOTER):
        _margin_text(out, block)
    elif kind is BlockKind.TABLE and block.table is not None:
        _table(out, block.table)
    elif kind is BlockKind.CODE:
        _code(out, block)
    elif kind is BlockKind.QUOTE:
        _paragraph(out, block, "Quote")
    elif kind is BlockKind.CAPTION:
        _paragraph(out, block, "Caption")
    elif kind is BlockKind.PAGE_BREAK:
        out.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
    elif kind is BlockKind.IMAGE:
        if block.text:
            _paragraph(out, block.model_copy(update={"text": f"[{block.text}]"}), "Caption")
    elif block.text:
        _paragraph(out, block, None)


def _paragraph(out: Any, block: Block, style: str | None) -> None:
    paragraph = out.add_paragraph(style=style)
    _runs(paragraph, _clean(block.text), block.links)


class _Lists:
    """Word lists of every depth: one multi-level list definition for bullets and one
    for numbers (the default template's have a single level), and a new list — its
    numbers starting again at 1 — for each run of list items."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.numbering = out.part.numbering_part.element
        self.abstract = {ordered: self._definition(ordered) for ordered in (False, True)}
        self.current: dict[bool, int] = {}

    def _definition(self, ordered: bool) -> int:
        ident = 900 + int(ordered)
        levels = "".join(
            f'<w:lvl w:ilvl="{level}"><w:start w:val="1"/>'
            f'<w:numFmt w:val="{"decimal" if ordered else "bullet"}"/>'
            f'<w:lvlText w:val="{f"%{level + 1}." if ordered else "•"}"/>'
            f'<w:lvlJc w:val="left"/><w:pPr><w:ind w:left="{720 * (level + 1)}" '
            'w:hanging="360"/></w:pPr></w:lvl>'
            for level in range(_MAX_LIST_LEVELS)
        )
        definition = parse_xml(
            f'<w:abstractNum {nsdecls("w")} w:abstractNumId="{ident}">'
            f'<w:multiLevelType w:val="hybridMultilevel"/>{levels}</w:abstractNum>'
        )
        first_num = self.numbering.find(qn("w:num"))
        if first_num is None:
            self.numbering.append(definition)
        else:
            first_num.addprevious(definition)
        return ident

    def end_run(self) -> None:
        self.current.clear()

    def add(self, block: Block) -> None:
        ordered = bool(block.ordered)
        if ordered not in self.current:
            num = self.numbering.add_num(self.abstract[ordered])
            self.current[ordered] = num.numId
        styles = _NUMBERS if ordered else _BULLETS
        depth = max(block.level or 1, 1)
        paragraph = self.out.add_paragraph(style=styles[min(depth, len(styles)) - 1])
        _runs(paragraph, _clean(block.text), block.links)
        props = paragraph._p.get_or_add_pPr()
        props.append(
            parse_xml(
                f'<w:numPr {nsdecls("w")}><w:ilvl w:val="{min(depth, _MAX_LIST_LEVELS) - 1}"/>'
                f'<w:numId w:val="{self.current[ordered]}"/></w:numPr>'
            )
        )


def _margin_text(out: Any, block: Block) -> None:
    """A page header or footer, in the section's header or footer, once per text (a
    document read from pages has the same header on each)."""
    section = out.sections[0]
    margin = section.header if block.kind is BlockKind.HEADER else section.footer
    text = _clean(block.text).strip()
    if not text or text in (p.text for p in margin.paragraphs):
        return
    first = margin.paragraphs[0] if margin.paragraphs and not margin.paragraphs[0].text else None
    paragraph = first or margin.add_paragraph()
    _runs(paragraph, text, block.links)


def _runs(paragraph: Any, text: str, links: Sequence[Link]) -> None:
    """``text`` as runs, the parts that are links as hyperlinks."""
    lines = text.split("\n")
    for index, line in enumerate(lines):
        for segment, url in _link_segments(line, links) if links else [(line, None)]:
            safe = _safe_url(url) if url else None
            if safe:
                _hyperlink(paragraph, segment, safe)
            elif segment:
                paragraph.add_run(segment)
        if index < len(lines) - 1:
            paragraph.add_run().add_break()


def _hyperlink(paragraph: Any, text: str, url: str) -> None:
    """A hyperlink run (python-docx has no API for it: the element is built)."""
    rel = paragraph.part.relate_to(url, RELATIONSHIP_TYPE.HYPERLINK, is_external=True)
    link = OxmlElement("w:hyperlink")
    link.set(qn("r:id"), rel)
    run = OxmlElement("w:r")
    props = OxmlElement("w:rPr")
    style = OxmlElement("w:rStyle")
    style.set(qn("w:val"), "Hyperlink")
    props.append(style)
    colour = OxmlElement("w:color")
    colour.set(qn("w:val"), "0563C1")
    props.append(colour)
    underline = OxmlElement("w:u")
    underline.set(qn("w:val"), "single")
    props.append(underline)
    run.append(props)
    content = OxmlElement("w:t")
    content.text = text
    content.set(qn("xml:space"), "preserve")
    run.append(content)
    link.append(run)
    paragraph._p.append(link)


def _code(out: Any, block: Block) -> None:
    paragraph = out.add_paragraph()
    lines = _clean(block.text).split("\n")
    for index, line in enumerate(lines):
        run = paragraph.add_run(line)
        run.font.name = "Courier New"
        run.font.size = Pt(9)
        if index < len(lines) - 1:
            run.add_break()


def _table(out: Any, table: Table) -> None:
    if table.n_rows == 0 or table.n_cols == 0:
        return
    word = out.add_table(rows=table.n_rows, cols=table.n_cols)
    word.style = "Table Grid"
    for cell in table.cells:
        last_row = min(cell.row + cell.row_span, table.n_rows) - 1
        last_col = min(cell.col + cell.col_span, table.n_cols) - 1
        target = word.cell(cell.row, cell.col)
        if (last_row, last_col) != (cell.row, cell.col):
            target = target.merge(word.cell(last_row, last_col))
        target.text = _clean(cell.text)
        if cell.header:
            for run in (r for p in target.paragraphs for r in p.runs):
                run.bold = True
    for index in range(table.header_rows()):
        _repeat_header(word.rows[index])


def _repeat_header(row: Any) -> None:
    props = row._tr.get_or_add_trPr()
    marker = OxmlElement("w:tblHeader")
    marker.set(qn("w:val"), "true")
    props.append(marker)


def _clean(text: str) -> str:
    return text.translate(_XML_INVALID)
