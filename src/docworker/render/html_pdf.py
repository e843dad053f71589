"""HTML and Markdown → PDF with WeasyPrint: page set-up, header and footer templates,
guarded fetches, and the HTML page a Markdown file becomes.

:func:`html_to_pdf` lays out one HTML page as a PDF. The page set-up
(:class:`PageSetup`) becomes an ``@page`` style sheet applied after the page's
own, so what the request asks wins over what the page says. Header and footer
templates are HTML placed in the page margins as WeasyPrint running elements; in
them, an element of class ``pageNumber`` shows the page's number and one of class
``totalPages`` the page count (the class names Chromium's templates use), ``title``
the document's title and ``date`` today's date.

Every resource the page refers to (images, style sheets, fonts) is fetched by
:class:`~docworker.render.html_fetch.GuardedFetcher`: ``data:`` URLs are read in place,
``file:`` URLs only inside the folder the page was given (``root``, the job's own
folder), ``http(s)`` URLs only through the service's
:class:`~docworker.url_policy.UrlPolicy`; everything else is refused. A refused or
failed resource is left out and named in the result's warnings; it never fails the
conversion.

Markdown (:func:`markdown_to_html`) is CommonMark with pipe tables and
strikethrough, read by markdown-it-py (the parser the Markdown reader uses); raw
HTML in it is kept, as a Markdown author expects, and its resources go through
the same fetcher. :data:`DEFAULT_STYLESHEET` is the default look of a converted
Markdown file: a sans-serif body at print sizes, headings kept with what
follows, ruled tables, code on a tinted ground; a request's extra CSS wins.
"""

from __future__ import annotations

import datetime
import html
import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pypdfium2
from markdown_it import MarkdownIt

from docworker.document import Warning
from docworker.errors import InvalidParameter
from docworker.formats.base import PageSelection
from docworker.formats.text.markdown import parse_front_matter
from docworker.url_policy import UrlPolicy

#: Page sizes CSS names (``size: A4``), as they are written in a request.
NAMED_SIZES = frozenset(
    {"a3", "a4", "a5", "b4", "b5", "jis-b4", "jis-b5", "letter", "legal", "ledger"}
)
_LENGTH = r"\d+(?:\.\d+)?(?:mm|cm|in|pt|pc|px)"
_SIZE = re.compile(rf"({_LENGTH})\s*(?:x|\s)\s*({_LENGTH})", re.I)
_MARGIN = re.compile(rf"0|{_LENGTH}", re.I)
_BODY = re.compile(r"<body\b[^>]*>", re.I)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)
_LOGGER = "weasyprint"


def check_page_size(value: str) -> str:
    """The CSS ``size`` of ``value``: a named size ('A4', 'Letter') or a width and
    height with units ('210mm x 297mm', '8.5in 11in'); :class:`ValueError` otherwise."""
    text = value.strip()
    if text.lower() in NAMED_SIZES:
        return text.upper() if text.lower().startswith(("a", "b")) else text.lower()
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(
            f"'{value}' is not a page size: give a name ({', '.join(sorted(NAMED_SIZES))}) "
            "or a width and height with units, e.g. '210mm x 297mm'"
        )
    return f"{match[1].lower()} {match[2].lower()}"


def check_margin(value: str) -> str:
    """A CSS length with a unit ('2cm', '0.5in', '12mm') or 0; :class:`ValueError` otherwise."""
    text = value.strip().lower()
    if not _MARGIN.fullmatch(text):
        raise ValueError(f"'{value}' is not a length with a unit (mm, cm, in, pt, pc, px)")
    return text


@dataclass(frozen=True)
class PageSetup:
    """How the pages are laid out; None leaves the page's own style (or WeasyPrint's A4)."""

    size: str | None = None
    landscape: bool | None = None
    margin_top: str | None = None
    margin_right: str | None = None
    margin_bottom: str | None = None
    margin_left: str | None = None
    header_html: str | None = None
    footer_html: str | None = None
    css: str | None = None

    def page_css(self) -> str:
        """The ``@page`` rule and template styles this set-up asks for. WeasyPrint applies
        them as a user style sheet, so each is ``!important``: it wins over the page's."""
        rules: list[str] = []
        if self.size or self.landscape is not None:
            size = self.size or "A4"
            if self.landscape is not None:
                size += " landscape" if self.landscape else " portrait"
            rules.append(f"size: {size} !important;")
        for side in ("top", "right", "bottom", "left"):
            value = getattr(self, f"margin_{side}")
            if value is not None:
                rules.append(f"margin-{side}: {value} !important;")
        if self.header_html:
            rules.append("@top-center { content: element(docworkerHeader); width: 100%; }")
        if self.footer_html:
            rules.append("@bottom-center { content: element(docworkerFooter); width: 100%; }")
        css = "@page { " + " ".join(rules) + " }\n" if rules else ""
        if self.header_html or self.footer_html:
            css += _TEMPLATE_CSS
        return css


_TEMPLATE_CSS = """
#docworker-header { position: running(docworkerHeader); }
#docworker-footer { position: running(docworkerFooter); }
#docworker-header .pageNumber::before, #docworker-footer .pageNumber::before {
  content: counter(page); }
#docworker-header .totalPages::before, #docworker-footer .totalPages::before {
  content: counter(pages); }
"""


@dataclass(frozen=True)
class HtmlPdf:
    """What :func:`html_to_pdf` made: the PDF's page count and what was left out."""

    pages: int
    warnings: list[Warning]


def html_to_pdf(
    markup: str,
    base: Path,
    setup: PageSetup,
    policy: UrlPolicy,
    target: Path,
    *,
    pages: PageSelection | None = None,
    pdfa: str | None = None,
) -> HtmlPdf:
    """Lay out ``markup`` as a PDF at ``target``. Relative URLs resolve against the folder
    ``base``, and no local file outside it is read. ``pages`` keeps only those pages (of
    those laid out); ``pdfa`` ('1b', '2b') makes a PDF/A of that level."""
    # WeasyPrint (a second to import, and its fonts' tables) only in the processes that
    # lay pages out: the worker template imports it (docworker.jobs.preload), the API not.
    from weasyprint import CSS, HTML

    from docworker.render.html_fetch import GuardedFetcher

    fetcher = GuardedFetcher(base, policy)
    page = _with_templates(markup, setup)
    if setup.css:
        # Last in the page, so it wins over the page's own rules of the same weight.
        page += "<style>" + setup.css.replace("</", "<\\/") + "</style>"
    extra = setup.page_css()
    stylesheets = [CSS(string=extra, url_fetcher=fetcher)] if extra else []
    options: dict[str, Any] = {"pdf_variant": f"pdf/a-{pdfa}"} if pdfa else {}
    with _quiet_weasyprint():
        document = HTML(string=page, base_url=_base_url(base), url_fetcher=fetcher).render(
            stylesheets=stylesheets
        )
        if pages is not None:
            numbers = pages.pages(len(document.pages))
            if not numbers:
                raise InvalidParameter(
                    "pages",
                    f"the page selection '{pages}' names none of the {len(document.pages)} pages",
                )
            document = document.copy([document.pages[n - 1] for n in numbers])
        with warnings.catch_warnings():
            # WeasyPrint opens its sRGB profile for PDF/A and leaves closing it to the
            # garbage collector; the warning that raises is its own, not ours.
            warnings.simplefilter("ignore", ResourceWarning)
            document.write_pdf(target, **options)
    with pypdfium2.PdfDocument(str(target)) as pdf:
        count = len(pdf)
    return HtmlPdf(pages=count, warnings=_unique(fetcher.warnings))


def _base_url(folder: Path) -> str:
    return folder.resolve().as_uri() + "/"


def _with_templates(markup: str, setup: PageSetup) -> str:
    """``markup`` with the header and footer templates put first in its body."""
    if not setup.header_html and not setup.footer_html:
        return markup
    found = _TITLE.search(markup)
    title = html.unescape(found[1]).strip() if found else ""
    parts = []
    for ident, template in (("header", setup.header_html), ("footer", setup.footer_html)):
        if template:
            filled = _fill(template, title)
            parts.append(f'<div id="docworker-{ident}">{filled}</div>')
    inserted = "".join(parts)
    body = _BODY.search(markup)
    if body is None:
        return inserted + markup
    return markup[: body.end()] + inserted + markup[body.end() :]


def _fill(template: str, title: str) -> str:
    """The ``title`` and ``date`` elements of a template filled in (page numbers are CSS's)."""
    values = {"title": title, "date": datetime.date.today().isoformat()}
    for name, value in values.items():
        pattern = rf'(<(\w+)[^>]*\bclass="[^"]*\b{name}\b[^"]*"[^>]*>)\s*(</\2>)'
        template = re.sub(pattern, rf"\g<1>{_escaped_for_sub(value)}\g<3>", template)
    return template


def _escaped_for_sub(value: str) -> str:
    """``value`` HTML-escaped, and safe as a regular-expression replacement."""
    return html.escape(value).replace("\\", "\\\\")


def _unique(warnings: list[Warning]) -> list[Warning]:
    seen: set[str] = set()
    kept = []
    for warning in warnings:
        if warning.message not in seen:
            seen.add(warning.message)
            kept.append(warning)
    return kept


@contextmanager
def _quiet_weasyprint() -> Iterator[None]:
    """WeasyPrint logs every refused resource and unsupported CSS property as a warning;
    the refusals are in the result already, so its logger is kept to errors meanwhile."""
    logger = logging.getLogger(_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# -- Markdown pages -------------------------------------------------------------------
DEFAULT_STYLESHEET = """
@page { size: A4; margin: 2cm; }
html { font-family: "DejaVu Sans", "Noto Sans", Arial, sans-serif; font-size: 10.5pt;
  line-height: 1.45; color: #1b1b1b; }
body { margin: 0; }
h1, h2, h3, h4, h5, h6 { line-height: 1.2; margin: 1.2em 0 0.5em; break-after: avoid; }
h1 { font-size: 1.9em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
h2 { font-size: 1.5em; }
h3 { font-size: 1.25em; }
h4, h5, h6 { font-size: 1.05em; }
p, ul, ol, blockquote, pre, table { margin: 0 0 0.8em; }
a { color: #0b5cad; text-decoration: none; }
code, pre { font-family: "DejaVu Sans Mono", "Noto Sans Mono", monospace; font-size: 0.9em; }
code { background: #f3f3f3; padding: 0.05em 0.25em; border-radius: 3px; }
pre { background: #f6f6f6; padding: 0.7em 0.9em; border-radius: 4px; white-space: pre-wrap;
  break-inside: avoid; }
pre code { background: none; padding: 0; }
blockquote { border-left: 3px solid #ccc; margin-left: 0; padding-left: 1em; color: #555; }
table { border-collapse: collapse; width: auto; max-width: 100%; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; vertical-align: top; }
th { background: #f0f0f0; }
tr { break-inside: avoid; }
img { max-width: 100%; }
hr { border: 0; border-top: 1px solid #ccc; margin: 1.5em 0; }
"""


def markdown_to_html(text: str, title: str | None = None) -> str:
    """A complete HTML page of the Markdown ``text`` (front matter's ``title`` used when
    ``title`` is not given; the rest of the front matter is left out)."""
    fields, body = parse_front_matter(text)
    chosen = title or _text(fields.get("title")) or ""
    parser = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    rendered = parser.render(body)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(chosen)}</title>"
        f"<style>{DEFAULT_STYLESHEET}</style></head>\n<body>\n{rendered}</body></html>\n"
    )


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        return str(value[0])
    return None
