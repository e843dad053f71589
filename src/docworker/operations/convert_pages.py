"""Web pages laid out as PDFs for the ``convert`` operation: an HTML file, a Markdown
file or a zipped site, printed by WeasyPrint (the default) or by headless Chromium
(for pages that need their scripts run).

Both engines read the page from the same folder
(:func:`~docworker.operations.web_input.prepare_page`) and fetch nothing but what
:class:`~docworker.url_policy.UrlPolicy` allows. The page
set-up of the request (size, orientation, margins, header and footer templates, extra
CSS) means the same on both: Chromium's templates fill the same classes
(``pageNumber``, ``totalPages``, ``title``, ``date``) that WeasyPrint's are given.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from docworker.document import Warning
from docworker.engines.chromium import print_pdf
from docworker.engines.chromium_capture import PdfOptions
from docworker.errors import InvalidParameter
from docworker.formats.base import PageSelection
from docworker.formats.encoding import decode_text
from docworker.operations.base import InputFile, OperationContext
from docworker.operations.web_input import prepare_page
from docworker.render.html_pdf import PageSetup, html_to_pdf, markdown_to_html

#: Millimetres of the named page sizes (portrait), as CSS names them.
_SIZES_MM = {
    "a3": (297.0, 420.0),
    "a4": (210.0, 297.0),
    "a5": (148.0, 210.0),
    "b4": (250.0, 353.0),
    "b5": (176.0, 250.0),
    "jis-b4": (257.0, 364.0),
    "jis-b5": (182.0, 257.0),
    "letter": (215.9, 279.4),
    "legal": (215.9, 355.6),
    "ledger": (279.4, 431.8),
}
_MM_PER_UNIT = {"mm": 1.0, "cm": 10.0, "in": 25.4, "pt": 25.4 / 72, "pc": 25.4 / 6, "px": 25.4 / 96}
_LENGTH = re.compile(r"(\d+(?:\.\d+)?)(mm|cm|in|pt|pc|px)")
#: Chromium's own margin when a request names none.
_DEFAULT_MARGIN_MM = 10.0


def page_to_pdf(
    ctx: OperationContext,
    source: InputFile,
    setup: PageSetup,
    target: Path,
    *,
    engine: str,
    pages: str | None,
    pdfa: str | None,
) -> dict[str, Any]:
    """The page ``source`` laid out as the PDF ``target`` by ``engine`` (weasyprint or
    chromium); what was made: engine, pages, warnings."""
    folder, page = prepare_page(ctx, source, ctx.settings.site)
    ctx.progress(0.1, "laying out the pages")
    if engine == "chromium":
        return _chromium(ctx, folder, page, setup, target, pages=pages, pdfa=pdfa)
    text = decode_text(page.read_bytes()).text
    markup = markdown_to_html(text) if page.suffix == ".md" else text
    made = html_to_pdf(
        markup,
        page.parent,
        setup,
        ctx.url_policy,
        target,
        pages=PageSelection.parse(pages) if pages else None,
        pdfa=pdfa,
    )
    return {"engine": "weasyprint", "pages": made.pages, "warnings": made.warnings}


def _chromium(
    ctx: OperationContext,
    folder: Path,
    page: Path,
    setup: PageSetup,
    target: Path,
    *,
    pages: str | None,
    pdfa: str | None,
) -> dict[str, Any]:
    if pdfa:
        raise InvalidParameter("pdfa", "PDF/A is made by the weasyprint engine, not chromium")
    info = print_pdf(
        page,
        target,
        settings=ctx.settings.chromium,
        policy=ctx.url_policy,
        root=folder,
        options=chromium_options(setup, pages),
        sandbox=ctx.settings.sandbox,
    )
    refused = info.requests.get("refused") or []
    warnings = [
        Warning(code="resource-refused", message=f"{item['url']} was not loaded: {item['reason']}")
        for item in refused
        if isinstance(item, dict) and "url" in item
    ]
    return {"engine": "chromium", "pages": info.pages, "warnings": warnings}


def chromium_options(setup: PageSetup, pages: str | None) -> PdfOptions:
    """The request's page set-up as Chromium's print options."""
    width, height = _size_mm(setup.size) if setup.size else _SIZES_MM["a4"]
    margins = tuple(
        _length_mm(value) if value else _DEFAULT_MARGIN_MM
        for value in (setup.margin_top, setup.margin_right, setup.margin_bottom, setup.margin_left)
    )
    return PdfOptions(
        width_mm=width,
        height_mm=height,
        landscape=bool(setup.landscape),
        margins_mm=(margins[0], margins[1], margins[2], margins[3]),
        header_template=setup.header_html,
        footer_template=setup.footer_html,
        extra_css=setup.css,
        page_ranges=str(PageSelection.parse(pages)) if pages else None,
        # Without a size in the request, the page's own @page size wins, as in WeasyPrint.
        prefer_css_page_size=setup.size is None and setup.landscape is None,
    )


def _size_mm(size: str) -> tuple[float, float]:
    named = _SIZES_MM.get(size.lower())
    if named is not None:
        return named
    width, height = size.split()
    return _length_mm(width), _length_mm(height)


def _length_mm(value: str) -> float:
    if value.strip() == "0":
        return 0.0
    match = _LENGTH.fullmatch(value.strip().lower())
    if match is None:  # the parameters were checked with check_page_size / check_margin
        raise InvalidParameter("page_size", f"'{value}' is not a length with a unit")
    return float(match[1]) * _MM_PER_UNIT[match[2]]
