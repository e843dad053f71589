"""The DOCX writer: a document model written with python-docx, read back by Word's rules
(python-docx) and by the service's own DOCX reader."""

from __future__ import annotations

from pathlib import Path

import docx

from docworker.document import (
    BlockKind,
    DocumentBuilder,
    Link,
    Metadata,
    Table,
    TableCell,
)
from docworker.formats.base import ParseContext
from docworker.formats.registry import parse_path
from docworker.render.docx import write_docx


def _model() -> DocumentBuilder:
    builder = DocumentBuilder(
        "markdown", "text/markdown", Metadata(title="Field notes", authors=["A. Writer"])
    )
    builder.add(BlockKind.HEADER, "Station 4")
    builder.add(BlockKind.TITLE, "Field notes")
    builder.add(BlockKind.HEADING, "Birds", level=1)
    builder.add(
        BlockKind.PARAGRAPH,
        "See the atlas for maps.",
        links=[Link(text="atlas", url="https://example.org/atlas")],
    )
    builder.add(BlockKind.LIST_ITEM, "Herons", level=1, ordered=False)
    builder.add(BlockKind.LIST_ITEM, "Grey heron", level=2, ordered=False)
    builder.add(BlockKind.LIST_ITEM, "Egrets", level=1, ordered=False)
    builder.add(BlockKind.HEADING, "Counts", level=2)
    builder.add(BlockKind.LIST_ITEM, "Morning", level=1, ordered=True)
    builder.add(BlockKind.LIST_ITEM, "Evening", level=1, ordered=True)
    cells = [
        TableCell(row=0, col=0, text="Species", header=True),
        TableCell(row=0, col=1, text="Seen", header=True),
        TableCell(row=1, col=0, text="Heron"),
        TableCell(row=1, col=1, text="4", row_span=2),
        TableCell(row=2, col=0, text="Egret"),
    ]
    builder.add(BlockKind.TABLE, "", table=Table(n_rows=3, n_cols=2, cells=cells))
    builder.add(BlockKind.CODE, "count = 4\nprint(count)", language="python")
    builder.add(BlockKind.PAGE_BREAK)
    builder.add(BlockKind.HEADING, "Later", level=1)
    builder.add(BlockKind.LIST_ITEM, "Restarted", level=1, ordered=True)
    builder.add(BlockKind.FOOTER, "Page footer")
    return builder


def test_structure_survives_the_round_trip(tmp_path: Path) -> None:
    target = tmp_path / "notes.docx"
    source = _model().finish()
    write_docx(source, target)
    back = parse_path(target, ParseContext())
    shape = [(b.kind.value, b.level, b.text) for b in back.blocks if b.kind != BlockKind.TABLE]
    for expected in [
        ("heading", 1, "Birds"),
        ("list_item", 1, "Herons"),
        ("list_item", 2, "Grey heron"),
        ("heading", 2, "Counts"),
        ("list_item", 1, "Morning"),
    ]:
        assert expected in shape
    [table] = [b.table for b in back.blocks if b.table is not None]
    assert table.grid() == [["Species", "Seen"], ["Heron", "4"], ["Egret", "4"]]
    assert back.metadata.title == "Field notes"
    assert back.metadata.authors == ["A. Writer"]


def test_word_sees_styles_links_lists_and_margins(tmp_path: Path) -> None:
    target = tmp_path / "notes.docx"
    write_docx(_model().finish(), target)
    word = docx.Document(str(target))
    styles = {p.text: p.style.name for p in word.paragraphs if p.text}
    assert styles["Field notes"] == "Title"
    assert styles["Birds"] == "Heading 1"
    assert styles["Grey heron"] == "List Bullet 2"
    links = [r.target_ref for r in word.part.rels.values() if r.is_external]
    assert links == ["https://example.org/atlas"]
    numbered = [p for p in word.paragraphs if p.text in {"Morning", "Evening", "Restarted"}]
    ids = [p._p.pPr.numPr.numId.val for p in numbered]
    assert ids[0] == ids[1] != ids[2]  # a new list starts its numbers again
    assert word.sections[0].header.paragraphs[0].text == "Station 4"
    assert word.sections[0].footer.paragraphs[0].text == "Page footer"
    code = next(p for p in word.paragraphs if p.text.startswith("count"))
    assert code.runs[0].font.name == "Courier New"
    header_row = word.tables[0].rows[0]._tr
    assert header_row.trPr is not None and "tblHeader" in header_row.trPr.xml


def test_only_the_blocks_asked_for(tmp_path: Path) -> None:
    source = _model().finish()
    target = tmp_path / "part.docx"
    write_docx(source, target, [b for b in source.blocks if b.kind is BlockKind.HEADING])
    word = docx.Document(str(target))
    assert [p.text for p in word.paragraphs if p.text] == ["Birds", "Counts", "Later"]
