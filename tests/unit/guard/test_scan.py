"""The guard's scan on hostile files built in the test's folder and from the corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.scoring import corpus_root
from docworker.config import FindingKind, GuardSettings
from docworker.guard import Finding, SecurityReport, scan_file
from tests.unit.guard import hostile_files as build

CORPUS = corpus_root()
HOSTILE = CORPUS / "hostile"
needs_corpus = pytest.mark.skipif(not HOSTILE.is_dir(), reason="test corpus not present")
K = FindingKind


def scan(path: Path, name: str | None = None, **settings: object) -> SecurityReport:
    return scan_file(path, name or path.name, None, GuardSettings(**settings))


def by_kind(report: SecurityReport) -> dict[FindingKind, Finding]:
    kinds = [f.kind for f in report.findings]
    assert len(kinds) == len(set(kinds)), "one finding per kind"
    return {f.kind: f for f in report.findings}


def test_a_clean_pdf_has_no_finding_and_names_what_it_is(tmp_path: Path) -> None:
    report = scan(build.plain_pdf(tmp_path / "plain.pdf"))
    assert report.as_dict() == {
        "detected": {"mime": "application/pdf", "format": "pdf"},
        "claimed": {"name": "plain.pdf", "mime": "application/pdf"},
        "findings": [],
    }


def test_pdf_actions_and_embedded_files_are_found(tmp_path: Path) -> None:
    found = by_kind(scan(build.pdf_with_actions(tmp_path / "actions.pdf")))
    assert set(found) == {
        K.PDF_JAVASCRIPT,
        K.PDF_LAUNCH_ACTION,
        K.PDF_SUBMIT_FORM,
        K.PDF_REMOTE_ACTION,
        K.PDF_URI_ACTIONS,
        K.PDF_EMBEDDED_FILE,
    }
    assert "runs when the document" in found[K.PDF_JAVASCRIPT].detail
    assert "cmd.exe" in found[K.PDF_LAUNCH_ACTION].detail
    assert "other.pdf" in found[K.PDF_REMOTE_ACTION].detail
    assert found[K.PDF_URI_ACTIONS].count == 2
    assert "https://example.com/a" in found[K.PDF_URI_ACTIONS].detail
    assert found[K.PDF_EMBEDDED_FILE].count == 1
    assert "note.txt" in found[K.PDF_EMBEDDED_FILE].detail
    assert found[K.PDF_JAVASCRIPT].location is not None


ESCAPED_PDF = rb"""%PDF-1.4
1 0 obj << /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >> endobj
2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj
3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10]
  /Annots [<< /Subtype /Link /Rect [0 0 1 1] /A << /#53 /Lau#6Ech /F (calc.exe) >> >>] >>
endobj
4 0 obj << /#53 /Java#53cript /J#53 (app.alert\(1\)) >> endobj
trailer << /Root 1 0 R >>
%%EOF
"""


def test_pdf_actions_spelt_with_escapes_are_found(tmp_path: Path) -> None:
    """The walk skips objects whose written form names nothing it looks for: names
    written with #-escapes are read spelt out."""
    path = tmp_path / "escaped.pdf"
    path.write_bytes(ESCAPED_PDF)
    found = by_kind(scan(path))
    assert set(found) == {K.PDF_JAVASCRIPT, K.PDF_LAUNCH_ACTION}
    assert "opens" in found[K.PDF_JAVASCRIPT].detail
    assert "calc.exe" in found[K.PDF_LAUNCH_ACTION].detail


def test_pdf_actions_in_compressed_object_streams_are_found(tmp_path: Path) -> None:
    import pikepdf

    with pikepdf.open(build.pdf_with_actions(tmp_path / "actions.pdf")) as pdf:
        pdf.save(tmp_path / "packed.pdf", object_stream_mode=pikepdf.ObjectStreamMode.generate)
    assert b"/Launch" not in (tmp_path / "packed.pdf").read_bytes()  # compressed
    found = by_kind(scan(tmp_path / "packed.pdf"))
    assert {K.PDF_JAVASCRIPT, K.PDF_LAUNCH_ACTION, K.PDF_URI_ACTIONS} <= set(found)


@needs_corpus
def test_the_corpus_pdf_with_a_page_open_script_is_found() -> None:
    found = by_kind(scan(HOSTILE / "pdf-javascript-action.pdf"))
    assert set(found) == {K.PDF_JAVASCRIPT}
    assert "opens" in found[K.PDF_JAVASCRIPT].detail


@needs_corpus
def test_an_encrypted_pdf_is_searched_raw_without_an_error() -> None:
    report = scan(CORPUS / "pdf" / "encrypted-password-1234.pdf")
    assert K.SCAN_ERROR not in by_kind(report)


@needs_corpus
def test_vba_macros_of_the_corpus_files_are_found() -> None:
    word = by_kind(scan(HOSTILE / "word-macros.docm"))
    excel = by_kind(scan(HOSTILE / "excel-macros.xlsm"))
    assert set(word) == {K.OFFICE_MACROS} and set(excel) == {K.OFFICE_MACROS}
    assert "2 module(s)" in word[K.OFFICE_MACROS].detail
    assert "VBA/NewMacros" in (word[K.OFFICE_MACROS].location or "")
    assert "5 module(s)" in excel[K.OFFICE_MACROS].detail


@pytest.mark.parametrize(
    ("part", "looked_at"),
    [
        (b"\0" * 512 + "VBA\0".encode("utf-16-le"), True),
        # Any case: OLE's directory is read without it.
        (b"\0" * 512 + "vBa\0".encode("utf-16-le"), True),
        (b"x" * 100 + "PowerPoint Document".encode("utf-16-le"), True),
        # A name across two of the reader's chunks (1 MiB) is found whole.
        (b"\0" * (1024 * 1024 - 3) + "VBA\0".encode("utf-16-le"), True),
        # An OLE object without a VBA project, or the letters without their end.
        (b"\0" * 512 + "Ole10Native".encode("utf-16-le") + "VBAX".encode("utf-16-le"), False),
    ],
)
def test_olevba_looks_at_an_ooxml_package_only_when_an_ole_part_names_a_vba_project(
    tmp_path: Path, part: bytes, looked_at: bool
) -> None:
    import zipfile

    from docworker.guard.findings import Budget
    from docworker.guard.ooxml import may_hold_vba
    from docworker.guard.streams import Package

    path = build.write_zip(
        tmp_path / "a.docx", {"word/document.xml": "<w:document/>", "word/embeddings/o.bin": part}
    )
    with zipfile.ZipFile(path) as archive:
        assert may_hold_vba(Package(archive, Budget(30, 10**9), 100)) is looked_at


def test_a_remote_template_a_linked_picture_and_xxe_in_a_docx(tmp_path: Path) -> None:
    found = by_kind(scan(build.docx_with_remote_template(tmp_path / "template.docx")))
    assert set(found) == {K.REMOTE_TEMPLATE, K.EXTERNAL_REFERENCE, K.XXE}
    assert f"{build.NOWHERE}/template.dotm" in found[K.REMOTE_TEMPLATE].detail
    assert found[K.REMOTE_TEMPLATE].location == "word/_rels/settings.xml.rels"
    # The linked picture is fetched on open; the hyperlink is not, and is left out.
    assert found[K.EXTERNAL_REFERENCE].count == 1
    assert "tracker.png" in found[K.EXTERNAL_REFERENCE].detail
    assert "file:///etc/passwd" in found[K.XXE].detail
    assert found[K.XXE].location == "word/document.xml"


def test_dde_and_includepicture_fields_in_a_docx(tmp_path: Path) -> None:
    found = by_kind(scan(build.docx_with_fields(tmp_path / "fields.docx")))
    assert set(found) == {K.OFFICE_DDE, K.EXTERNAL_REFERENCE}
    # DDE and AUTO were written in separate runs: Word joins them, and so does the scan.
    assert found[K.OFFICE_DDE].detail.startswith("DDEAUTO field")
    assert "/k calc" in found[K.OFFICE_DDE].detail
    assert f"{build.NOWHERE}/p.png" in found[K.EXTERNAL_REFERENCE].detail


def test_dde_links_and_macro_sheets_in_an_xlsx(tmp_path: Path) -> None:
    found = by_kind(scan(build.xlsx_with_dde_and_macrosheet(tmp_path / "book.xlsx")))
    assert set(found) == {K.OFFICE_DDE, K.OFFICE_XLM_MACROS}
    assert "cmd" in found[K.OFFICE_DDE].detail
    assert found[K.OFFICE_XLM_MACROS].location == "/xl/hidden/m1.xml"


def test_remote_pictures_dde_and_macros_in_an_odt(tmp_path: Path) -> None:
    found = by_kind(scan(build.odt_with_links_and_macros(tmp_path / "text.odt")))
    assert set(found) == {K.EXTERNAL_REFERENCE, K.OFFICE_DDE, K.OFFICE_MACROS}
    # The remote picture only: the picture in the package and the hyperlink are not.
    assert found[K.EXTERNAL_REFERENCE].count == 1
    assert "remote.png" in found[K.EXTERNAL_REFERENCE].detail
    assert found[K.OFFICE_MACROS].count == 2
    assert "dom:load" in found[K.OFFICE_MACROS].detail
    assert "Basic/Standard/Module1.xml" in (found[K.OFFICE_MACROS].location or "")


def test_fields_linked_objects_and_templates_in_rtf(tmp_path: Path) -> None:
    found = by_kind(scan(build.write_rtf(tmp_path / "doc.rtf")))
    assert set(found) == {K.REMOTE_TEMPLATE, K.EXTERNAL_REFERENCE, K.OFFICE_DDE}
    assert "/t.dot" in found[K.REMOTE_TEMPLATE].detail
    assert found[K.EXTERNAL_REFERENCE].count == 2
    assert "INCLUDEPICTURE" in found[K.EXTERNAL_REFERENCE].detail
    assert "updated when the document opens" in found[K.EXTERNAL_REFERENCE].detail
    assert 'DDEAUTO c:\\\\windows\\\\cmd.exe "/c calc"' in found[K.OFFICE_DDE].detail


def test_fields_of_a_legacy_doc_in_8_bit_and_utf16_text(tmp_path: Path) -> None:
    report = scan(build.write_doc(tmp_path / "old.doc"))
    assert report.detected_format == "doc"
    found = by_kind(report)
    assert set(found) == {K.OFFICE_DDE, K.EXTERNAL_REFERENCE}
    assert 'DDEAUTO cmd "/c calc"' in found[K.OFFICE_DDE].detail
    assert f"{build.NOWHERE}/x.docx" in found[K.EXTERNAL_REFERENCE].detail


def test_macro_sheets_and_dde_sources_of_a_legacy_xls(tmp_path: Path) -> None:
    report = scan(build.write_xls(tmp_path / "old.xls"))
    assert report.detected_format == "xls"
    found = by_kind(report)
    assert set(found) == {K.OFFICE_XLM_MACROS, K.OFFICE_DDE}
    assert "'Auto_Open' (very hidden)" in found[K.OFFICE_XLM_MACROS].detail
    assert "cmd /c calc" in found[K.OFFICE_DDE].detail


@needs_corpus
def test_xxe_in_an_xml_input_but_not_a_publishers_relative_dtd() -> None:
    assert set(by_kind(scan(HOSTILE / "xxe.xml"))) == {K.XXE}
    assert scan(CORPUS / "web" / "jats-article.xml").findings == ()


def test_entity_declarations_are_reported_apart_from_xxe(tmp_path: Path) -> None:
    laughs = tmp_path / "laughs.xml"
    laughs.write_text(
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;">]><lolz>&lol2;</lolz>'
    )
    found = by_kind(scan(laughs))
    assert set(found) == {K.XML_ENTITIES}
    assert "lol, lol2" in found[K.XML_ENTITIES].detail


def test_a_claimed_type_the_content_does_not_bear_out(tmp_path: Path) -> None:
    text = tmp_path / "report.pdf"
    text.write_text("just some text, not a PDF\n")
    found = by_kind(scan(text))
    assert set(found) == {K.TYPE_MISMATCH}
    assert "'.pdf'" in found[K.TYPE_MISMATCH].detail
    assert "text/plain" in found[K.TYPE_MISMATCH].detail
    # A declared media type counts when the name says nothing.
    declared = scan_file(text, "upload", "application/pdf", GuardSettings())
    assert {f.kind for f in declared.findings} == {K.TYPE_MISMATCH}
    # No claim, no mismatch; and a name that fits is fine.
    assert scan_file(text, None, None, GuardSettings()).findings == ()
    assert scan(text, "notes.txt").findings == ()


@needs_corpus
def test_mislabelled_and_polyglot_corpus_files() -> None:
    odt = by_kind(scan(HOSTILE / "not-a-zip.odt"))
    assert set(odt) == {K.TYPE_MISMATCH}
    mp3 = by_kind(scan(HOSTILE / "polyglot-mp3-jpg.mp3"))
    assert set(mp3) == {K.TYPE_MISMATCH, K.POLYGLOT}
    assert "MP3" in mp3[K.POLYGLOT].detail


def test_a_pdf_with_an_appended_zip_is_a_polyglot(tmp_path: Path) -> None:
    base = build.plain_pdf(tmp_path / "plain.pdf").read_bytes()
    found = by_kind(scan(build.appended_zip(tmp_path / "both.pdf", base)))
    assert set(found) == {K.POLYGLOT}
    assert "also a ZIP archive of 1 entries" in found[K.POLYGLOT].detail


def test_a_jpeg_with_an_appended_jar_is_a_polyglot_and_a_program(tmp_path: Path) -> None:
    found = by_kind(scan(build.appended_zip(tmp_path / "photo.jpg", build.jpeg_bytes(), jar=True)))
    assert set(found) == {K.POLYGLOT, K.EXECUTABLE}
    assert "Java archive" in found[K.POLYGLOT].detail


def test_a_pdf_a_browser_would_render_as_html(tmp_path: Path) -> None:
    pdf = build.plain_pdf(tmp_path / "plain.pdf").read_bytes()
    both = tmp_path / "page.pdf"
    both.write_bytes(b"<html><script>alert(1)</script>\n" + pdf)
    found = by_kind(scan(both))
    assert set(found) == {K.POLYGLOT}
    assert "render it as HTML" in found[K.POLYGLOT].detail


@needs_corpus
def test_ole_files_holding_zip_packages_are_not_polyglots() -> None:
    for name in ("legacy-word.doc", "legacy-excel.xls", "legacy-powerpoint.ppt"):
        assert scan(CORPUS / "office" / name).findings == (), name


def test_programs_in_an_archive(tmp_path: Path) -> None:
    archive = build.write_zip(tmp_path / "tools.zip", {"readme.txt": "hi", "setup.exe": b"MZ"})
    found = by_kind(scan(archive))
    assert set(found) == {K.EXECUTABLE}
    assert "setup.exe" in found[K.EXECUTABLE].detail


def test_eicar_anywhere_in_a_file_even_across_read_chunks(tmp_path: Path) -> None:
    straddling = tmp_path / "big.bin"
    # The string starts 10 bytes before the first 1 MiB chunk ends.
    straddling.write_bytes(b"\x00" * (1024 * 1024 - 10) + build.EICAR + b"\x00" * 100)
    found = by_kind(scan(straddling))
    assert found[K.EICAR].location == f"byte {1024 * 1024 - 10}"


def test_eicar_in_a_zip_member(tmp_path: Path) -> None:
    archive = build.write_zip(tmp_path / "eicar.zip", {"eicar.com": build.EICAR})
    found = by_kind(scan(archive))
    assert set(found) == {K.EICAR, K.EXECUTABLE}
    assert found[K.EICAR].location == "part eicar.com"


def test_a_zip_that_declares_far_more_than_it_holds(tmp_path: Path) -> None:
    archive = build.zip_of_zeros(tmp_path / "zeros.zip", 4 * 1024 * 1024)
    assert scan(archive).findings == ()  # under the default 16 MiB floor: not a bomb
    found = by_kind(scan(archive, bomb_min_bytes=1024 * 1024))
    assert set(found) == {K.DECOMPRESSION_BOMB}
    assert "ratio" in found[K.DECOMPRESSION_BOMB].detail


@needs_corpus
def test_the_corpus_bombs_are_told_from_their_directories() -> None:
    flat = by_kind(scan(HOSTILE / "zip-bomb-flat.zip"))[K.DECOMPRESSION_BOMB]
    assert "overlapping entries" in flat.detail
    nested = by_kind(scan(HOSTILE / "zip-bomb-recursive.zip"))[K.DECOMPRESSION_BOMB]
    assert "nested" in nested.detail
    quine = by_kind(scan(HOSTILE / "zip-quine-droste.zip"))[K.DECOMPRESSION_BOMB]
    assert "contains itself" in quine.detail


def test_a_scan_past_its_budget_says_so_and_keeps_what_it_found(tmp_path: Path) -> None:
    archive = build.write_zip(
        tmp_path / "many.zip", {f"part{n}.xml": "<a/>" * 400 for n in range(20)}
    )
    found = by_kind(scan(archive, max_inflate_bytes=4096))
    assert set(found) == {K.SCAN_ERROR}
    assert "decompressed bytes" in found[K.SCAN_ERROR].detail


@needs_corpus
def test_a_damaged_input_is_a_scan_error_not_an_exception(tmp_path: Path) -> None:
    # Half a macro-enabled Word document: libmagic still calls it DOCX, but its ZIP
    # directory is gone.
    half = tmp_path / "half.docm"
    data = (HOSTILE / "word-macros.docm").read_bytes()
    half.write_bytes(data[: len(data) // 2])
    [finding] = scan(half).findings
    assert finding.kind is K.SCAN_ERROR
    assert "ZIP container cannot be read" in finding.detail


def test_a_pdf_name_that_is_not_utf8_is_read_past(tmp_path: Path) -> None:
    pdf = build.pdf_with_actions(tmp_path / "actions.pdf")
    data = pdf.read_bytes().replace(b"/S /GoToR", b"/S /Go#FFR", 1)
    pdf.write_bytes(data)
    found = by_kind(scan(pdf))
    assert K.PDF_REMOTE_ACTION not in found and K.SCAN_ERROR not in found
    assert K.PDF_LAUNCH_ACTION in found


@needs_corpus
@pytest.mark.timeout(120)
def test_every_hostile_corpus_file_is_scanned_without_an_exception() -> None:
    expected = {
        "excel-macros.xlsm": {K.OFFICE_MACROS},
        "word-macros.docm": {K.OFFICE_MACROS},
        "pdf-javascript-action.pdf": {K.PDF_JAVASCRIPT},
        "xxe.xml": {K.XXE},
        "not-a-zip.odt": {K.TYPE_MISMATCH},
        "polyglot-mp3-jpg.mp3": {K.TYPE_MISMATCH, K.POLYGLOT},
        "zip-bomb-flat.zip": {K.DECOMPRESSION_BOMB},
        "zip-bomb-recursive.zip": {K.DECOMPRESSION_BOMB},
        "zip-quine-droste.zip": {K.DECOMPRESSION_BOMB},
    }
    for path in sorted(HOSTILE.iterdir()):
        report = scan(path)
        kinds = {f.kind for f in report.findings}
        assert K.SCAN_ERROR not in kinds, (path.name, report.findings)
        assert kinds == expected.get(path.name, set()), path.name
