"""Token-F1 scoring against the corpus ground truths, and the peers' bars to compare with.

The score is the one ``PEERS.md`` defines, so our figures and the peers' are
comparable: the extracted text and the truth are stripped of markup (in
Markdown: image and link syntax reduced to their labels, HTML comments, table
rules and the characters ``# * _ ` | > \\`` removed; in HTML: tags removed; in
JSON: everything but the ``text`` fields), lower-cased and split into ``\\w+``
tokens; the score is the F1 of the two token multisets, so reading order does
not count but every missing or extra word does. Run on MarkItDown's output this
gives back, to the third decimal, the ``PEERS.md`` figure of every file where
MarkItDown is the best peer (but one: 1.000 here, 0.999 there).

The corpus is found at ``$DOCWORKER_CORPUS`` or ``<repo>/../shared/corpus``;
``MANIFEST.tsv`` there says which file is the ground truth of which. Nothing
here ever lists or opens a file under ``hostile/`` or ``archives/``.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Folders of the corpus that quality and coverage never touch: attack samples
#: (opened only by the guard's own tests) and archives (a batch operation).
EXCLUDED_FOLDERS = frozenset({"hostile", "archives"})

#: The kinds a text to be scored can be in, by file suffix.
KIND_BY_SUFFIX = {
    ".md": "md",
    ".markdown": "md",
    ".txt": "txt",
    ".html": "html",
    ".htm": "html",
    ".json": "json",
}

_TOKEN = re.compile(r"\w+")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
# A tag must start with a letter (or "/letter") so that "a < b" in prose survives.
_HTML_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MD_REF_LINK = re.compile(r"\[([^\]]*)\]\[[^\]]*\]")
_MD_LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]*\S+.*$", re.MULTILINE)
# A table delimiter row (| --- | :-: |) or a grid-table rule (+----+====+).
_MD_TABLE_RULE = re.compile(
    r"^[ \t]*(?:\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?|\+[-=+:]+\+)[ \t]*$",
    re.MULTILINE,
)
# Replaced by a space, not deleted, so "a|b" stays two tokens; "_" matters most,
# being a word character: "foo\_bar" (escaped) and "foo_bar" both give foo, bar.
_MARKUP_CHARS = re.compile(r"[#*_`|>\\]")

#: JSON keys whose string values are the document's text. Link labels are
#: skipped: they repeat words already in the text of the block holding them.
_JSON_TEXT_KEYS = frozenset({"text"})
_JSON_SKIPPED_KEYS = frozenset({"links"})


def kind_of(path: Path | str) -> str:
    """The scoring kind (``md``, ``txt``, ``html``, ``json``) of a file, by suffix."""
    suffix = Path(path).suffix.lower()
    try:
        return KIND_BY_SUFFIX[suffix]
    except KeyError:
        raise ValueError(f"no scoring kind for files ending in '{suffix}'") from None


def normalise_truth(text: str, kind: str) -> str:
    """``text`` stripped of the markup of its ``kind``, ready to be split into tokens.

    Used alike on ground truths and on our own outputs, so both sides lose the
    same things.
    """
    if kind == "md":
        text = _strip_markdown(text)
    elif kind == "html":
        text = _strip_html(text)
    elif kind == "json":
        text = "\n".join(_json_texts(json.loads(text)))
    elif kind != "txt":
        raise ValueError(f"unknown scoring kind '{kind}'")
    return _MARKUP_CHARS.sub(" ", text)


def _strip_markdown(text: str) -> str:
    text = _HTML_COMMENT.sub(" ", text)
    text = _MD_LINK_DEFINITION.sub(" ", text)
    text = _MD_IMAGE.sub(r"\1", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_REF_LINK.sub(r"\1", text)
    # Raw HTML inside Markdown keeps its tags and entities, as in the peers' scoring
    # (their figures were reproduced to the third decimal only this way); only
    # comments go, which docling writes as image markers.
    return _MD_TABLE_RULE.sub(" ", text)


def _strip_html(text: str) -> str:
    # Entities are decoded too: no HTML truth exists, so this only serves our own
    # HTML output, which escapes "&" and "<" that the Markdown truths write plainly.
    text = _HTML_COMMENT.sub(" ", text)
    text = _SCRIPT_OR_STYLE.sub(" ", text)
    return html.unescape(_HTML_TAG.sub(" ", text))


def _json_texts(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in _JSON_SKIPPED_KEYS:
                continue
            if key in _JSON_TEXT_KEYS and isinstance(item, str):
                yield item
            else:
                yield from _json_texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_texts(item)


def tokens(text: str) -> Counter[str]:
    """The multiset of lower-cased ``\\w+`` tokens of an already normalised text."""
    return Counter(_TOKEN.findall(text.lower()))


def token_f1(predicted: Counter[str], truth: Counter[str]) -> float:
    """F1 of two token multisets; two empty multisets agree perfectly."""
    if not predicted and not truth:
        return 1.0
    common = sum((predicted & truth).values())
    if common == 0:
        return 0.0
    precision = common / sum(predicted.values())
    recall = common / sum(truth.values())
    return 2 * precision * recall / (precision + recall)


def score(output: str, output_kind: str, truth: str, truth_kind: str) -> float:
    """Token-F1 of ``output`` against ``truth``, each normalised as its kind."""
    return token_f1(
        tokens(normalise_truth(output, output_kind)), tokens(normalise_truth(truth, truth_kind))
    )


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def corpus_root() -> Path:
    """``$DOCWORKER_CORPUS`` if set, else ``<repo>/../shared/corpus``."""
    configured = os.environ.get("DOCWORKER_CORPUS")
    if configured:
        return Path(configured)
    return repo_root().parent / "shared" / "corpus"


@dataclass(frozen=True)
class CorpusFile:
    """One row of ``MANIFEST.tsv``: a path relative to the corpus root, its kind, its notes."""

    path: str
    kind: str
    notes: str

    @property
    def folder(self) -> str:
        return self.path.split("/", 1)[0]

    @property
    def absolute(self) -> Path:
        return corpus_root() / self.path


def manifest() -> list[CorpusFile]:
    """Every manifest row outside the excluded folders, in manifest order."""
    with (corpus_root() / "MANIFEST.tsv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    files = [CorpusFile(row["path"], row["kind"], row.get("notes") or "") for row in rows]
    return [f for f in files if f.folder not in EXCLUDED_FOLDERS]


def documents(*, with_media: bool = False) -> list[CorpusFile]:
    """The corpus documents (ground truths left out), media files only if asked for."""
    return [f for f in manifest() if f.kind != "expected" and (with_media or f.folder != "media")]


_TRUTH_OF = re.compile(r"^ground truth for (\S+?):")
#: Ground truths exported by a peer, by the phrase the manifest notes use for them.
_PRODUCERS = ("docling", "unstructured", "markitdown")


@dataclass(frozen=True)
class GroundTruth:
    """A corpus document and the file holding the text it should extract to."""

    document: str
    truth: str
    notes: str

    @property
    def folder(self) -> str:
        return self.document.split("/", 1)[0]

    @property
    def kind(self) -> str:
        return kind_of(self.truth)

    @property
    def produced_by(self) -> str | None:
        """The peer that exported this truth (its score on it does not count), if any."""
        notes = self.notes.split(":", 1)[-1].lower()
        return next((peer for peer in _PRODUCERS if peer in notes), None)

    def read(self) -> str:
        return (corpus_root() / self.truth).read_text(encoding="utf-8")

    def score(self, output: str, output_kind: str = "md") -> float:
        """Token-F1 of ``output`` (of ``output_kind``) against this truth."""
        return score(output, output_kind, self.read(), self.kind)


def ground_truths(*, with_media: bool = False) -> list[GroundTruth]:
    """Every (document, truth) pair the manifest names, media ones only if asked for."""
    pairs: list[GroundTruth] = []
    for row in manifest():
        match = _TRUTH_OF.match(row.notes)
        if row.kind != "expected" or match is None:
            continue
        pair = GroundTruth(document=match.group(1), truth=row.path, notes=row.notes)
        if pair.folder not in EXCLUDED_FOLDERS and (with_media or pair.folder != "media"):
            pairs.append(pair)
    return pairs


@dataclass
class PeerBars:
    """The figures of ``PEERS.md``: per-folder bars, best peer per file, peers' success."""

    folders: dict[str, float] = field(default_factory=dict)
    files: dict[str, float] = field(default_factory=dict)
    #: Peer name → (files extracted, files tried).
    success: dict[str, tuple[int, int]] = field(default_factory=dict)


_TABLE_ROW = re.compile(r"^\|\s*([^|]+?)\s*\|\s*(\d+(?:\.\d+)?)\s*\|\s*$")
_SUCCESS_LINE = re.compile(r"^-\s*(\w+):\s*(\d+)\s*/\s*(\d+)\s*$")


def peers_path() -> Path:
    """``PEERS.md`` beside the corpus (``shared/PEERS.md``)."""
    return corpus_root().parent / "PEERS.md"


def peer_bars(path: Path | None = None) -> PeerBars:
    """Parse the bars out of ``PEERS.md`` (by section heading, so table order is free)."""
    bars = PeerBars()
    section = ""
    for line in (path or peers_path()).read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line[3:].strip().lower()
            continue
        row = _TABLE_ROW.match(line)
        success = _SUCCESS_LINE.match(line)
        if row and section.startswith("bars per folder"):
            bars.folders[row.group(1)] = float(row.group(2))
        elif row and section.startswith("best peer score per file"):
            bars.files[row.group(1)] = float(row.group(2))
        elif success and section.startswith("success"):
            bars.success[success.group(1)] = (int(success.group(2)), int(success.group(3)))
    return bars
