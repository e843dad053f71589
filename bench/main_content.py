"""Main content of web pages: ``content=main`` beside ``full``, trafilatura and Readability.

``python -m bench.main_content`` reads the saved real pages of
``tests/fixtures/web`` (documentation sites: Node.js, npm, Valgrind, libxslt,
libffi, Python's Sphinx docs, the Rust book and rustdoc), one written news article,
and the corpus' Wikipedia page and think-tank report (``with-scripts.html``, a
Drupal site), and scores each method's Markdown against the page's article with
:mod:`bench.scoring`'s token-F1, giving precision (how little clutter came along)
and recall (how much of the article stayed) too.

The article of each page is the text of the element(s) its site puts the article
in, chosen by hand on inspection (:func:`articles`): a fixed truth, never used by the
reader itself. Wikipedia's is given twice: with the reference list (as a reader
scrolling down sees it) and without (as ``main`` means to read it, citations being
reference-list clutter).

trafilatura and readability-lxml are measured when installed (they are not
dependencies of the service); ``--no-peers`` skips them.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from bench.scoring import corpus_root, normalise_truth, repo_root, token_f1, tokens
from docworker.formats.base import HtmlContent, ParseContext, Source
from docworker.formats.web.html import HtmlParser, decode_html, flat_text, parse_page
from docworker.render.document import render_markdown

#: Where each page keeps its article: XPaths of the elements holding it, and of the
#: elements inside them that are not part of it.
_WIKI = ["//h1[@id='firstHeading']", "//div[@id='mw-content-text']"]
_WIKI_CHROME = ["//*[contains(@class,'mw-editsection')]", "//*[contains(@class,'navbox')]"]
_WIKI_REFERENCES = [
    "//*[contains(@class,'reflist')]",
    "//ol[contains(@class,'references')]",
    "//sup[contains(@class,'reference')]",
    "//*[contains(@class,'refbegin')]",
]


@dataclass(frozen=True)
class Article:
    """A page and where its article is."""

    name: str
    path: Path
    inside: tuple[str, ...]
    without: tuple[str, ...] = ()


def articles() -> list[Article]:
    fixtures = repo_root() / "tests" / "fixtures" / "web"
    wiki = corpus_root() / "web" / "wiki-duck.html"

    def page(name: str, inside: list[str], without: list[str] | None = None) -> Article:
        return Article(name, fixtures / f"{name}.html", tuple(inside), tuple(without or []))

    return [
        page("node-punycode", ["//*[@id='apicontent']"]),
        page("npm-ci", ["//section[@id='content']/header/h1", "//div[@id='_content']"]),
        page("valgrind-quick-start", ["//div[@class='article']"]),
        page("libxslt-python", ["(//td[.//text()[contains(., 'There is a number of')]])[last()]"]),
        page("libffi-simple-example", ["//div[@id='Simple-Example']"], ["//div[@class='header']"]),
        page("rust-book-comments", ["//main"]),
        page("rustdoc-keyword-match", ["//section[@id='main-content']"]),
        page("python-idle", ["//div[@role='main']"]),
        page("news-article", ["//div[@id='story']"], ["//div[@class='share-tools']"]),
        Article(
            "isw-report (corpus with-scripts)",
            corpus_root() / "web" / "with-scripts.html",
            ("//h1[@id='page-title']", "//div[contains(@class, 'field-name-body')]"),
        ),
        Article("wiki-duck (with references)", wiki, tuple(_WIKI), tuple(_WIKI_CHROME)),
        Article(
            "wiki-duck (without references)",
            wiki,
            tuple(_WIKI),
            tuple(_WIKI_CHROME + _WIKI_REFERENCES),
        ),
    ]


def article_text(article: Article) -> str:
    """The visible text of the page's article, as the HTML reader sees text."""
    text, _ = decode_html(article.path.read_bytes())
    root = parse_page(text)
    assert root is not None
    for path in article.without:
        for element in root.xpath(path):
            _remove(element)
    return "\n".join(flat_text(e) for path in article.inside for e in root.xpath(path))


def _remove(element: etree._Element) -> None:
    """Take ``element`` out of its tree, keeping the text that follows it."""
    parent = element.getparent()
    previous = element.getprevious()
    if element.tail:
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


#: A method: a page's file → its text and the scoring kind of that text.
Method = Callable[[Path], tuple[str, str]]


def docworker(content: HtmlContent) -> Method:
    def extract(path: Path) -> tuple[str, str]:
        source = Source(path=path, mime="text/html")
        return render_markdown(HtmlParser().parse(source, ParseContext(html_content=content))), "md"

    return extract


def trafilatura_markdown(path: Path) -> tuple[str, str]:
    import trafilatura

    text = trafilatura.extract(
        path.read_bytes(), output_format="markdown", include_tables=True, include_links=True
    )
    return text or "", "md"


def readability_html(path: Path) -> tuple[str, str]:
    from readability import Document

    document = Document(path.read_bytes())
    return f"<h1>{document.title()}</h1>{document.summary()}", "html"


def methods(peers: bool) -> dict[str, Method]:
    chosen: dict[str, Method] = {"full": docworker("full"), "main": docworker("main")}
    if peers:
        try:
            import readability  # noqa: F401
            import trafilatura  # noqa: F401
        except ImportError:
            print("trafilatura or readability-lxml not installed: measured without them")
        else:
            chosen["trafilatura"] = trafilatura_markdown
            chosen["readability-lxml"] = readability_html
    return chosen


@dataclass(frozen=True)
class Score:
    f1: float
    precision: float
    recall: float
    seconds: float


def measure(method: Method, article: Article) -> Score:
    truth = tokens(normalise_truth(article_text(article), "txt"))
    start = time.perf_counter()
    text, kind = method(article.path)
    seconds = time.perf_counter() - start
    found = tokens(normalise_truth(text, kind))
    common = sum((found & truth).values())
    precision = common / max(sum(found.values()), 1)
    recall = common / max(sum(truth.values()), 1)
    return Score(token_f1(found, truth), precision, recall, seconds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.main_content", description=__doc__)
    parser.add_argument("--no-peers", action="store_true", help="skip trafilatura and Readability")
    args = parser.parse_args(argv)
    chosen = methods(peers=not args.no_peers)
    pages = articles()
    scores = {a.name: [measure(m, a) for m in chosen.values()] for a in pages}
    print("token-F1 against each page's article (precision / recall)\n")
    print("| page | " + " | ".join(chosen) + " |")
    print("|---|" + "---|" * len(chosen))
    for name, row in scores.items():
        cells = " | ".join(f"{s.f1:.3f} ({s.precision:.2f} / {s.recall:.2f})" for s in row)
        print(f"| {name} | {cells} |")
    columns = range(len(chosen))
    means = " | ".join(f"{statistics.mean(r[i].f1 for r in scores.values()):.3f}" for i in columns)
    print(f"| mean | {means} |")
    timing = " | ".join(f"{sum(r[i].seconds for r in scores.values()):.2f}" for i in columns)
    print(f"| seconds, all pages | {timing} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
