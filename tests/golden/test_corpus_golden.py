"""Golden corpus tests: our Markdown for each ground-truthed corpus file scores its floor.

Each file with a ``NAME.expected.*`` truth is parsed with the default settings,
rendered to Markdown and scored by token-F1 against its truth exactly as
``PEERS.md`` scores the peers (:mod:`bench.scoring`). ``THRESHOLDS`` holds each
file's floor, set a little under what we measure; a floor under the best peer's
score says why (``UNDER_THE_BAR``). Files whose format is not read yet are listed in
``NOT_YET_SUPPORTED`` with the reason, and skipped.
"""

from __future__ import annotations

import pytest

from bench.scoring import GroundTruth, corpus_root, ground_truths, peer_bars
from docworker.formats.base import PageSelection, ParseContext
from docworker.formats.registry import parse_path
from docworker.render import render_markdown

CORPUS = corpus_root()
pytestmark = pytest.mark.skipif(
    not (CORPUS / "MANIFEST.tsv").is_file(), reason=f"corpus not found at {CORPUS}"
)

#: File → lowest token-F1 accepted, compared at the three decimals PEERS.md gives:
#: what we measured less about 0.01, but never under the best peer's score.
THRESHOLDS: dict[str, float] = {
    "pdf/latex-multicolumn.pdf": 0.61,
    "pdf/acroform-fields.pdf": 1.0,
    "pdf/paper-page-with-table.pdf": 0.963,
    "pdf/ibm-redbook-sampled.pdf": 0.95,
    "pdf/multi-page-article.pdf": 0.998,
    "pdf/korean-report.pdf": 0.982,
    "pdf/arabic-rtl.pdf": 0.97,
    "pdf/code-and-formula.pdf": 0.987,
    "pdf/multi-column-2p.pdf": 0.92,
    "office/word-sample.docx": 1.0,
    "office/word-tables.docx": 0.99,
    "office/equations.docx": 0.98,
    "office/textbox.docx": 0.998,
    "office/handbook-1p.docx": 0.932,
    "office/workbook-multi-sheet.xlsx": 0.98,
    "office/xlsx-edge-cases.xlsx": 0.99,
    "office/powerpoint-sample.pptx": 0.912,
    "office/pptx-chart.pptx": 0.85,
    "web/wiki-duck.html": 0.983,
    "web/table-rowspan.html": 1.0,
    "web/wiki.md": 1.0,
    "web/nested.md": 1.0,
    "web/jats-article.xml": 0.96,
    "web/comma.csv": 1.0,
    "web/semicolon.csv": 1.0,
    "web/ragged-too-many-columns.csv": 1.0,
    "text/udhr-multilingual.txt": 0.999,
}

#: Ground-truthed files whose format is not read yet, and why.
NOT_YET_SUPPORTED: dict[str, str] = {
    "pdf/scanned-ocr-test.pdf": "image-only PDF: needs OCR, not yet wired",
    "office/legacy-word.doc": "legacy Word (.doc): not yet read",
    "office/legacy-excel.xls": "legacy Excel (.xls): not yet read",
    "office/legacy-powerpoint.ppt": "legacy PowerPoint (.ppt): not yet read",
    "office/text-document.odt": "OpenDocument text: not yet read",
    "office/table-with-title.ods": "OpenDocument spreadsheet: not yet read",
    "office/presentation.odp": "OpenDocument presentation: not yet read",
    "office/poetry.epub": "EPUB: not yet read",
    "images/paper-with-table.jpg": "image: needs OCR, not yet wired",
    "images/docling-ocr.webp": "image: needs OCR, not yet wired",
}

#: Files whose floor is under the best peer's score, and why.
UNDER_THE_BAR: dict[str, str] = {
    "pdf/latex-multicolumn.pdf": (
        "the truth (pypdf's test text) covers page 1 of 3 only, so a whole-document "
        "extraction tops out near 0.67; on page 1 we score 0.95 (tested below), the "
        "rest being the truth's quirks: hyphen breaks kept ('maece nas') and the 'ﬁ' ligature"
    ),
}

#: Files whose truth covers only some pages: those pages, and the floor there.
PARTIAL_TRUTHS: dict[str, tuple[str, float]] = {"pdf/latex-multicolumn.pdf": ("1", 0.94)}

TRUTHS = ground_truths()


def _id(truth: GroundTruth) -> str:
    return truth.document


def test_every_ground_truth_is_either_scored_or_listed_as_not_yet_supported() -> None:
    documents = {truth.document for truth in TRUTHS}
    assert documents == set(THRESHOLDS) | set(NOT_YET_SUPPORTED)
    assert not set(THRESHOLDS) & set(NOT_YET_SUPPORTED)


def test_thresholds_stay_at_or_over_the_peers_bar_unless_explained() -> None:
    best = peer_bars().files
    under = {path for path, floor in THRESHOLDS.items() if floor < best[path]}
    assert under == set(UNDER_THE_BAR)


def _f1(truth: GroundTruth, ctx: ParseContext) -> float:
    return round(truth.score(render_markdown(parse_path(CORPUS / truth.document, ctx))), 3)


@pytest.mark.parametrize("truth", TRUTHS, ids=_id)
def test_markdown_scores_at_least_its_threshold(truth: GroundTruth) -> None:
    if truth.document in NOT_YET_SUPPORTED:
        pytest.skip(NOT_YET_SUPPORTED[truth.document])
    f1 = _f1(truth, ParseContext())
    assert f1 >= THRESHOLDS[truth.document], f"{truth.document}: token-F1 {f1:.3f}"


@pytest.mark.parametrize("document", sorted(PARTIAL_TRUTHS))
def test_pages_a_partial_truth_covers_score_their_floor(document: str) -> None:
    pages, floor = PARTIAL_TRUTHS[document]
    truth = next(truth for truth in TRUTHS if truth.document == document)
    f1 = _f1(truth, ParseContext(pages=PageSelection.parse(pages)))
    assert f1 >= floor, f"{document} pages {pages}: token-F1 {f1:.3f}"
