"""The ``audio`` operation with the real FFmpeg, on a tone with silences at known times
(generated here) and on corpus recordings: extracted files probed back, loudness and
silences checked against what the signal must give, waveforms opened, errors named."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from PIL import Image

from bench.scoring import corpus_root
from docworker.config import FfmpegSettings
from docworker.engines.ffmpeg import Ffmpeg
from docworker.errors import InvalidParameter, LimitExceeded, UnsupportedFormat
from docworker.operations import get_operation, validate_params
from docworker.operations.media import filter_value
from tests.videos import ffmpeg, make_video, needs_ffmpeg, run_operation, test_video

__all__ = ["test_video"]
pytestmark = needs_ffmpeg
OPERATION = get_operation("audio")
ENGINE = Ffmpeg(FfmpegSettings())
#: The tone's silences (seconds): the signal is a 1 kHz sine at half of full scale
#: everywhere else, for 6 s.
SILENCES = ((1.0, 2.0), (3.5, 4.5))
SECONDS = 6.0


run = functools.partial(run_operation, "audio")


@pytest.fixture(scope="module")
def tone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6 s, 48 kHz mono WAV: a 1 kHz sine of amplitude 0.5 with the :data:`SILENCES`."""
    silent = "+".join(f"between(t,{a},{b - 1e-6})" for a, b in SILENCES)
    path = tmp_path_factory.mktemp("audio") / "tone.wav"
    expression = f"if({silent},0,0.5*sin(2*PI*1000*t))"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"aevalsrc='{expression}':s=48000:d={SECONDS}",
        "-c:a",
        "pcm_s16le",
        str(path),
    )
    return path


def test_analyze_measures_loudness_and_finds_the_silences(tone: Path, tmp_path: Path) -> None:
    report = run(tone, tmp_path, action="analyze").payload
    loudness = report["loudness"]
    # A full-scale 1 kHz sine on one channel is -3.01 LUFS (BS.1770); half of it, -9.03.
    # The silences are under the absolute gate; the 400 ms blocks across their edges are
    # partly silent, and pull the integrated figure down a little.
    assert -10.5 < loudness["integrated_lufs"] < -9.0
    assert loudness["true_peak_dbfs"] == pytest.approx(-6.0, abs=0.5)
    steady = run(tone, tmp_path / "steady", action="analyze", start="2", end="3.5").payload
    assert steady["loudness"]["integrated_lufs"] == pytest.approx(-9.03, abs=0.3)
    assert steady["silence"]["count"] == 0 and steady["sound_share"] == 1.0
    silence = report["silence"]
    assert silence["count"] == 2 and not silence["truncated"]
    found = [(s["start"], s["end"]) for s in silence["segments"]]
    for (start, end), (a, b) in zip(found, SILENCES, strict=True):
        assert start == pytest.approx(a, abs=0.03) and end == pytest.approx(b, abs=0.03)
    assert report["duration"] == pytest.approx(SECONDS, abs=0.01)
    assert report["sound_share"] == pytest.approx(4 / 6, abs=0.02)


def test_analyze_a_stretch_reports_times_of_the_file(tone: Path, tmp_path: Path) -> None:
    report = run(tone, tmp_path, action="analyze", start="3", end="5.5").payload
    assert report["start"] == 3.0 and report["duration"] == pytest.approx(2.5, abs=0.01)
    (segment,) = report["silence"]["segments"]
    assert segment["start"] == pytest.approx(3.5, abs=0.03)
    assert segment["end"] == pytest.approx(4.5, abs=0.03)


def test_a_silence_open_at_the_end_ends_with_the_stretch(tone: Path, tmp_path: Path) -> None:
    report = run(tone, tmp_path, action="analyze", start="0.5", end="1.8").payload
    (segment,) = report["silence"]["segments"]
    assert segment["start"] == pytest.approx(1.0, abs=0.03)
    assert segment["end"] == pytest.approx(1.8, abs=0.03)


def test_silence_thresholds_are_the_callers(tone: Path, tmp_path: Path) -> None:
    # The tone is at -6 dBFS: a threshold above it makes the whole stretch silent.
    loud = run(tone, tmp_path, action="analyze", silence_threshold=-3, silence_min="0.2")
    assert loud.payload["silence"]["count"] == 1 and loud.payload["sound_share"] == 0.0
    # Silences of 1 s are not reported when 1.5 s is the shortest asked for.
    long = run(tone, tmp_path / "long", action="analyze", silence_min="1.5").payload
    assert long["silence"]["count"] == 0 and long["sound_share"] == 1.0


def test_scratch_files_survive_odd_folder_names(tone: Path, tmp_path: Path) -> None:
    odd = tmp_path / "a:b,c'd[e];f"
    report = run(tone, odd, action="analyze").payload
    assert report["silence"]["count"] == 2
    assert filter_value("/x:y,z") == "/x\\\\:y\\,z"


@pytest.mark.parametrize(
    ("fmt", "codec", "suffix"),
    [
        ("wav", "pcm_s16le", "wav"),
        ("flac", "flac", "flac"),
        ("mp3", "mp3", "mp3"),
        ("opus", "opus", "opus"),
        ("m4a", "aac", "m4a"),
    ],
)
def test_extract_writes_each_format(
    tone: Path, tmp_path: Path, fmt: str, codec: str, suffix: str
) -> None:
    result = run(tone, tmp_path, format=fmt, start="1.5", duration="2")
    (artifact,) = result.artifacts
    assert artifact.name == f"audio.{suffix}"
    made = ENGINE.probe(artifact.path)
    assert made.audio is not None and made.audio.codec == codec
    assert made.duration == pytest.approx(2.0, abs=0.05)
    assert result.payload["output"]["codec"] == codec
    assert result.payload["output"]["size"] == artifact.path.stat().st_size


def test_extract_the_sound_of_a_video_resampled_to_mono(test_video: Path, tmp_path: Path) -> None:
    result = run(test_video, tmp_path, format="wav", sample_rate=16000, channels=1)
    made = ENGINE.probe(result.artifacts[0].path)
    assert made.video is None and made.audio is not None
    assert (made.audio.get("sample_rate"), made.audio.get("channels")) == (16000, 1)
    assert made.duration == pytest.approx(4.0, abs=0.05)


def test_waveform_draws_sound_and_leaves_silence_empty(tone: Path, tmp_path: Path) -> None:
    result = run(tone, tmp_path, action="waveform", width=600, height=120)
    (artifact,) = result.artifacts
    with Image.open(artifact.path) as image:
        assert image.size == (600, 120)
        alpha = image.convert("RGBA").getchannel("A")

    def drawn(seconds: float) -> int:
        x = int(seconds / SECONDS * 600)
        column = [alpha.getpixel((x, y)) for y in range(120)]  # type: ignore[misc]
        return sum(1 for value in column if value)

    assert drawn(0.5) > 20 and drawn(5.5) > 20  # the tone is drawn
    assert drawn(1.5) <= 2 and drawn(4.0) <= 2  # the silences draw (almost) nothing


def test_corpus_recordings(tmp_path: Path) -> None:
    speech = corpus_root() / "media" / "speech-10s.mp3"
    if not speech.is_file():
        pytest.skip("test corpus not present")
    report = run(speech, tmp_path, action="analyze").payload
    assert report["input"]["streams"][0]["codec"] == "mp3"
    assert -40 < report["loudness"]["integrated_lufs"] < -10
    assert 0.5 < report["sound_share"] <= 1.0
    probe = run(speech, tmp_path, action="probe").payload
    assert probe["duration"] == pytest.approx(10.0, abs=0.1)


def test_errors_name_what_is_wrong(tmp_path: Path, tone: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("no sound here\n")
    with pytest.raises(UnsupportedFormat):
        run(text, tmp_path / "t")
    silent_video = make_video(tmp_path / "mute.mp4", seconds=1)
    muted = tmp_path / "muted.mp4"
    ffmpeg("-i", str(silent_video), "-an", "-c:v", "copy", str(muted))
    with pytest.raises(UnsupportedFormat, match="no audio"):
        run(muted, tmp_path / "m")
    with pytest.raises(InvalidParameter, match="past the end"):
        run(tone, tmp_path / "p", start="60")
    for params, name in [
        ({"format": "wav", "bitrate": "128k"}, "bitrate"),
        ({"action": "analyze", "format": "mp3"}, "format"),
        ({"action": "probe", "start": "1"}, "start"),
        ({"format": "aiff"}, "format"),
        ({"duration": "2", "end": "3"}, "end"),
        ({"action": "analyze", "silence_threshold": 5}, "silence_threshold"),
    ]:
        with pytest.raises(InvalidParameter) as refused:
            validate_params(OPERATION, params)
        assert refused.value.fields["parameter"] == name, params
    with pytest.raises(LimitExceeded):
        run(tone, tmp_path / "l", FfmpegSettings(max_duration=2.0), action="analyze")
