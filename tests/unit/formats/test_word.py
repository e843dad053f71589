"""DocxParser on the corpus Word files and on small packages written here."""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import olefile
import pytest
from compound_file import ole10_native, ole_object
from corpus_scoring import CORPUS, corpus_f1, needs_corpus

from docworker.document import Block, BlockKind, Document
from docworker.errors import CorruptDocument, PasswordRequired
from docworker.formats.base import PageSelection, ParseContext, ParseLimits, Source
from docworker.formats.ooxml.word import WORD_MACRO_MIME, WORD_MIME, DocxParser

OFFICE = CORPUS / "office"
pytestmark = needs_corpus


def parse(path: Path, ctx: ParseContext | None = None, mime: str = WORD_MIME) -> Document:
    return DocxParser().parse(Source(path, mime), ctx or ParseContext())


def kinds(doc: Document, kind: BlockKind) -> list[Block]:
    return [b for b in doc.blocks if b.kind == kind]


@pytest.fixture(scope="module")
def sample() -> Document:
    return parse(OFFICE / "word-sample.docx")


@pytest.fixture(scope="module")
def tables() -> Document:
    return parse(OFFICE / "word-tables.docx")


# -- the corpus ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "minimum"),
    [
        ("word-sample", 0.99),
        # The truth repeats merged cells' text, the scoring render writes it once: 0.901.
        ("word-tables", 0.89),
        ("equations", 0.98),
        ("textbox", 0.99),
        # The truth is made of overlapping chunks that repeat words: 0.935.
        ("handbook-1p", 0.93),
    ],
)
def test_text_matches_the_ground_truth(name: str, minimum: float) -> None:
    assert corpus_f1(DocxParser(), f"office/{name}.docx", WORD_MIME) >= minimum


def test_headings_come_from_styles(sample: Document) -> None:
    assert [b.text for b in kinds(sample, BlockKind.TITLE)] == ["Swimming in the lake"]
    headings = [(b.level, b.text) for b in kinds(sample, BlockKind.HEADING)]
    assert headings == [(1, "Let’s swim!"), (2, "Let’s eat")]


def test_list_items_are_bulleted_or_numbered_by_their_numbering(sample: Document) -> None:
    items = [(b.text, b.level, b.ordered) for b in kinds(sample, BlockKind.LIST_ITEM)]
    assert items[:3] == [
        ("You can relax and look around", 1, False),
        ("Paddle about", 1, False),
        ("Enjoy summer warmth", 1, False),
    ]
    assert [(text, ordered) for text, _, ordered in items[3:6]] == [
        ("Wear sunglasses", True),
        ("Don’t forget to drink water", True),
        ("Use sun cream", True),
    ]
    assert len(items) == 9


def test_body_is_read_in_document_order(sample: Document) -> None:
    texts = [b.kind for b in sample.blocks]
    table_at = texts.index(BlockKind.TABLE)
    before = sample.blocks[table_at - 1].text
    after = sample.blocks[table_at + 1].text
    assert before.startswith("Here are some interesting things")
    assert after == "And let’s add another list in the end:"


def test_table_cells_and_header_row(sample: Document) -> None:
    [block] = kinds(sample, BlockKind.TABLE)
    assert block.table is not None
    assert block.table.grid()[0] == ["", "Food", "Calories per portion"]
    assert block.table.grid()[2] == ["Berries", "Blueberry, Strawberry, Cranberry", "150"]
    assert block.table.header_rows() == 1


def test_descriptions_office_generated_are_not_text(sample: Document) -> None:
    # "A cartoon duck holding a paper\n\nDescription automatically generated"
    [image] = kinds(sample, BlockKind.IMAGE)
    assert image.text == ""
    [caption] = kinds(sample, BlockKind.CAPTION)
    assert caption.text == "Figure 1: This is a cute duckling"


def test_page_number_fields_are_not_text(sample: Document) -> None:
    # The only footer holds a PAGE field, whose cached value is layout, not text.
    assert kinds(sample, BlockKind.FOOTER) == []


def test_core_properties_become_metadata(sample: Document) -> None:
    assert sample.metadata.authors == ["Christoph Auer"]
    assert sample.metadata.created == datetime(2024, 10, 9, 12, 43, tzinfo=UTC)
    assert sample.metadata.modified == datetime(2024, 10, 15, 11, 34, tzinfo=UTC)
    assert sample.metadata.title == "Swimming in the lake"
    assert sample.metadata.word_count > 80


def test_horizontal_spans(tables: Document) -> None:
    table = kinds(tables, BlockKind.TABLE)[1].table
    assert table is not None
    merged = next(c for c in table.cells if c.text == "Merged Cell 1.1 1.2")
    assert (merged.row, merged.col, merged.row_span, merged.col_span) == (1, 1, 1, 2)
    assert table.header_rows() == 1


def test_vertical_spans(tables: Document) -> None:
    table = kinds(tables, BlockKind.TABLE)[3].table
    assert table is not None
    merged = next(c for c in table.cells if c.text == "Merged Cell 1.1 2.1")
    assert (merged.row, merged.col, merged.row_span, merged.col_span) == (1, 1, 2, 1)
    assert [row[1] for row in table.grid()[1:5]] == [
        "Merged Cell 1.1 2.1",
        "Merged Cell 1.1 2.1",
        "Merged Cell 3.1 4.1",
        "Merged Cell 3.1 4.1",
    ]


def test_rows_starting_late_keep_their_columns(tables: Document) -> None:
    late, spanning = (b.table for b in kinds(tables, BlockKind.TABLE)[-2:])
    assert late is not None and spanning is not None
    assert late.grid() == [["Header 0.0", "Header 0.1"], ["", "Cell 1.1"]]
    assert spanning.grid()[1] == ["", "", "Merged Cell 0.2 1.2"]


def test_equations_become_latex() -> None:
    doc = parse(OFFICE / "equations.docx")
    first = doc.blocks[0]
    assert first.kind == BlockKind.PARAGRAPH
    assert "$A=\\pi r^{2}$" in first.text
    formulas = [b.text for b in kinds(doc, BlockKind.FORMULA)]
    assert "a^{2}+b^{2}=c^{2} \\times  23" in formulas
    assert any(f.startswith("f\\left(x\\right)=a_{0}+\\sum_{n=1}^{\\infty}") for f in formulas)
    assert any("\\frac{nx}{1!}" in f for f in formulas)
    items = kinds(doc, BlockKind.LIST_ITEM)
    assert "$E=mc^{2}$" in items[1].text


def test_text_boxes_are_read_once() -> None:
    doc = parse(OFFICE / "textbox.docx")
    texts = [b.text for b in doc.blocks]
    # Each box is stored twice (DrawingML choice and VML fallback); one copy counts.
    assert texts.count("Student falls ill") == 1
    assert texts.count("Case closed.") == 1
    items = [b for b in kinds(doc, BlockKind.LIST_ITEM) if b.text.startswith("A report must")]
    assert len(items) == 2


def test_headers_and_footers_once_each() -> None:
    doc = parse(OFFICE / "handbook-1p.docx")
    assert [b.text for b in kinds(doc, BlockKind.HEADER)] == ["US Trustee Handbook"]
    assert [b.text for b in kinds(doc, BlockKind.FOOTER)] == ["Copyright"]
    assert doc.blocks[0].kind == BlockKind.HEADER
    assert doc.blocks[-1].kind == BlockKind.FOOTER


def test_a_page_selection_is_ignored_with_a_warning() -> None:
    doc = parse(OFFICE / "word-tables.docx", ParseContext(pages=PageSelection.parse("2")))
    assert len(kinds(doc, BlockKind.TABLE)) == 7
    assert [w.code for w in doc.warnings] == ["pages-ignored"]


# -- embedded objects --------------------------------------------------------------

EMBEDDED_PDF = OFFICE / "docx-with-embedded-pdf.docx"
#: Text of the PDF that both objects of the corpus file wrap.
PDF_TEXT = "Eliahu David"


def ole_contents(part: str) -> bytes:
    """What the corpus file's object ``part`` wraps, read with olefile directly."""
    with zipfile.ZipFile(EMBEDDED_PDF) as zf, olefile.OleFileIO(io.BytesIO(zf.read(part))) as ole:
        return bytes(ole.openstream("CONTENTS").read())


def rewrite_corpus_docx(path: Path, parts: dict[str, bytes]) -> Path:
    """The corpus file with ``parts`` replaced or added."""
    with zipfile.ZipFile(EMBEDDED_PDF) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            if info.filename not in parts:
                target.writestr(info, source.read(info))
        for name, data in parts.items():
            target.writestr(name, data)
    return path


def test_embedded_objects_are_unwrapped_listed_and_read() -> None:
    doc = parse(EMBEDDED_PDF)
    pdf = ole_contents("word/embeddings/oleObject1.bin")
    assert pdf.startswith(b"%PDF-") and pdf == ole_contents("word/embeddings/oleObject2.bin")
    # The object in the text's order, each as the PDF it wraps, where it sits in the package.
    assert [(a.name, a.mime, a.path) for a in doc.attachments] == [
        ("oleObject1.bin", "application/pdf", "word/embeddings/oleObject1.bin"),
        ("oleObject2.bin", "application/pdf", "word/embeddings/oleObject2.bin"),
    ]
    digest = hashlib.sha256(pdf).hexdigest()
    assert {(a.size, a.sha256) for a in doc.attachments} == {(len(pdf), digest)}
    texts = [b.text for b in doc.blocks]
    body_end = texts.index("Bye for real.")
    assert texts[body_end + 1] == "Attachment: oleObject1.bin"
    assert doc.blocks[body_end + 1].level == 2
    assert sum(PDF_TEXT in text for text in texts) == 2
    assert doc.metadata.title == "Here is the pdf file:"
    assert doc.metadata.authors == ["IBMer"]
    assert not doc.warnings


def test_a_packaged_file_is_read_under_its_own_name_and_other_parts_only_listed(
    tmp_path: Path,
) -> None:
    notes = b"Minutes of the board meeting.\n\nThe budget was agreed.\n"
    workbook = (OFFICE / "workbook-multi-sheet.xlsx").read_bytes()
    path = rewrite_corpus_docx(
        tmp_path / "objects.docx",
        {
            "word/embeddings/oleObject2.bin": ole_object(
                "\x01Ole10Native", ole10_native(notes, "C:\\Users\\ann\\minutes.txt")
            ),
            # A chart's workbook: in the folder, but no object in the text.
            "word/embeddings/Microsoft_Excel_Worksheet.xlsx": workbook,
        },
    )
    doc = parse(path)
    assert [(a.name, a.mime, a.path) for a in doc.attachments] == [
        ("oleObject1.bin", "application/pdf", "word/embeddings/oleObject1.bin"),
        ("minutes.txt", "text/plain", "word/embeddings/oleObject2.bin"),
        (
            "Microsoft_Excel_Worksheet.xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "word/embeddings/Microsoft_Excel_Worksheet.xlsx",
        ),
    ]
    assert doc.attachments[1].sha256 == hashlib.sha256(notes).hexdigest()
    assert doc.attachments[2].size == len(workbook)
    texts = [b.text for b in doc.blocks]
    assert "Attachment: minutes.txt" in texts
    assert "The budget was agreed." in texts
    assert "Attachment: Microsoft_Excel_Worksheet.xlsx" not in texts
    assert not doc.warnings


def test_a_damaged_object_is_a_warning_and_the_others_are_read(tmp_path: Path) -> None:
    broken = ole_object("CONTENTS", ole_contents("word/embeddings/oleObject1.bin"))[:600]
    path = rewrite_corpus_docx(tmp_path / "broken.docx", {"word/embeddings/oleObject1.bin": broken})
    doc = parse(path)
    codes = [w.code for w in doc.warnings]
    assert codes[0] == "object-unreadable"
    assert doc.warnings[0].message.startswith("oleObject1.bin: the ole document could not be read")
    assert "attachment-failed" in codes  # the container, handed on as it is, reads as nothing
    assert [a.path for a in doc.attachments][-1] == "word/embeddings/oleObject2.bin"
    assert sum(PDF_TEXT in b.text for b in doc.blocks) == 1


@pytest.mark.parametrize(
    ("limits", "read", "warning"),
    [
        (ParseLimits(max_embedded=1), 1, "embedded-count-limit"),
        # An object is weighed before it is unpacked: the second container (1.4 MB, with
        # its preview) does not fit beside the first one's PDF.
        (ParseLimits(max_embedded_bytes=1_480_000), 1, "embedded-size-limit"),
        (ParseLimits(max_depth=0), 0, "embedded-depth-limit"),
    ],
    ids=["count", "bytes", "depth"],
)
def test_embedded_objects_obey_the_limits(limits: ParseLimits, read: int, warning: str) -> None:
    doc = parse(EMBEDDED_PDF, ParseContext(limits=limits))
    assert sum(PDF_TEXT in b.text for b in doc.blocks) == read
    assert len(doc.attachments) == (2 if warning == "embedded-depth-limit" else 1)
    assert [w.code for w in doc.warnings] == [warning]


# -- small packages ----------------------------------------------------------------

_NS = (
    'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" '
    'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"'
)
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def write_docx(
    path: Path, body: str, parts: dict[str, str] | None = None, main_type: str = "document"
) -> Path:
    """A minimal Word package: ``body`` inside ``w:body``, ``parts`` beside it.

    Each extra part ``word/<name>.xml`` is related from the document with the
    relationship type ``<name>`` stripped of digits (``header1`` → ``header``).
    """
    parts = parts or {}
    rels = "".join(
        f'<Relationship Id="r{name}" Type="{_REL}/{name.rstrip("0123456789")}" '
        f'Target="{name}.xml"/>'
        for name in parts
    )
    rels += f'<Relationship Id="rLink" Type="{_REL}/hyperlink" Target="https://example.org/" '
    rels += 'TargetMode="External"/>'
    content_type = (
        "application/vnd.ms-word.document.macroEnabled.main+xml"
        if main_type == "macro"
        else "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    )
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(
            "[Content_Types].xml",
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/word/document.xml" ContentType="{content_type}"/></Types>',
        )
        zf.writestr(
            "_rels/.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="word/document.xml"/>'
            "</Relationships>",
        )
        zf.writestr(
            "word/_rels/document.xml.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f"{rels}</Relationships>",
        )
        zf.writestr("word/document.xml", f"<w:document {_NS}><w:body>{body}</w:body></w:document>")
        for name, xml in parts.items():
            zf.writestr(f"word/{name}.xml", xml)
    return path


def p(text: str, props: str = "") -> str:
    return f"<w:p><w:pPr>{props}</w:pPr><w:r><w:t>{text}</w:t></w:r></w:p>"


def test_macro_enabled_documents_are_read(tmp_path: Path) -> None:
    path = write_docx(tmp_path / "macro.docm", p("Hello macros"), main_type="macro")
    doc = parse(path, mime=WORD_MACRO_MIME)
    assert [b.text for b in doc.blocks] == ["Hello macros"]
    assert doc.mime == WORD_MACRO_MIME


def test_hyperlinks_become_links(tmp_path: Path) -> None:
    body = (
        '<w:p><w:r><w:t xml:space="preserve">See </w:t></w:r>'
        '<w:hyperlink r:id="rLink"><w:r><w:t>the site</w:t></w:r></w:hyperlink>'
        '<w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        '<w:r><w:instrText> HYPERLINK "https://example.com/field" </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r>'
        '<w:r><w:t xml:space="preserve"> and a field</w:t></w:r>'
        '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'
    )
    [block] = parse(write_docx(tmp_path / "links.docx", body)).blocks
    assert block.text == "See the site and a field"
    assert [(link.text, link.url) for link in block.links] == [
        ("the site", "https://example.org/"),
        ("and a field", "https://example.com/field"),
    ]


def test_outline_levels_hidden_text_breaks_and_symbols(tmp_path: Path) -> None:
    body = (
        p("Chapter", '<w:outlineLvl w:val="1"/>')
        + "<w:p><w:r><w:t>Seen</w:t></w:r><w:r><w:rPr><w:vanish/></w:rPr><w:t>Hidden</w:t></w:r>"
        '<w:r><w:br w:type="page"/><w:t>after</w:t><w:sym w:font="Wingdings" w:char="F0FC"/>'
        '<w:sym w:font="Arial" w:char="00E9"/></w:r></w:p>'
    )
    doc = parse(write_docx(tmp_path / "misc.docx", body))
    assert [(b.kind, b.level, b.text) for b in doc.blocks] == [
        (BlockKind.HEADING, 2, "Chapter"),
        (BlockKind.PARAGRAPH, None, "Seen\nafteré"),
        (BlockKind.PAGE_BREAK, None, ""),
    ]


def test_imported_chunks_are_read_in_place(tmp_path: Path) -> None:
    mhtml = (
        "MIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=B\r\n\r\n--B\r\n"
        "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable"
        "\r\n\r\n<html><body><p>From the web archive: caf=C3=A9</p></body></html>\r\n--B--\r\n"
    )
    chunks = {
        "chunk1.htm": b"<html><body><h1>Imported</h1><ul><li>one</li></ul></body></html>",
        "chunk2.mht": mhtml.encode(),
        "chunk3.rtf": rb"{\rtf1\ansi From RTF\par}",
        "chunk4.txt": b"Plain one.\n\nPlain two.",
    }
    body = (
        p("Before")
        + "".join(f'<w:altChunk r:id="rc{n}"/>' for n in range(1, len(chunks) + 1))
        + p("After")
    )
    path = write_docx(tmp_path / "chunks.docx", body)
    with zipfile.ZipFile(path) as zf:
        files = {name: zf.read(name) for name in zf.namelist()}
    rels = "".join(
        f'<Relationship Id="rc{n}" Type="{_REL}/aFChunk" Target="{name}"/>'
        for n, name in enumerate(chunks, 1)
    )
    name = "word/_rels/document.xml.rels"
    files[name] = files[name].replace(b"</Relationships>", rels.encode() + b"</Relationships>")
    files.update({f"word/{chunk}": data for chunk, data in chunks.items()})
    with zipfile.ZipFile(path, "w") as zf:
        for part, data in files.items():
            zf.writestr(part, data)
    doc = parse(path)
    assert [(b.kind, b.text) for b in doc.blocks] == [
        (BlockKind.PARAGRAPH, "Before"),
        (BlockKind.HEADING, "Imported"),
        (BlockKind.LIST_ITEM, "one"),
        (BlockKind.PARAGRAPH, "From the web archive: café"),
        (BlockKind.PARAGRAPH, "From RTF"),
        (BlockKind.PARAGRAPH, "Plain one."),
        (BlockKind.PARAGRAPH, "Plain two."),
        (BlockKind.PARAGRAPH, "After"),
    ]


def test_ruby_base_text_is_read_without_its_guide(tmp_path: Path) -> None:
    ruby = (
        "<w:r><w:ruby><w:rubyPr/><w:rt><w:r><w:t>かん</w:t></w:r></w:rt>"
        "<w:rubyBase><w:r><w:t>漢</w:t></w:r></w:rubyBase></w:ruby></w:r>"
    )
    body = f"<w:p><w:r><w:t>東京の</w:t></w:r>{ruby}<w:r><w:t>字</w:t></w:r></w:p>"
    [block] = parse(write_docx(tmp_path / "ruby.docx", body)).blocks
    assert block.text == "東京の漢字"


def test_nested_tables_keep_their_text_and_header_rows_are_marked(tmp_path: Path) -> None:
    nested = f"<w:tbl><w:tr><w:tc>{p('inner A')}</w:tc><w:tc>{p('inner B')}</w:tc></w:tr></w:tbl>"
    body = (
        "<w:tbl><w:tr><w:trPr><w:tblHeader/></w:trPr>"
        f"<w:tc>{p('Name')}</w:tc><w:tc>{p('Value')}</w:tc></w:tr>"
        f"<w:tr><w:tc>{p('outer')}</w:tc><w:tc>{nested}</w:tc></w:tr></w:tbl>"
    )
    [block] = parse(write_docx(tmp_path / "nested.docx", body)).blocks
    assert block.table is not None
    assert block.table.grid() == [["Name", "Value"], ["outer", "inner A | inner B"]]
    assert block.table.header_rows() == 1


def test_alternate_content_is_read_once(tmp_path: Path) -> None:
    box = f"<w:txbxContent>{p('Boxed text')}</w:txbxContent>"
    body = (
        '<w:p><w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing>'
        f"<wrapper>{box}</wrapper></w:drawing></mc:Choice>"
        f"<mc:Fallback><w:pict><shape>{box}</shape></w:pict></mc:Fallback>"
        "</mc:AlternateContent></w:r></w:p>"
    )
    doc = parse(write_docx(tmp_path / "box.docx", body))
    assert [b.text for b in doc.blocks] == ["Boxed text"]


def test_headers_footers_and_notes(tmp_path: Path) -> None:
    def story(root: str, text: str) -> str:
        return f"<w:{root} {_NS}>{p(text)}</w:{root}>"

    notes = (
        f"<w:footnotes {_NS}>"
        '<w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:footnote>'
        f'<w:footnote w:id="1">{p("A footnote.")}</w:footnote></w:footnotes>'
    )
    sections = (
        '<w:sectPr><w:headerReference w:type="default" r:id="rheader1"/>'
        '<w:footerReference w:type="default" r:id="rfooter1"/></w:sectPr>'
    )
    body = (
        f"<w:p><w:pPr>{sections}</w:pPr><w:r><w:t>Section one</w:t></w:r></w:p>"
        + p("Section two")
        + sections
    )
    parts = {
        "header1": story("hdr", "Running head"),
        "footer1": story("ftr", "Running foot"),
        "footnotes": notes,
    }
    doc = parse(write_docx(tmp_path / "notes.docx", body, parts))
    assert [(b.kind, b.text) for b in doc.blocks] == [
        (BlockKind.HEADER, "Running head"),
        (BlockKind.PARAGRAPH, "Section one"),
        (BlockKind.PAGE_BREAK, ""),
        (BlockKind.PARAGRAPH, "Section two"),
        (BlockKind.FOOTER, "Running foot"),
        (BlockKind.FOOTNOTE, "A footnote."),
    ]


def test_text_around_an_unexpanded_entity_is_kept(tmp_path: Path) -> None:
    doctype = '<!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    header = f"{doctype}<w:hdr {_NS}>{p('Head &xxe; line')}</w:hdr>"
    sections = '<w:sectPr><w:headerReference w:type="default" r:id="rheader1"/></w:sectPr>'
    path = write_docx(tmp_path / "entity.docx", p("A &xxe; B") + sections, {"header1": header})
    with zipfile.ZipFile(path) as zf:
        parts = {name: zf.read(name) for name in zf.namelist()}
    parts["word/document.xml"] = doctype.encode() + parts["word/document.xml"]
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    doc = parse(path)
    # The entity is not expanded: its reference reads as nothing.
    assert [b.text for b in doc.blocks] == ["Head  line", "A  B"]


# -- errors ------------------------------------------------------------------------


def test_encrypted_package_needs_a_password(tmp_path: Path) -> None:
    # Encrypted OOXML of any kind is the same CFB container.
    path = tmp_path / "secret.docx"
    path.write_bytes((OFFICE / "encrypted-password-tika.xlsx").read_bytes())
    with pytest.raises(PasswordRequired):
        parse(path)


@pytest.mark.parametrize(
    ("source", "length"),
    [
        ("word-sample.docx", 4000),
        ("legacy-word.doc", None),
        ("pptx-table.pptx", None),
        ("handbook-1p.expected.md", None),
    ],
    ids=["truncated", "legacy-binary", "not-word", "not-zip"],
)
def test_broken_packages_are_corrupt(tmp_path: Path, source: str, length: int | None) -> None:
    path = tmp_path / "broken.docx"
    path.write_bytes((OFFICE / source).read_bytes()[:length])
    with pytest.raises(CorruptDocument) as caught:
        parse(path)
    assert str(tmp_path) not in str(caught.value)


def test_malformed_xml_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "bad.docx"
    with zipfile.ZipFile(path, "w") as zf:
        write_docx(tmp_path / "good.docx", p("x"))
        with zipfile.ZipFile(tmp_path / "good.docx") as good:
            for info in good.infolist():
                data = good.read(info)
                zf.writestr(info, data[:-20] if info.filename == "word/document.xml" else data)
    with pytest.raises(CorruptDocument):
        parse(path)


def test_a_cancelled_job_stops_reading_with_a_warning(tmp_path: Path) -> None:
    body = "".join(p(f"Paragraph {i}") for i in range(300))
    path = write_docx(tmp_path / "long.docx", body)
    progress: list[float] = []
    ctx = ParseContext(progress=lambda done, _: progress.append(done), cancelled=lambda: True)
    doc = parse(path, ctx)
    assert len(doc.blocks) < 300
    assert [w.code for w in doc.warnings] == ["cancelled"]
    whole = parse(path, ParseContext(progress=lambda done, _: progress.append(done)))
    assert len(whole.blocks) == 300
    assert progress and progress[-1] <= 1.0


def _notes_part(kind: str, notes: dict[str, str]) -> str:
    """A footnotes or endnotes part with Word's separators and the given notes by id."""
    separators = (
        f'<w:{kind} w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:{kind}>'
        f'<w:{kind} w:type="continuationSeparator" w:id="0"><w:p><w:r>'
        f"<w:continuationSeparator/></w:r></w:p></w:{kind}>"
    )
    own = "".join(
        f'<w:{kind} w:id="{note_id}"><w:p><w:r><w:{kind}Ref/></w:r>'
        f'<w:r><w:t xml:space="preserve"> {text}</w:t></w:r></w:p></w:{kind}>'
        for note_id, text in notes.items()
    )
    return f"<w:{kind}s {_NS}>{separators}{own}</w:{kind}s>"


def test_note_marks_stay_where_the_text_refers_to_them(tmp_path: Path) -> None:
    from docworker.render.document import render_html, render_markdown, render_text

    def ref(kind: str, note_id: str) -> str:
        style = '<w:rPr><w:rStyle w:val="FootnoteReference"/></w:rPr>'
        return f'<w:r>{style}<w:{kind}Reference w:id="{note_id}"/></w:r>'

    body = (
        f"<w:p><w:r><w:t>Cats sleep a lot.</w:t></w:r>{ref('footnote', '2')}"
        f'<w:r><w:t xml:space="preserve"> Dogs bark.</w:t></w:r>{ref("endnote", "1")}</w:p>'
        f"<w:p><w:r><w:t>Birds sing.</w:t></w:r>{ref('footnote', '1')}</w:p>"
    )
    parts = {
        # Stored in id order; the text refers to note 2 first, so Word numbers it 1.
        "footnotes": _notes_part("footnote", {"1": "About birds.", "2": "About cats."}),
        "endnotes": _notes_part("endnote", {"1": "About dogs."}),
    }
    doc = parse(write_docx(tmp_path / "notes.docx", body, parts))
    assert [(b.kind.value, b.text, b.label) for b in doc.blocks] == [
        ("paragraph", "Cats sleep a lot.[1] Dogs bark.[i]", None),
        ("paragraph", "Birds sing.[2]", None),
        ("footnote", "About cats.", "1"),
        ("footnote", "About birds.", "2"),
        ("footnote", "About dogs.", "i"),
    ]
    markdown = render_markdown(doc)
    assert markdown == (
        "Cats sleep a lot.[^1] Dogs bark.[^i]\n\nBirds sing.[^2]\n\n"
        "[^1]: About cats.\n\n[^2]: About birds.\n\n[^i]: About dogs.\n"
    )
    text = render_text(doc)
    assert "Cats sleep a lot.[1] Dogs bark.[i]" in text and text.endswith("[i] About dogs.\n")
    assert '<a id="note-1">[1]</a> About cats.' in render_html(doc)
