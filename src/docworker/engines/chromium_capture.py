"""What a Chromium render makes: a PDF or an image of a loaded page, and their options.

The functions here drive one :class:`~docworker.engines.chromium_page.PageSession`
from load to output; :mod:`docworker.engines.chromium` runs them in the warm
browser. A Markdown source is first written out as an HTML page beside it
(:func:`page_for`), so its relative images resolve in the same folder.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import pypdfium2
from markdown_it import MarkdownIt

from docworker.engines.cdp import CdpError
from docworker.engines.chromium_page import PageSession, WaitOptions
from docworker.engines.image_formats import PageFormat
from docworker.engines.vips import pyvips
from docworker.errors import InvalidParameter, LimitExceeded

MM_PER_INCH = 25.4
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
_MARKDOWN_STYLE = """
body { font-family: 'DejaVu Sans', 'Noto Sans', sans-serif; line-height: 1.5;
       max-width: 50em; margin: 2em auto; padding: 0 1em; color: #222; }
pre, code { font-family: 'DejaVu Sans Mono', monospace; background: #f4f4f4; }
pre { padding: .8em; overflow-x: auto; }
table { border-collapse: collapse; } th, td { border: 1px solid #bbb; padding: .3em .6em; }
img { max-width: 100%; }
"""


class Media(StrEnum):
    """The CSS media type the page is laid out for (``@media print`` rules or not)."""

    PRINT = "print"
    SCREEN = "screen"


@dataclass(frozen=True)
class PdfOptions:
    """How a page is printed (sizes in millimetres; margins top, right, bottom, left)."""

    width_mm: float = 210.0
    height_mm: float = 297.0
    landscape: bool = False
    margins_mm: tuple[float, float, float, float] = (10.0, 10.0, 10.0, 10.0)
    #: Chromium's header and footer templates: HTML whose elements of class ``date``,
    #: ``title``, ``url``, ``pageNumber`` and ``totalPages`` are filled in.
    header_template: str | None = None
    footer_template: str | None = None
    extra_css: str | None = None
    print_background: bool = True
    scale: float = 1.0
    #: Pages to print, e.g. '1-3,5' (all when None).
    page_ranges: str | None = None
    #: A size given by the page's CSS ``@page`` rule wins over ``width_mm``/``height_mm``.
    prefer_css_page_size: bool = False
    media: Media = Media.PRINT


@dataclass(frozen=True)
class ScreenshotOptions:
    """How a page is captured: format, viewport (CSS pixels), full page or not."""

    format: PageFormat = PageFormat.PNG
    #: JPEG and WebP quality, 1..100.
    quality: int = 90
    width: int = 1280
    height: int = 800
    full_page: bool = True
    #: Device scale factor: image pixels per CSS pixel.
    scale: float = 1.0
    #: Capture only the element this CSS selector matches first.
    selector: str | None = None
    #: PNG and WebP: no white page background (transparent where the page paints none).
    omit_background: bool = False
    #: Most pixels of the image; a longer full page is cut to fit.
    max_pixels: int = 100_000_000
    extra_css: str | None = None
    media: Media = Media.SCREEN

    def __post_init__(self) -> None:
        # Callers may name the format as a plain string ('jpeg').
        object.__setattr__(self, "format", PageFormat(self.format))


@dataclass(frozen=True)
class RenderInfo:
    """What a render made, and what the page asked for that was refused."""

    path: Path
    mime: str
    title: str
    #: Image size in pixels (screenshots).
    width: int | None = None
    height: int | None = None
    #: Page count (PDFs).
    pages: int | None = None
    #: The page was longer than the screenshot's height or pixel limit and was cut.
    truncated: bool = False
    #: ``remote_fetches``, ``refused_count`` and ``refused`` (URL and reason, the first 50).
    requests: dict[str, Any] = field(default_factory=dict)


def page_for(source: Path) -> Path:
    """The HTML page to open for ``source``: itself, or for Markdown a page written beside it."""
    if source.suffix.lower() not in MARKDOWN_SUFFIXES:
        return source
    text = source.read_text(encoding="utf-8-sig", errors="replace")
    parser = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    body = parser.render(text)
    title = next(
        (line.lstrip("#").strip() for line in text.splitlines() if line.startswith("# ")),
        source.stem,
    )
    page = source.with_name(source.name + ".html")
    page.write_text(
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_MARKDOWN_STYLE}</style></head>"
        f"<body>\n{body}</body></html>\n",
        encoding="utf-8",
    )
    return page


def render_pdf(
    page: PageSession, url: str, output: Path, options: PdfOptions, wait: WaitOptions
) -> RenderInfo:
    """Load ``url`` and print it to ``output``."""
    page.call("Emulation.setEmulatedMedia", {"media": Media(options.media).value}, page.session)
    page.load(url, wait)
    if options.extra_css:
        page.add_style(options.extra_css)
    title = str(page.evaluate("document.title") or "")
    with output.open("wb") as fh:
        page.print_pdf(pdf_params(options), fh)
    try:
        document = pypdfium2.PdfDocument(output)
    except pypdfium2.PdfiumError as exc:
        raise InvalidParameter("pdf", f"Chromium printed no readable PDF: {exc}") from None
    with document:
        pages = len(document)
    return RenderInfo(output, "application/pdf", title, pages=pages)


def pdf_params(options: PdfOptions) -> dict[str, Any]:
    """``Page.printToPDF``'s parameters for ``options``."""
    top, right, bottom, left = (value / MM_PER_INCH for value in options.margins_mm)
    params: dict[str, Any] = {
        "paperWidth": options.width_mm / MM_PER_INCH,
        "paperHeight": options.height_mm / MM_PER_INCH,
        "landscape": options.landscape,
        "marginTop": top,
        "marginRight": right,
        "marginBottom": bottom,
        "marginLeft": left,
        "printBackground": options.print_background,
        "scale": options.scale,
        "preferCSSPageSize": options.prefer_css_page_size,
    }
    if options.page_ranges:
        params["pageRanges"] = options.page_ranges
    if options.header_template or options.footer_template:
        # Chromium's own template fills a side left unset (date, title, URL): keep it empty.
        params["displayHeaderFooter"] = True
        params["headerTemplate"] = options.header_template or "<span></span>"
        params["footerTemplate"] = options.footer_template or "<span></span>"
    return params


def render_screenshot(
    page: PageSession,
    url: str,
    output: Path,
    options: ScreenshotOptions,
    wait: WaitOptions,
    limits: tuple[int, int],
    webp_native: bool,
) -> tuple[RenderInfo, bool]:
    """Load ``url`` and capture it into ``output``; also whether Chromium wrote WebP
    itself (when it cannot, the PNG it takes is converted with libvips)."""
    max_viewport, max_height = limits
    for name, value in (("width", options.width), ("height", options.height)):
        if value > max_viewport:
            raise LimitExceeded(f"viewport {name}", value, max_viewport)
    page.emulate_viewport(options.width, options.height, options.scale)
    if options.omit_background and options.format is not PageFormat.JPEG:
        transparent = {"color": {"r": 0, "g": 0, "b": 0, "a": 0}}
        page.call("Emulation.setDefaultBackgroundColorOverride", transparent, page.session)
    page.call("Emulation.setEmulatedMedia", {"media": Media(options.media).value}, page.session)
    page.load(url, wait)
    if options.extra_css:
        page.add_style(options.extra_css)
    clip, truncated = _clip(page, options, max_viewport, max_height)
    params: dict[str, Any] = {"fromSurface": True, "captureBeyondViewport": clip is not None}
    if clip is not None:
        params["clip"] = clip
    data, webp_native = _capture(page, params, options, webp_native)
    output.write_bytes(data)
    image = pyvips.Image.new_from_buffer(data, "")
    title = str(page.evaluate("document.title") or "")
    info = RenderInfo(
        output,
        options.format.mime,
        title,
        width=image.width,
        height=image.height,
        truncated=truncated,
    )
    return info, webp_native


def _capture(
    page: PageSession, params: dict[str, Any], options: ScreenshotOptions, webp_native: bool
) -> tuple[bytes, bool]:
    fmt = options.format
    if fmt is not PageFormat.PNG:
        params["quality"] = options.quality
    if fmt is not PageFormat.WEBP or webp_native:
        try:
            return page.capture({**params, "format": fmt.value}), webp_native
        except CdpError:
            if fmt is not PageFormat.WEBP:
                raise
    png = page.capture({k: v for k, v in params.items() if k != "quality"} | {"format": "png"})
    image = pyvips.Image.new_from_buffer(png, "")
    webp: bytes = image.webpsave_buffer(Q=options.quality)
    return webp, False


def _clip(
    page: PageSession, options: ScreenshotOptions, max_width: int, max_height: int
) -> tuple[dict[str, float] | None, bool]:
    """The area to capture (None: the viewport) and whether the page was cut."""
    if options.selector:
        box = _element_box(page, options.selector)
    elif options.full_page:
        size = page.call("Page.getLayoutMetrics", {}, page.session)["cssContentSize"]
        width = min(max(options.width, math.ceil(size["width"])), max_width)
        box = (0.0, 0.0, float(width), float(math.ceil(size["height"])))
    else:
        pixels = options.width * options.height * options.scale**2
        if pixels > options.max_pixels:
            raise LimitExceeded("screenshot pixels", pixels, options.max_pixels)
        return None, False
    x, y, width, height = box
    tallest = min(float(max_height), options.max_pixels / (width * options.scale**2))
    truncated = height > tallest
    clip = {"x": x, "y": y, "width": width, "height": min(height, tallest), "scale": 1.0}
    return clip, truncated


def _element_box(page: PageSession, selector: str) -> tuple[float, float, float, float]:
    found = json.dumps(selector)
    expression = (
        f"(() => {{ let e; try {{ e = document.querySelector({found}); }}"
        " catch (err) { return 'bad'; }"
        " if (!e) return null; const r = e.getBoundingClientRect();"
        " return [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]; })()"
    )
    box = page.evaluate(expression)
    if box == "bad":
        raise InvalidParameter("selector", "not a valid CSS selector")
    if box is None:
        raise InvalidParameter("selector", f"no element of the page matches '{selector[:100]}'")
    x, y, width, height = (float(value) for value in box)
    if width < 1 or height < 1:
        raise InvalidParameter("selector", "the element it matches has no visible size")
    return x, y, width, height
