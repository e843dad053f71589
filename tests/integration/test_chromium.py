"""The Chromium engine on the real browser: scripts run, outputs checked, sandbox held.

One engine serves the module (each test renders in the same warm browser); only
the timeout test restarts it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pypdfium2
import pytest
import pyvips

from docworker.config import ChromiumSettings
from docworker.engines.chromium import (
    ChromiumEngine,
    Media,
    PageFormat,
    PdfOptions,
    ScreenshotOptions,
    WaitOptions,
    WaitUntil,
)
from docworker.errors import InvalidParameter, LimitExceeded
from docworker.url_policy import UrlPolicy
from tests.listener import Listener

SETTINGS = ChromiumSettings(timeout=20)
if ChromiumEngine(SETTINGS).unavailable_reason() is not None:
    pytest.skip("Chromium is not installed", allow_module_level=True)

#: A page whose text and red box exist only once its script has run.
SCRIPTED = """<!DOCTYPE html><html><head><title>Scripted</title>
<style>body { margin: 0; }</style></head><body>
<p id="msg">static text</p>
<script>
document.getElementById("msg").textContent = "Written by JavaScript 4242";
const box = document.createElement("div");
box.style.cssText = "position:absolute;left:100px;top:60px;width:200px;height:100px;"
  + "background:rgb(255,0,0)";
box.id = "box";
document.body.appendChild(box);
const tall = document.createElement("div");
tall.style.height = "%dpx";
document.body.appendChild(tall);
</script></body></html>
"""

MAGIC = {
    PageFormat.PNG: b"\x89PNG\r\n\x1a\n",
    PageFormat.JPEG: b"\xff\xd8\xff",
    PageFormat.WEBP: b"RIFF",
}


@pytest.fixture(scope="module")
def engine() -> Iterator[ChromiumEngine]:
    with ChromiumEngine(SETTINGS) as running:
        yield running


def _page(folder: Path, body: str, name: str = "index.html") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    page = folder / name
    page.write_text(body, encoding="utf-8")
    return page


def _pdf_text(path: Path) -> tuple[str, list[tuple[float, float]]]:
    with pypdfium2.PdfDocument(path) as pdf:
        texts, sizes = [], []
        for page in pdf:
            textpage = page.get_textpage()
            texts.append(textpage.get_text_range())
            sizes.append(page.get_size())
            textpage.close()
            page.close()
    return "\n".join(texts), sizes


def test_pdf_holds_what_the_script_wrote(engine: ChromiumEngine, tmp_path: Path) -> None:
    page = _page(tmp_path / "site", SCRIPTED % 100)
    options = PdfOptions(
        landscape=True,
        footer_template="<div style='font-size:10px'>Folio <span class='pageNumber'></span></div>",
        extra_css="#msg { color: blue; }",
    )
    info = engine.print_pdf(page, tmp_path / "out.pdf", policy=UrlPolicy(), options=options)
    text, sizes = _pdf_text(info.path)
    assert "Written by JavaScript 4242" in text
    assert "static text" not in text
    assert "Folio 1" in text
    assert info.pages == len(sizes) == 1 and info.title == "Scripted"
    width, height = sizes[0]  # A4 landscape, in points
    assert width == pytest.approx(842, abs=2) and height == pytest.approx(595, abs=2)


def test_css_media_type(engine: ChromiumEngine, tmp_path: Path) -> None:
    body = """<html><head><style>@media print { .screen-only { display: none; } }</style>
    </head><body><p class="screen-only">Shown on screens</p><p>Always here</p></body></html>"""
    page = _page(tmp_path / "site", body)
    printed = engine.print_pdf(page, tmp_path / "print.pdf", policy=UrlPolicy())
    assert "Shown on screens" not in _pdf_text(printed.path)[0]
    options = PdfOptions(media=Media.SCREEN)
    screen = engine.print_pdf(page, tmp_path / "screen.pdf", policy=UrlPolicy(), options=options)
    assert "Shown on screens" in _pdf_text(screen.path)[0]


def test_markdown_is_rendered_first(engine: ChromiumEngine, tmp_path: Path) -> None:
    page = _page(
        tmp_path / "site", "# Harbour report\n\n| a | b |\n|---|---|\n| x1 | y2 |\n", "r.md"
    )
    info = engine.print_pdf(page, tmp_path / "out.pdf", policy=UrlPolicy())
    text, sizes = _pdf_text(info.path)
    assert "Harbour report" in text and "x1" in text and "y2" in text and "|" not in text
    assert sizes[0][0] == pytest.approx(595, abs=2)  # A4 portrait
    assert info.title == "Harbour report"


@pytest.mark.parametrize("fmt", list(PageFormat))
def test_viewport_screenshot(engine: ChromiumEngine, tmp_path: Path, fmt: PageFormat) -> None:
    page = _page(tmp_path / "site", SCRIPTED % 2000)
    options = ScreenshotOptions(format=fmt, width=640, height=480, full_page=False, quality=95)
    info = engine.screenshot(
        page, tmp_path / f"shot.{fmt.value}", policy=UrlPolicy(), options=options
    )
    data = info.path.read_bytes()
    assert data.startswith(MAGIC[fmt]) and info.mime == f"image/{fmt.value}"
    if fmt is PageFormat.WEBP:
        assert data[8:12] == b"WEBP"
    image = pyvips.Image.new_from_buffer(data, "")
    assert (image.width, image.height) == (info.width, info.height) == (640, 480)
    red, green, blue = image(200, 110)[:3]  # inside the scripted box
    assert red > 230 and green < 30 and blue < 30
    assert min(image(50, 300)[:3]) > 230  # outside it: white


def test_full_page_and_scale(engine: ChromiumEngine, tmp_path: Path) -> None:
    page = _page(tmp_path / "site", SCRIPTED % 2000)
    options = ScreenshotOptions(width=400, height=300, full_page=True, scale=2.0)
    info = engine.screenshot(page, tmp_path / "full.png", policy=UrlPolicy(), options=options)
    image = pyvips.Image.new_from_file(str(info.path))
    assert image.width == 800
    assert image.height > 2 * 2000  # the paragraph and the 2000 px block, at scale 2
    assert image(400, 220)[:3] == [255, 0, 0]  # the box at (100..300, 60..160) CSS px, doubled


def test_clip_to_selector(engine: ChromiumEngine, tmp_path: Path) -> None:
    page = _page(tmp_path / "site", SCRIPTED % 100)
    options = ScreenshotOptions(selector="#box")
    info = engine.screenshot(page, tmp_path / "box.png", policy=UrlPolicy(), options=options)
    image = pyvips.Image.new_from_file(str(info.path))
    assert (image.width, image.height) == (200, 100)
    assert image(100, 50)[:3] == [255, 0, 0]
    with pytest.raises(InvalidParameter, match="no element"):
        engine.screenshot(
            page,
            tmp_path / "none.png",
            policy=UrlPolicy(),
            options=ScreenshotOptions(selector="#missing"),
        )


def test_wait_for_a_selector_written_late(engine: ChromiumEngine, tmp_path: Path) -> None:
    body = """<html><body><script>
    setTimeout(() => { const p = document.createElement("p"); p.id = "late";
      p.textContent = "Arrived after a while"; document.body.appendChild(p); }, 700);
    </script></body></html>"""
    page = _page(tmp_path / "site", body)
    wait = WaitOptions(until=WaitUntil.NETWORKIDLE, selector="#late")
    info = engine.print_pdf(page, tmp_path / "late.pdf", policy=UrlPolicy(), wait=wait)
    assert "Arrived after a while" in _pdf_text(info.path)[0]


def test_a_page_that_moves_on_by_script(engine: ChromiumEngine, tmp_path: Path) -> None:
    site = tmp_path / "site"
    _page(site, "<html><body><p>Second document</p></body></html>", "second.html")
    page = _page(site, "<html><body><script>location.href = 'second.html';</script></body></html>")
    wait = WaitOptions(until=WaitUntil.NETWORKIDLE)
    info = engine.print_pdf(page, tmp_path / "moved.pdf", policy=UrlPolicy(), wait=wait)
    assert "Second document" in _pdf_text(info.path)[0]


def test_no_loopback_and_no_file_outside_the_folder(
    engine: ChromiumEngine, tmp_path: Path, listener: Listener
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET-31337")
    hostname = Path("/etc/hostname").read_text().strip()
    site = tmp_path / "site"
    _page(site, "<p>LOCAL-ASSET-OK</p>", "inner.html")
    local = f"http://127.0.0.1:{listener.port}"
    body = f"""<html><body><p>Outer page</p>
    <img src="{local}/x.png"><link rel="stylesheet" href="{local}/s.css">
    <iframe src="{local}/frame"></iframe>
    <iframe src="file:///etc/hostname"></iframe><iframe src="{secret.as_uri()}"></iframe>
    <iframe src="inner.html"></iframe>
    <script>
      fetch("{local}/fetch").catch(() => {{}});
      try {{ new WebSocket("ws://127.0.0.1:{listener.port}/ws"); }} catch (e) {{}}
      navigator.sendBeacon && navigator.sendBeacon("{local}/beacon", "x");
    </script></body></html>"""
    page = _page(site, body)
    # Even allow-listed, a loopback address is refused.
    policy = UrlPolicy(allow=("127.0.0.1",))
    try:
        wait = WaitOptions(until=WaitUntil.NETWORKIDLE, delay=0.3)
        info = engine.print_pdf(page, tmp_path / "out.pdf", policy=policy, wait=wait)
    finally:
        listener.close()
    text = _pdf_text(info.path)[0]
    assert listener.connections == []
    assert "Outer page" in text and "LOCAL-ASSET-OK" in text
    assert "TOPSECRET" not in text and (not hostname or hostname not in text)
    refused = {item["url"] for item in info.requests["refused"]}
    assert {f"{local}/x.png", f"{local}/frame", "file:///etc/hostname", secret.as_uri()} <= refused
    assert info.requests["remote_fetches"] == 0


def test_a_script_that_never_ends(engine: ChromiumEngine, tmp_path: Path) -> None:
    page = _page(tmp_path / "site", "<html><body><script>while (true) {}</script></body></html>")
    with pytest.raises(LimitExceeded, match="not ready within 2 s") as caught:
        engine.print_pdf(page, tmp_path / "loop.pdf", policy=UrlPolicy(), timeout=2)
    assert caught.value.fields["limit"] == "render time"
    assert not engine.status()["running"]  # killed, to be started afresh
    starts = engine.status()["starts"]
    good = _page(tmp_path / "site", SCRIPTED % 10, "good.html")
    info = engine.print_pdf(good, tmp_path / "good.pdf", policy=UrlPolicy())
    assert "Written by JavaScript 4242" in _pdf_text(info.path)[0]
    status = engine.status()
    assert status["starts"] == starts + 1 and status["running"]


def test_a_temporary_folder_too_deep_for_a_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker's temporary folder lies deep in the data folder: Chromium's singleton
    # socket would pass the 107 bytes a socket's path may have. It starts all the same,
    # and what it writes is in that folder, gone with the browser.
    deep = tmp_path / "work" / ("host-" + "h" * 40) / ("1234-1700000000-" + "f" * 8) / "worker-1"
    deep.mkdir(parents=True)
    assert len(str(deep)) > 107
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    page = _page(tmp_path / "site", SCRIPTED % 10)
    with ChromiumEngine(SETTINGS) as fresh:
        info = fresh.print_pdf(page, tmp_path / "deep.pdf", policy=UrlPolicy())
        assert "Written by JavaScript 4242" in _pdf_text(info.path)[0]
        (folder,) = deep.iterdir()
        assert folder.name.startswith("docworker-chromium-")
        assert [p for p in (folder / "tmp").iterdir() if p.name.startswith("org.chromium.")]
    assert list(deep.iterdir()) == []


_HOLDER = """
import sys, time
from pathlib import Path
from docworker.config import ChromiumSettings
from docworker.engines.chromium import shared_engine
from docworker.url_policy import UrlPolicy
engine = shared_engine(ChromiumSettings())
page = Path(sys.argv[1])
engine.print_pdf(page, page.with_suffix(".pdf"), policy=UrlPolicy())
print("BROWSER", engine.status()["pid"], flush=True)
time.sleep(60)
"""


def test_the_browser_dies_with_its_process(tmp_path: Path) -> None:
    page = _page(tmp_path / "site", SCRIPTED % 10)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(page)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert holder.stdout is not None
        line = b""
        while not line.startswith(b"BROWSER "):  # log lines come first
            line = holder.stdout.readline()
            assert line, "the holder process ended early"
        browser = psutil.Process(int(line.split()[1]))
        assert "chromium" in browser.name()
        holder.send_signal(signal.SIGKILL)  # no clean-up runs: the pipe's end must do
        holder.wait(10)
        browser.wait(10)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert not psutil.pid_exists(browser.pid) or browser.status() == psutil.STATUS_ZOMBIE
