"""Renderings of a :class:`~docworker.document.Document`: plain text, Markdown, HTML, JSON.

Every renderer takes the whole document (for its metadata and table helpers) and,
optionally, the blocks to render, so that one page or any other selection renders
the same way as the whole. What each keeps:

- **text**: every block, including page headers and footers and image alt texts;
  list items one per line, tables as tab-separated rows, pages separated by a
  form feed as ``pdftotext`` does.
- **Markdown**: the reading content as CommonMark with GitHub tables. Page headers
  and footers are left out (they repeat on every page and interrupt the prose;
  the text and HTML outputs keep them). Only the line starts that would turn a
  paragraph into a heading, list, quote or fence are escaped, so the text stays
  as written. A note whose mark the text shows (``[1]`` linked to ``#note-1``, as the
  Word reader gives it) is a footnote definition, ``[^1]: …``, and its mark a reference,
  ``[^1]``. Any other footnote is a paragraph marked ``[^n]``: a definition that nothing
  references is dropped by most Markdown renderers. The text and HTML show the note
  after its mark, ``[1] …``.
- **HTML**: a complete HTML5 document, everything escaped, each block carrying its
  id and page; headers and footers kept as ``<header>``/``<footer>``.
- **JSON**: the model itself (:func:`render_json`), which validates back into an
  equal :class:`Document`.
"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlsplit

from docworker.document import (
    DEFER_ROW_CELLS,
    Block,
    BlockKind,
    Document,
    Link,
    RowCells,
    Table,
)


class OutputFormat(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    JSON = "json"
    HTML = "html"


def render(
    doc: Document, output: OutputFormat, blocks: Sequence[Block] | None = None
) -> str | dict[str, Any]:
    """``doc`` (or only ``blocks`` of it) in ``output``; JSON is a dict, the others text."""
    if output is OutputFormat.JSON:
        chosen = doc if blocks is None else doc.model_copy(update={"blocks": list(blocks)})
        return render_json(chosen)
    renderer = {
        OutputFormat.TEXT: render_text,
        OutputFormat.MARKDOWN: render_markdown,
        OutputFormat.HTML: render_html,
    }[output]
    return renderer(doc, blocks)


def render_json(doc: Document) -> dict[str, Any]:
    """The document model as JSON values; ``Document.model_validate`` gives ``doc`` back.

    The cells of the tables held as rows are dumped here, once, rather than by pydantic,
    which would copy them again in JSON mode.
    """
    dumped = doc.model_dump(mode="json", exclude_none=True, context={DEFER_ROW_CELLS: True})
    for block, data in zip(doc.blocks, dumped["blocks"], strict=True):
        if block.table is not None and isinstance(block.table.cells, RowCells):
            data["table"]["cells"] = block.table.cells.dumped()
    return dumped


def page_blocks(doc: Document) -> dict[int | None, list[Block]]:
    """The blocks of each page in reading order, pages in ascending order.

    Every page of ``doc.pages`` has an entry, even one without blocks; blocks with
    no page come last under ``None``. Page breaks are separators, not content, and
    are left out.
    """
    numbers = {page.number for page in doc.pages}
    numbers.update(b.page for b in doc.blocks if b.page is not None)
    groups: dict[int | None, list[Block]] = {n: [] for n in sorted(numbers)}
    for block in doc.blocks:
        if block.kind is not BlockKind.PAGE_BREAK:
            groups.setdefault(block.page, []).append(block)
    return groups


# -- shared structure --------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    """A list item placed in its list: depth (1 = top) and number among ordered siblings.

    A code block inside a list item is an item too, with no number, at the depth of the
    item it belongs to; ``restarted`` says a new list of the same kind began at its
    depth right after another (Markdown must then change the list's delimiter)."""

    block: Block
    depth: int
    number: int | None
    restarted: bool = False


def _nested_code(block: Block) -> bool:
    """A code block that belongs to the list item before it (its level is the item's)."""
    return block.kind is BlockKind.CODE and block.level is not None


def _groups(blocks: Iterable[Block]) -> Iterator[list[Block]]:
    """Blocks one by one, except that a run of consecutive list items comes as one list,
    with the code blocks nested in its items."""
    run: list[Block] = []
    for block in blocks:
        if block.kind is BlockKind.LIST_ITEM or (run and _nested_code(block)):
            run.append(block)
            continue
        if run:
            yield run
            run = []
        yield [block]
    if run:
        yield run


def _list_items(run: list[Block]) -> list[_Item]:
    """Depths and numbers for a run of list items.

    A depth is never more than one deeper than the item before (a list cannot skip
    a level), and numbering restarts whenever a list of that depth starts again or
    switches between bulleted and numbered, or an item carries the number its list
    starts at.
    """
    counters: list[tuple[bool, int]] = []  # per open depth: (ordered, items so far)
    items: list[_Item] = []
    for block in run:
        if block.kind is not BlockKind.LIST_ITEM:  # a code block under an open item
            depth = max(1, min(block.level or 1, len(counters)))
            items.append(_Item(block, depth, None))
            continue
        depth = max(1, min(block.level or 1, len(counters) + 1))
        del counters[depth:]
        ordered = bool(block.ordered)
        sibling = len(counters) == depth and counters[-1][0] == ordered
        same_list = sibling and block.start is None
        if same_list:
            count = counters[-1][1] + 1
        else:
            count = block.start if ordered and block.start is not None else 1
        counters[depth - 1 :] = [(ordered, count)]
        items.append(_Item(block, depth, count if ordered else None, sibling and not same_list))
    return items


_SAFE_SCHEMES = frozenset({"", "http", "https", "mailto", "ftp", "tel"})


#: A URL's scheme as ``urlsplit`` finds it: letters, digits, "+-." before the first colon.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_URL_IGNORED = str.maketrans("", "", "\t\r\n")
_C0_AND_SPACE = "".join(map(chr, range(0x21)))


def _safe_url(url: str) -> str | None:
    """The URL if following it cannot run script (no ``javascript:``, ``data:`` …)."""
    url = url.strip()
    if "[" in url or "]" in url:
        # Only a bracketed (IPv6) host can make a URL unparsable: urlsplit tells.
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError:
            return None
    else:
        # The same scheme as urlsplit's, without parsing the rest (a page has thousands);
        # like urlsplit (and browsers), tabs and line breaks inside it do not count.
        # Leading C0 controls are dropped as well.
        candidate = url.lstrip(_C0_AND_SPACE)
        if "\t" in candidate or "\n" in candidate or "\r" in candidate:
            candidate = candidate.translate(_URL_IGNORED)
        found = _SCHEME.match(candidate)
        scheme = found.group(1).lower() if found else ""
    return url if url and scheme in _SAFE_SCHEMES else None


def _link_segments(text: str, links: Sequence[Link]) -> list[tuple[str, str | None]]:
    """``text`` cut into (piece, URL or None), each link at the first free match of its text.

    A match never starts or ends inside a word, so that a link on "1" does not
    split "100"; a link whose text is not found stays out.
    """
    spans: list[tuple[int, int, str]] = []
    for link in links:
        url = _safe_url(link.url)
        if not link.text.strip() or url is None:
            continue
        for start, end in _whole_word_matches(text, link.text):
            if not any(s < end and start < e for s, e, _ in spans):
                spans.append((start, end, url))
                break
    pieces: list[tuple[str, str | None]] = []
    position = 0
    for start, end, url in sorted(spans):
        if start > position:
            pieces.append((text[position:start], None))
        pieces.append((text[start:end], url))
        position = end
    if position < len(text) or not pieces:
        pieces.append((text[position:], None))
    return pieces


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def _whole_word_matches(text: str, needle: str) -> Iterator[tuple[int, int]]:
    """Spans of ``needle`` in ``text`` that neither start nor end inside a word.

    Plain ``str.find`` rather than a regex per link: a long page has thousands of links.
    """
    guard_start, guard_end = _is_word_char(needle[0]), _is_word_char(needle[-1])
    start = text.find(needle)
    while start != -1:
        end = start + len(needle)
        clear_before = not (guard_start and start > 0 and _is_word_char(text[start - 1]))
        clear_after = not (guard_end and end < len(text) and _is_word_char(text[end]))
        if clear_before and clear_after:
            yield start, end
        start = text.find(needle, start + 1)


def _selected(doc: Document, blocks: Sequence[Block] | None) -> Sequence[Block]:
    return doc.blocks if blocks is None else blocks


# -- text --------------------------------------------------------------------------------


def render_text(doc: Document, blocks: Sequence[Block] | None = None) -> str:
    """Plain text: blocks apart by a blank line, pages apart by a form feed."""
    pages: list[list[str]] = [[]]
    last_page: int | None = None
    for group in _groups(_selected(doc, blocks)):
        first = group[0]
        new_page = first.page is not None and last_page is not None and first.page != last_page
        if first.kind is BlockKind.PAGE_BREAK or new_page:
            if pages[-1]:
                pages.append([])
            if first.kind is BlockKind.PAGE_BREAK:
                continue
        last_page = group[-1].page if group[-1].page is not None else last_page
        chunk = _text_list(group) if first.kind is BlockKind.LIST_ITEM else _text_block(first)
        if chunk.strip():
            pages[-1].append(chunk)
    texts = ["\n\n".join(chunks) for chunks in pages if chunks]
    return "\n\f".join(texts) + "\n" if texts else ""


def _text_block(block: Block) -> str:
    if block.kind is BlockKind.CODE:
        return block.text.strip("\n")
    if block.label:  # a note after the mark the text shows where it refers to it
        return f"[{block.label}] {block.text.strip()}"
    if block.table is not None:  # one line a row: a cell's own line breaks become spaces
        return "\n".join(map(_text_row, block.table.iter_grid()))
    return block.text.strip()


def _text_row(row: list[str]) -> str:
    """A table row as one line of tab-separated cells, each cell's whitespace made single
    spaces between its words."""
    line = _plain_row(row)
    if line is not None:  # most rows of a large table: their cells as they are
        return line
    return "\t".join(" ".join(text.split()) for text in row)


def _plain_row(row: list[str]) -> str | None:
    """The cells joined by tabs when none has whitespace other than single spaces between
    words (nor a ``|`` or ``<``, which Markdown escapes), else None.

    Plain string tests, not a regular expression: they cost a quarter of one per row.
    """
    line = "\t".join(row)
    plain = (
        # Every whitespace character but the space is unprintable (so is a tab in a cell).
        "".join(row).isprintable()
        and "  " not in line
        and " \t" not in line
        and "\t " not in line
        and line[:1] != " "
        and line[-1:] != " "
        and "|" not in line
        and "<" not in line
    )
    return line if plain else None


def _text_list(run: list[Block]) -> str:
    lines = []
    for item in _list_items(run):
        marker = f"{item.number}. " if item.number is not None else "- "
        indent = "  " * (item.depth - 1)
        if item.block.kind is BlockKind.CODE:  # under its item's text, as written
            inner = indent + "  "
            lines.append(
                "\n".join((inner + line).rstrip() for line in _text_block(item.block).split("\n"))
            )
            continue
        body = item.block.text.strip().replace("\n", "\n" + indent + " " * len(marker))
        lines.append(indent + marker + body)
    return "\n".join(lines)


# -- Markdown ----------------------------------------------------------------------------

#: Line starts that would make a paragraph line into another construct.
_MD_BLOCK_START = re.compile(
    r"(?:#{1,6}(?=\s|$)|>|[-+*](?=\s|$)|([-*_])(?:\s*\1){2,}\s*$|(?:=+|-+)\s*$|```|~~~)"
)
_MD_ORDERED_START = re.compile(r"(\d{1,9})([.)])(?=\s|$)")
_MD_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
#: A note label a footnote reference can carry (``[^1]``, ``[^iv]``).
_MD_NOTE_LABEL = re.compile(r"[\w-]{1,32}")
_MD_OMITTED = frozenset({BlockKind.HEADER, BlockKind.FOOTER, BlockKind.PAGE_BREAK})


def render_markdown(doc: Document, blocks: Sequence[Block] | None = None) -> str:
    """CommonMark with GitHub pipe tables; see the module docstring for what is kept."""
    chunks: list[str] = []
    selected = list(_selected(doc, blocks))
    labels = {block.label for block in selected if block.label}
    # Notes without a mark in the text are numbered apart from the marked ones.
    footnotes = (n for n in itertools.count(1) if str(n) not in labels)
    for group in _groups(selected):
        block = group[0]
        if block.kind in _MD_OMITTED:
            continue
        if block.kind is BlockKind.LIST_ITEM:
            chunk = _md_list(group)
        elif block.kind is BlockKind.FOOTNOTE and _MD_NOTE_LABEL.fullmatch(block.label or ""):
            # A definition: its mark in the text refers to it (later lines indented in it).
            chunk = _md_continued(f"[^{block.label}]: ", _md_inline(block), "    ")
        elif block.kind is BlockKind.FOOTNOTE:
            chunk = f"[^{next(footnotes)}] {_md_inline(block)}"
        else:
            chunk = _MD_BLOCKS.get(block.kind, _md_inline)(block)
        if chunk.strip():
            chunks.append(chunk)
    return "\n\n".join(chunks) + "\n" if chunks else ""


def _md_escape_line(line: str) -> str:
    """A paragraph line that reads as text, whatever it starts with."""
    line = line.lstrip()  # four leading spaces would make a code block
    if _MD_BLOCK_START.match(line):
        return "\\" + line
    return _MD_ORDERED_START.sub(r"\1\\\2", line, count=1)


def _md_inline(block: Block) -> str:
    """The block's text with its links, its line starts escaped; a note's mark ``[1]``
    linked to ``#note-1`` is a footnote reference, ``[^1]``."""
    parts = []
    for piece, url in _link_segments(block.text.strip(), block.links):
        text = _MD_TAG_START.sub(r"\\<", piece)
        label = url[len("#note-") :] if url and url.startswith("#note-") else ""
        if _MD_NOTE_LABEL.fullmatch(label) and text == f"[{label}]":
            parts.append(f"[^{label}]")
        else:
            parts.append(text if url is None else f"[{_md_bracketed(text)}]({_md_url(url)})")
    return "\n".join(_md_escape_line(line) for line in "".join(parts).split("\n"))


def _md_bracketed(text: str) -> str:
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def _md_url(url: str) -> str:
    if re.search(r"[\s()<>]", url):
        return "<" + url.replace("<", "%3C").replace(">", "%3E") + ">"
    return url


def _md_continued(first_prefix: str, text: str, indent: str) -> str:
    """``text`` after a marker, later lines indented to stay inside the marker's block."""
    return first_prefix + text.replace("\n", "\n" + indent)


def _md_heading(block: Block) -> str:
    level = 1 if block.kind is BlockKind.TITLE else min(max(block.level or 1, 1), 6)
    text = " ".join(_md_inline(block).split())
    if text.endswith("#"):  # a closing run of #s would be dropped as decoration
        text = text[:-1] + "\\#"
    return "#" * level + " " + text if text else ""


def _md_list(run: list[Block]) -> str:
    lines = []
    content_columns: list[int] = []  # where the text of each open depth's item starts
    delimiters: list[str] = []  # each open depth's marker: "." or ")", "-" or "*"
    for item in _list_items(run):
        if item.block.kind is BlockKind.CODE:  # fenced, indented under its item's text
            column = " " * content_columns[item.depth - 1] if content_columns else ""
            code = _md_code(item.block).split("\n")
            lines.append("\n".join((column + line).rstrip() for line in code))
            continue
        del content_columns[item.depth - 1 :]
        indent = content_columns[-1] if content_columns else 0
        pair = ".)" if item.number is not None else "-*"
        previous = delimiters[item.depth - 1] if len(delimiters) >= item.depth else ""
        delimiter = pair[0]
        if previous and previous in pair:  # the same list goes on, or a new one of its kind
            # CommonMark starts a new list of the same kind only where the delimiter changes.
            delimiter = pair.replace(previous, "") if item.restarted else previous
        del delimiters[item.depth - 1 :]
        delimiters.append(delimiter)
        marker = f"{item.number}{delimiter} " if item.number is not None else f"{delimiter} "
        content_columns.append(indent + len(marker))
        text = _md_inline(item.block)
        lines.append(_md_continued(" " * indent + marker, text, " " * content_columns[-1]))
    return "\n".join(lines)


def _md_table(block: Block) -> str:
    table = block.table
    if table is None or table.n_rows == 0 or table.n_cols == 0:
        return ""
    lines = list(map(_md_row, table.iter_grid()))
    lines.insert(1, "|" + "|".join(" --- " for _ in range(table.n_cols)) + "|")
    return "\n".join(lines)


def _md_row(row: list[str]) -> str:
    line = _plain_row(row)
    if line is not None:  # most rows of a large table: their cells as they are
        return "| " + line.replace("\t", " | ") + " |"
    return "| " + " | ".join(map(_md_cell, row)) + " |"


def _md_cell(text: str) -> str:
    text = _MD_TAG_START.sub(r"\\<", text.strip().replace("|", "\\|"))
    return " ".join(text.split())


def _md_code(block: Block) -> str:
    longest = max((len(run) for run in re.findall(r"`+", block.text)), default=0)
    fence = "`" * max(3, longest + 1)
    language = re.sub(r"[^\w+#.-]", "", block.language or "")
    return f"{fence}{language}\n{block.text.strip(chr(10))}\n{fence}"


def _md_image(block: Block) -> str:
    urls = [url for link in block.links if (url := _safe_url(link.url)) is not None]
    alt = " ".join(block.text.split())
    return f"![{_md_bracketed(alt)}]({_md_url(urls[0]) if urls else 'image'})"


def _md_caption(block: Block) -> str:
    text = " ".join(_md_inline(block).split()).replace("*", "\\*")
    return f"*{text}*" if text else ""


def _md_quote(block: Block) -> str:
    return "\n".join(("> " + line).rstrip() for line in _md_inline(block).split("\n"))


def _md_formula(block: Block) -> str:
    text = block.text.strip()
    return f"$${text}$$" if text else ""


_MD_BLOCKS: dict[BlockKind, Callable[[Block], str]] = {
    BlockKind.TITLE: _md_heading,
    BlockKind.HEADING: _md_heading,
    BlockKind.PARAGRAPH: _md_inline,
    BlockKind.TABLE: _md_table,
    BlockKind.IMAGE: _md_image,
    BlockKind.CODE: _md_code,
    BlockKind.FORMULA: _md_formula,
    BlockKind.CAPTION: _md_caption,
    BlockKind.QUOTE: _md_quote,
}


# -- HTML --------------------------------------------------------------------------------


def render_html(doc: Document, blocks: Sequence[Block] | None = None) -> str:
    """A complete HTML5 document: title and language from the metadata, blocks in order."""
    chosen = _selected(doc, blocks)
    groups = list(_groups(chosen))
    body: list[str] = []
    i = 0
    while i < len(groups):
        group, following = groups[i], groups[i + 1][0] if i + 1 < len(groups) else None
        block = group[0]
        if block.kind is BlockKind.LIST_ITEM:
            body.append(_html_list(group))
        elif block.kind is BlockKind.IMAGE and following and following.kind is BlockKind.CAPTION:
            body.append(_html_figure(block, following))
            i += 1
        elif block.kind is BlockKind.CAPTION and following and following.kind is BlockKind.TABLE:
            body.append(_html_table(following, caption=block))
            i += 1
        else:
            body.append(_html_block(block))
        i += 1
    return _html_page(doc, chosen, body)


def _html_page(doc: Document, chosen: Sequence[Block], body: list[str]) -> str:
    meta = doc.metadata
    heading = next((b.text for b in chosen if b.kind in {BlockKind.TITLE, BlockKind.HEADING}), "")
    title = " ".join((meta.title or heading or "Document").split())
    lang = meta.language if meta.language and re.fullmatch(r"[A-Za-z0-9-]+", meta.language) else ""
    head = ['<meta charset="utf-8">', f"<title>{_esc(title)}</title>"]
    if meta.authors:
        head.append(f'<meta name="author" content="{_esc(", ".join(meta.authors))}">')
    if meta.keywords:
        head.append(f'<meta name="keywords" content="{_esc(", ".join(meta.keywords))}">')
    lang_attr = f' lang="{lang}"' if lang else ""
    return "\n".join(
        ["<!DOCTYPE html>", f"<html{lang_attr}>", "<head>", *head, "</head>", "<body>"]
        + [part for part in body if part]
        + ["</body>", "</html>", ""]
    )


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _html_url(url: str) -> str:
    """A URL as an attribute value; whitespace, which no valid URL holds, percent-encoded."""
    return _esc(re.sub(r"\s", lambda m: quote(m.group()), url))


def _attrs(block: Block, css_class: str | None = None) -> str:
    """The id, class and page of a block as HTML attributes."""
    attrs = f' id="{_esc(block.id)}"' if re.fullmatch(r"[^\s]+", block.id) else ""
    if css_class:
        attrs += f' class="{css_class}"'
    if block.page is not None:
        attrs += f' data-page="{block.page}"'
    return attrs


def _html_inline(block: Block) -> str:
    """The block's text escaped, its links as anchors, its line breaks as ``<br>``."""
    parts = []
    for piece, url in _link_segments(block.text.strip(), block.links):
        text = _esc(piece)
        parts.append(text if url is None else f'<a href="{_html_url(url)}">{text}</a>')
    return "<br>\n".join("".join(parts).split("\n"))


def _html_block(block: Block) -> str:
    kind = block.kind
    if kind in {BlockKind.TITLE, BlockKind.HEADING}:
        level = 1 if kind is BlockKind.TITLE else min(max(block.level or 1, 1), 6)
        return f"<h{level}{_attrs(block)}>{_html_inline(block)}</h{level}>"
    if kind is BlockKind.TABLE:
        return _html_table(block)
    if kind is BlockKind.IMAGE:
        return _html_figure(block, None)
    if kind is BlockKind.CODE:
        language = re.sub(r"[^\w+#.-]", "", block.language or "")
        css = f' class="language-{language}"' if language else ""
        return f"<pre{_attrs(block)}><code{css}>{_esc(block.text.strip(chr(10)))}</code></pre>"
    if kind is BlockKind.PAGE_BREAK:
        return f"<hr{_attrs(block, 'page-break')}>"
    tag, css_class = _HTML_CONTAINERS.get(kind, ("p", None))
    inner = _html_inline(block)
    if kind is BlockKind.FORMULA:
        inner = f"$${_esc(block.text.strip())}$$"
    elif kind is BlockKind.CAPTION:
        inner = f"<em>{inner}</em>"
    elif block.label:  # a note, after its mark, the target of the text's #note-… link
        label = _esc(block.label)
        inner = f'<a id="note-{label}">[{label}]</a> {inner}'
    if tag in {"blockquote", "aside", "header", "footer"}:
        inner = f"<p>{inner}</p>"
    return f"<{tag}{_attrs(block, css_class)}>{inner}</{tag}>"


_HTML_CONTAINERS: dict[BlockKind, tuple[str, str | None]] = {
    BlockKind.QUOTE: ("blockquote", None),
    BlockKind.FOOTNOTE: ("aside", "footnote"),
    BlockKind.HEADER: ("header", "page-header"),
    BlockKind.FOOTER: ("footer", "page-footer"),
    BlockKind.FORMULA: ("div", "formula"),
    BlockKind.CAPTION: ("p", "caption"),
}


def _html_list(run: list[Block]) -> str:
    """Nested ``<ul>``/``<ol>``: an item's sub-list sits inside its ``<li>``."""
    out: list[str] = []
    open_lists: list[str] = []
    for item in _list_items(run):
        if item.block.kind is BlockKind.CODE and open_lists:  # inside the item it belongs to
            while len(open_lists) > item.depth:
                out.append(f"</li></{open_lists.pop()}>")
            out.append("\n" + _html_block(item.block))
            continue
        tag = "ol" if item.number is not None else "ul"
        if item.restarted and len(open_lists) >= item.depth:  # a new list of the same kind
            while len(open_lists) >= item.depth:
                out.append(f"</li></{open_lists.pop()}>")
        while len(open_lists) > item.depth:
            out.append(f"</li></{open_lists.pop()}>")
        if len(open_lists) == item.depth:
            out.append("</li>" if open_lists[-1] == tag else f"</li></{open_lists.pop()}>")
        if len(open_lists) < item.depth:
            start = f' start="{item.number}"' if item.number not in {None, 1} else ""
            out.append(f"\n<{tag}{start}>")
            open_lists.append(tag)
        out.append(f"\n<li{_attrs(item.block)}>{_html_inline(item.block)}")
    while open_lists:
        out.append(f"</li></{open_lists.pop()}>")
    return "".join(out).lstrip("\n")


def _html_table(block: Block, caption: Block | None = None) -> str:
    table = block.table
    if table is None:
        return ""
    parts = [f"<table{_attrs(block)}>"]
    if caption is not None:
        parts.append(f"<caption{_attrs(caption)}>{_html_inline(caption)}</caption>")
    header_rows = table.header_rows()
    rows = _html_rows(table)
    if header_rows:
        parts += ["<thead>", *rows[:header_rows], "</thead>"]
    if rows[header_rows:]:
        parts += ["<tbody>", *rows[header_rows:], "</tbody>"]
    parts.append("</table>")
    return "\n".join(parts)


def _html_rows(table: Table) -> list[str]:
    by_row: dict[int, list[str]] = {r: [] for r in range(table.n_rows)}
    # A table held as rows gives its cells in reading order, one at a time: not sorted,
    # they are never all held at once.
    cells = table.cells
    ordered = cells if isinstance(cells, RowCells) else sorted(cells, key=lambda c: (c.row, c.col))
    for cell in ordered:
        tag = "th" if cell.header else "td"
        spans = f' rowspan="{cell.row_span}"' if cell.row_span > 1 else ""
        spans += f' colspan="{cell.col_span}"' if cell.col_span > 1 else ""
        text = "<br>".join(_esc(line) for line in cell.text.strip().split("\n"))
        by_row.setdefault(cell.row, []).append(f"<{tag}{spans}>{text}</{tag}>")
    return ["<tr>" + "".join(cells) + "</tr>" for _, cells in sorted(by_row.items())]


def _html_figure(image: Block, caption: Block | None) -> str:
    urls = [url for link in image.links if (url := _safe_url(link.url)) is not None]
    alt = _esc(" ".join(image.text.split()))
    if urls:
        picture = f'<img src="{_html_url(urls[0])}" alt="{alt}">'
    else:  # no address to show: keep the description where assistive technology reads it
        picture = f'<span role="img" aria-label="{alt}"></span>' if alt else ""
    parts = [f"<figure{_attrs(image)}>", picture]
    if caption is not None:
        parts.append(f"<figcaption{_attrs(caption)}>{_html_inline(caption)}</figcaption>")
    parts.append("</figure>")
    return "".join(parts)
