"""The ``convert`` operation on corpus office files, with the real LibreOffice: PDFs
opened and checked (pages, sizes, text against the input's extraction, PDF/A), office
outputs read back, passwords, and a planted link that must not be followed."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pikepdf
import pypdfium2
import pytest

from bench.scoring import corpus_root, score
from docworker.config import LibreOfficeSettings, Settings
from docworker.engines.libreoffice import LibreOfficeEngine
from docworker.errors import InvalidParameter, PasswordRequired, WrongPassword
from docworker.formats.base import ParseContext
from docworker.formats.detect import detect
from docworker.formats.registry import parse_path
from docworker.operations import get_operation, validate_params
from docworker.operations.base import InputFile, operation_context
from docworker.render.document import render_text
from tests.listener import Listener

CORPUS = corpus_root()
OFFICE = CORPUS / "office"
OPERATION = get_operation("convert")
LETTER = (612.0, 792.0)
A4 = (595.0, 842.0)

pytestmark = [
    pytest.mark.skipif(not OFFICE.is_dir(), reason=f"corpus not found at {CORPUS}"),
    pytest.mark.skipif(
        not LibreOfficeEngine(LibreOfficeSettings()).status()["installed"],
        reason="LibreOffice (soffice, python3-uno) is not installed",
    ),
]


@pytest.fixture(scope="module")
def engine() -> Iterator[LibreOfficeEngine]:
    with LibreOfficeEngine(LibreOfficeSettings(idle_shutdown=0)) as office:
        yield office


def convert(
    engine: LibreOfficeEngine, path: Path, workdir: Path, **raw: Any
) -> tuple[dict[str, Any], Path]:
    """The payload and the output file of converting ``path`` with ``raw`` parameters."""
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = operation_context(Settings(), convert=engine.convert, workdir=workdir)
    result = OPERATION.run(ctx, InputFile(path, path.name), validate_params(OPERATION, raw))
    [artifact] = result.artifacts
    assert result.payload["output"]["name"] == artifact.name
    assert result.payload["output"]["size"] == artifact.path.stat().st_size
    return result.payload, artifact.path


def pdf_pages(path: Path) -> list[tuple[float, float]]:
    with pypdfium2.PdfDocument(str(path)) as pdf:
        return [tuple(round(v) for v in pdf[i].get_size()) for i in range(len(pdf))]  # type: ignore[misc]


def pdf_text(path: Path) -> str:
    with pypdfium2.PdfDocument(str(path)) as pdf:
        texts = []
        for index in range(len(pdf)):
            textpage = pdf[index].get_textpage()
            texts.append(textpage.get_text_range())
            textpage.close()
        return "\n".join(texts)


def extracted(path: Path, engine: LibreOfficeEngine, password: str | None = None) -> str:
    return render_text(parse_path(path, ParseContext(convert=engine.convert, password=password)))


@pytest.mark.parametrize(
    ("name", "pages", "size", "min_f1"),
    [
        ("word-sample.docx", 2, LETTER, 0.9),
        ("legacy-word.doc", 2, LETTER, 0.9),
        ("text-document.odt", 2, A4, 0.9),
        ("tika-test.rtf", 1, A4, 0.9),
        # Spreadsheets: the extraction names each sheet; the printed pages do not.
        ("workbook-multi-sheet.xlsx", None, A4, 0.8),
        ("legacy-excel.xls", None, A4, 0.8),
        ("powerpoint-sample.pptx", 3, (960, 540), 0.8),
        ("legacy-powerpoint.ppt", 3, (960, 540), 0.8),
        # The extraction has the speaker notes too; the slides do not show them.
        ("presentation.odp", None, None, 0.65),
    ],
)
def test_office_to_pdf_keeps_pages_and_text(
    engine: LibreOfficeEngine,
    tmp_path: Path,
    name: str,
    pages: int | None,
    size: tuple[float, float] | None,
    min_f1: float,
) -> None:
    payload, pdf = convert(engine, OFFICE / name, tmp_path)
    assert pdf.read_bytes().startswith(b"%PDF-")
    sizes = pdf_pages(pdf)
    assert payload["output"]["pages"] == len(sizes) >= 1
    assert payload["engine"] == "libreoffice"
    assert payload["input"]["format"] == name.rsplit(".", 1)[1]
    if pages is not None:
        assert len(sizes) == pages
    if size is not None:
        assert sizes[0] == pytest.approx(size, abs=1)
    assert score(pdf_text(pdf), "txt", extracted(OFFICE / name, engine), "txt") >= min_f1


def test_page_ranges_keep_the_pages_asked_for(engine: LibreOfficeEngine, tmp_path: Path) -> None:
    source = OFFICE / "powerpoint-sample.pptx"
    whole = pdf_text(convert(engine, source, tmp_path / "all")[1])
    payload, pdf = convert(engine, source, tmp_path / "some", pages="2-")
    assert payload["output"]["pages"] == 2
    text = pdf_text(pdf)
    first_slide = whole.split("\n")[0]
    assert first_slide and first_slide not in text
    assert all(line in whole for line in text.split("\n") if line.strip())


def test_pages_past_the_end_are_named(engine: LibreOfficeEngine, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="'pages': '5-' names none of the document's 2"):
        convert(engine, OFFICE / "word-sample.docx", tmp_path, pages="5-")
    payload, _ = convert(engine, OFFICE / "word-sample.docx", tmp_path / "b", pages="2-9")
    assert payload["output"]["pages"] == 1


def test_landscape_turns_text_and_sheet_pages(engine: LibreOfficeEngine, tmp_path: Path) -> None:
    _, portrait = convert(engine, OFFICE / "word-sample.docx", tmp_path / "p")
    _, landscape = convert(engine, OFFICE / "word-sample.docx", tmp_path / "l", landscape=True)
    assert all(w < h for w, h in pdf_pages(portrait))
    assert all(
        w == pytest.approx(792, abs=1) and h == pytest.approx(612, abs=1)
        for w, h in pdf_pages(landscape)
    )
    _, sheet = convert(engine, OFFICE / "workbook-multi-sheet.xlsx", tmp_path / "s", landscape=True)
    assert all(w > h for w, h in pdf_pages(sheet))


def test_landscape_on_slides_is_a_warning(engine: LibreOfficeEngine, tmp_path: Path) -> None:
    payload, _ = convert(engine, OFFICE / "powerpoint-sample.pptx", tmp_path, landscape=True)
    assert [w["code"] for w in payload["warnings"]] == ["landscape-not-applied"]


# LibreOffice 7.4 writes PDF/A-1 at conformance level A (tagged), which meets 1b.
@pytest.mark.parametrize(("level", "declared"), [("1b", ("1", "A")), ("2b", ("2", "B"))])
def test_pdfa_levels(
    engine: LibreOfficeEngine, tmp_path: Path, level: str, declared: tuple[str, str]
) -> None:
    payload, pdf = convert(engine, OFFICE / "word-sample.docx", tmp_path, pdfa=level)
    assert payload["output"]["pdfa"] == "".join(declared).lower()
    with pikepdf.open(pdf) as doc:
        meta = doc.open_metadata()
        assert (meta.get("pdfaid:part"), meta.get("pdfaid:conformance")) == declared
        intents = doc.Root.OutputIntents
        assert len(intents) >= 1
        assert str(intents[0].S) == "/GTS_PDFA1"
        assert "/DestOutputProfile" in intents[0]
    with pikepdf.open(convert(engine, OFFICE / "word-sample.docx", tmp_path / "n")[1]) as plain:
        assert "/OutputIntents" not in plain.Root


def _write_odt(path: Path, content: str, kind: str = "text") -> None:
    mimetype = f"application/vnd.oasis.opendocument.{kind}"
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
        'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" '
        'manifest:version="1.2"><manifest:file-entry manifest:full-path="/" '
        f'manifest:media-type="{mimetype}"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), mimetype)
        zf.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
        zf.writestr("META-INF/manifest.xml", manifest, zipfile.ZIP_DEFLATED)


def test_form_fields_are_exported_or_flattened(engine: LibreOfficeEngine, tmp_path: Path) -> None:
    page = tmp_path / "form.html"
    page.write_text(
        '<html><body><form><p>Name: <input type="text" name="customer"></p>'
        '<p>Agree <input type="checkbox" name="agree"></p></form></body></html>'
    )
    # A text document with two form controls, made by LibreOffice from the HTML form.
    form = tmp_path / "form.odt"
    shutil.move(engine.convert(page, "odt"), form)
    _, fillable = convert(engine, form, tmp_path / "fillable")
    _, flat = convert(engine, form, tmp_path / "flat", export_form_fields=False)
    with pikepdf.open(fillable) as pdf:
        assert [str(field.T) for field in pdf.Root.AcroForm.Fields] == ["customer", "agree"]
    with pikepdf.open(flat) as pdf:
        assert "/AcroForm" not in pdf.Root
    assert "Name:" in pdf_text(flat)


def test_password_protected_corpus_files(engine: LibreOfficeEngine, tmp_path: Path) -> None:
    xlsx = OFFICE / "encrypted-password-tika.xlsx"
    odt = OFFICE / "encrypted.odt"
    payload, pdf = convert(engine, xlsx, tmp_path / "x", password="tika")
    assert payload["output"]["pages"] >= 1
    assert "This is an Encrypted Excel spreadsheet." in pdf_text(pdf)
    payload, pdf = convert(engine, odt, tmp_path / "o", password="tika")
    assert score(pdf_text(pdf), "txt", extracted(odt, engine, "tika"), "txt") >= 0.9
    for path in (xlsx, odt):
        with pytest.raises(PasswordRequired):
            convert(engine, path, tmp_path / "none")
        with pytest.raises(WrongPassword):
            convert(engine, path, tmp_path / "wrong", password="not-it")


@pytest.mark.parametrize(
    ("name", "to", "fmt"),
    [
        ("legacy-word.doc", "docx", "docx"),
        ("legacy-excel.xls", "xlsx", "xlsx"),
        ("legacy-powerpoint.ppt", "pptx", "pptx"),
        ("word-sample.docx", "odt", "odt"),
    ],
)
def test_legacy_office_to_ooxml(
    engine: LibreOfficeEngine, tmp_path: Path, name: str, to: str, fmt: str
) -> None:
    payload, output = convert(engine, OFFICE / name, tmp_path, to=to)
    assert detect(output).format == fmt
    assert payload["output"]["mime"] == detect(output).mime
    before = extracted(OFFICE / name, engine)
    assert score(extracted(output, engine), "txt", before, "txt") >= 0.9


def test_targets_that_do_not_fit_the_input_are_refused(
    engine: LibreOfficeEngine, tmp_path: Path
) -> None:
    with pytest.raises(InvalidParameter, match="'to'"):
        convert(engine, OFFICE / "legacy-excel.xls", tmp_path, to="docx")
    with pytest.raises(InvalidParameter, match="'pages'"):
        convert(engine, OFFICE / "legacy-word.doc", tmp_path, to="docx", pages="1")


def _linked_odt(path: Path, url: str, planted: Path) -> None:
    """A text document whose two pictures are links: to ``url`` and to ``planted``."""
    frames = "".join(
        f'<text:p><draw:frame draw:name="p{n}" text:anchor-type="as-char" svg:width="4in" '
        f'svg:height="1in"><draw:image xlink:href="{href}" xlink:type="simple" '
        'xlink:show="embed" xlink:actuate="onLoad"/></draw:frame></text:p>'
        for n, href in enumerate((url, planted.as_uri()))
    )
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
        'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
        'xmlns:xlink="http://www.w3.org/1999/xlink" '
        'xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" '
        'office:version="1.2"><office:body><office:text><text:p>Linked pictures below.</text:p>'
        f"{frames}<text:p>The end.</text:p></office:text></office:body></office:document-content>"
    )
    _write_odt(path, content)


def test_linked_pictures_are_neither_fetched_nor_read(
    engine: LibreOfficeEngine, tmp_path: Path, listener: Listener
) -> None:
    planted = tmp_path / "planted.png"
    shutil.copyfile(
        CORPUS
        / "images"
        / next(p.name for p in (CORPUS / "images").iterdir() if p.suffix == ".png"),
        planted,
    )
    odt = tmp_path / "linked.odt"
    _linked_odt(odt, f"{listener.url}/picture.png", planted)
    # The same links as a Word 97 INCLUDEPICTURE field (.doc) and an external image
    # relationship (.docx), written by LibreOffice itself.
    doc = tmp_path / "linked.doc"
    docx = tmp_path / "linked.docx"
    shutil.move(engine.convert(odt, "doc"), doc)
    shutil.move(engine.convert(odt, "docx"), docx)
    assert "INCLUDEPICTURE".encode("utf-16-le") in doc.read_bytes()
    assert listener.url.encode() in doc.read_bytes()
    with zipfile.ZipFile(docx) as zf:
        rels = zf.read("word/_rels/document.xml.rels").decode()
    assert 'TargetMode="External"' in rels and planted.as_uri() in rels
    planted_bytes = planted.read_bytes()
    for source in (doc, docx, odt):
        payload, pdf = convert(engine, source, tmp_path / source.suffix[1:])
        assert "Linked pictures below." in pdf_text(pdf)
        with pikepdf.open(pdf) as out:
            images = [i for page in out.pages for i in page.get_images().values()]
        assert images == [], source.name
        assert planted_bytes[-64:] not in pdf.read_bytes()
        assert payload["output"]["pages"] == 1
    assert listener.connections == []


def test_spreadsheet_links_and_web_functions_are_not_updated(
    engine: LibreOfficeEngine, tmp_path: Path, listener: Listener
) -> None:
    planted = tmp_path / "planted.csv"
    planted.write_text("PLANTEDVALUE\n")
    formulas = (
        f"of:=['{planted.as_uri()}'#$planted.A1]",
        f"of:=WEBSERVICE(&quot;{listener.url}/service&quot;)",
    )
    cells = "".join(
        f'<table:table-cell table:formula="{formula}" office:value-type="string" '
        f'office:string-value="CACHED{n}"><text:p>CACHED{n}</text:p></table:table-cell>'
        for n, formula in enumerate(formulas)
    )
    ods = tmp_path / "linked.ods"
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
        'xmlns:of="urn:oasis:names:tc:opendocument:xmlns:of:1.2" office:version="1.2">'
        '<office:body><office:spreadsheet><table:table table:name="Sheet1"><table:table-row>'
        f"{cells}</table:table-row></table:table></office:spreadsheet></office:body>"
        "</office:document-content>"
    )
    _write_odt(ods, content, "spreadsheet")
    _, pdf = convert(engine, ods, tmp_path / "out")
    text = pdf_text(pdf)
    assert "CACHED0" in text and "CACHED1" in text
    assert "PLANTEDVALUE" not in text
    assert listener.connections == []
