"""Which WebM encoder settings the ``video`` operation uses: speed against quality.

Encodes the same clips with each candidate (video only, all cores), then scores
each output against its source with FFmpeg's SSIM filter, and prints seconds,
speed against v1 (FFmpeg's WebM defaults: libvpx-vp9 at its default ``good``
deadline), size and SSIM::

    .venv/bin/python -m bench.video_codecs [--seconds 2]

The clips: the corpus's ``media/video.mp4`` and ``media/sample-10s.mov`` (camera
footage, 320 px) and a generated 1280×720 ``mandelbrot`` zoom (fine detail and
motion everywhere, the hard case).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.scoring import corpus_root

#: name → encoder options. "v1" is what v1 ran: FFmpeg's defaults for a .webm output.
CANDIDATES: dict[str, list[str]] = {
    "v1: vp9 defaults": ["-c:v", "libvpx-vp9"],
    "vp9 realtime cpu-used 8 crf 32": [
        *("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1"),
        *("-crf", "32", "-b:v", "0"),
    ],
    "vp9 good cpu-used 4 crf 32": [
        *("-c:v", "libvpx-vp9", "-deadline", "good", "-cpu-used", "4", "-row-mt", "1"),
        *("-crf", "32", "-b:v", "0"),
    ],
    "vp8 defaults": ["-c:v", "libvpx"],
    "vp8 realtime cpu-used 8 crf 10": [
        *("-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8"),
        *("-crf", "10", "-b:v", "4M"),
    ],
    "h264 veryfast crf 23 (mp4)": ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23"],
}
_SSIM = re.compile(r"All:([0-9.]+)")


@dataclass
class Row:
    seconds: float = 0.0
    size: int = 0
    ssim_sum: float = 0.0
    clips: int = 0


def _ffmpeg(*args: str) -> subprocess.CompletedProcess[str]:
    command = ["ffmpeg", "-hide_banner", "-nostdin", "-y", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=900)


def _clips(folder: Path, seconds: float) -> list[Path]:
    clips = []
    corpus = corpus_root() / "media"
    for name in ("video.mp4", "sample-10s.mov"):
        if (corpus / name).is_file():
            clip = folder / f"{Path(name).stem}.mkv"
            _ffmpeg("-i", str(corpus / name), "-t", str(seconds), "-an", "-c:v", "ffv1", str(clip))
            clips.append(clip)
    zoom = folder / "mandelbrot-720p.mkv"
    source = f"mandelbrot=size=1280x720:rate=25,trim=duration={seconds}"
    _ffmpeg("-f", "lavfi", "-i", source, "-c:v", "ffv1", str(zoom))
    return [*clips, zoom]


def _measure(clip: Path, options: list[str], output: Path) -> tuple[float, int, float]:
    started = time.perf_counter()
    _ffmpeg("-i", str(clip), "-an", *options, "-pix_fmt", "yuv420p", str(output))
    seconds = time.perf_counter() - started
    scored = _ffmpeg("-i", str(output), "-i", str(clip), "-lavfi", "ssim", "-f", "null", "-")
    match = _SSIM.search(scored.stderr)
    return seconds, output.stat().st_size, float(match.group(1)) if match else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="Length of each clip.")
    args = parser.parse_args()
    rows = {name: Row() for name in CANDIDATES}
    with tempfile.TemporaryDirectory(prefix="bench-video-") as tmp:
        folder = Path(tmp)
        clips = _clips(folder, args.seconds)
        for clip in clips:
            for name, options in CANDIDATES.items():
                ext = "mp4" if "h264" in name else "webm"
                seconds, size, ssim = _measure(clip, options, folder / f"out.{ext}")
                row = rows[name]
                row.seconds += seconds
                row.size += size
                row.ssim_sum += ssim
                row.clips += 1
    print(f"clips: {', '.join(c.name for c in clips)} ({args.seconds:g} s each)")
    base = rows["v1: vp9 defaults"].seconds
    print(f"{'encoder':34} {'seconds':>8} {'speed vs v1':>12} {'KB':>8} {'mean SSIM':>10}")
    for name, row in rows.items():
        speed = base / row.seconds if row.seconds else 0.0
        ssim = row.ssim_sum / max(row.clips, 1)
        print(f"{name:34} {row.seconds:8.2f} {speed:11.1f}x {row.size / 1024:8.0f} {ssim:10.4f}")


if __name__ == "__main__":
    main()
