"""What a web page says about itself: its ``<meta>`` tags, canonical link and JSON-LD.

:func:`page_metadata` takes the title, language, authors, keywords and description
from the page's head. In ``main`` mode it adds what articles declare for search
engines and link previews (the published and modified dates, the site's name, the
canonical URL, authors and dates from schema.org JSON-LD) and the visible byline, and
:func:`add_excerpt` lets the article's first paragraph stand for a description the
page does not declare.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from lxml import etree

from docworker.document import BlockKind, Document, Metadata
from docworker.formats.base import HtmlContent

#: A JSON-LD script longer than this is not read (metadata is a few kilobytes).
_MAX_JSON_LD = 256 * 1024
#: The longest excerpt taken from an article's first paragraph, in characters.
_MAX_EXCERPT = 300
#: A paragraph shorter than this (a dateline, a byline) is no excerpt.
_MIN_EXCERPT = 40
#: A byline longer than this is a paragraph, not a byline.
_MAX_BYLINE = 100
_BY = re.compile(r"^\s*by\s+", re.IGNORECASE)
_BYLINE_XPATH = etree.XPath(
    "//*[@rel='author' or @itemprop='author' or contains(concat(' ', normalize-space(@class),"
    " ' '), ' byline ') or contains(concat(' ', normalize-space(@class), ' '), ' author ')]"
)


def meta_contents(root: etree._Element) -> dict[str, str]:
    """Each ``<meta name|property=...>``'s lower-case name and its first non-empty content."""
    contents: dict[str, str] = {}
    for meta in root.iter("meta"):
        name = (meta.get("name") or meta.get("property") or meta.get("http-equiv") or "").lower()
        if name not in contents:
            content = " ".join((meta.get("content") or "").split())
            if content:
                contents[name] = content
    return contents


def first(contents: dict[str, str], *names: str) -> str | None:
    """The content of the first of ``names`` that the page has."""
    return next((contents[name] for name in names if name in contents), None)


def _date(value: str | None) -> datetime | None:
    """An ISO 8601 date or date-time as pages write them (or an RFC 2822 one); None when
    it is neither."""
    if not value:
        return None
    text = value.strip()
    for candidate in (text, text[:10]):
        try:
            return datetime.fromisoformat(candidate)
        except ValueError:
            continue
    try:
        # The e-mail form some sites use: "Tue, 14 May 2024 07:30:00 GMT".
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None


def _json_ld(root: etree._Element) -> Iterator[dict[str, Any]]:
    """The schema.org objects of the page's JSON-LD scripts, ``@graph`` members included."""
    for script in root.iter("script"):
        if (script.get("type") or "").lower() != "application/ld+json":
            continue
        text = script.text or ""
        if len(text) > _MAX_JSON_LD:
            continue
        try:
            data = json.loads(text)
        except ValueError:
            continue
        items = data if isinstance(data, list) else [data]
        for item in items:
            if isinstance(item, dict):
                graph = item.get("@graph")
                if isinstance(graph, list):
                    yield from (node for node in graph if isinstance(node, dict))
                yield item


def _names(value: Any) -> list[str]:
    """The names of a JSON-LD ``author`` or ``publisher``: a string, an object or a list."""
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, dict):
        return _names(value.get("name"))
    if isinstance(value, list):
        return [name for item in value for name in _names(item)]
    return []


def page_metadata(root: etree._Element, title: str, content: HtmlContent = "full") -> Metadata:
    """Title, language, authors, keywords and description from the page's head (``title``
    is its ``<title>``'s text).

    In ``main`` mode also what the page declares about its article (dates, site name,
    canonical URL, JSON-LD authors) and, when neither names an author, the visible
    byline. ``full`` keeps to the head's usual tags, so that its output stays what it
    has been.
    """
    metas = meta_contents(root)
    author = first(metas, "author", "dc.creator", "article:author")
    keywords = first(metas, "keywords") or ""
    metadata = Metadata(
        title=title or first(metas, "og:title", "dc.title"),
        language=root.get("lang") or root.get("{http://www.w3.org/XML/1998/namespace}lang"),
        authors=[author] if author else [],
        keywords=list(dict.fromkeys(k.strip() for k in keywords.split(",") if k.strip())),
        producer=first(metas, "generator"),
    )
    description = first(metas, "description", "og:description", "dc.description")
    if description:
        metadata.extra["description"] = description
    if content == "main":
        add_article_metadata(root, metadata, metas)
        shown = byline(root) if not metadata.authors else None
        if shown:
            metadata.authors = [shown]
    return metadata


def add_article_metadata(root: etree._Element, metadata: Metadata, metas: dict[str, str]) -> None:
    """Fill in what the page declares about the article: dates, site, canonical URL, and
    the authors and language when the usual tags left them out."""
    published = first(
        metas, "article:published_time", "datepublished", "dc.date", "dcterms.created", "date"
    )
    modified = first(metas, "article:modified_time", "og:updated_time", "dcterms.modified")
    site_name = first(metas, "og:site_name", "application-name")
    authors: list[str] = []
    for item in _json_ld(root):
        published = published or _text(item.get("datePublished"))
        modified = modified or _text(item.get("dateModified"))
        authors = authors or _names(item.get("author"))
        publisher = _names(item.get("publisher"))
        site_name = site_name or (publisher[0] if publisher else None)
    metadata.created = metadata.created or _date(published)
    metadata.modified = metadata.modified or _date(modified)
    if not metadata.authors:
        metadata.authors = list(dict.fromkeys(authors))
    if not metadata.language:
        language = first(metas, "content-language", "dc.language", "og:locale")
        # og:locale writes "en_GB"; a language tag is "en-GB".
        metadata.language = language.replace("_", "-") if language else None
    if site_name:
        metadata.extra["site_name"] = site_name
    canonical = _canonical(root) or first(metas, "og:url")
    if canonical:
        metadata.extra["canonical_url"] = canonical


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _canonical(root: etree._Element) -> str | None:
    for link in root.iter("link"):
        if "canonical" in (link.get("rel") or "").lower().split():
            href = (link.get("href") or "").strip()
            if href:
                return href
    return None


def byline(root: etree._Element) -> str | None:
    """The author's name as the page shows it (``rel=author``, ``itemprop=author``, a
    ``byline`` or ``author`` class), without a leading "By"; None when there is none."""
    found = _BYLINE_XPATH(root)
    for element in found if isinstance(found, list) else []:
        if not isinstance(element, etree._Element):
            continue
        words = " ".join(t for t in element.itertext() if isinstance(t, str)).split()
        text = _BY.sub("", " ".join(words))
        if text and len(text) <= _MAX_BYLINE:
            return text
    return None


def add_excerpt(document: Document) -> None:
    """When the page declares no description, the article's first paragraph (of 40
    characters or more, cut at the last word that fits in 300) stands for it in
    ``extra.description``, as Readability's excerpt does."""
    extra = document.metadata.extra
    if "description" in extra:
        return
    for block in document.blocks:
        if block.kind is BlockKind.PARAGRAPH and len(block.text) >= _MIN_EXCERPT:
            text = " ".join(block.text.split())
            if len(text) > _MAX_EXCERPT:
                text = text[:_MAX_EXCERPT].rsplit(" ", 1)[0] + "…"
            extra["description"] = text
            return
