"""PptxParser on the corpus presentations."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from corpus_scoring import CORPUS, corpus_f1, needs_corpus

from docworker.document import Block, BlockKind, Document
from docworker.errors import CorruptDocument, LimitExceeded, PasswordRequired
from docworker.formats.base import PageSelection, ParseContext, ParseLimits, Source
from docworker.formats.slides import PPTX_MACRO_MIME, PPTX_MIME, PptxParser

OFFICE = CORPUS / "office"
pytestmark = needs_corpus


def parse(path: Path, ctx: ParseContext | None = None, mime: str = PPTX_MIME) -> Document:
    return PptxParser().parse(Source(path, mime), ctx or ParseContext())


def on_page(doc: Document, page: int) -> list[Block]:
    return [b for b in doc.blocks if b.page == page]


@pytest.fixture(scope="module")
def sample() -> Document:
    return parse(OFFICE / "powerpoint-sample.pptx")


@pytest.mark.parametrize(
    ("name", "minimum"),
    [
        # The notes are not in the truth, which repeats merged cells' text: 0.874.
        ("powerpoint-sample", 0.86),
        # The second chart's data is not in the truth: 0.866.
        ("pptx-chart", 0.85),
    ],
)
def test_text_matches_the_ground_truth(name: str, minimum: float) -> None:
    assert corpus_f1(PptxParser(), f"office/{name}.pptx", PPTX_MIME) >= minimum


def test_one_page_per_slide_labelled_with_its_title(sample: Document) -> None:
    assert [(p.number, p.label) for p in sample.pages] == [
        (1, "Test Table Slide"),
        (2, "Second slide title"),
        (3, None),
    ]
    assert (sample.pages[0].width, sample.pages[0].height) == (960.0, 540.0)
    assert sample.metadata.page_count == 3


def test_titles_open_their_slides(sample: Document) -> None:
    first, second = on_page(sample, 1)[0], on_page(sample, 2)[0]
    assert (first.kind, first.text) == (BlockKind.TITLE, "Test Table Slide")
    assert (second.kind, second.level, second.text) == (BlockKind.HEADING, 1, "Second slide title")


def test_shapes_in_reading_order(sample: Document) -> None:
    first = [b.kind for b in on_page(sample, 1)]
    assert first == [BlockKind.TITLE, BlockKind.TABLE, BlockKind.PARAGRAPH]
    second = [b.text for b in on_page(sample, 2)]
    assert second[1:3] == ["A rectangle shape with this text inside.", "Let’s introduce a list"]
    # Five text boxes side by side: left to right.
    third = [b.text for b in on_page(sample, 3)]
    assert [third[0], third[3], third[7], third[10], third[14]] == [
        "List item4",
        "I1",
        "Some info:",
        "Maybe a list?",
        "l1",
    ]
    assert all(b.bbox is not None for b in on_page(sample, 1))


def test_bullets_inherited_from_the_master_make_list_items(sample: Document) -> None:
    blocks = on_page(sample, 2)
    intro = next(b for b in blocks if b.text == "Let’s introduce a list")
    assert intro.kind == BlockKind.PARAGRAPH
    items = [(b.text, b.level, b.ordered) for b in blocks if b.kind == BlockKind.LIST_ITEM]
    assert items == [("With foo", 1, False), ("Bar", 1, False), ("And baz things", 1, False)]


def test_numbered_and_bulleted_items(sample: Document) -> None:
    items = {b.text: b.ordered for b in on_page(sample, 3) if b.kind == BlockKind.LIST_ITEM}
    assert items["List item4"] is True
    assert items["I2"] is False
    assert items["List3"] is True
    assert items["Item B"] is False


def test_table_spans_and_header(sample: Document) -> None:
    [table] = [b.table for b in sample.blocks if b.table is not None]
    assert table is not None
    assert (table.n_rows, table.n_cols) == (9, 7)
    spans = {c.text: (c.row_span, c.col_span) for c in table.cells if c.text}
    assert spans["Class1"] == (1, 3)
    assert spans["A merged with B"] == (1, 2)
    assert spans["R3"] == (2, 1)
    assert spans["R4"] == (3, 1)
    assert table.header_rows() == 1
    assert table.grid()[0] == ["", "Class1", "Class1", "Class1", "Class2", "Class2", "Class2"]


def test_notes_follow_the_slide_as_footnotes(sample: Document) -> None:
    notes = [(b.page, b.text) for b in sample.blocks if b.kind == BlockKind.FOOTNOTE]
    assert notes == [
        (2, "Some notes on the second slide."),
        (3, "Final notes on the third slide.\nSecond line of notes."),
    ]
    assert on_page(sample, 2)[-1].kind == BlockKind.FOOTNOTE


def test_charts_give_title_kind_and_data() -> None:
    doc = parse(OFFICE / "pptx-chart.pptx")
    blocks = on_page(doc, 1)
    assert [(b.kind, b.text) for b in blocks[:3]] == [
        (BlockKind.TITLE, "Quarterly Duck Survey"),
        (BlockKind.IMAGE, "Bar chart"),
        (BlockKind.CAPTION, "Wild Duck Observations by Year"),
    ]
    table = blocks[3].table
    assert table is not None
    assert table.grid() == [
        ["", "Freshwater Ducks", "Saltwater Ducks"],
        ["2019", "120", "80"],
        ["2020", "130", "95"],
        ["2021", "150", "110"],
        ["2022", "175", "130"],
    ]
    assert {a.path for a in doc.attachments} == {
        "ppt/embeddings/Microsoft_Excel_Worksheet.xlsx",
        "ppt/embeddings/Microsoft_Excel_Worksheet1.xlsx",
    }


def test_table_slide() -> None:
    doc = parse(OFFICE / "pptx-table.pptx")
    [table] = [b.table for b in doc.blocks if b.table is not None]
    assert table is not None
    assert table.grid()[0] == ["Column 1", "Column 2", "Column 3"]
    assert table.grid()[-1] == ["Tangerine", "Pink", "Aqua"]


def test_page_selection_picks_slides(sample: Document) -> None:
    doc = parse(OFFICE / "powerpoint-sample.pptx", ParseContext(pages=PageSelection.parse("2-")))
    assert [p.number for p in doc.pages] == [2, 3]
    assert {b.page for b in doc.blocks} == {2, 3}
    assert not [b for b in doc.blocks if b.kind == BlockKind.TITLE]
    with pytest.raises(LimitExceeded):
        parse(OFFICE / "powerpoint-sample.pptx", ParseContext(limits=ParseLimits(max_pages=2)))


def test_macro_enabled_presentations_are_read(tmp_path: Path) -> None:
    path = tmp_path / "macro.pptm"
    with zipfile.ZipFile(OFFICE / "pptx-table.pptx") as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "[Content_Types].xml":
                data = data.replace(
                    b"application/vnd.openxmlformats-officedocument.presentationml.presentation.main",
                    b"application/vnd.ms-powerpoint.presentation.macroEnabled.main",
                )
                assert b"macroEnabled" in data
            dst.writestr(info, data)
    doc = parse(path, mime=PPTX_MACRO_MIME)
    assert doc.pages[0].label == "A Slide with a Table"


def test_encrypted_package_needs_a_password(tmp_path: Path) -> None:
    path = tmp_path / "secret.pptx"
    path.write_bytes((OFFICE / "encrypted-password-tika.xlsx").read_bytes())
    with pytest.raises(PasswordRequired):
        parse(path)


@pytest.mark.parametrize(
    ("source", "length"),
    [
        ("powerpoint-sample.pptx", 6000),
        ("word-sample.docx", None),
        ("pptx-chart.expected.md", None),
    ],
    ids=["truncated", "not-powerpoint", "not-zip"],
)
def test_broken_packages_are_corrupt(tmp_path: Path, source: str, length: int | None) -> None:
    path = tmp_path / "broken.pptx"
    path.write_bytes((OFFICE / source).read_bytes()[:length])
    with pytest.raises(CorruptDocument) as caught:
        parse(path)
    assert str(tmp_path) not in str(caught.value)
