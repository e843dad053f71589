"""The ``audio`` operation's ``transcribe`` with the real FFmpeg and the PocketSphinx model
its package ships: the words of a corpus recording, their times against its silences,
subtitles that the project's own subtitle reader reads back cue for cue."""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

import pytest

from bench.scoring import corpus_root
from docworker.config import SpeechSettings
from docworker.engines.speech import Word
from docworker.errors import DependencyDown, InvalidParameter
from docworker.formats.text.subtitles import read_timed_text
from docworker.operations import get_operation, validate_params
from docworker.operations.audio import Cue, cues_of, write_srt, write_vtt
from docworker.operations.base import Result
from tests.videos import ffmpeg, needs_ffmpeg, run_operation

pytestmark = needs_ffmpeg
OPERATION = get_operation("audio")
SPEECH = corpus_root() / "media" / "speech-10s.mp3"


run = functools.partial(run_operation, "audio")


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> Result:
    if not SPEECH.is_file():
        pytest.skip("test corpus not present")
    return run(SPEECH, tmp_path_factory.mktemp("speech"), action="transcribe")


def test_the_words_of_a_recording(spoken: Result) -> None:
    payload = spoken.payload
    assert payload["engine"] == "pocketsphinx" and payload["language"] == "en-us"
    # A LibriVox reading: "Shakespeare on scenery, by Oscar Wilde. This is ..."
    assert payload["text"].startswith("shakespeare on scenery by oscar")
    words = payload["words"]
    assert all(w["start"] < w["end"] for w in words)
    assert all(a["end"] <= b["start"] + 0.01 for a, b in itertools.pairwise(words))
    # The reading begins after a silence of 0.92 s (what analyze finds) and ends by 10 s.
    assert words[0]["start"] == pytest.approx(0.92, abs=0.15)
    assert words[-1]["end"] <= 10.05


def test_subtitles_read_back_cue_for_cue(spoken: Result) -> None:
    (artifact,) = spoken.artifacts
    assert artifact.name == "subtitles.vtt" and artifact.mime == "text/vtt"
    cues = read_timed_text(artifact.path.read_text(encoding="utf-8"), vtt=True)
    expected = spoken.payload["cues"]
    assert len(cues) == len(expected) >= 2
    for read, cue in zip(cues, expected, strict=True):
        assert read.start == pytest.approx(cue["start"], abs=0.001)
        assert read.end == pytest.approx(cue["end"], abs=0.001)
        assert read.text == cue["text"]


def test_a_stretch_and_subrip(tmp_path: Path) -> None:
    if not SPEECH.is_file():
        pytest.skip("test corpus not present")
    result = run(SPEECH, tmp_path, action="transcribe", start="5", format="srt")
    (artifact,) = result.artifacts
    assert artifact.name == "subtitles.srt"
    text = artifact.path.read_text(encoding="utf-8")
    assert text.startswith("1\n00:00:0")
    cues = read_timed_text(text, vtt=False)
    assert cues and all(cue.start >= 5.0 for cue in cues)


def test_silence_has_no_words(tmp_path: Path) -> None:
    quiet = tmp_path / "quiet.wav"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "2", str(quiet))
    result = run(quiet, tmp_path / "q", action="transcribe")
    assert result.payload["words"] == [] and result.payload["text"] == ""
    assert result.artifacts[0].path.read_text() == "WEBVTT\n"


def test_a_model_that_is_not_there_is_a_dependency_down(tmp_path: Path) -> None:
    if not SPEECH.is_file():
        pytest.skip("test corpus not present")
    missing = SpeechSettings(model_dir=str(tmp_path / "nowhere"), language="fr-fr")
    with pytest.raises(DependencyDown, match="fr-fr"):
        run(SPEECH, tmp_path, speech=missing, action="transcribe")
    with pytest.raises(InvalidParameter) as refused:
        validate_params(OPERATION, {"action": "transcribe", "format": "mp3"})
    assert refused.value.fields["parameter"] == "format"


def test_cues_break_at_pauses_lengths_and_lines() -> None:
    words = [Word(f"w{i}", i * 0.5, i * 0.5 + 0.4) for i in range(20)]
    words.insert(4, Word("late", 2.9, 3.0))  # after a 0.6 s pause
    cues = cues_of(sorted(words, key=lambda w: w.start))
    assert all(cue.end - cue.start <= 5.0 for cue in cues)
    long = cues_of([Word("word" * 3, i * 0.3, i * 0.3 + 0.2) for i in range(7)])
    assert all(len(line) <= 42 + 12 for cue in long for line in cue.text.split("\n"))
    assert write_srt([Cue(1.5, 3.25, "a")]) == "1\n00:00:01,500 --> 00:00:03,250\na\n"
    assert write_vtt([]) == "WEBVTT\n"
