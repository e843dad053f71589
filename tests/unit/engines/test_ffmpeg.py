"""The FFmpeg engine with the real FFmpeg: probing, the time and memory caps, and the
guards that keep an input from naming other files or URLs."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from bench.scoring import corpus_root
from docworker.config import FfmpegSettings, load_settings
from docworker.engines.ffmpeg import Ffmpeg, run_guarded
from docworker.errors import (
    CorruptDocument,
    DependencyDown,
    EngineTimeout,
    ProcessingFailed,
    UnsupportedFormat,
)
from tests.listener import Listener
from tests.videos import needs_ffmpeg, test_video

__all__ = ["test_video"]
pytestmark = needs_ffmpeg
CORPUS = corpus_root()
ENGINE = Ffmpeg(FfmpegSettings())


def test_probe_reads_container_duration_and_streams(test_video: Path) -> None:
    probe = ENGINE.probe(test_video)
    assert probe.container is not None and "mp4" in probe.container
    assert probe.duration == pytest.approx(4.0, abs=0.1)
    video, audio = probe.video, probe.audio
    assert video is not None and audio is not None
    assert (video.codec, video.get("width"), video.get("height")) == ("h264", 320, 240)
    assert video.get("fps") == 25.0 and video.get("rotation") == 0
    assert video.get("bit_rate") > 0
    assert (audio.codec, audio.get("sample_rate"), audio.get("channels")) == ("aac", 48000, 1)
    data = probe.as_dict()
    assert [s["type"] for s in data["streams"]] == ["video", "audio"]


@pytest.mark.parametrize(
    ("name", "codecs", "size", "seconds"),
    [
        ("video.mp4", ("h264", "aac"), (320, 240), 13.7),
        ("video.webm", ("vp8", "vorbis"), (170, 120), 1.2),
        ("video.mkv", ("h264", "aac"), (320, 240), 1.2),
        ("sample-10s.mov", ("h264", "aac"), (320, 320), 10.0),
    ],
)
def test_probe_of_corpus_videos(
    name: str, codecs: tuple[str, str], size: tuple[int, int], seconds: float
) -> None:
    path = CORPUS / "media" / name
    if not path.is_file():
        pytest.skip("test corpus not present")
    probe = ENGINE.probe(path)
    assert probe.video is not None and probe.audio is not None
    assert (probe.video.codec, probe.audio.codec) == codecs
    assert (probe.video.get("width"), probe.video.get("height")) == size
    assert probe.duration == pytest.approx(seconds, abs=0.1)


def test_a_text_file_is_not_media(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("just some words\n" * 50)
    with pytest.raises(UnsupportedFormat, match="no audio or video"):
        ENGINE.probe(text)


def test_a_playlist_naming_a_loopback_url_is_not_fetched(
    tmp_path: Path, listener: Listener, test_video: Path
) -> None:
    port, received = listener.port, listener.connections
    playlist = tmp_path / "list.m3u8"
    playlist.write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:4\n"
        f"#EXTINF:4,\nhttp://127.0.0.1:{port}/segment.ts\n"
        f"#EXTINF:4,\nfile:{test_video}\n#EXT-X-ENDLIST\n"
    )
    concat = tmp_path / "list.ffconcat"
    concat.write_text(f"ffconcat version 1.0\nfile 'http://127.0.0.1:{port}/a.mp4'\n")
    for path in (playlist, concat):
        with pytest.raises(UnsupportedFormat):
            ENGINE.probe(path)
        with pytest.raises((ProcessingFailed, CorruptDocument), match=r"not on whitelist|Invalid"):
            ENGINE.transcode(
                [*ENGINE.input_args(path), "-f", "null", "-"],
                expected_seconds=None,
                progress=lambda _f, _m: None,
            )
    time.sleep(0.3)
    assert received == []


def test_an_input_named_like_a_protocol_is_read_as_a_file(tmp_path: Path, test_video: Path) -> None:
    for name in ("a.mp4", "b.mp4", "concat:a.mp4|b.mp4"):
        (tmp_path / name).write_bytes(test_video.read_bytes())
    probe = ENGINE.probe(tmp_path / "concat:a.mp4|b.mp4")
    # One copy, not the two that the concat protocol would have joined.
    assert probe.duration == pytest.approx(4.0, abs=0.1)


def _ffmpeg_children() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.name() == "ffmpeg":
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def test_a_run_past_its_timeout_is_killed_with_its_group() -> None:
    engine = Ffmpeg(FfmpegSettings(timeout=1.0))
    seen: list[psutil.Process] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.extend(p for p in _ffmpeg_children() if p not in seen)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.monotonic()
    try:
        with pytest.raises(EngineTimeout, match="longer than its limit of 1 s"):
            engine.transcode(
                [
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc2=size=1280x720:rate=25:duration=600",
                    "-c:v",
                    "libvpx-vp9",
                    "-deadline",
                    "best",
                    "-f",
                    "null",
                    "-",
                ],
                expected_seconds=600,
                progress=lambda _f, _m: None,
            )
    finally:
        stop.set()
        watcher.join()
    assert time.monotonic() - started < 10
    assert seen, "FFmpeg never ran"
    for process in seen:
        assert not process.is_running()
    assert _ffmpeg_children() == []


def test_progress_is_reported_over_the_expected_duration(test_video: Path, tmp_path: Path) -> None:
    reports: list[float] = []
    ENGINE.transcode(
        [*ENGINE.input_args(test_video), "-c:v", "libx264", "-f", "mp4", f"file:{tmp_path}/o.mp4"],
        expected_seconds=4.0,
        progress=lambda fraction, _message: reports.append(fraction),
    )
    assert reports and reports[-1] == 1.0
    assert reports == sorted(reports)


def test_the_memory_cap_applies_to_the_child() -> None:
    grab = "bytearray(400 * 1024 * 1024)"
    done = run_guarded([sys.executable, "-c", grab], timeout=30, memory_bytes=200 * 1024 * 1024)
    assert done.returncode != 0 and "MemoryError" in done.stderr
    done = run_guarded([sys.executable, "-c", grab], timeout=30, memory_bytes=2048 * 1024 * 1024)
    assert done.returncode == 0


def test_a_missing_program_is_a_clear_dependency_error(test_video: Path) -> None:
    engine = Ffmpeg(FfmpegSettings(ffmpeg_path="/nonexistent/ffmpeg", ffprobe_path="no-ffprobe"))
    with pytest.raises(DependencyDown, match="not installed"):
        engine.probe(test_video)


_LONG_RUN = """
from docworker.config import FfmpegSettings, load_settings
from docworker.engines.ffmpeg import Ffmpeg
Ffmpeg(FfmpegSettings()).transcode(
    ["-f", "lavfi", "-i", "testsrc2=size=1280x720:duration=600", "-c:v", "libvpx-vp9",
     "-deadline", "best", "-f", "null", "-"],
    expected_seconds=600,
    progress=lambda _f, _m: None,
)
"""


def test_ffmpeg_dies_with_the_process_that_started_it() -> None:
    """A worker killed for its job's time or memory (SIGKILL, no clean-up) takes its
    FFmpeg along, although FFmpeg leads a process group of its own."""
    runner = subprocess.Popen([sys.executable, "-c", _LONG_RUN])
    try:
        deadline = time.monotonic() + 20
        children: list[psutil.Process] = []
        while not children and time.monotonic() < deadline:
            time.sleep(0.1)
            children = psutil.Process(runner.pid).children()
        assert children, "FFmpeg did not start"
        (ffmpeg,) = children
        assert os.getpgid(ffmpeg.pid) == ffmpeg.pid != os.getpgid(runner.pid)
    finally:
        runner.kill()
        runner.wait()
    gone, _ = psutil.wait_procs([ffmpeg], timeout=5)
    assert gone == [ffmpeg]


def test_v1_ffmpeg_path_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FFMPEG_PATH", " /usr/bin/ffmpeg ")
    assert load_settings().ffmpeg.ffmpeg_path == "/usr/bin/ffmpeg"
    monkeypatch.setenv("DOCWORKER_FFMPEG__FFMPEG_PATH", "/opt/ffmpeg")
    assert load_settings().ffmpeg.ffmpeg_path == "/opt/ffmpeg"


def test_version_is_read() -> None:
    version = ENGINE.version()
    assert version is not None and version[0].isdigit()
