"""The engines cannot reach out: LibreOffice, Chromium and FFmpeg, each given documents
that try to reach a loopback listener and to read a planted local file.

Every test runs twice: with the engine in a network namespace of its own
(``sandbox.network=namespace``, skipped where the machine cannot make one) and with
the engine's own rules alone (``off``). Either way the listener gets no request and
the planted file's marker is in no output; in a namespace, the engine's processes
also see no network interface but their own loopback.
"""

from __future__ import annotations

import os
import shutil
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pypdfium2
import pytest

from docworker.config import (
    ChromiumSettings,
    FfmpegSettings,
    LibreOfficeSettings,
    NetworkIsolation,
    SandboxSettings,
)
from docworker.engines.chromium import ChromiumEngine, WaitOptions, WaitUntil
from docworker.engines.ffmpeg import Ffmpeg, run_guarded
from docworker.engines.libreoffice import LibreOfficeEngine
from docworker.engines.sandbox import network_sandbox
from docworker.errors import CorruptDocument, ProcessingFailed, UnsupportedFormat
from docworker.url_policy import UrlPolicy
from tests.listener import Listener
from tests.videos import make_video

MARKER = f"PLANTED-MARKER-{uuid.uuid4().hex[:12]}"
HAS_NAMESPACES = network_sandbox().isolated
MODES = [
    pytest.param(
        NetworkIsolation.NAMESPACE,
        id="namespace",
        marks=pytest.mark.skipif(not HAS_NAMESPACES, reason="no network namespaces here"),
    ),
    pytest.param(NetworkIsolation.OFF, id="engine-rules"),
]


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A local file outside every job's folder, holding the marker."""
    secret = tmp_path / "elsewhere" / "planted.txt"
    secret.parent.mkdir()
    secret.write_text(f"{MARKER}\n")
    return secret


def _namespace_of(pid: int) -> tuple[str, list[str]]:
    """The network namespace of process ``pid`` and the interfaces it sees."""
    lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    return os.readlink(f"/proc/{pid}/ns/net"), [line.split(":")[0].strip() for line in lines]


def _assert_cut_off(pid: int, mode: NetworkIsolation) -> None:
    """In a namespace, ``pid`` and its children see only a loopback of their own."""
    if mode is not NetworkIsolation.NAMESPACE:
        return
    ours = os.readlink("/proc/self/ns/net")
    process = psutil.Process(pid)
    seen = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            namespace, interfaces = _namespace_of(member.pid)
        except FileNotFoundError:
            continue  # a helper process that has ended since
        seen += 1
        assert namespace != ours, member.name()
        assert interfaces == ["lo"], member.name()
    assert seen


def _pdf_text(path: Path) -> str:
    with pypdfium2.PdfDocument(str(path)) as pdf:
        return "\n".join(page.get_textpage().get_text_range() for page in pdf)


# -- LibreOffice ---------------------------------------------------------------------------


def _zip(path: Path, members: dict[str, str], *, stored_first: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        if stored_first is not None:
            zf.writestr(zipfile.ZipInfo(stored_first), members.pop(stored_first))
        for name, text in members.items():
            zf.writestr(name, text)
    return path


_ODF = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
    'xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" '
    'xmlns:of="urn:oasis:names:tc:opendocument:xmlns:of:1.2" '
    'xmlns:xlink="http://www.w3.org/1999/xlink" office:version="1.2"'
)


def _odf(path: Path, kind: str, body: str) -> Path:
    mime = f"application/vnd.oasis.opendocument.{kind}"
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
        'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" '
        f'manifest:version="1.2"><manifest:file-entry manifest:full-path="/" '
        f'manifest:media-type="{mime}"/><manifest:file-entry manifest:full-path="content.xml" '
        'manifest:media-type="text/xml"/></manifest:manifest>'
    )
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {_ODF}>'
        f"<office:body>{body}</office:body></office:document-content>"
    )
    members = {"mimetype": mime, "content.xml": content, "META-INF/manifest.xml": manifest}
    return _zip(path, members, stored_first="mimetype")


def _linked_sections(path: Path, url: str, planted: Path) -> Path:
    """Text sections whose content is linked: a remote URL and the planted file."""
    sections = "".join(
        f'<text:section text:name="s{n}"><text:section-source xlink:href="{href}" '
        f'xlink:type="simple" text:filter-name="Text"/><text:p>CACHED-SECTION-{n}</text:p>'
        "</text:section>"
        for n, href in enumerate((f"{url}/section.txt", planted.as_uri()))
    )
    body = f"<office:text><text:p>Linked sections.</text:p>{sections}</office:text>"
    return _odf(path, "text", body)


def _linked_pictures(path: Path, url: str, planted: Path) -> Path:
    """Pictures that are links (to a remote URL and to the planted file), not embedded."""
    frames = "".join(
        f'<text:p><draw:frame draw:name="p{n}" text:anchor-type="as-char" svg:width="2in" '
        f'svg:height="1in"><draw:image xlink:href="{href}" xlink:type="simple" '
        'xlink:show="embed" xlink:actuate="onLoad"/></draw:frame></text:p>'
        for n, href in enumerate((f"{url}/picture.png", planted.as_uri()))
    )
    return _odf(
        path, "text", f"<office:text><text:p>Linked pictures.</text:p>{frames}</office:text>"
    )


def _linked_cells(path: Path, url: str, planted: Path) -> Path:
    """A sheet whose cells reference the planted file and call a web service."""
    formulas = (f"of:=['{planted.as_uri()}'#$Sheet1.A1]", f"of:=WEBSERVICE(&quot;{url}/ws&quot;)")
    cells = "".join(
        f'<table:table-cell table:formula="{formula}" office:value-type="string" '
        f'office:string-value="CACHED{n}"><text:p>CACHED{n}</text:p></table:table-cell>'
        for n, formula in enumerate(formulas)
    )
    body = (
        '<office:spreadsheet><table:table table:name="Sheet1"><table:table-row>'
        f"{cells}</table:table-row></table:table></office:spreadsheet>"
    )
    return _odf(path, "spreadsheet", body)


_W = (
    'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
)
_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def _field(instruction: str, cached: str) -> str:
    return (
        '<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText '
        f'xml:space="preserve"> {instruction} </w:instrText></w:r><w:r><w:fldChar '
        f'w:fldCharType="separate"/></w:r><w:r><w:t>{cached}</w:t></w:r><w:r><w:fldChar '
        'w:fldCharType="end"/></w:r></w:p>'
    )


def _linked_fields(path: Path, url: str, planted: Path) -> Path:
    """A Word document with INCLUDETEXT (the planted file, a URL), INCLUDEPICTURE (a
    URL) and a remote template, as template-injection documents carry."""
    body = (
        "<w:p><w:r><w:t>Linked fields.</w:t></w:r></w:p>"
        + _field(f'INCLUDETEXT "{planted}"', "CACHED-INCLUDETEXT")
        + _field(f'INCLUDETEXT "{url}/text.txt"', "CACHED-REMOTE-TEXT")
        + _field(f'INCLUDEPICTURE "{url}/picture.png" \\d', "CACHED-PICTURE")
    )
    head = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    main = "application/vnd.openxmlformats-officedocument.wordprocessingml"
    members = {
        "[Content_Types].xml": (
            f'{head}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/word/document.xml" ContentType="{main}.document.main+xml"/>'
            f'<Override PartName="/word/settings.xml" ContentType="{main}.settings+xml"/></Types>'
        ),
        "_rels/.rels": (
            f'{head}<Relationships xmlns="{_RELS}"><Relationship Id="rId1" '
            f'Type="{_REL}/officeDocument" Target="word/document.xml"/></Relationships>'
        ),
        "word/document.xml": f"{head}<w:document {_W}><w:body>{body}</w:body></w:document>",
        "word/_rels/document.xml.rels": (
            f'{head}<Relationships xmlns="{_RELS}"><Relationship Id="rIdS" '
            f'Type="{_REL}/settings" Target="settings.xml"/></Relationships>'
        ),
        "word/settings.xml": (
            f'{head}<w:settings {_W}><w:attachedTemplate r:id="rIdT"/><w:linkStyles/></w:settings>'
        ),
        "word/_rels/settings.xml.rels": (
            f'{head}<Relationships xmlns="{_RELS}"><Relationship Id="rIdT" '
            f'Type="{_REL}/attachedTemplate" Target="{url}/template.dotx" '
            'TargetMode="External"/></Relationships>'
        ),
    }
    return _zip(path, members)


@pytest.fixture(scope="module", params=MODES)
def office(request: pytest.FixtureRequest) -> Iterator[tuple[LibreOfficeEngine, NetworkIsolation]]:
    engine = LibreOfficeEngine(LibreOfficeSettings(), SandboxSettings(network=request.param))
    if not engine.status()["installed"]:
        pytest.skip("LibreOffice (soffice, python3-uno) is not installed")
    with engine:
        yield engine, request.param


def test_libreoffice_reaches_nothing(
    office: tuple[LibreOfficeEngine, NetworkIsolation],
    tmp_path: Path,
    listener: Listener,
    planted: Path,
) -> None:
    engine, mode = office
    url = listener.url
    page = tmp_path / "page.html"
    page.write_text(
        f'<html><head><link rel="stylesheet" href="{url}/style.css"></head><body>'
        f'<p>A page.</p><img src="{url}/picture.png"><img src="{planted.as_uri()}"></body></html>'
    )
    pictures = _linked_pictures(tmp_path / "pictures.odt", url, planted)
    # The same links in a Word 97 file (INCLUDEPICTURE fields, which the Word importer
    # itself fetches), written by LibreOffice.
    legacy = tmp_path / "pictures.doc"
    shutil.move(engine.convert(pictures, "doc"), legacy)
    documents = [
        page,
        pictures,
        legacy,
        _linked_sections(tmp_path / "sections.odt", url, planted),
        _linked_cells(tmp_path / "cells.ods", url, planted),
        _linked_fields(tmp_path / "fields.docx", url, planted),
    ]
    texts = {}
    for document in documents:
        pdf = engine.convert(document, "pdf")
        texts[document.name] = _pdf_text(pdf)
        assert MARKER.encode() not in pdf.read_bytes(), document.name
        pdf.unlink()
    assert not [name for name, text in texts.items() if MARKER in text]
    # What the links showed when the document was saved is what is shown.
    assert "CACHED-INCLUDETEXT" in texts["fields.docx"]
    assert "CACHED-SECTION-1" in texts["sections.odt"]
    _assert_cut_off(engine.status()["pid"], mode)
    holds = "namespace" if mode is NetworkIsolation.NAMESPACE else "engine rules"
    assert engine.status()["network"] == holds
    listener.close()
    assert listener.connections == []


# -- Chromium ------------------------------------------------------------------------------


class ServedPolicy(UrlPolicy):
    """The URL policy, answering the allow-listed host from memory: the tests have no
    network, and what is proven is that the browser gets what the service fetched."""

    def check(self, url: str) -> list:  # type: ignore[type-arg]
        if not self.allows(url):
            return super().check(url)
        return []

    def fetch(self, url: str) -> tuple[bytes, str | None, str]:
        self.check(url)
        script = b'document.getElementById("o").textContent = "SERVED-BY-THE-SERVICE";'
        return script, "text/javascript", url


@pytest.fixture(scope="module", params=MODES)
def browser(request: pytest.FixtureRequest) -> Iterator[tuple[ChromiumEngine, NetworkIsolation]]:
    engine = ChromiumEngine(ChromiumSettings(timeout=20), SandboxSettings(network=request.param))
    if engine.unavailable_reason() is not None:
        pytest.skip("Chromium is not installed")
    with engine:
        yield engine, request.param


def test_chromium_reaches_nothing(
    browser: tuple[ChromiumEngine, NetworkIsolation],
    tmp_path: Path,
    listener: Listener,
    planted: Path,
) -> None:
    engine, mode = browser
    url, secret = listener.url, planted.as_uri()
    site = tmp_path / "site"
    site.mkdir()
    page = site / "index.html"
    page.write_text(
        f"""<html><head><link rel="stylesheet" href="{url}/s.css"></head><body>
        <p>Outer page</p><img src="{url}/x.png"><iframe src="{url}/frame"></iframe>
        <iframe src="{secret}"></iframe><p id="read">nothing read</p>
        <script>
          fetch("{url}/fetch").catch(() => {{}});
          fetch("{secret}").then(r => r.text())
            .then(t => {{ document.getElementById("read").textContent = t; }}).catch(() => {{}});
          try {{ new WebSocket("ws://127.0.0.1:{listener.port}/ws"); }} catch (e) {{}}
          navigator.sendBeacon && navigator.sendBeacon("{url}/beacon", "x");
        </script></body></html>"""
    )
    wait = WaitOptions(until=WaitUntil.NETWORKIDLE, delay=0.3)
    info = engine.print_pdf(page, tmp_path / "out.pdf", policy=UrlPolicy(), wait=wait)
    text = _pdf_text(info.path)
    assert "Outer page" in text and "nothing read" in text
    assert MARKER not in text
    _assert_cut_off(engine.status()["pid"], mode)
    listener.close()
    assert listener.connections == []


def test_chromium_gets_allow_listed_resources_from_the_service(
    browser: tuple[ChromiumEngine, NetworkIsolation], tmp_path: Path
) -> None:
    """In a namespace too: the service fetches an allow-listed resource and hands it to
    the browser, which connects nowhere itself."""
    engine, mode = browser
    page = tmp_path / "site" / "index.html"
    page.parent.mkdir()
    page.write_text(
        '<html><body><p id="o">waiting</p>'
        '<script src="https://cdn.example.test/app.js"></script></body></html>'
    )
    policy = ServedPolicy(allow=("cdn.example.test",))
    wait = WaitOptions(until=WaitUntil.NETWORKIDLE)
    info = engine.print_pdf(page, tmp_path / "served.pdf", policy=policy, wait=wait)
    assert "SERVED-BY-THE-SERVICE" in _pdf_text(info.path)
    assert info.requests["remote_fetches"] == 1
    _assert_cut_off(engine.status()["pid"], mode)


# -- FFmpeg --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_ffmpeg_reads_no_playlist_and_reaches_nothing(
    mode: NetworkIsolation, tmp_path: Path, listener: Listener, planted: Path
) -> None:
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.skip("FFmpeg is not installed")
    engine = Ffmpeg(FfmpegSettings(), SandboxSettings(network=mode))
    video = make_video(tmp_path / "elsewhere" / "planted.ts", seconds=1)
    url = listener.url
    hls = (
        "#EXTM3U\n#EXT-X-TARGETDURATION:4\n"
        f"#EXTINF:1,\n{url}/segment.ts\n#EXTINF:1,\nfile:{video}\n"
        f"#EXTINF:1,\n{planted}\n#EXT-X-ENDLIST\n"
    )
    concat = f"ffconcat version 1.0\nfile '{video}'\nfile '{url}/a.mp4'\nfile '{planted}'\n"
    inputs = [
        (tmp_path / "list.m3u8", hls),
        (tmp_path / "list.ffconcat", concat),
        # The same playlists under a media file's name: the content decides, not the name.
        (tmp_path / "clip.mp4", hls),
        (tmp_path / "clip.mkv", concat),
    ]
    for path, text in inputs:
        path.write_text(text)
        with pytest.raises(UnsupportedFormat):
            engine.probe(path)
        output = tmp_path / f"{path.stem}-out.mkv"
        with pytest.raises((ProcessingFailed, CorruptDocument)):
            engine.transcode(
                [*engine.input_args(path), "-c", "copy", f"file:{output}"],
                expected_seconds=None,
                progress=lambda _f, _m: None,
            )
        assert not output.exists() or MARKER.encode() not in output.read_bytes()
    listener.close()
    assert listener.connections == []
    # Each run of the engine starts where the sandbox says.
    seen = run_guarded(
        ["cat", "/proc/self/net/dev"], timeout=10, memory_bytes=2**30, sandbox=engine.sandbox
    )
    interfaces = [line.split(":")[0].strip() for line in seen.stdout.decode().splitlines()[2:]]
    assert (interfaces == ["lo"]) is (mode is NetworkIsolation.NAMESPACE)
