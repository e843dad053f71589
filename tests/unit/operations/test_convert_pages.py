"""The ``convert`` operation without LibreOffice: HTML pages, sites in a zip and Markdown
→ PDF; any document → Markdown, HTML, text and DOCX; what it refuses."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path
from typing import Any

import docx
import pikepdf
import pypdfium2
import pytest
from PIL import Image

from bench.scoring import corpus_root, score
from docworker.config import Settings, SiteSettings
from docworker.errors import (
    CorruptDocument,
    HostileInput,
    InvalidParameter,
    LimitExceeded,
    UnsupportedFormat,
)
from docworker.formats.base import ParseContext
from docworker.formats.detect import detect
from docworker.formats.registry import parse_path
from docworker.operations import get_operation, validate_params
from docworker.operations.base import InputFile, operation_context
from docworker.operations.web_input import unpack_site
from docworker.render.document import render_markdown, render_text

CORPUS = corpus_root()
OPERATION = get_operation("convert")
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not found at {CORPUS}")


def convert(path: Path, workdir: Path, **raw: Any) -> tuple[dict[str, Any], Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = operation_context(Settings(), workdir=workdir)
    result = OPERATION.run(ctx, InputFile(path, path.name), validate_params(OPERATION, raw))
    [artifact] = result.artifacts
    return result.payload, artifact.path


def pdf_text(path: Path) -> str:
    with pypdfium2.PdfDocument(str(path)) as pdf:
        parts = []
        for index in range(len(pdf)):
            textpage = pdf[index].get_textpage()
            parts.append(textpage.get_text_range())
            textpage.close()
        return "\n".join(parts)


def pdf_sizes(path: Path) -> list[tuple[int, int]]:
    with pypdfium2.PdfDocument(str(path)) as pdf:
        return [(round(pdf[i].get_size()[0]), round(pdf[i].get_size()[1])) for i in range(len(pdf))]


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "blue").save(buffer, "PNG")
    return buffer.getvalue()


def site_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


@needs_corpus
def test_markdown_to_pdf_with_page_setup(tmp_path: Path) -> None:
    source = CORPUS / "web" / "wiki.md"
    payload, pdf = convert(
        source,
        tmp_path,
        page_size="Letter",
        orientation="landscape",
        footer_html='<span class="pageNumber"></span>/<span class="totalPages"></span>',
    )
    sizes = pdf_sizes(pdf)
    assert payload["engine"] == "weasyprint"
    assert payload["input"]["format"] == "markdown"
    assert payload["output"]["pages"] == len(sizes)
    assert set(sizes) == {(792, 612)}
    text = pdf_text(pdf)
    assert f"1/{len(sizes)}" in text
    assert score(text, "txt", source.read_text(), "md") > 0.9


def test_markdown_to_pdfa(tmp_path: Path) -> None:
    source = tmp_path / "note.md"
    source.write_text("# Archive copy\n\nKept for the records.\n")
    payload, pdf = convert(source, tmp_path / "job", pdfa="2b")
    assert payload["output"]["pdfa"] == "2b"
    with pikepdf.open(pdf) as doc:
        meta = doc.open_metadata()
        assert (meta.get("pdfaid:part"), meta.get("pdfaid:conformance")) == ("2", "B")
        assert str(doc.Root.OutputIntents[0].S) == "/GTS_PDFA1"
    assert "Kept for the records." in pdf_text(pdf)


@needs_corpus
def test_html_page_to_pdf_keeps_its_text(tmp_path: Path) -> None:
    source = CORPUS / "web" / "table-rowspan.html"
    payload, pdf = convert(source, tmp_path, page_size="A5")
    assert set(pdf_sizes(pdf)) == {(420, 595)}
    truth = render_text(parse_path(source, ParseContext()))
    assert score(pdf_text(pdf), "txt", truth, "txt") > 0.9
    assert payload["output"]["mime"] == "application/pdf"


def test_a_site_in_a_zip_uses_its_own_assets(tmp_path: Path) -> None:
    index = (
        b'<html><head><link rel="stylesheet" href="css/site.css"></head><body>'
        b'<h1>Annual report</h1><img src="img/chart.png"><p>Figures follow.</p>'
        b"</body></html>"
    )
    archive = site_zip(
        tmp_path / "site.zip",
        {
            "report/index.html": index,
            "report/css/site.css": b"@page { size: A5 landscape; } h1 { color: #c00; }",
            "report/img/chart.png": png(300, 150),
        },
    )
    payload, pdf = convert(archive, tmp_path / "job")
    assert payload["input"]["format"] == "zip"
    assert payload["warnings"] == []
    assert set(pdf_sizes(pdf)) == {(595, 420)}  # the site's own @page rule
    assert "Annual report" in pdf_text(pdf)
    with pypdfium2.PdfDocument(str(pdf)) as doc:
        page = doc[0]
        images = [obj for obj in page.get_objects() if obj.type == pypdfium2.raw.FPDF_PAGEOBJ_IMAGE]
        assert [img.get_px_size() for img in images] == [(300, 150)]


def _zip_with(path: Path, name: str, data: bytes = b"x", mode: int | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("index.html", b"<p>hi</p>")
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.external_attr = mode << 16
        zf.writestr(info, data)
    return path


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/passwd-copy", "a/../../b.txt"])
def test_zip_entries_outside_the_folder_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(HostileInput, match="outside"):
        unpack_site(_zip_with(tmp_path / "z.zip", name), tmp_path / "out", SiteSettings())
    assert not (tmp_path / "escape.txt").exists()


def test_zip_symlinks_are_refused(tmp_path: Path) -> None:
    archive = _zip_with(tmp_path / "z.zip", "link.png", b"/etc/passwd", stat.S_IFLNK | 0o777)
    with pytest.raises(HostileInput, match="is a link"):
        unpack_site(archive, tmp_path / "out", SiteSettings())


def test_zip_limits(tmp_path: Path) -> None:
    many = site_zip(
        tmp_path / "many.zip", {f"f{n}.txt": b"x" for n in range(20)} | {"index.html": b""}
    )
    with pytest.raises(LimitExceeded, match="files in the zip"):
        unpack_site(many, tmp_path / "a", SiteSettings(max_files=10))
    big = site_zip(tmp_path / "big.zip", {"index.html": b"<p>x</p>", "pad.bin": b"\0" * 3_000_000})
    with pytest.raises(HostileInput, match="zip bomb"):
        unpack_site(big, tmp_path / "b", SiteSettings())
    with pytest.raises(LimitExceeded, match="unpacked bytes of the zip"):
        unpack_site(big, tmp_path / "c", SiteSettings(max_bytes=1_000_000, max_ratio=1e6))


def test_a_zip_without_a_page_is_refused(tmp_path: Path) -> None:
    archive = site_zip(tmp_path / "z.zip", {"a.txt": b"a", "b.css": b"p{}"})
    with pytest.raises(CorruptDocument, match=r"index\.html"):
        convert(archive, tmp_path / "job")


@needs_corpus
@pytest.mark.parametrize(
    ("name", "to", "kind"),
    [
        ("pdf/multi-page-article.pdf", "markdown", "md"),
        ("web/wiki-duck.html", "markdown", "md"),
        ("office/poetry.epub", "html", "html"),
        ("web/comma.csv", "text", "txt"),
    ],
)
def test_documents_to_markdown_html_and_text(tmp_path: Path, name: str, to: str, kind: str) -> None:
    source = CORPUS / name
    payload, output = convert(source, tmp_path, to=to)
    assert payload["engine"] == f"{to}-renderer"
    truth = render_markdown(parse_path(source, ParseContext()))
    assert score(output.read_text(), kind, truth, "md") > 0.95


@needs_corpus
@pytest.mark.parametrize(
    "name",
    ["web/wiki-duck.html", "web/nested.md", "office/poetry.epub", "pdf/multi-page-article.pdf"],
)
def test_documents_to_docx(tmp_path: Path, name: str) -> None:
    source = CORPUS / name
    payload, output = convert(source, tmp_path, to="docx")
    assert payload["engine"] == "docx-writer"
    assert detect(output).format == "docx"
    before = render_text(parse_path(source, ParseContext()))
    after = render_text(parse_path(output, ParseContext()))
    assert score(after, "txt", before, "txt") > 0.95


@needs_corpus
def test_docx_keeps_headings_lists_tables_and_links(tmp_path: Path) -> None:
    source = tmp_path / "doc.md"
    source.write_text(
        "# Title here\n\nIntro with [a link](https://example.com/x).\n\n## Section\n\n"
        "- one\n- two\n  - nested\n\n1. first\n2. second\n\n| h1 | h2 |\n|----|----|\n| a | b |\n"
    )
    _, output = convert(source, tmp_path / "job", to="docx")
    word = docx.Document(str(output))
    styles = [(p.style.name, p.text) for p in word.paragraphs if p.text]
    assert ("Heading 1", "Title here") in styles
    assert ("Heading 2", "Section") in styles
    assert ("List Bullet", "one") in styles and ("List Bullet 2", "nested") in styles
    assert ("List Number", "first") in styles
    [table] = word.tables
    assert [[c.text for c in row.cells] for row in table.rows] == [["h1", "h2"], ["a", "b"]]
    rels = [r.target_ref for r in word.part.rels.values() if r.is_external]
    assert rels == ["https://example.com/x"]


def test_pages_of_a_document(tmp_path: Path) -> None:
    source = CORPUS / "pdf" / "multi-page-article.pdf"
    if not source.is_file():
        pytest.skip("corpus not present")
    _, output = convert(source, tmp_path, to="text", pages="2")
    whole = render_text(parse_path(source, ParseContext(pages=None)))
    assert 0 < len(output.read_text()) < len(whole) / 2


SCRIPTED_PAGE = """<!doctype html><html><head><title>Scripted</title></head><body>
<p id="static">Static paragraph.</p><div id="out"></div>
<script>document.getElementById("out").textContent = "Written by the page script";</script>
</body></html>"""


def test_chromium_runs_the_page_scripts_weasyprint_does_not(tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_text(SCRIPTED_PAGE)
    payload, output = convert(
        page,
        tmp_path / "chromium",
        engine="chromium",
        page_size="Letter",
        margin_top="1in",
        footer_html='<div style="font-size:8pt">Page <span class="pageNumber"></span> of '
        '<span class="totalPages"></span></div>',
    )
    assert payload["engine"] == "chromium"
    text = pdf_text(output)
    assert "Written by the page script" in text
    assert "Page 1 of 1" in text
    assert pdf_sizes(output) == [(612, 792)]
    _, plain = convert(page, tmp_path / "weasyprint")
    assert "Static paragraph." in pdf_text(plain)
    assert "Written by the page script" not in pdf_text(plain)


def test_chromium_pages_orientation_and_its_limits(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("# Title\n\n" + "\n\n".join(f"Paragraph {n}." for n in range(200)))
    payload, output = convert(
        page, tmp_path / "a", engine="chromium", orientation="landscape", pages="2-3"
    )
    assert payload["output"]["pages"] == 2
    # Chromium rounds page sizes to its own units: within a point of A4 landscape.
    assert all(abs(w - 842) <= 1 and abs(h - 595) <= 1 for w, h in pdf_sizes(output))
    assert "Paragraph 0." not in pdf_text(output)
    with pytest.raises(InvalidParameter, match="PDF/A"):
        convert(page, tmp_path / "b", engine="chromium", pdfa="2b")
    table = tmp_path / "t.csv"
    table.write_text("name,count\napples,3\npears,5\n")
    with pytest.raises(InvalidParameter, match="web pages"):
        convert(table, tmp_path / "c", engine="chromium", to="pdf")


def test_a_pdf_is_not_converted_to_pdf(tmp_path: Path) -> None:
    source = CORPUS / "pdf" / "minimal-document.pdf"
    if not source.is_file():
        pytest.skip("corpus not present")
    with pytest.raises(UnsupportedFormat, match="PDF already"):
        convert(source, tmp_path)


def test_an_image_is_not_laid_out_as_a_pdf(tmp_path: Path) -> None:
    image = tmp_path / "photo.png"
    image.write_bytes(png(40, 30))
    with pytest.raises(UnsupportedFormat, match="searchable_pdf"):
        convert(image, tmp_path / "job")


def test_office_targets_need_an_office_input(tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_text("<p>hello</p>")
    with pytest.raises(InvalidParameter, match="'to'"):
        convert(page, tmp_path / "job", to="xlsx")


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ({"page_size": "huge"}, "page_size"),
        ({"margin_top": "12"}, "margin_top"),
        ({"to": "exe"}, "to"),
    ],
)
def test_bad_parameters_are_named(raw: dict[str, Any], name: str) -> None:
    with pytest.raises(InvalidParameter, match=f"'{name}'"):
        validate_params(OPERATION, raw)
