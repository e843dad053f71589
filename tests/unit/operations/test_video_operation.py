"""The ``video`` operation with the real FFmpeg: probes, transcodes and frames opened
and checked (containers by magic bytes, codecs, sizes, clip durations, pixels)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bench.scoring import corpus_root
from docworker.config import FfmpegSettings, load_settings
from docworker.engines.ffmpeg import Ffmpeg, Probe
from docworker.errors import (
    CorruptDocument,
    InvalidParameter,
    LimitExceeded,
    UnsupportedFormat,
)
from docworker.formats.detect import detect
from docworker.operations import get_operation, validate_params
from docworker.operations.base import InputFile, OperationContext, Result
from docworker.operations.video import VideoOperation
from tests.videos import (
    BARS,
    STILL_TIMES,
    bar_colours,
    close_to,
    ffmpeg,
    make_video,
    needs_ffmpeg,
    run_operation,
    test_video,
)

__all__ = ["test_video"]
pytestmark = needs_ffmpeg
CORPUS = corpus_root()
OPERATION = VideoOperation()
ENGINE = Ffmpeg(FfmpegSettings())


run = functools.partial(run_operation, "video")


def output_of(result: Result) -> tuple[Path, Probe]:
    (artifact,) = result.artifacts
    return artifact.path, ENGINE.probe(artifact.path)


def corpus(name: str) -> Path:
    path = CORPUS / name
    if not path.is_file():
        pytest.skip("test corpus not present")
    return path


def test_the_operation_is_registered_on_the_media_queue() -> None:
    assert get_operation("video") is not None
    assert get_operation("video").queue == "media"


def test_probe_answers_json_only(test_video: Path, tmp_path: Path) -> None:
    result = run(test_video, tmp_path, action="probe")
    assert result.artifacts == []
    payload = result.payload
    assert payload["mime"] == "video/mp4" and payload["duration"] == pytest.approx(4.0, abs=0.1)
    video, audio = payload["streams"]
    assert (video["codec"], video["width"], video["height"], video["fps"]) == ("h264", 320, 240, 25)
    assert (audio["codec"], audio["sample_rate"]) == ("aac", 48000)


def test_transcode_defaults_to_webm_vp9_opus(test_video: Path, tmp_path: Path) -> None:
    result = run(test_video, tmp_path)
    path, made = output_of(result)
    assert path.name == "video.webm" and result.artifacts[0].mime == "video/webm"
    head = path.read_bytes()[:64]
    assert head.startswith(b"\x1a\x45\xdf\xa3") and b"webm" in head
    assert made.video is not None and made.audio is not None
    assert (made.video.codec, made.audio.codec) == ("vp9", "opus")
    assert (made.video.get("width"), made.video.get("height")) == (320, 240)
    assert made.duration == pytest.approx(4.0, abs=0.1)
    assert result.payload["output"]["video_codec"] == "vp9"


def test_v1_clip_and_width_keep_the_aspect_ratio(test_video: Path, tmp_path: Path) -> None:
    result = run(test_video, tmp_path, clip="1:2", width=160)
    _, made = output_of(result)
    assert made.video is not None
    assert (made.video.get("width"), made.video.get("height")) == (160, 120)
    assert made.duration == pytest.approx(2.0, abs=0.1)
    assert result.payload["output"]["start"] == 1.0


def test_mp4_h264_with_start_end_height_and_no_audio(test_video: Path, tmp_path: Path) -> None:
    result = run(
        test_video, tmp_path, format="mp4", start="500ms", end="00:00:02", height=100, mute=True
    )
    path, made = output_of(result)
    assert path.read_bytes()[4:8] == b"ftyp"
    assert made.video is not None and made.audio is None
    assert made.video.codec == "h264"
    assert (made.video.get("width"), made.video.get("height")) == (134, 100)
    assert made.duration == pytest.approx(1.5, abs=0.1)


def test_vp8_with_vorbis_fits_a_box(test_video: Path, tmp_path: Path) -> None:
    result = run(test_video, tmp_path, video_codec="vp8", width=100, height=100, duration=1)
    _, made = output_of(result)
    assert made.video is not None and made.audio is not None
    assert (made.video.codec, made.audio.codec) == ("vp8", "vorbis")
    assert (made.video.get("width"), made.video.get("height")) == (100, 76)
    assert made.duration == pytest.approx(1.0, abs=0.1)


def test_a_bitrate_cap_is_kept(tmp_path: Path) -> None:
    source = make_video(tmp_path / "big.mp4", size="640x480", seconds=2)
    uncapped = run(source, tmp_path / "a", crf=4, mute=True)
    capped = run(source, tmp_path / "b", crf=4, max_bitrate="200k", mute=True)
    assert capped.payload["output"]["size"] < uncapped.payload["output"]["size"] / 2
    assert capped.payload["output"]["size"] * 8 / 2 < 200_000 * 1.5


@pytest.mark.parametrize("at", STILL_TIMES)
def test_a_frame_as_png_has_the_test_pattern(test_video: Path, tmp_path: Path, at: float) -> None:
    result = run(test_video, tmp_path, action="frame", time=at)
    (artifact,) = result.artifacts
    assert artifact.name == "frame.png" and artifact.mime == "image/png"
    assert artifact.path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(artifact.path) as image:
        assert image.size == (320, 240)
    found = bar_colours(artifact.path)
    assert all(close_to(f, e) for f, e in zip(found, BARS, strict=True)), found
    assert result.payload["output"]["time"] == at


def test_frames_as_jpeg_and_webp_fitted(test_video: Path, tmp_path: Path) -> None:
    jpeg = run(test_video, tmp_path / "j", action="frame", format="jpg", width=160, time=3.2)
    path = jpeg.artifacts[0].path
    assert path.name == "frame.jpeg" and path.read_bytes()[:3] == b"\xff\xd8\xff"
    with Image.open(path) as image:
        assert image.size == (160, 120)
    assert all(close_to(f, e) for f, e in zip(bar_colours(path), BARS, strict=True))
    webp = run(test_video, tmp_path / "w", action="frame", format="webp", height=60, percent=0)
    data = webp.artifacts[0].path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    with Image.open(webp.artifacts[0].path) as image:
        assert image.size == (80, 60)


def test_frame_by_percent_and_past_the_end(test_video: Path, tmp_path: Path) -> None:
    result = run(test_video, tmp_path / "p", action="frame", percent=50)
    assert result.payload["output"]["time"] == pytest.approx(2.0, abs=0.05)
    last = run(test_video, tmp_path / "l", action="frame", percent=100)
    assert 3.9 <= last.payload["output"]["time"] < 4.0
    with pytest.raises(InvalidParameter, match="past the end"):
        run(test_video, tmp_path / "e", action="frame", time=9)
    with pytest.raises(InvalidParameter, match="past the end"):
        run(test_video, tmp_path / "s", clip="10:2")


def test_a_text_file_is_refused_clearly(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n" * 20)
    with pytest.raises(UnsupportedFormat, match="reads video and audio files, not text/plain"):
        run(text, tmp_path)


def test_a_broken_video_is_corrupt(test_video: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(test_video.read_bytes()[:2000])
    assert detect(broken).mime == "video/mp4"
    with pytest.raises(CorruptDocument):
        run(broken, tmp_path)


def test_a_playlist_is_refused(tmp_path: Path, test_video: Path) -> None:
    playlist = tmp_path / "list.m3u8"
    playlist.write_text(f"#EXTM3U\n#EXTINF:4,\nfile:{test_video}\n#EXT-X-ENDLIST\n")
    with pytest.raises(UnsupportedFormat):
        run(playlist, tmp_path, action="probe")


def test_limits_duration_pixels_and_output_bytes(test_video: Path, tmp_path: Path) -> None:
    with pytest.raises(LimitExceeded, match="limit of 3 s"):
        run(test_video, tmp_path / "d", FfmpegSettings(max_duration=3))
    assert run(test_video, tmp_path / "c", FfmpegSettings(max_duration=3), clip="0:2").artifacts
    with pytest.raises(LimitExceeded, match="frame pixels"):
        run(test_video, tmp_path / "p", FfmpegSettings(max_pixels=320 * 200))
    with pytest.raises(LimitExceeded, match="output frame pixels"):
        run(test_video, tmp_path / "o", FfmpegSettings(max_pixels=320 * 240), width=640)
    with pytest.raises(LimitExceeded, match="limit of 4096 bytes"):
        run(test_video, tmp_path / "b", FfmpegSettings(max_output_bytes=4096))


def test_audio_only_input(tmp_path: Path) -> None:
    mp3 = corpus("media/speech-10s.mp3")
    result = run(mp3, tmp_path / "a", clip="0:1.5")
    _, made = output_of(result)
    assert made.video is None and made.audio is not None and made.audio.codec == "opus"
    assert made.duration == pytest.approx(1.5, abs=0.1)
    with pytest.raises(UnsupportedFormat, match="no video stream"):
        run(mp3, tmp_path / "f", action="frame")


def test_corpus_files_without_media_or_without_a_name(tmp_path: Path) -> None:
    metadata_only = corpus("media/quicktime-metadata.mov")
    probe = run(metadata_only, tmp_path / "p", action="probe").payload
    assert probe["streams"] and {s["type"] for s in probe["streams"]} == {"data"}
    with pytest.raises(UnsupportedFormat, match="neither video nor audio"):
        run(metadata_only, tmp_path / "t")
    unnamed = corpus("hostile/webm-no-extension")
    probe = run(unnamed, tmp_path / "u", action="probe").payload
    assert probe["mime"] == "video/webm" and probe["streams"][0]["type"] == "video"


def test_mov_corpus_video_frame(tmp_path: Path) -> None:
    result = run(corpus("media/sample-10s.mov"), tmp_path, action="frame", width=64)
    with Image.open(result.artifacts[0].path) as image:
        assert image.size == (64, 64)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"clip": "5:2.5"}, (5.0, 2.5, None)),
        ({"clip": "1500ms:2s"}, (1.5, 2.0, None)),
        ({"start": "01:02.5", "end": "70"}, (62.5, None, 70.0)),
        ({"start": 3, "duration": "250000us"}, (3.0, 0.25, None)),
    ],
)
def test_times_are_read_as_ffmpeg_reads_them(
    raw: dict[str, Any], expected: tuple[float, float | None, float | None]
) -> None:
    params = validate_params(OPERATION, raw)
    assert (params.start, params.duration, params.end) == expected  # type: ignore[attr-defined]
    assert params.clip is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ({"clip": "00:00:05:10"}, "clip"),
        ({"clip": "5"}, "clip"),
        ({"clip": "a:b"}, "clip"),
        ({"clip": "1:2", "start": 1}, "clip"),
        ({"duration": 1, "end": 2}, "end"),
        ({"start": 3, "end": 2}, "end"),
        ({"format": "gif"}, "format"),
        ({"action": "frame", "format": "webm"}, "format"),
        ({"format": "mp4", "video_codec": "vp9"}, "video_codec"),
        ({"time": 1, "percent": 5, "action": "frame"}, "percent"),
        ({"max_bitrate": "lots"}, "max_bitrate"),
        ({"width": 1}, "width"),
    ],
)
def test_bad_parameters_name_the_parameter(raw: dict[str, Any], name: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        validate_params(OPERATION, raw)
    assert caught.value.fields["parameter"] == name


@pytest.mark.parametrize(
    ("ext", "mime"),
    [
        ("mp4", "video/mp4"),
        ("webm", "video/webm"),
        ("mkv", "video/x-matroska"),
        ("avi", "video/x-msvideo"),
        ("mov", "video/quicktime"),
    ],
)
def test_every_usual_container_is_detected_and_read(tmp_path: Path, ext: str, mime: str) -> None:
    path = make_video(tmp_path / f"clip.{ext}", size="64x48", seconds=0.5)
    detection = detect(path, "upload")
    assert (detection.mime, detection.format) == (mime, "video")
    frame = run(path, tmp_path / "f", action="frame", time=0)
    with Image.open(frame.artifacts[0].path) as image:
        assert image.size == (64, 48)


def test_a_rotated_video_is_measured_and_turned_as_displayed(
    test_video: Path, tmp_path: Path
) -> None:
    rotated = tmp_path / "rotated.mp4"
    subprocess.run(
        [
            *("ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(test_video), "-c", "copy"),
            *("-metadata:s:v:0", "rotate=90", str(rotated)),
        ],
        check=True,
        timeout=60,
    )
    video = run(rotated, tmp_path / "p", action="probe").payload["streams"][0]
    assert (video["width"], video["height"], video["rotation"]) == (320, 240, 270)
    assert (video["display_width"], video["display_height"]) == (240, 320)
    frame = run(rotated, tmp_path / "f", action="frame", time=0).artifacts[0].path
    with Image.open(frame) as image:
        assert image.size == (240, 320)
        rgb = image.convert("RGB")
        # Turned a quarter anticlockwise: the bars lie across, red at the bottom.
        assert close_to(rgb.getpixel((180, 310)), BARS[0])  # type: ignore[arg-type]
        assert close_to(rgb.getpixel((180, 8)), BARS[5])  # type: ignore[arg-type]
    _, made = output_of(run(rotated, tmp_path / "t", duration=1, width=120))
    assert made.video is not None
    assert (made.video.get("width"), made.video.get("height")) == (120, 160)


def test_hls_is_a_playlist_and_segments_ffprobe_plays(test_video: Path, tmp_path: Path) -> None:
    result = run(test_video, tmp_path, format="hls", width=160)
    names = [artifact.name for artifact in result.artifacts]
    assert names == ["playlist.m3u8", "segment-000.ts"]  # 4 s of video: one 4 s segment
    output = result.payload["output"]
    assert (output["video_codec"], output["audio_codec"]) == ("h264", "aac")
    assert output["segments"] == 1 and output["duration"] == pytest.approx(4.0, abs=0.05)
    # ffprobe reads the playlist (HLS allowed here, as a player would) to its end.
    playlist = result.artifacts[0].path
    done = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-protocol_whitelist",
            "file",
            "-show_entries",
            "format=duration:stream=codec_name",
            "-of",
            "json",
            str(playlist),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert b'"h264"' in done.stdout and b'"aac"' in done.stdout
    longer = make_video(tmp_path / "ten.mp4", seconds=10)
    split = run(longer, tmp_path / "ten", format="hls", width=160)
    assert [a.name for a in split.artifacts][1:] == [
        "segment-000.ts",
        "segment-001.ts",
        "segment-002.ts",
    ]
    text = split.artifacts[0].path.read_text()
    assert "#EXT-X-ENDLIST" in text and text.count("#EXTINF:4.0") == 2


def test_probe_lists_chapters(tmp_path: Path) -> None:
    chapters = tmp_path / "chapters.txt"
    chapters.write_text(
        ";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1500\ntitle=Opening\n"
        "[CHAPTER]\nTIMEBASE=1/1000\nSTART=1500\nEND=4000\ntitle=Main part\n"
    )
    video = tmp_path / "chaptered.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=d=4:s=160x120",
        "-i",
        str(chapters),
        "-map_metadata",
        "1",
        "-map_chapters",
        "1",
        "-pix_fmt",
        "yuv420p",
        str(video),
    )
    payload = run(video, tmp_path / "out", action="probe").payload
    assert payload["chapters"] == [
        {"start": 0.0, "end": 1.5, "title": "Opening"},
        {"start": 1.5, "end": 4.0, "title": "Main part"},
    ]


def test_concat_joins_videos_of_different_shapes(test_video: Path, tmp_path: Path) -> None:
    wide = make_video(tmp_path / "wide.mp4", size="320x180", seconds=2)
    mute = tmp_path / "mute.mp4"
    ffmpeg("-i", str(wide), "-an", "-c:v", "copy", str(mute))
    settings = load_settings(ffmpeg=FfmpegSettings())
    ctx = OperationContext(workdir=tmp_path / "out", settings=settings)
    (tmp_path / "out").mkdir()
    others = (InputFile(wide, wide.name), InputFile(mute, mute.name))
    source = InputFile(test_video, test_video.name, others=others)
    params = validate_params(OPERATION, {"action": "concat", "format": "mp4", "width": 160})
    result = OPERATION.run(ctx, source, params)
    output = result.payload["output"]
    assert output["inputs"] == 3 and (output["width"], output["height"]) == (160, 120)
    path, made = output_of(result)
    assert made.duration == pytest.approx(8.0, abs=0.1)
    assert made.audio is not None and made.audio.codec == "aac"
    # The wide input is letter-boxed into the first one's 4:3 picture: black bands.
    frame = run(path, tmp_path / "frame", action="frame", time="5", format="png")
    with Image.open(frame.artifacts[0].path) as image:
        top = image.convert("L").getpixel((80, 2))
    assert top is not None and top < 20  # type: ignore[operator]
    with pytest.raises(InvalidParameter, match="two files"):
        run(test_video, tmp_path / "one", action="concat")
    with pytest.raises(InvalidParameter, match="one file"):
        OPERATION.run(ctx, source, validate_params(OPERATION, {"format": "mp4"}))


def test_the_frame_rate_cap(test_video: Path, tmp_path: Path) -> None:
    capped = run(test_video, tmp_path / "capped", format="mp4", max_fps=10, mute=True)
    _, made = output_of(capped)
    assert made.video is not None and made.video.get("fps") == pytest.approx(10.0)
    kept = run(test_video, tmp_path / "kept", format="mp4", max_fps=60, mute=True)
    _, made = output_of(kept)
    assert made.video is not None and made.video.get("fps") == pytest.approx(25.0)
