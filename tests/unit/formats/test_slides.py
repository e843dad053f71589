"""PptxParser on the corpus presentations, and on corpus presentations given objects."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest
from compound_file import ole_object
from corpus_scoring import CORPUS, corpus_f1, needs_corpus
from ooxml_files import (
    DOCX_MIME,
    OLE_OBJECT_MIME,
    PDF_TEXT,
    WORD_TEXT,
    XLSX_MIME,
    embedded_pdf_object,
    pdf_in,
    relationship,
    rewrite_package,
)

from docworker.document import Block, BlockKind, Document
from docworker.errors import CorruptDocument, LimitExceeded, PasswordRequired
from docworker.formats.base import PageSelection, ParseContext, ParseLimits, Source
from docworker.formats.ooxml.slides import PPTX_MACRO_MIME, PPTX_MIME, PptxParser

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
    # The charts' workbooks are listed, not read: no slide shows them as objects.
    assert {(a.path, a.mime) for a in doc.attachments} == {
        ("ppt/embeddings/Microsoft_Excel_Worksheet.xlsx", XLSX_MIME),
        ("ppt/embeddings/Microsoft_Excel_Worksheet1.xlsx", XLSX_MIME),
    }
    assert not [b for b in doc.blocks if b.text.startswith("Attachment:")]
    assert not doc.warnings


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


# -- embedded objects --------------------------------------------------------------

WORD_SAMPLE = OFFICE / "word-sample.docx"
WORKBOOK = OFFICE / "workbook-multi-sheet.xlsx"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ole_frame(shape_id: int, rid: str, top: int) -> str:
    """An object's graphic frame as PowerPoint writes it: the object twice, under one id."""
    ole = f'<p:oleObj name="Object" r:id="{rid}" imgW="914400" imgH="914400" progId="Package">'
    return (
        f'<p:graphicFrame><p:nvGraphicFramePr><p:cNvPr id="{shape_id}" name="Object {shape_id}"/>'
        "<p:cNvGraphicFramePr/><p:nvPr/></p:nvGraphicFramePr>"
        f'<p:xfrm><a:off x="838200" y="{top}"/><a:ext cx="914400" cy="914400"/></p:xfrm>'
        '<a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/presentationml/2006/ole">'
        '<mc:AlternateContent xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006">'
        '<mc:Choice xmlns:v="urn:schemas-microsoft-com:vml" Requires="v">'
        f"{ole}<p:embed/></p:oleObj></mc:Choice>"
        f"<mc:Fallback>{ole}<p:embed/></p:oleObj></mc:Fallback>"
        "</mc:AlternateContent></a:graphicData></a:graphic></p:graphicFrame>"
    )


def with_objects(path: Path, pdf_object: bytes | None = None) -> Path:
    """The corpus sample with a PDF object on slides 2 and 3 and a Word document on slide 3.

    The Word document is drawn above the PDF on slide 3; a chart's workbook sits
    in the folder, shown by no slide.
    """
    pdf = relationship("rIdPdf", "oleObject", "../embeddings/oleObject1.bin")
    word = relationship("rIdDoc", "package", "../embeddings/Microsoft_Word_Document.docx")
    return rewrite_package(
        OFFICE / "powerpoint-sample.pptx",
        path,
        {
            "ppt/embeddings/oleObject1.bin": pdf_object or embedded_pdf_object(),
            "ppt/embeddings/Microsoft_Word_Document.docx": WORD_SAMPLE.read_bytes(),
            "ppt/embeddings/Microsoft_Excel_Worksheet.xlsx": WORKBOOK.read_bytes(),
        },
        {
            "ppt/slides/slide2.xml": [("</p:spTree>", ole_frame(90, "rIdPdf", 4_000_000))],
            "ppt/slides/_rels/slide2.xml.rels": [("</Relationships>", pdf)],
            "ppt/slides/slide3.xml": [
                ("</p:spTree>", ole_frame(90, "rIdPdf", 6_000_000)),
                ("</p:spTree>", ole_frame(91, "rIdDoc", 10)),
            ],
            "ppt/slides/_rels/slide3.xml.rels": [("</Relationships>", pdf + word)],
        },
    )


def test_objects_on_a_slide_are_read_on_its_page_after_its_notes(tmp_path: Path) -> None:
    doc = parse(with_objects(tmp_path / "objects.pptx"))
    pdf = pdf_in(embedded_pdf_object())
    word = WORD_SAMPLE.read_bytes()
    assert [(a.name, a.mime, a.path, a.sha256) for a in doc.attachments[:2]] == [
        ("oleObject1.bin", "application/pdf", "ppt/embeddings/oleObject1.bin", sha256(pdf)),
        (
            "Microsoft_Word_Document.docx",
            DOCX_MIME,
            "ppt/embeddings/Microsoft_Word_Document.docx",
            sha256(word),
        ),
    ]
    second = [(b.kind, b.text) for b in on_page(doc, 2)]
    notes = second.index((BlockKind.FOOTNOTE, "Some notes on the second slide."))
    assert second[notes + 1] == (BlockKind.HEADING, "Attachment: oleObject1.bin")
    # Shown on two slides (and twice in each frame), the PDF is read once, where first shown.
    assert sum(PDF_TEXT in b.text for b in doc.blocks) == 1
    assert any(PDF_TEXT in text for _, text in second)
    third = [b.text for b in on_page(doc, 3)]
    assert "Attachment: Microsoft_Word_Document.docx" in third
    assert WORD_TEXT in third
    assert [b.page for b in doc.blocks] == sorted(b.page or 0 for b in doc.blocks)
    assert not doc.warnings


def test_other_embedded_files_are_listed_only(tmp_path: Path) -> None:
    doc = parse(with_objects(tmp_path / "objects.pptx"))
    assert [(a.name, a.mime, a.size) for a in doc.attachments[2:]] == [
        ("Microsoft_Excel_Worksheet.xlsx", XLSX_MIME, len(WORKBOOK.read_bytes()))
    ]
    assert "Attachment: Microsoft_Excel_Worksheet.xlsx" not in [b.text for b in doc.blocks]


def test_objects_on_slides_not_selected_are_listed_only(tmp_path: Path) -> None:
    path = with_objects(tmp_path / "objects.pptx")
    # Slide 3 shows both objects: the page selected reads them, in its reading order.
    only_third = parse(path, ParseContext(pages=PageSelection.parse("3")))
    assert {b.page for b in only_third.blocks} == {3}
    assert [a.name for a in only_third.attachments] == [
        "Microsoft_Word_Document.docx",
        "oleObject1.bin",
        "Microsoft_Excel_Worksheet.xlsx",
    ]
    assert sum(PDF_TEXT in b.text for b in only_third.blocks) == 1
    only_first = parse(path, ParseContext(pages=PageSelection.parse("1")))
    # Listed as they sit in the package, each in its container, none read.
    assert [(a.name, a.mime, a.size) for a in only_first.attachments] == [
        ("oleObject1.bin", OLE_OBJECT_MIME, len(embedded_pdf_object())),
        ("Microsoft_Word_Document.docx", DOCX_MIME, len(WORD_SAMPLE.read_bytes())),
        ("Microsoft_Excel_Worksheet.xlsx", XLSX_MIME, len(WORKBOOK.read_bytes())),
    ]
    assert not [b for b in only_first.blocks if b.text.startswith("Attachment:")]


def test_objects_follow_their_slide_when_the_presentation_reorders_slides(
    tmp_path: Path,
) -> None:
    path = with_objects(tmp_path / "objects.pptx")
    reordered = tmp_path / "reordered.pptx"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(reordered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "ppt/presentation.xml":
                start, end = data.index(b"<p:sldIdLst>") + 12, data.index(b"</p:sldIdLst>")
                entries = [e + b"/>" for e in data[start:end].split(b"/>") if e.strip()]
                data = data[:start] + b"".join(reversed(entries)) + data[end:]
            dst.writestr(info, data)
    doc = parse(reordered)
    # The third slide (both objects) is shown first, the second slide (the PDF) second.
    assert [p.label for p in doc.pages] == [None, "Second slide title", "Test Table Slide"]
    first = [b.text for b in on_page(doc, 1)]
    assert "Attachment: Microsoft_Word_Document.docx" in first
    assert "Attachment: oleObject1.bin" in first
    assert not [b for b in on_page(doc, 3) if b.text.startswith("Attachment:")]


def test_a_damaged_object_is_a_warning_on_its_slide(tmp_path: Path) -> None:
    broken = ole_object("CONTENTS", pdf_in(embedded_pdf_object()))[:600]
    doc = parse(with_objects(tmp_path / "broken.pptx", broken))
    warning = doc.warnings[0]
    assert (warning.code, warning.page) == ("object-unreadable", 2)
    assert warning.message.startswith("oleObject1.bin: the ole document could not be read")
    assert "attachment-failed" in [w.code for w in doc.warnings]
    assert WORD_TEXT in [b.text for b in on_page(doc, 3)]
    assert [p.number for p in doc.pages] == [1, 2, 3]


@pytest.mark.parametrize(
    ("limits", "listed", "warning"),
    [
        (ParseLimits(max_embedded=1), ["oleObject1.bin"], "embedded-count-limit"),
        (
            ParseLimits(max_depth=0),
            ["oleObject1.bin", "Microsoft_Word_Document.docx", "Microsoft_Excel_Worksheet.xlsx"],
            "embedded-depth-limit",
        ),
    ],
    ids=["count", "depth"],
)
def test_objects_on_slides_obey_the_limits(
    tmp_path: Path, limits: ParseLimits, listed: list[str], warning: str
) -> None:
    doc = parse(with_objects(tmp_path / "objects.pptx"), ParseContext(limits=limits))
    assert [a.name for a in doc.attachments] == listed
    assert [w.code for w in doc.warnings] == [warning]
    assert sum(PDF_TEXT in b.text for b in doc.blocks) == (
        1 if warning == "embedded-count-limit" else 0
    )


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


def test_text_around_an_unexpanded_entity_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "entity.pptx"
    doctype = b'<!DOCTYPE p:sld [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    with zipfile.ZipFile(OFFICE / "pptx-table.pptx") as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "ppt/slides/slide1.xml":
                data = data.replace(b"<p:sld ", doctype + b"<p:sld ", 1)
                data = data.replace(b"A Slide with", b"A Slide &xxe; with", 1)
                assert b"&xxe;" in data
            dst.writestr(info, data)
    doc = parse(path)
    # The entity is not expanded: its reference reads as nothing.
    assert doc.pages[0].label == "A Slide with a Table"
    assert doc.blocks[0].text == "A Slide with a Table"


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
