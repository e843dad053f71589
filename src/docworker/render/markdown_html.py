"""Markdown → a standalone HTML page with a clean print style sheet, to be laid out as PDF.

CommonMark with pipe tables and strikethrough, read by markdown-it-py (the
parser the Markdown reader uses); raw HTML in the Markdown is kept, as a
Markdown author expects, and its resources go through the same guarded fetcher
as any page's. The style sheet is the default look of a converted Markdown file:
a serif-free body at print sizes, headings kept with what follows, tables with
rules, code on a tinted ground; a request's extra CSS comes after it and wins.
"""

from __future__ import annotations

import html

from markdown_it import MarkdownIt

from docworker.formats.text.markdown import parse_front_matter

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
