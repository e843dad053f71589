"""Detection over the whole corpus (except ``hostile/``), mislabeled files and edge cases."""

from __future__ import annotations

import csv
import io
import os
import random
import shutil
import struct
import tarfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from docworker.formats.base import ParseContext
from docworker.formats.detect import Detection, detect, format_of
from docworker.formats.registry import TYPE_MISMATCH, parse_path, type_mismatch

CORPUS = Path(
    os.environ.get(
        "DOCWORKER_CORPUS", Path(__file__).resolve().parents[3] / ".." / "shared" / "corpus"
    )
)
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="test corpus not present")

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"

#: MANIFEST.tsv's ``kind`` → (mime, format).
KIND = {
    "pdf": ("application/pdf", "pdf"),
    "docx": (DOCX, "docx"),
    "xlsx": (XLSX, "xlsx"),
    "pptx": (PPTX, "pptx"),
    "odt": ("application/vnd.oasis.opendocument.text", "odt"),
    "ods": ("application/vnd.oasis.opendocument.spreadsheet", "ods"),
    "odp": ("application/vnd.oasis.opendocument.presentation", "odp"),
    "epub": ("application/epub+zip", "epub"),
    "doc": ("application/msword", "doc"),
    "xls": ("application/vnd.ms-excel", "xls"),
    "ppt": ("application/vnd.ms-powerpoint", "ppt"),
    "msg": ("application/vnd.ms-outlook", "msg"),
    "eml": ("message/rfc822", "eml"),
    "rtf": ("application/rtf", "rtf"),
    "html": ("text/html", "html"),
    "xml": ("application/xml", "xml"),
    "json": ("application/json", "json"),
    "csv": ("text/csv", "csv"),
    "md": ("text/markdown", "markdown"),
    "txt": ("text/plain", "text"),
    "png": ("image/png", "image"),
    "jpg": ("image/jpeg", "image"),
    "webp": ("image/webp", "image"),
    "tiff": ("image/tiff", "image"),
    "gif": ("image/gif", "image"),
    "heic": ("image/heic", "image"),
    "mp3": ("audio/mpeg", "audio"),
    "wav": ("audio/x-wav", "audio"),
    "mp4": ("video/mp4", "video"),
    "webm": ("video/webm", "video"),
    "mkv": ("video/x-matroska", "video"),
    "mov": ("video/quicktime", "video"),
    "srt": ("application/x-subrip", "subtitles"),
    "vtt": ("text/vtt", "subtitles"),
    "zip": ("application/zip", "zip"),
    "tar": ("application/x-tar", "tar"),
    "tar.gz": ("application/gzip", "gzip"),
    "tar.bz2": ("application/x-bzip2", "bzip2"),
    "7z": ("application/x-7z-compressed", "7z"),
}

#: Files whose kind does not say all: ground truths by extension, the encrypted package.
EXCEPTIONS = {
    "MANIFEST.tsv": ("text/tab-separated-values", "csv"),
    "office/encrypted-password-tika.xlsx": ("application/x-encrypted-ooxml", "encrypted-ooxml"),
}


def expected_types() -> dict[str, tuple[str, str]]:
    with (CORPUS / "MANIFEST.tsv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    table: dict[str, tuple[str, str]] = {}
    for row in rows:
        path, kind = row["path"], row["kind"]
        if path.startswith("hostile/"):
            continue
        if kind == "expected":
            kind = "md" if path.endswith(".md") else "txt"
        table[path] = EXCEPTIONS.get(path) or KIND[kind]
    table["MANIFEST.tsv"] = EXCEPTIONS["MANIFEST.tsv"]
    return table


def corpus_files() -> list[str]:
    """Every file of the corpus outside ``hostile/``, found without opening any."""
    return sorted(
        p.relative_to(CORPUS).as_posix()
        for p in CORPUS.rglob("*")
        if p.relative_to(CORPUS).parts[0] != "hostile" and p.is_file()
    )


@needs_corpus
def test_every_corpus_file_has_an_expectation() -> None:
    assert set(corpus_files()) == set(expected_types())


@needs_corpus
def test_whole_corpus() -> None:
    wrong = {}
    for rel, (mime, fmt) in expected_types().items():
        found = detect(CORPUS / rel)
        if (found.mime, found.format) != (mime, fmt):
            wrong[rel] = (found, mime)
    assert wrong == {}


@needs_corpus
def test_structure_decides_over_magic() -> None:
    # libmagic on the head only says "x-ole-storage" for these; the directory says more.
    assert detect(CORPUS / "office/legacy-word.doc").how == "cfb-structure"
    assert detect(CORPUS / "office/email-simple.msg").how == "cfb-structure"
    assert detect(CORPUS / "office/poetry.epub").how == "zip-structure"
    # libmagic calls this e-mail text/html (its body is HTML); its headers prove it is mail.
    assert detect(CORPUS / "office/email-html-inline-image.eml").how == "text-sniff"


@needs_corpus
@pytest.mark.parametrize(
    ("source", "label", "mime"),
    [
        ("pdf/minimal-document.pdf", "report.docx", "application/pdf"),
        ("office/word-sample.docx", "notes.txt", DOCX),
        ("office/workbook-multi-sheet.xlsx", "slides.pptx", XLSX),
        ("office/legacy-word.doc", "sheet.xls", "application/msword"),
        ("web/simple.json", "data.csv", "application/json"),
        ("web/wiki-duck.html", "page.md", "text/html"),
        ("images/test.gif", "picture.png", "image/gif"),
        ("text/plain-utf8.txt", "document.pdf", "text/plain"),
    ],
)
def test_mislabeled_files_are_what_they_contain(
    tmp_path: Path, source: str, label: str, mime: str
) -> None:
    copy = tmp_path / label
    shutil.copyfile(CORPUS / source, copy)
    assert detect(copy).mime == mime
    assert detect(CORPUS / source, name=label).mime == mime


@needs_corpus
def test_utf16_without_bom_is_text() -> None:
    found = detect(CORPUS / "text/utf16le.txt", name="blob")
    assert (found.mime, found.format) == ("text/plain", "text")


@needs_corpus
def test_threads_share_one_detector() -> None:
    files = [CORPUS / rel for rel in corpus_files()[:40]]
    serial = [detect(p) for p in files]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(detect, files)) == serial


@needs_corpus
def test_corrupt_containers_fall_back_to_magic(tmp_path: Path) -> None:
    cut_zip = tmp_path / "cut.docx"
    cut_zip.write_bytes((CORPUS / "office/word-sample.docx").read_bytes()[:3000])
    assert detect(cut_zip).how == "magic"
    cut_cfb = tmp_path / "cut.doc"
    cut_cfb.write_bytes((CORPUS / "office/legacy-word.doc").read_bytes()[:1024])
    assert detect(cut_cfb).how == "magic"


# -- edge cases --------------------------------------------------------------------------


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_empty_and_whitespace_files_are_plain_text(tmp_path: Path) -> None:
    empty = detect(write(tmp_path, "empty.bin", b""))
    assert (empty.mime, empty.format) == ("text/plain", "text")
    assert detect(write(tmp_path, "blank.csv", " \n\t\r\n  \n")).mime == "text/plain"


def test_random_bytes_are_octet_stream(tmp_path: Path) -> None:
    noise = random.Random(7).randbytes(4096)
    found = detect(write(tmp_path, "noise.txt", noise))
    assert found == Detection("application/octet-stream", "binary", "magic")
    zeros = detect(write(tmp_path, "zeros.txt", bytes(4096)))  # the shape of UTF-32, but no text
    assert zeros.mime == "application/octet-stream"


def test_pdf_header_after_junk(tmp_path: Path) -> None:
    pdf = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<<>>\n%%EOF\n"
    assert detect(write(tmp_path, "a.bin", b"\x00\x01junk\x02" * 20 + pdf)).format == "pdf"
    prose = "The header of a PDF file reads %PDF-1.7 and names its version.\n"
    assert detect(write(tmp_path, "b.txt", prose)).format == "text"


def test_tar_holding_a_pdf_is_a_tar(tmp_path: Path) -> None:
    pdf = b"%PDF-1.4\n%%EOF\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("inner.pdf")
        info.size = len(pdf)
        tar.addfile(info, io.BytesIO(pdf))
    assert detect(write(tmp_path, "x.tar", buffer.getvalue())).format == "tar"


# -- ZIP packages ------------------------------------------------------------------------


def make_zip(path: Path, members: dict[str, str], stored_first: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        if stored_first is not None:
            zf.writestr(stored_first, members.pop(stored_first), zipfile.ZIP_STORED)
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def content_types(part: str, content_type: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="{part}" ContentType="{content_type}"/></Types>'
    )


def test_content_types_in_an_unknown_encoding_leave_the_main_part_to_decide(
    tmp_path: Path,
) -> None:
    declared = content_types("/word/document.xml", "application/xml").replace("UTF-8", "UVF-8")
    path = make_zip(
        tmp_path / "x.docx",
        {"[Content_Types].xml": declared, "word/document.xml": "<w:document/>"},
    )
    assert detect(path).format == "docx"


@pytest.mark.parametrize(
    ("part", "content_type", "mime"),
    [
        (
            "/word/document.xml",
            "application/vnd.ms-word.document.macroEnabled.main+xml",
            "application/vnd.ms-word.document.macroEnabled.12",
        ),
        (
            "/xl/workbook.xml",
            "application/vnd.ms-excel.sheet.macroEnabled.main+xml",
            "application/vnd.ms-excel.sheet.macroEnabled.12",
        ),
        (
            "/ppt/presentation.xml",
            "application/vnd.openxmlformats-officedocument.presentationml.slideshow.main+xml",
            "application/vnd.openxmlformats-officedocument.presentationml.slideshow",
        ),
        (
            "/word/document.xml",
            "application/vnd.ms-word.template.macroEnabledTemplate.main+xml",
            "application/vnd.ms-word.template.macroEnabled.12",
        ),
    ],
)
def test_ooxml_type_comes_from_the_main_part(
    tmp_path: Path, part: str, content_type: str, mime: str
) -> None:
    members = {"[Content_Types].xml": content_types(part, content_type), part[1:]: "<x/>"}
    found = detect(make_zip(tmp_path / "package.zip", members))
    assert found.mime == mime
    assert found.format == format_of(mime) != "binary"
    assert found.how == "zip-structure"


def test_ooxml_without_overrides_falls_back_to_part_names(tmp_path: Path) -> None:
    members = {"[Content_Types].xml": "<Types/>", "xl/workbook.xml": "<workbook/>"}
    assert detect(make_zip(tmp_path / "book.bin", members)).mime == XLSX


def test_odf_and_plain_zip(tmp_path: Path) -> None:
    odg = {"mimetype": "application/vnd.oasis.opendocument.graphics", "content.xml": "<x/>"}
    found = detect(make_zip(tmp_path / "drawing.zip", odg, stored_first="mimetype"))
    assert (found.mime, found.format) == ("application/vnd.oasis.opendocument.graphics", "odg")
    plain = {"mimetype": "text/plain", "readme.txt": "hello"}
    assert detect(make_zip(tmp_path / "a.odt", plain)).mime == "application/zip"


def test_a_zip_asking_for_a_version_python_cannot_read_is_not_an_error(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "new.zip", {"readme.txt": "hello"})
    data = bytearray(path.read_bytes())
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<H", data, central + 6, 151)  # version needed to extract: 15.1
    path.write_bytes(bytes(data))
    assert detect(path).mime == "application/zip"  # libmagic's word, from the signature


# -- compound files ----------------------------------------------------------------------


def make_cfb(names: list[str], fat_loop: bool = False) -> bytes:
    """A minimal compound file: the directory from sector 0, then one FAT sector.

    The root's children hang off each other's right-sibling links. With
    ``fat_loop`` the directory chain points back to itself.
    """
    header = bytearray(512)
    header[:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<HHH", header, 0x1A, 3, 0xFFFE, 9)
    struct.pack_into("<III", header, 0x2C, 1, 0, 0)  # 1 FAT sector, directory at sector 0
    struct.pack_into("<II", header, 0x44, 0xFFFFFFFE, 0)  # no DIFAT sectors
    entries = [("Root Entry", 5, 0xFFFFFFFF, 1 if names else 0xFFFFFFFF)]
    for i, name in enumerate(names, start=1):
        sibling = i + 1 if i < len(names) else 0xFFFFFFFF
        entries.append((name, 2, sibling, 0xFFFFFFFF))
    directory = bytearray()
    for name, kind, right, child in entries:
        raw = bytearray(128)
        encoded = name.encode("utf-16-le") + b"\0\0"
        raw[: len(encoded)] = encoded
        struct.pack_into("<HB", raw, 0x40, len(encoded), kind)
        struct.pack_into("<III", raw, 0x44, 0xFFFFFFFF, right, child)
        directory += raw
    directory = directory.ljust(512 * ((len(directory) + 511) // 512), b"\0")
    sectors = len(directory) // 512
    chain = [i + 1 for i in range(sectors)]
    chain[-1] = 0 if fat_loop else 0xFFFFFFFE
    fat = [*chain, 0xFFFFFFFD]  # the FAT's own sector follows the directory
    fat_bytes = struct.pack(f"<{len(fat)}I", *fat).ljust(512, b"\xff")
    struct.pack_into("<109I", header, 0x4C, sectors, *([0xFFFFFFFF] * 108))
    return bytes(header) + bytes(directory) + fat_bytes


@pytest.mark.parametrize(
    ("names", "mime"),
    [
        (["EncryptionInfo", "EncryptedPackage"], "application/x-encrypted-ooxml"),
        (["WordDocument", "1Table"], "application/msword"),
        (["Book"], "application/vnd.ms-excel"),
        (["PowerPoint Document", "Current User"], "application/vnd.ms-powerpoint"),
        (["__substg1.0_0037001F", "__properties_version1.0"], "application/vnd.ms-outlook"),
    ],
)
def test_compound_files_by_stream_names(tmp_path: Path, names: list[str], mime: str) -> None:
    found = detect(write(tmp_path, "file.bin", make_cfb(names)))
    assert (found.mime, found.how) == (mime, "cfb-structure")


def test_compound_file_with_a_looping_directory_chain(tmp_path: Path) -> None:
    names = [f"Stream{i}" for i in range(6)] + ["WordDocument"]
    found = detect(write(tmp_path, "loop.bin", make_cfb(names, fat_loop=True)))
    assert found.mime == "application/msword"


def test_unknown_compound_file_is_not_an_office_document(tmp_path: Path) -> None:
    found = detect(write(tmp_path, "thumbs.db", make_cfb(["Catalog"])))
    assert found.format == "binary"


# -- text types --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "mime"),
    [
        ("page", "<!DOCTYPE html>\n<title>x</title><p>Hi</p>", "text/html"),
        ("page.txt", "<!doctype HTML><html><body>Hi</body></html>", "text/html"),
        ("frag", "<!-- generated -->\n<body><p>Hi</p></body>", "text/html"),
        (
            "x.xml",
            '<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><body/></html>',
            "text/html",
        ),
        ("readme.md", '<div align="center">Logo</div>\n\n# Project\n', "text/markdown"),
        ("data", '<?xml version="1.0"?><catalog><item/></catalog>', "application/xml"),
        ("data", "<catalog>\n  <item id='1'/>\n</catalog>\n", "application/xml"),
        ("data", '{"name": "x", "items": [1, 2, 3]}', "application/json"),
        ("log.txt", '{"a": 1}\n{"a": 2}\n{"a": 3}\n', "application/x-ndjson"),
        ("broken.json", '{"a": 1,', "application/json"),
        ("table", "id,name,city\n1,Ann,Oslo\n2,Bob,Rome\n3,Cy,Bern\n4,Di,Lima\n", "text/csv"),
        ("table", "id\tname\n1\tAnn\n2\tBob\n3\tCy\n4\tDi\n", "text/tab-separated-values"),
        ("ragged.csv", "a,b\n1\n2,3,4\n", "text/csv"),
        ("notes", "# Title\n\nSee [the docs](https://example.com).\n", "text/markdown"),
        ("notes", "| a | b |\n|---|---|\n| 1 | 2 |\n", "text/markdown"),
        ("notes", "# not a heading really\nJust a line of prose.\n", "text/plain"),
        (
            "letter",
            "Dear Ann, thanks for the note.\nWe met, as planned, at noon.\n"
            "It rained, of course, all day.\nWe ate, and then, we left.\n"
            "Bob, Cy, and Di came too.\nSee you soon, I hope.\n",
            "text/plain",
        ),
        (
            "mail",
            "Received: from mx.example.com\nFrom: a@example.com\nTo: b@example.com\n"
            "Subject: Hi\n\nBody\n",
            "message/rfc822",
        ),
        ("front-matter", "title: Notes\ndate: 2024-01-01\n\nText\n", "text/plain"),
        ("subs", "WEBVTT\n\n00:00.000 --> 00:01.000\nHello\n", "text/vtt"),
        ("subs", "1\n00:00:01,000 --> 00:00:02,000\nHello\n", "application/x-subrip"),
    ],
)
def test_text_types(tmp_path: Path, name: str, text: str, mime: str) -> None:
    assert detect(write(tmp_path, name, text)).mime == mime


_TTML_BODY = '<body><div><p begin="1s" end="2s">Hi</p></div></body></tt>\n'


@pytest.mark.parametrize(
    ("name", "text", "mime"),
    [
        (
            "captions.xml",
            '<?xml version="1.0"?>\n<tt xmlns="http://www.w3.org/ns/ttml" xml:lang="en">'
            + _TTML_BODY,
            "application/ttml+xml",
        ),
        (
            "captions",
            '<tt:tt xmlns:tt="http://www.w3.org/ns/ttml">'
            + _TTML_BODY.replace("</tt>", "</tt:tt>"),
            "application/ttml+xml",
        ),
        (
            "old.xml",
            '<tt xmlns="http://www.w3.org/2006/10/ttaf1">' + _TTML_BODY,
            "application/ttml+xml",
        ),
        # Without the namespace only the extension says TTML; other XML named so stays XML.
        ("old.dfxp", '<?xml version="1.0"?>\n<tt>' + _TTML_BODY, "application/ttml+xml"),
        ("old.xml", '<?xml version="1.0"?>\n<tt>' + _TTML_BODY, "application/xml"),
        ("not.ttml", '<?xml version="1.0"?>\n<catalog/>\n', "application/xml"),
    ],
)
def test_ttml_is_told_from_other_xml(tmp_path: Path, name: str, text: str, mime: str) -> None:
    found = detect(write(tmp_path, name, text))
    assert (found.mime, found.format) == (mime, "subtitles" if "ttml" in mime else "xml")


def test_utf16_html_without_bom(tmp_path: Path) -> None:
    html = "<html><head><title>T</title></head><body><p>Hello</p></body></html>\n" * 3
    assert detect(write(tmp_path, "page", html.encode("utf-16-le"))).mime == "text/html"


def test_long_utf8_text_cut_inside_a_character(tmp_path: Path) -> None:
    text = "Ünïcödé prose, line after line. " * 2000
    found = detect(write(tmp_path, "long", text.encode()))
    assert (found.mime, found.format) == ("text/plain", "text")


def test_format_names() -> None:
    assert format_of("image/svg+xml") == "image"
    assert format_of("application/vnd.oasis.opendocument.text-template") == "odt"
    assert format_of("application/vnd.ms-excel.sheet.binary.macroEnabled.12") == "xlsx"
    assert format_of("application/x-executable") == "binary"


@pytest.mark.parametrize(
    "payload",
    [
        b"<!doctype a" + b"x" * 9000,
        b"<!--" + b"x" * 9000,
        b"[a" * 5000,
        b"|a" * 5000 + b"x",
        b"From: x\n" * 2000,
        b"a,b\n" * 3000,
    ],
)
def test_pathological_text_is_sniffed_quickly(tmp_path: Path, payload: bytes) -> None:
    path = write(tmp_path, "blob", payload)
    started = time.perf_counter()
    detect(path)
    assert time.perf_counter() - started < 0.2


# -- a name that claims another type ---------------------------------------------------
def test_a_file_named_for_another_type_is_read_as_its_content_with_a_warning(
    tmp_path: Path,
) -> None:
    text = tmp_path / "report.pdf"
    text.write_text("Quarterly figures went up.\n")
    document = parse_path(text, ParseContext())
    assert "Quarterly figures went up." in document.blocks[0].text
    (warning,) = [w for w in document.warnings if w.code == TYPE_MISMATCH]
    assert warning.message.startswith("the file is named .pdf (pdf) but its content is text")
    # The client's name counts, not the stored file's.
    renamed = parse_path(text, ParseContext(), name="report.txt")
    assert all(w.code != TYPE_MISMATCH for w in renamed.warnings)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.txt", b"# A heading\n\nSome *Markdown*.\n"),  # text families among themselves
        ("data.xml", b"<html><body><p>XHTML read as HTML</p></body></html>"),
        ("page.htm", b"<!doctype html><p>a page</p>"),
    ],
)
def test_text_families_named_for_one_another_are_no_mismatch(
    tmp_path: Path, name: str, content: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert type_mismatch(detect(path), name) is None


def test_the_corpus_names_its_files_for_what_they_are() -> None:
    if not CORPUS.is_dir():
        pytest.skip("test corpus not present")
    found = {
        str(path.relative_to(CORPUS)): type_mismatch(detect(path), path.name)
        for path in CORPUS.rglob("*")
        if path.is_file() and ".expected" not in path.name and path.name != "MANIFEST.tsv"
    }
    assert {name for name, warning in found.items() if warning} == {"hostile/not-a-zip.odt"}
    encrypted = CORPUS / "office" / "encrypted-password-tika.xlsx"
    assert (
        detect(encrypted).format == "encrypted-ooxml"
        and found[str(encrypted.relative_to(CORPUS))] is None
    )
