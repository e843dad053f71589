"""What the content guard's scan costs: time per input, and the process's peak memory.

``python -m bench.guard [--rounds 5]`` scans, with the default settings, a 50-page PDF
(the first 50 pages of the corpus's 619-page book), the whole 619-page book, a large
DOCX written for the occasion (headings, paragraphs, tables and incompressible
pictures) and the corpus's hostile folder, then every corpus file once. It prints the
median seconds per file (after one warm-up scan), the findings, the corpus total and
slowest files, and the peak resident memory of the process before and after scanning.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import pikepdf
from docx import Document
from docx.shared import Inches
from PIL import Image

from bench.memory import peak_rss_kib
from bench.scoring import corpus_root
from docworker.config import GuardSettings
from docworker.guard import scan_file


def fifty_pages(folder: Path) -> Path:
    path = folder / "pdf-50-pages.pdf"
    with pikepdf.open(corpus_root() / "pdf" / "huge-619-pages.pdf") as book:
        part = pikepdf.new()
        part.pages.extend(book.pages[:50])
        part.save(path)
    return path


def big_docx(folder: Path) -> Path:
    """About 13 MB, 11 MB of XML: 20,000 paragraphs under 1,000 headings, 500 tables and
    20 distinct pictures of noise (which do not compress)."""
    path = folder / "big.docx"
    document = Document()
    for section in range(1000):
        document.add_heading(f"Section {section}", level=1 + section % 3)
        for line in range(20):
            document.add_paragraph(f"Paragraph {line} of section {section}. " * 12)
        if section % 2 == 0:
            table = document.add_table(rows=10, cols=5)
            for row in table.rows:
                for cell in row.cells:
                    cell.text = f"cell {section}"
        if section % 50 == 0:
            picture = folder / f"noise{section}.png"
            Image.frombytes("RGB", (400, 400), os.urandom(400 * 400 * 3)).save(picture)
            document.add_picture(str(picture), width=Inches(3))
    document.save(path)
    return path


def timed(path: Path, settings: GuardSettings, rounds: int) -> tuple[float, list[str]]:
    report = scan_file(path, path.name, None, settings)  # warm-up: imports, first use
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        report = scan_file(path, path.name, None, settings)
        times.append(time.perf_counter() - started)
    return statistics.median(times), [f.kind.value for f in report.findings]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    settings = GuardSettings()
    baseline = peak_rss_kib()
    corpus = corpus_root()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        chosen = [
            fifty_pages(folder),
            corpus / "pdf" / "huge-619-pages.pdf",
            big_docx(folder),
            *sorted((corpus / "hostile").iterdir()),
        ]
        print(f"{'file':<36} {'MB':>7} {'median s':>9}  findings")
        for path in chosen:
            seconds, kinds = timed(path, settings, args.rounds)
            size = path.stat().st_size / 1e6
            print(f"{path.name:<36} {size:7.2f} {seconds:9.4f}  {', '.join(kinds) or '-'}")
    every = sorted(p for p in corpus.rglob("*") if p.is_file() and p.name != "MANIFEST.tsv")
    each = []
    for path in every:
        started = time.perf_counter()
        scan_file(path, path.name, None, settings)
        each.append((time.perf_counter() - started, path.relative_to(corpus)))
    total = sum(seconds for seconds, _ in each)
    print(f"\ncorpus: {len(each)} files in {total:.2f} s")
    for seconds, name in sorted(each, reverse=True)[:5]:
        print(f"  {seconds:.4f} s  {name}")
    after = peak_rss_kib()
    print(f"\npeak RSS: {baseline / 1024:.0f} MiB after imports, {after / 1024:.0f} MiB after")


if __name__ == "__main__":
    main()
