"""PDF pages to images: the ``render`` operation's libvips writer beside Pillow's.

``python -m bench.render [--pages 30] [--dpi 150]`` renders the first pages of the
corpus's 619-page PDF with pdfium, in colour at ``dpi``, and writes each as PNG,
JPEG (quality 85) and WebP (quality 85) two ways, each in a fresh process:

* **vips**: :func:`docworker.render.page_images.write_pdf_page`, the service's
  path (pdfium's bitmap handed to libvips without a copy, libvips encodes);
* **pillow**: the same bitmap as a Pillow image (``to_pil``), saved by Pillow
  with the same settings (PNG compression 6, JPEG optimised, WebP method 4).

It prints pages per second, the peak resident memory of each process, its growth
over the process's memory once its libraries are loaded (libvips loads more
libraries than Pillow: a worker pays that once), and the ratios.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.memory import peak_rss_kib
from bench.scoring import corpus_root

SOURCE = corpus_root() / "pdf" / "huge-619-pages.pdf"
FORMATS = ("png", "jpeg", "webp")
QUALITY = 85


def _vips(page: object, number: int, fmt: str, dpi: int, target: Path) -> None:
    from docworker.engines.image_formats import PageFormat
    from docworker.render.page_images import ImageSpec, write_pdf_page

    spec = ImageSpec(format=PageFormat(fmt), dpi=dpi, quality=QUALITY)
    write_pdf_page(page, number, spec, target)


def _pillow(page: object, number: int, fmt: str, dpi: int, target: Path) -> None:
    bitmap = page.render(scale=dpi / 72, rev_byteorder=True)  # type: ignore[attr-defined]
    try:
        image = bitmap.to_pil()
        if fmt == "png":
            image.save(target, "PNG", compress_level=6)
        elif fmt == "jpeg":
            image.save(target, "JPEG", quality=QUALITY, optimize=True)
        else:
            image.save(target, "WEBP", quality=QUALITY, method=4)
    finally:
        bitmap.close()


def child(way: str, fmt: str, pages: int, dpi: int) -> dict[str, float]:
    """Render and write ``pages`` pages one way; the time taken and the peak RSS."""
    import psutil
    import pypdfium2

    if way == "vips":
        from docworker.engines import vips  # noqa: F401 - loaded before the baseline, as a worker has it
    write = _vips if way == "vips" else _pillow
    baseline_mb = psutil.Process().memory_info().rss / 2**20
    pdf = pypdfium2.PdfDocument(str(SOURCE))
    with tempfile.TemporaryDirectory() as folder:
        # One page first, out of the timing: imports and lazy loads.
        page = pdf[0]
        write(page, 1, fmt, dpi, Path(folder) / f"warm.{fmt}")
        page.close()
        started = time.perf_counter()
        for index in range(pages):
            page = pdf[index]
            write(page, index + 1, fmt, dpi, Path(folder) / f"{index}.{fmt}")
            page.close()
        seconds = time.perf_counter() - started
    pdf.close()
    peak_mb = peak_rss_kib() / 1024
    return {"seconds": seconds, "peak_mb": peak_mb, "growth_mb": peak_mb - baseline_mb}


def measure(way: str, fmt: str, pages: int, dpi: int) -> dict[str, float]:
    command = [sys.executable, "-m", "bench.render", "--child", way, fmt]
    command += ["--pages", str(pages), "--dpi", str(dpi)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    figures: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=30)
    parser.add_argument("--dpi", type=int, default=150)
    parser.add_argument("--child", nargs=2, metavar=("WAY", "FORMAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.pages, args.dpi)))
        return
    print(f"{args.pages} pages of {SOURCE.name} at {args.dpi} dpi, written one at a time")
    print(f"{'format':<6} {'way':<7} {'pages/s':>8} {'peak MB':>8} {'growth MB':>10}")
    for fmt in FORMATS:
        results = {way: measure(way, fmt, args.pages, args.dpi) for way in ("vips", "pillow")}
        for way, figures in results.items():
            rate = args.pages / figures["seconds"]
            peak, growth = figures["peak_mb"], figures["growth_mb"]
            print(f"{fmt:<6} {way:<7} {rate:>8.1f} {peak:>8.0f} {growth:>10.0f}")
        speed = results["pillow"]["seconds"] / results["vips"]["seconds"]
        memory = results["pillow"]["growth_mb"] / results["vips"]["growth_mb"]
        print(
            f"{fmt:<6} vips: {speed:.2f}× Pillow's speed; Pillow's memory growth "
            f"{memory:.2f}× vips'"
        )


if __name__ == "__main__":
    main()
