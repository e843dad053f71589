"""PDF/A verdicts of the ``pdf`` operation's ``pdfa`` action on the corpus PDFs.

``python -m bench.pdfa [--levels 1b,2b,3b]`` converts every corpus PDF that opens
(with its password from MANIFEST.tsv) to each level with ``strict=false`` and prints
the validator's verdict on the bytes written (``pass``, ``fail``, ``not_checked``),
the number of findings and the first one, and the seconds taken; the last lines count
the verdicts per level.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.pdf_compress import corpus_passwords
from bench.scoring import corpus_root
from docworker.config import Settings
from docworker.errors import DocworkerError
from docworker.operations.base import InputFile, OperationContext
from docworker.operations.pdf import PdfOperation, PdfParams


def _convert(path: Path, password: str | None, level: str) -> tuple[dict[str, object], float]:
    with tempfile.TemporaryDirectory() as workdir:
        ctx = OperationContext(workdir=Path(workdir), settings=Settings())
        params = PdfParams.model_validate(
            {"action": "pdfa", "level": level, "strict": False, "password": password}
        )
        started = time.perf_counter()
        result = PdfOperation().run(ctx, InputFile(path, path.name), params)
        return result.payload["pdfa"], time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1b,2b,3b", help="comma-separated PDF/A levels")
    args = parser.parse_args()
    corpus = corpus_root()
    passwords = corpus_passwords(corpus)
    counts: dict[str, Counter[str]] = {}
    for path in sorted((corpus / "pdf").glob("*.pdf")):
        for level in args.levels.split(","):
            try:
                outcome, seconds = _convert(path, passwords.get(f"pdf/{path.name}"), level)
            except DocworkerError as exc:
                print(f"{path.name:40} {level} {exc.code}: {exc.detail}")
                continue
            verdict = str(outcome["verdict"])
            counts.setdefault(level, Counter())[verdict] += 1
            findings = outcome["findings"]
            first = findings[0]["message"][:70] if isinstance(findings, list) and findings else ""
            print(
                f"{path.name:40} {level} {verdict:12} {outcome['finding_count']!s:>4} "
                f"{seconds:6.2f}s {first}"
            )
    for level, counter in counts.items():
        print(f"PDF/A-{level}: " + ", ".join(f"{k} {v}" for k, v in sorted(counter.items())))


if __name__ == "__main__":
    main()
