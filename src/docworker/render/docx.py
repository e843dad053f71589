"""The document model → a DOCX file, written with python-docx.

Each block becomes what Word would have made of it: titles and headings in
Word's ``Title`` and ``Heading n`` styles (so they show in the navigation pane
and a table of contents), paragraphs with their links as real hyperlinks, list
items in Word's bulleted and numbered list styles by depth, tables as Word tables
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
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Pt

from docworker.document import Block, BlockKind, Document, Link, Table
from docworker.render.document import _link_segments, _safe_url

#: Word's built-in list styles, by depth (Word has three of each).
_BULLETS = ("List Bullet", "List Bullet 2", "List Bullet 3")
_NUMBERS = ("List Number", "List Number 2", "List Number 3")
_MAX_HEADING = 9
#: Characters XML 1.0 cannot hold (a parser's control characters), dropped.
_XML_INVALID = dict.fromkeys([*range(0, 9), 11, 12, *range(14, 32)])


def write_docx(doc: Document, target: Path, blocks: Sequence[Block] | None = None) -> None:
    """Write ``doc`` (or only ``blocks`` of it) as a DOCX file at ``target``."""
    out = docx.Document()
    _properties(out, doc)
    for block in doc.blocks if blocks is None else blocks:
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
    elif kind is BlockKind.LIST_ITEM:
        styles = _NUMBERS if block.ordered else _BULLETS
        _paragraph(out, block, styles[min(max(block.level or 1, 1), len(styles)) - 1])
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
