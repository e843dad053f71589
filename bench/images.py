"""Image processing: the ``image`` operation (libvips) against Pillow, and what automatic
quality saves.

Resize: a 6000 × 4000 JPEG, made here with pyvips from noise and gradients, is
resized to 800 pixels wide and written as WebP (quality 80), each way in its own
child process (``--child``) so that each peak RSS is its own: the docworker
``image`` operation (libvips, shrink-on-load, streamed), Pillow's ``resize``
(decode everything, then resample) and Pillow's ``thumbnail`` (JPEG draft mode:
DCT scaling on load, then resample). The times are the median of ``--rounds``;
the RSS is the child's peak, and the peak less the RSS once imports were done
(the memory the work itself took), which the ratio compares.

Auto quality: each corpus image (JPEG, PNG, WebP, TIFF, HEIC) through the operation
with ``min_ssim`` (default 0.95), at its own size: the bytes of the chosen encoding
against the input's, with the format, quality and SSIM chosen.

    .venv/bin/python -m bench.images [--rounds 3] [--min-ssim 0.95] [--formats webp,jpeg]
                                     [--skip-resize] [--skip-auto]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.memory import peak_rss_kib
from bench.scoring import corpus_root

WIDTH, HEIGHT, TARGET = 6000, 4000, 800
WAYS = ("docworker", "pillow-resize", "pillow-thumbnail")
AUTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".heic"}


def make_photo(path: Path) -> None:
    """A 6000 × 4000 JPEG of gradients and noise (about as hard to code as a photo)."""
    from docworker.engines.vips import pyvips

    xy = pyvips.Image.xyz(WIDTH, HEIGHT)
    x, y = xy[0], xy[1]
    red = (x * (255 / WIDTH)).cast("uchar")
    green = (y * (255 / HEIGHT)).cast("uchar")
    blue = ((x + y) * (255 / (WIDTH + HEIGHT))).cast("uchar")
    noise = pyvips.Image.gaussnoise(WIDTH, HEIGHT, sigma=18, mean=0)
    image = (red.bandjoin([green, blue]) + noise).cast("uchar").copy(interpretation="srgb")
    image.jpegsave(str(path), Q=90)


def child(way: str, source: Path, target: Path) -> dict[str, Any]:
    """One resize in this process: its time and peak RSS above the imports'."""
    if way == "docworker":
        from docworker.config import load_settings
        from docworker.operations.base import InputFile, operation_context
        from docworker.operations.image import ImageOperation, ImageParams

        operation = ImageOperation()
        settings = load_settings(data_dir=target.parent)
        params = ImageParams(width=TARGET, format="webp", quality=80)
        baseline = peak_rss_kib()
        started = time.perf_counter()
        ctx = operation_context(settings, workdir=target.parent)
        operation.run(ctx, InputFile(source), params)
    else:
        from PIL import Image

        baseline = peak_rss_kib()
        started = time.perf_counter()
        with Image.open(source) as image:
            if way == "pillow-thumbnail":
                image.thumbnail((TARGET, TARGET * 10))
                small = image
            else:
                small = image.resize((TARGET, round(image.height * TARGET / image.width)))
            small.save(target, "WEBP", quality=80)
    elapsed = time.perf_counter() - started
    peak = peak_rss_kib()
    return {"seconds": elapsed, "peak_mib": peak / 1024, "work_mib": (peak - baseline) / 1024}


def _run_child(way: str, source: Path, folder: Path) -> dict[str, Any]:
    target = folder / f"{way}.webp"
    done = subprocess.run(
        [sys.executable, "-m", "bench.images", "--child", way, str(source), str(target)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def bench_resize(rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-images-") as folder:
        source = Path(folder) / "photo.jpg"
        make_photo(source)
        size_mb = source.stat().st_size / 1e6
        print(f"resize: {WIDTH}×{HEIGHT} JPEG ({size_mb:.1f} MB) → {TARGET} px wide WebP q80")
        figures: dict[str, tuple[float, float]] = {}
        for way in WAYS:
            runs = [_run_child(way, source, Path(folder)) for _ in range(rounds)]
            seconds = statistics.median(r["seconds"] for r in runs)
            peak = max(r["peak_mib"] for r in runs)
            work = max(r["work_mib"] for r in runs)
            figures[way] = (seconds, work)
            print(f"  {way:18} {seconds:6.3f} s   peak RSS {peak:6.1f} MiB ({work:+6.1f} MiB work)")
        ours_s, ours_mb = figures["docworker"]
        for way in WAYS[1:]:
            theirs_s, theirs_mb = figures[way]
            print(
                f"  docworker vs {way}: {theirs_s / ours_s:.2f}× faster, "
                f"{ours_mb / max(theirs_mb, 0.1):.2f}× the work memory"
            )


def bench_auto(min_ssim: float, formats: list[str]) -> None:
    from docworker.config import load_settings
    from docworker.errors import DocworkerError
    from docworker.operations.base import InputFile, operation_context
    from docworker.operations.image import ImageOperation, ImageParams

    files = sorted(
        path
        for path in (corpus_root() / "images").iterdir()
        if path.suffix.lower() in AUTO_SUFFIXES
    )
    operation = ImageOperation()
    params = ImageParams(min_ssim=min_ssim, formats=formats)
    total_in = total_out = 0
    print(f"\nauto quality at SSIM ≥ {min_ssim} (formats {', '.join(formats)}):")
    print(f"  {'file':28} {'input':>9} {'output':>9} {'saved':>6}  choice")
    for path in files:
        with tempfile.TemporaryDirectory(prefix="bench-auto-") as folder:
            ctx = operation_context(load_settings(data_dir=Path(folder)), workdir=Path(folder))
            try:
                payload = operation.run(ctx, InputFile(path, name=path.name), params).payload
            except DocworkerError as exc:
                print(f"  {path.name:28} refused: {exc.detail}")
                continue
        auto, size = payload["auto"], path.stat().st_size
        total_in, total_out = total_in + size, total_out + auto["size"]
        saved = 1 - auto["size"] / size
        choice = f"{auto['format']} q{auto['quality']} ssim {auto['ssim']:.4f}"
        print(f"  {path.name:28} {size:9d} {auto['size']:9d} {saved:6.1%}  {choice}")
    if total_in:
        print(f"  {'all':28} {total_in:9d} {total_out:9d} {1 - total_out / total_in:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--min-ssim", type=float, default=0.95)
    parser.add_argument("--formats", default="webp,avif,jpeg", help="auto: formats tried")
    parser.add_argument("--skip-auto", action="store_true")
    parser.add_argument("--skip-resize", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("WAY", "SOURCE", "TARGET"))
    args = parser.parse_args()
    if args.child:
        way, source, target = args.child
        print(json.dumps(child(way, Path(source), Path(target))))
        return
    if not args.skip_resize:
        bench_resize(args.rounds)
    if not args.skip_auto:
        bench_auto(args.min_ssim, args.formats.split(","))


if __name__ == "__main__":
    main()
