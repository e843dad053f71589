"""What the media operations cost beside FFmpeg itself: the ``video`` operation's
transcode against a bare ``ffmpeg`` command with the same settings, the memory of a
1080p transcode as the input grows longer, and how fast ``scenes`` reads a video::

    .venv/bin/python -m bench.media [--seconds 10] [--rounds 3]

The inputs are made here with FFmpeg's own sources: a 1920×1080, 25 fps ``testsrc2``
with a tone (``--seconds`` long, and three times as long for the memory line), and a
1280×720 video of shots cut every few seconds (``testsrc2``, ``smptebars``,
``mandelbrot``, ``rgbtestsrc`` in turn) for the scenes line.

- **transcode**: the operation (probe, checks, the guarded FFmpeg run, the probe of
  the output) and the bare command run in turn, ``--rounds`` times each; medians and
  their ratio (goal: at most 1.05).
- **memory**: each transcode runs in a child Python process; the peak resident memory
  of FFmpeg (the child's children) and of the Python process are printed for both
  lengths: bounded means the same for a clip three times as long.
- **scenes**: seconds of video read per second of wall time, and the cuts found
  against the cuts made.
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

SHOT_SOURCES = ("testsrc2", "smptebars", "mandelbrot", "rgbtestsrc")
SHOT_SECONDS = 3.0


def _ffmpeg(*args: str) -> None:
    command = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    subprocess.run(command, check=True, timeout=1800)


def make_1080p(path: Path, seconds: float) -> Path:
    _ffmpeg(
        *("-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=25:duration={seconds}"),
        *("-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"),
        *("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-shortest"),
        str(path),
    )
    return path


def make_shots(path: Path, count: int) -> Path:
    inputs: list[str] = []
    for index in range(count):
        source = SHOT_SOURCES[index % len(SHOT_SOURCES)]
        inputs += ["-f", "lavfi", "-i", f"{source}=s=1280x720:r=25,trim=duration={SHOT_SECONDS}"]
    joined = "".join(f"[{index}:v]" for index in range(count))
    _ffmpeg(
        *inputs,
        *("-filter_complex", f"{joined}concat=n={count}:v=1:a=0,format=yuv420p[v]"),
        *("-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast"),
        str(path),
    )
    return path


def bare_transcode(source: Path, output: Path) -> list[str]:
    """The command the operation runs for an MP4 at the input's size, written out."""
    return [
        *("ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y"),
        *("-i", str(source), "-map_metadata", "-1", "-sn", "-dn"),
        *("-map", "0:V:0", "-c:v", "libx264", "-preset", "veryfast"),
        *("-movflags", "+faststart", "-pix_fmt", "yuv420p", "-crf", "23"),
        *("-vf", "scale=1920:1080:flags=bicubic,setsar=1"),
        *("-map", "0:a:0", "-c:a", "aac", "-b:a", "128000"),
        *("-threads", "0", "-f", "mp4", str(output)),
    ]


#: Run in a child Python process: one operation on one file, then its peak memory.
_CHILD = """
import json, resource, sys, tempfile, time
from pathlib import Path
from docworker.config import load_settings
from docworker.operations import get_operation, validate_params
from docworker.operations.base import InputFile, OperationContext
from docworker.telemetry import configure_logging
configure_logging(level="WARNING")
path, params = Path(sys.argv[1]), json.loads(sys.argv[2])
operation = get_operation("video")
settings = load_settings(ffmpeg={"max_output_bytes": 8 * 1024**3})
context = OperationContext(workdir=Path(tempfile.mkdtemp()), settings=settings)
started = time.perf_counter()
result = operation.run(context, InputFile(path, path.name), validate_params(operation, params))
seconds = time.perf_counter() - started
print(json.dumps({
    "seconds": seconds,
    "python_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "ffmpeg_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    "payload": {k: v for k, v in result.payload.items() if k != "input"},
}))
"""


def run_operation(path: Path, params: dict[str, object]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), json.dumps(params)],
        check=True,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    answer: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def bare_seconds(source: Path, folder: Path) -> float:
    started = time.perf_counter()
    subprocess.run(bare_transcode(source, folder / "bare.mp4"), check=True, timeout=1800)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        short = make_1080p(folder / "short.mp4", options.seconds)
        long = make_1080p(folder / "long.mp4", options.seconds * 3)
        ours: list[float] = []
        bare: list[float] = []
        params = {"format": "mp4"}
        for _ in range(options.rounds):
            bare.append(bare_seconds(short, folder))
            ours.append(float(run_operation(short, params)["seconds"]))  # type: ignore[arg-type]
        ratio = statistics.median(ours) / statistics.median(bare)
        print(
            f"transcode 1080p {options.seconds:g} s to MP4 (H.264 veryfast, AAC), median of "
            f"{options.rounds}"
        )
        print(f"  bare ffmpeg        {statistics.median(bare):7.2f} s")
        print(
            f"  video operation    {statistics.median(ours):7.2f} s   {ratio:.3f}x bare "
            f"(goal <= 1.05)"
        )
        print("peak resident memory of a 1080p transcode (KiB)")
        for name, path in (("short", short), ("3x as long", long)):
            answer = run_operation(path, params)
            print(
                f"  {name:<12} ffmpeg {answer['ffmpeg_kib']:>9}   python {answer['python_kib']:>9}"
            )
        count = max(4, round(options.seconds * 6 / SHOT_SECONDS))
        shots = make_shots(folder / "shots.mp4", count)
        answer = run_operation(shots, {"action": "scenes", "keyframes": False})
        payload = answer["payload"]
        assert isinstance(payload, dict)
        length = count * SHOT_SECONDS
        seconds = float(answer["seconds"])  # type: ignore[arg-type]
        print(f"scenes of a 720p video, {length:g} s, {count} shots")
        print(
            f"  {seconds:.2f} s: {length / seconds:.1f} minutes of video read a minute; "
            f"{payload['count']} scenes found of {count}"
        )


if __name__ == "__main__":
    main()
