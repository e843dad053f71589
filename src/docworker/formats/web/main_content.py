"""The main content of a web page: the article a reader came for, without the site around it.

:func:`main_content` chooses the element that holds the article and cuts the
clutter out of it in place; the HTML reader then walks that element as it walks
a whole page, so the article keeps its headings, lists, tables, captions and
links. The choice follows what the page says first, then what its text shows:

1. a ``main`` element (or ``role=main``) holding enough of the page's text;
2. else a single ``article`` (of several, the one holding most of their text,
   or the element holding them all when none does);
3. else the element that gathers most prose, scored as Mozilla's Readability
   scores paragraphs: each paragraph of 25 characters or more counts for its
   length and commas, for its parent in full and its grandparent in half, and an
   element's score shrinks with the share of its text that is link text.

Inside the chosen element, what is not the article goes: navigation,
complementary and search landmarks, forms and buttons, elements whose class or
id names site furniture (sidebar, breadcrumbs, cookie banner, share buttons,
related links, comments, edit links, citation markers and reference lists), and
blocks made mostly of links. Nothing holding half the article's text or more is
cut, so one misleading class name cannot empty the page.

The reader then heads the article with the page's title heading when the chosen
element does not hold it (:func:`page_heading`), and drops the headings whose
sections the cutting left empty (:func:`emptied_headings`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from lxml import etree

from docworker.document import Block, BlockKind

_HEADINGS = frozenset(["h1", "h2", "h3", "h4", "h5", "h6"])
#: Elements whose content is kept whole: code, whose highlighting classes
#: ("hljs-comment") name no furniture, and headings, whose anchors ("header") neither.
_KEPT_WHOLE = _HEADINGS | {"pre", "code"}
#: Elements inside which a ``header`` heads a section, not the page.
_SECTIONING = frozenset(["article", "aside", "main", "nav", "section"])
#: How visible text is measured: what the walk reads (no scripts, styles or hidden parts).
_NOT_READ = frozenset(
    ["script", "style", "noscript", "template", "svg", "math", "head", "iframe", "object"]
)
#: Where pages mark their main content and their articles (by local name, for XHTML).
_MAINS = etree.XPath(".//*[local-name() = 'main' or @role = 'main']")
_ARTICLES = etree.XPath(".//*[local-name() = 'article']")
#: Elements that are never the article.
_FURNITURE_TAGS = frozenset(["nav", "aside", "form", "button", "dialog", "menu", "select"])
#: ARIA roles that are never the article (WAI-ARIA landmark and widget roles).
_FURNITURE_ROLES = frozenset(
    [
        "navigation",
        "complementary",
        "search",
        "banner",
        "contentinfo",
        "menu",
        "menubar",
        "dialog",
        "alertdialog",
        "tooltip",
        "toolbar",
        "tablist",
    ]
)
#: Words in a class or id that name site furniture, as whole words (parts split by
#: ``-``, ``_`` or spaces); after Readability's list of unlikely candidates, with the
#: clutter of wikis and documentation sites.
_FURNITURE_WORDS = re.compile(
    r"(?<![a-z0-9])(?:ad|ads|advert\w*|agegate|ambox|banner|breadcrumbs?|catlinks|comments?|"
    r"consent|cookies?|disqus|editsection|footer|gdpr|header|jump|masthead|menu|"
    r"nav|navbar|navbox|navigation|newsletter|noprint|pager|pagination|popup|printfooter|"
    r"promo|reference|references|refbegin|reflist|related|share|sharing|shoutbox|sidebar|"
    r"skip|social|sponsor\w*|sr-only|subscribe|toc|toolbar|visually-hidden)(?![a-z0-9])"
)
#: Inline elements are named for their look, not their place ("reference internal" on
#: every cross-reference of a Sphinx page): only these words make one furniture.
_INLINE_FURNITURE_WORDS = re.compile(
    r"(?<![a-z0-9])(?:editsection|jump|screen-reader-text|share|sharing|skip|social|sr-only|"
    r"visually-hidden)(?![a-z0-9])"
)
_INLINE = frozenset(
    [
        "a",
        "abbr",
        "b",
        "bdi",
        "cite",
        "code",
        "dfn",
        "em",
        "i",
        "kbd",
        "label",
        "mark",
        "q",
        "s",
        "samp",
        "small",
        "span",
        "strong",
        "sub",
        "time",
        "u",
        "var",
    ]
)
#: Words that name the article; an element named by both keeps its place if it is large.
_ARTICLE_WORDS = re.compile(
    r"(?<![a-z0-9])(?:article|body|content|entry|main|post|story|text)(?![a-z0-9])"
)
#: An element named both ways still goes when it holds less text than this.
_SMALL = 200
#: Elements whose text counts as a paragraph when scoring.
_PARAGRAPHS = frozenset(["p", "pre", "blockquote", "dd"])
#: Elements that count as a paragraph when they hold no blocks, only text (a layout
#: table's cell holding the whole article is no paragraph).
_BLOCK_HOLDERS = frozenset(["div", "td"])
#: Elements that hold blocks, so a ``div`` holding one is not itself a paragraph.
_HOLDS_BLOCKS = frozenset(
    ["p", "div", "pre", "table", "ul", "ol", "dl", "blockquote", "section", "article"]
)
_TAG_WEIGHT = {
    "div": 5,
    "section": 5,
    "article": 8,
    "main": 8,
    "pre": 3,
    "td": 3,
    "blockquote": 3,
    "ol": -3,
    "ul": -3,
    "dl": -3,
    "li": -3,
    "form": -3,
    "th": -5,
}
_WORD = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"\.(?:\s|$)")
#: A paragraph shorter than this says nothing about where the article is.
_MIN_PARAGRAPH = 25
#: The least text a chosen element must hold; below it the whole body is read.
_MIN_ARTICLE = 140
#: A marked ``main`` or ``article`` must hold at least this share of the page's text.
_MIN_MARKED_SHARE = 0.2
#: A list or block whose text is more link than this is a list of links.
_MAX_LINK_DENSITY = 0.5
#: Blocks cut for their link density: lists and generic containers. Never tables, nor
#: paragraphs (a report's endnotes are paragraphs of links).
_LINK_LIST_TAGS = frozenset(["ul", "ol", "dl", "div", "section"])


@dataclass(slots=True)
class _Text:
    """The visible text under one element: all of it, and how much is link text."""

    chars: int = 0
    link_chars: int = 0
    links: int = 0

    @property
    def link_density(self) -> float:
        return self.link_chars / self.chars if self.chars else 0.0


def _tag(element: etree._Element) -> str:
    """The element's lower-case local name; '' for comments and processing instructions."""
    tag = element.tag
    return _local_name(tag) if isinstance(tag, str) else ""


@lru_cache(maxsize=1024)
def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower()


def _all_text(element: etree._Element) -> str:
    """Every piece of text under ``element``, joined as written."""
    return "".join(t for t in element.itertext() if isinstance(t, str))


def _measure(root: etree._Element) -> dict[etree._Element, _Text]:
    """The visible text of every element under ``root``, measured in one walk.

    Every element of the page is visited once, so this is kept lean: it is most of
    what choosing the main content costs.
    """
    sizes: dict[etree._Element, _Text] = {}

    def visit(element: etree._Element, tag: str, in_link: bool) -> _Text:
        size = _Text()
        sizes[element] = size
        if tag in _NOT_READ or element.get("hidden") is not None:
            return size
        link = in_link or tag == "a"
        text = element.text
        chars = len(text.strip()) if text else 0
        link_chars = links = 0
        for child in element:
            child_tag = child.tag
            if isinstance(child_tag, str):
                inner = visit(child, _local_name(child_tag), link)
                chars += inner.chars
                link_chars += inner.link_chars
                links += inner.links
            tail = child.tail
            if tail:
                chars += len(tail.strip())
        size.chars = chars
        # Inside a link, all its text is link text (tails included).
        size.link_chars = chars if link else link_chars
        size.links = links + (tag == "a")
        return size

    visit(root, _tag(root), False)
    return sizes


def _names(element: etree._Element) -> str:
    """The element's class and id, lower-case, as its furniture is named.

    A section's id is most often its heading made a slug ("file-menu-shell-and-editor",
    "editing-and-navigation"): it names the furniture only when it is one such word
    alone ("comments").
    """
    names = (element.get("class") or "").lower()
    ident = (element.get("id") or "").lower()
    if ident and not (_heads_section(element) and not _FURNITURE_WORDS.fullmatch(ident)):
        names = f"{names} {ident}"
    return names


def _heads_section(element: etree._Element) -> bool:
    """A ``section``, or an element that opens with a heading: one whose id is its anchor."""
    if _tag(element) == "section":
        return True
    first = next((c for c in element if isinstance(c.tag, str)), None)
    return first is not None and _tag(first) in _HEADINGS


def _furniture(element: etree._Element, chars: int) -> bool:
    """Whether the element is site furniture by its tag, role or name."""
    tag = _tag(element)
    if tag in _FURNITURE_TAGS or (element.get("role") or "").lower() in _FURNITURE_ROLES:
        return True
    names = _names(element)
    words = _INLINE_FURNITURE_WORDS if tag in _INLINE else _FURNITURE_WORDS
    if not names.strip() or not words.search(names):
        return False
    return not (_ARTICLE_WORDS.search(names) and chars >= _SMALL)


def _largest(elements: list[etree._Element], sizes: dict[etree._Element, _Text]) -> etree._Element:
    return max(elements, key=lambda e: sizes[e].chars)


def _marked(root: etree._Element, sizes: dict[etree._Element, _Text]) -> etree._Element | None:
    """The element the page marks as its main content or its one article, if it holds
    enough of the page's text."""
    total = sizes[root].chars
    enough = max(_MIN_ARTICLE, _MIN_MARKED_SHARE * total)
    mains = _elements(root, _MAINS, sizes)
    if mains:
        main = _largest(mains, sizes)
        if sizes[main].chars >= enough:
            return main
    articles = _elements(root, _ARTICLES, sizes)
    # Articles nested in another article count as part of it.
    articles = [a for a in articles if not any(_tag(p) == "article" for p in a.iterancestors())]
    if not articles:
        return None
    article = _largest(articles, sizes)
    if len(articles) > 1 and sizes[article].chars < 0.5 * sum(sizes[a].chars for a in articles):
        # A listing of several articles: the element holding them all.
        article = _common_ancestor(articles)
    size = sizes.get(article)
    return article if size is not None and size.chars >= enough else None


def _elements(
    root: etree._Element, path: etree.XPath, sizes: dict[etree._Element, _Text]
) -> list[etree._Element]:
    """The elements ``path`` selects that a reader sees (measured: none inside a script,
    a template or a hidden element)."""
    found = path(root)
    return [e for e in found if e in sizes] if isinstance(found, list) else []


def _common_ancestor(elements: list[etree._Element]) -> etree._Element:
    first = [elements[0], *elements[0].iterancestors()]
    for candidate in first:
        if all(candidate is e or candidate in e.iterancestors() for e in elements[1:]):
            return candidate
    return first[-1]


def _scored(root: etree._Element, sizes: dict[etree._Element, _Text]) -> etree._Element | None:
    """The element that gathers most prose, scored as Readability scores it."""
    scores: dict[etree._Element, float] = {}
    # Furniture that holds half the page or more is a wrapper misnamed (or a form
    # around the whole page, as ASP.NET writes them): its paragraphs still count.
    most = 0.5 * sizes[root].chars
    furniture: dict[etree._Element, bool] = {}

    def aside(element: etree._Element) -> bool:
        if element not in furniture:
            chars = sizes[element].chars
            furniture[element] = chars < most and _furniture(element, chars)
        return furniture[element]

    for element in root.iter():
        tag = _tag(element)
        if not (
            tag in _PARAGRAPHS
            or (tag in _BLOCK_HOLDERS and not any(_tag(c) in _HOLDS_BLOCKS for c in element))
        ):
            continue
        size = sizes.get(element)
        if size is None or size.chars < _MIN_PARAGRAPH:
            continue
        ancestors = [a for a in element.iterancestors() if a in sizes]
        if aside(element) or any(aside(a) for a in ancestors):
            continue
        text = _all_text(element)
        points = 1 + text.count(",") + min(size.chars // 100, 3)
        for level, ancestor in enumerate(ancestors[:3]):
            if ancestor not in scores:
                scores[ancestor] = _initial_score(ancestor)
            scores[ancestor] += points / (1 if level == 0 else 2 if level == 1 else 3 * level)
    if not scores:
        return None
    top = max(scores, key=lambda e: scores[e] * (1 - sizes[e].link_density))
    return _with_siblings(top, scores, sizes)


def _with_siblings(
    top: etree._Element, scores: dict[etree._Element, float], sizes: dict[etree._Element, _Text]
) -> etree._Element:
    """``top``'s parent when a sibling of ``top`` belongs to the article too (scores well,
    or is a paragraph of prose, as Readability judges siblings), else ``top``: an
    article's introduction often sits beside the element that gathers its body."""
    parent = top.getparent()
    if parent is None or parent not in sizes:
        return top
    threshold = max(10.0, 0.2 * scores[top])
    for sibling in parent:
        if sibling is not top and (scores.get(sibling, 0.0) >= threshold or _prose(sibling, sizes)):
            return parent
    return top


def _prose(element: etree._Element, sizes: dict[etree._Element, _Text]) -> bool:
    """A paragraph of running text: long with few links, or a short linkless sentence."""
    size = sizes.get(element)
    if _tag(element) != "p" or size is None or not size.chars:
        return False
    if size.chars >= 80:
        return size.link_density < 0.25
    return size.link_chars == 0 and _SENTENCE_END.search(_all_text(element)) is not None


def _initial_score(element: etree._Element) -> float:
    score = float(_TAG_WEIGHT.get(_tag(element), 0))
    names = _names(element)
    if _FURNITURE_WORDS.search(names):
        score -= 25
    if _ARTICLE_WORDS.search(names):
        score += 25
    return score


def _empty(element: etree._Element) -> None:
    """Empty ``element`` of its text, children and attributes, keeping the text that
    follows it and its place: an emptied cell keeps its table's columns, an emptied
    block still ends the line before it. Nothing is re-set, so text the tree holds
    but would refuse to be given back (control characters) cannot fail."""
    tag = _tag(element)
    element.clear(keep_tail=True)  # type: ignore[call-arg]  # lxml has it; its stubs lag
    if tag == "img":
        # An image without a source would still be read as an image.
        element.tag = "span"


def _prune(container: etree._Element, sizes: dict[etree._Element, _Text]) -> frozenset[str]:
    """Cut the furniture and the lists of links out of ``container``; returns the
    :func:`_heading_key` of each heading that had something cut from its section.

    A page that is only a list of links (a table of contents) would be left empty:
    then only the furniture goes, and when even that leaves too little, nothing does.
    """
    total = sizes[container].chars
    for link_lists in (True, False):
        doomed = _clutter(container, sizes, link_lists)
        if total - sum(sizes[e].chars for e in doomed) >= min(_MIN_ARTICLE, total):
            cut_under = _headings_over(container, set(doomed))
            for element in doomed:
                _empty(element)
            return cut_under
    return frozenset()


def _headings_over(container: etree._Element, doomed: set[etree._Element]) -> frozenset[str]:
    """The keys of the headings whose sections hold a doomed element, found in one walk
    in document order (a doomed element's own headings are not looked into)."""
    cut_under: set[str] = set()
    last: str | None = None
    stack = [container]
    while stack:
        element = stack.pop()
        if element in doomed:
            if last is not None:
                cut_under.add(last)
        elif _tag(element) in _HEADINGS:
            last = _heading_key(_all_text(element))
        else:
            stack.extend(reversed([c for c in element if isinstance(c.tag, str)]))
    return frozenset(cut_under)


def _heading_key(text: str) -> str:
    """A heading's words, lower-cased: how a heading block is matched to its element."""
    return " ".join(_WORD.findall(text.lower()))


def _clutter(
    container: etree._Element, sizes: dict[etree._Element, _Text], link_lists: bool
) -> list[etree._Element]:
    """The outermost elements of ``container`` that are furniture (or, with
    ``link_lists``, lists of links), never one holding half its text."""
    keep = 0.5 * sizes[container].chars
    doomed: list[etree._Element] = []
    stack = list(container)
    while stack:
        element = stack.pop()
        size = sizes.get(element)
        if size is None or not isinstance(element.tag, str):
            continue
        if _tag(element) in _KEPT_WHOLE:
            # Only its buttons go ("copy" on a code block).
            doomed.extend(e for e in element.iter() if _tag(e) == "button" and e in sizes)
            continue
        if size.chars < keep and (
            _furniture(element, size.chars) or (link_lists and _link_list(element, size))
        ):
            doomed.append(element)
        else:
            stack.extend(element)
    return doomed


def _link_list(element: etree._Element, size: _Text) -> bool:
    """A list or block made mostly of links, with no heading of its own: a heading over
    links (an API page's list of implementations) says they are content."""
    return (
        _tag(element) in _LINK_LIST_TAGS
        and size.links >= 2
        and size.link_density > _MAX_LINK_DENSITY
        and not any(_tag(e) in _HEADINGS for e in element.iter())
    )


@dataclass(frozen=True)
class MainContent:
    """The element holding a page's article, once cleared of its clutter."""

    element: etree._Element
    #: The :func:`_heading_key` of each heading that had clutter cut from its section:
    #: left empty, such a heading ("See also" over its links) goes too.
    cut_under: frozenset[str]


def main_content(root: etree._Element) -> MainContent:
    """The element of ``root`` (a whole page) that holds its article, cleared of clutter.

    The tree is changed in place. When nothing holds enough text to be an
    article, the page's body is taken, cleared the same way.
    """
    body = root.find("body")
    page = body if body is not None else root
    sizes = _measure(page)
    # Not ``or``: an element without children is false.
    chosen = _marked(page, sizes)
    if chosen is None:
        chosen = _scored(page, sizes)
    if chosen is None or sizes[chosen].chars < _MIN_ARTICLE:
        chosen = page
    return MainContent(chosen, _prune(chosen, sizes))


def page_heading(
    root: etree._Element, container: etree._Element, title: str | None
) -> etree._Element | None:
    """The page's one ``h1`` when it lies outside ``container`` and ``container`` has none:
    the article's title, which pages often set above the element holding its text.

    Not a heading in the site's banner or furniture, nor one that shares no word with
    the page's ``title`` (when it has one): that is the site's name, not the article's.
    """
    if any(_tag(e) == "h1" for e in container.iter()):
        return None
    headings = [e for e in root.iter() if _tag(e) == "h1"]
    if len(headings) != 1:
        return None
    heading = headings[0]
    if any(_furniture(a, 0) or _banner(a) for a in heading.iterancestors()):
        return None
    if title and not _words(title) & _words(_all_text(heading)):
        return None
    return heading


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _banner(element: etree._Element) -> bool:
    """A ``header`` outside any sectioning element: the page's banner (as HTML-AAM maps it)."""
    return _tag(element) == "header" and not any(
        _tag(a) in _SECTIONING for a in element.iterancestors()
    )


def emptied_headings(blocks: list[Block], cut_under: frozenset[str]) -> set[str]:
    """The ids of the headings that cutting the clutter left with nothing under them: a
    heading followed by one of its level or above (or by the end), whose section lost
    something (a "See also" over its links) or all its subsections ("Notes" over
    "Citations" and "Sources"). A heading that had nothing under it on the page stays.
    """
    doomed: set[str] = set()
    #: The level of the kept heading that follows; 0 at the end, None after other blocks.
    following: int | None = 0
    #: Whether a heading was dropped between this block and ``following``.
    lost = False
    for block in reversed(blocks):
        if block.kind is not BlockKind.HEADING:
            following, lost = None, False
            continue
        level = block.level or 1
        empty = following is not None and following <= level
        if empty and (lost or _heading_key(block.text) in cut_under):
            doomed.add(block.id)
            lost = True
        else:
            following, lost = level, False
    return doomed
