"""Throughput of our extraction beside raw pypdfium2 and MarkItDown, on the corpus.

``python -m bench.speed [--rounds 3]`` times, in this process and after a warm-up
pass that performs every import, the median over rounds of the total time each
tool takes on two sets of files:

* the PDFs with a text layer (not encrypted, not broken, not the 619-page one),
  in pages per second: our text extraction, our Markdown extraction, raw
  pypdfium2 text (the ceiling) and MarkItDown;
* the DOCX/PPTX/XLSX/HTML files of ``office/`` and ``web/``, in files per
  second: our Markdown extraction and MarkItDown.

It ends with the two ratios the project's goals name.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from bench.extractors import (
    Extractor,
    docworker_markdown,
    docworker_text,
    markitdown_extractor,
    pdf_page_count,
    pypdfium2_text,
    warm_up,
)
from bench.scoring import corpus_root, documents

#: Words of a PDF's manifest path or notes that take it out of the throughput set.
_PDF_LEFT_OUT = ("encrypted", "broken", "no text layer", "huge page count")
_OFFICE_KINDS = frozenset({"docx", "pptx", "xlsx", "html"})
_MARKITDOWN_MISSING = "not installed — run scripts/bench"
#: The goals: our text and our structured Markdown at least these shares of raw
#: pypdfium2's speed, our Markdown at least this many times MarkItDown's.
TEXT_VS_PDFIUM_GOAL = 0.9
STRUCTURED_VS_PDFIUM_GOAL = 0.5
MARKDOWN_VS_MARKITDOWN_GOAL = 10.0


def pdf_set() -> list[Path]:
    """The text-layer PDFs timed in pages per second."""
    chosen = []
    for item in documents():
        described = f"{item.path} {item.notes}"
        if item.kind != "pdf" or any(word in described for word in _PDF_LEFT_OUT):
            continue
        if pypdfium2_text(item.absolute).strip():
            chosen.append(item.absolute)
    return chosen


def office_set() -> list[Path]:
    """The DOCX/PPTX/XLSX/HTML files of office/ and web/ timed in files per second."""
    return [
        item.absolute
        for item in documents()
        if item.folder in {"office", "web"}
        and item.kind in _OFFICE_KINDS
        and "encrypted" not in item.notes
    ]


def median_seconds(extractor: Extractor, paths: Sequence[Path], rounds: int) -> float:
    """Median over ``rounds`` of the time ``extractor`` takes on all of ``paths``."""
    totals = []
    for _ in range(rounds):
        start = time.perf_counter()
        for path in paths:
            extractor(path)
        totals.append(time.perf_counter() - start)
    return statistics.median(totals)


def _common_set(tools: dict[str, Extractor], paths: list[Path]) -> list[Path]:
    """Warm every tool up on ``paths``; keep the files none of them failed on."""
    failed: set[Path] = set()
    for name, extractor in tools.items():
        for path, error in warm_up(extractor, paths).items():
            print(f"  left out {_rel(path)}: {name} failed ({error})")
            failed.add(path)
    return [path for path in paths if path not in failed]


def _rel(path: Path) -> str:
    return path.relative_to(corpus_root()).as_posix()


def _table(title: str, unit: str, base: str, rates: dict[str, float | None]) -> None:
    print(f"\n{title}\n\n| tool | {unit} | vs {base} |\n|---|---|---|")
    reference = rates.get(base)
    for name, rate in rates.items():
        if rate is None:
            print(f"| {name} | {_MARKITDOWN_MISSING} | — |")
            continue
        ratio = _format_ratio(rate / reference) if reference else "—"
        print(f"| {name} | {rate:.3g} | {ratio} |")


def _format_ratio(value: float) -> str:
    return f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"


def measure_pdfs(rounds: int, markitdown: Extractor | None) -> dict[str, float | None]:
    tools: dict[str, Extractor] = {
        "raw pypdfium2 text (the ceiling)": pypdfium2_text,
        "docworker text (structure=False)": docworker_text,
        "docworker markdown (structure=True)": docworker_markdown,
    }
    if markitdown is not None:
        tools["MarkItDown"] = markitdown
    paths = _common_set(tools, pdf_set())
    pages = {path: pdf_page_count(path) for path in paths}
    total = sum(pages.values())
    print(f"\nPDF set: {len(paths)} files, {total} pages")
    for path in paths:
        print(f"  {_rel(path)}: {pages[path]} pages")
    rates: dict[str, float | None] = {
        name: total / median_seconds(extractor, paths, rounds) for name, extractor in tools.items()
    }
    rates.setdefault("MarkItDown", None)
    return rates


def measure_office(rounds: int, markitdown: Extractor | None) -> dict[str, float | None]:
    tools: dict[str, Extractor] = {"docworker markdown (structure=True)": docworker_markdown}
    if markitdown is not None:
        tools["MarkItDown"] = markitdown
    paths = _common_set(tools, office_set())
    print(f"\nOffice/web set: {len(paths)} files")
    for path in paths:
        print(f"  {_rel(path)}")
    rates: dict[str, float | None] = {
        name: len(paths) / median_seconds(extractor, paths, rounds)
        for name, extractor in tools.items()
    }
    rates.setdefault("MarkItDown", None)
    return rates


def _goal(label: str, value: float | None, goal: float) -> None:
    if value is None:
        print(f"- {label}: {_MARKITDOWN_MISSING} (goal ≥ {goal:g})")
        return
    verdict = "met" if value >= goal else "NOT met"
    print(f"- {label}: {_format_ratio(value)} (goal ≥ {goal:g}: {verdict})")


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator and denominator else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds; the median is kept")
    args = parser.parse_args(argv)
    markitdown = markitdown_extractor()
    print(f"Throughput, median of {args.rounds} rounds, imports excluded")
    pdf = measure_pdfs(args.rounds, markitdown)
    office = measure_office(args.rounds, markitdown)
    _table("PDF text layer", "pages/s", "raw pypdfium2 text (the ceiling)", pdf)
    _table("Office and web files", "files/s", "MarkItDown", office)
    print("\nGoals")
    text, raw = pdf["docworker text (structure=False)"], pdf["raw pypdfium2 text (the ceiling)"]
    _goal("PDF: our text ÷ raw pypdfium2", _ratio(text, raw), TEXT_VS_PDFIUM_GOAL)
    ours_pdf, peer_pdf = pdf["docworker markdown (structure=True)"], pdf["MarkItDown"]
    _goal("PDF: our markdown ÷ raw pypdfium2", _ratio(ours_pdf, raw), STRUCTURED_VS_PDFIUM_GOAL)
    _goal("PDF: our markdown ÷ MarkItDown", _ratio(ours_pdf, peer_pdf), MARKDOWN_VS_MARKITDOWN_GOAL)
    ours_office, peer_office = office["docworker markdown (structure=True)"], office["MarkItDown"]
    _goal(
        "office/web: our markdown ÷ MarkItDown",
        _ratio(ours_office, peer_office),
        MARKDOWN_VS_MARKITDOWN_GOAL,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
