"""Bytes saved by the ``pdf`` operation's ``compress`` action on the corpus PDFs.

``python -m bench.pdf_compress [--dpi 150] [--quality 75]`` runs, on every PDF of the
corpus that opens (with its password from MANIFEST.tsv where it has one):

* ``lossless``: qpdf's repacking alone (object streams, recompressed Flate streams);
* ``images``: the same plus images drawn above ``--dpi`` resampled to it as JPEG.

and prints each file's size before and after, the ratio saved, the images resampled,
and whether every page's text is the same as the source's (pdfium) — a smaller file
that lost text would be no gain. The last line is the corpus total.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import pypdfium2

from bench.scoring import corpus_root
from docworker.config import Settings
from docworker.errors import DocworkerError
from docworker.operations.base import InputFile, OperationContext
from docworker.operations.pdf import PdfOperation, PdfParams

_PASSWORD = re.compile(r"user password=(\S+?)[,;]")


def corpus_passwords(corpus: Path) -> dict[str, str]:
    """Corpus path → the user password MANIFEST.tsv gives for it."""
    found = {}
    for line in (corpus / "MANIFEST.tsv").read_text().splitlines()[1:]:
        columns = line.split("\t")
        match = _PASSWORD.search(columns[-1])
        if match:
            found[columns[0]] = match.group(1)
    return found


def _texts(path: Path, password: str | None) -> list[str]:
    pdf = pypdfium2.PdfDocument(str(path), password=password)
    try:
        pages = []
        for page in pdf:
            textpage = page.get_textpage()
            pages.append(" ".join(textpage.get_text_range().split()))
            textpage.close()
            page.close()
        return pages
    finally:
        pdf.close()


def _compress(path: Path, password: str | None, **params: object) -> tuple[int, int, float, bool]:
    """Size after, images resampled, seconds, and whether the text is unchanged."""
    with tempfile.TemporaryDirectory() as workdir:
        ctx = OperationContext(workdir=Path(workdir), settings=Settings())
        checked = PdfParams.model_validate({"action": "compress", "password": password, **params})
        started = time.perf_counter()
        result = PdfOperation().run(ctx, InputFile(path, path.name), checked)
        seconds = time.perf_counter() - started
        output = result.artifacts[0].path
        same = _texts(output, password) == _texts(path, password)
        images = result.payload.get("images") or {}
        return output.stat().st_size, int(images.get("resampled", 0)), seconds, same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dpi", type=int, default=150, help="max_image_dpi of the lossy run")
    parser.add_argument("--quality", type=int, default=75, help="JPEG quality of the lossy run")
    args = parser.parse_args()
    corpus = corpus_root()
    passwords = corpus_passwords(corpus)
    totals = [0, 0, 0]
    print(
        f"{'file':40} {'bytes':>9} {'lossless':>9} {'saved':>6} {'images':>9} {'saved':>6} "
        f"{'resampled':>9} {'s':>5} text"
    )
    for path in sorted((corpus / "pdf").glob("*.pdf")):
        password = passwords.get(f"pdf/{path.name}")
        try:
            lossless, _, _, same_a = _compress(path, password)
            lossy, resampled, seconds, same_b = _compress(
                path, password, max_image_dpi=args.dpi, image_quality=args.quality
            )
        except DocworkerError as exc:
            print(f"{path.name:40} {exc.code}: {exc.detail}")
            continue
        size = path.stat().st_size
        totals = [totals[0] + size, totals[1] + lossless, totals[2] + lossy]
        print(
            f"{path.name:40} {size:>9} {lossless:>9} {1 - lossless / size:>6.1%} {lossy:>9} "
            f"{1 - lossy / size:>6.1%} {resampled:>9} {seconds:>5.2f} "
            f"{'same' if same_a and same_b else 'DIFFERS'}"
        )
    before, lossless, lossy = totals
    print(
        f"{'total':40} {before:>9} {lossless:>9} {1 - lossless / before:>6.1%} {lossy:>9} "
        f"{1 - lossy / before:>6.1%}"
    )


if __name__ == "__main__":
    main()
