"""``POST /api/v2/audio`` on a live ``docworker serve``: the analysis as JSON, an extracted
track and a waveform answered as files, errors as problems, and the OpenAPI description."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from PIL import Image

from bench.scoring import corpus_root
from docworker.config import FfmpegSettings
from docworker.engines.ffmpeg import Ffmpeg
from tests.videos import needs_ffmpeg, test_video

__all__ = ["test_video"]
pytestmark = needs_ffmpeg


def _file(path: Path) -> dict[str, tuple[str, bytes]]:
    return {"file": (path.name, path.read_bytes())}


def test_analyze_answers_json(client: httpx.Client, test_video: Path) -> None:
    answer = client.post("/api/v2/audio", files=_file(test_video), data={"action": "analyze"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # The test video's sound is a steady 440 Hz tone: loud, never silent.
    assert body["duration"] == pytest.approx(4.0, abs=0.05)
    assert body["silence"]["count"] == 0 and body["sound_share"] == 1.0
    assert -30 < body["loudness"]["integrated_lufs"] < 0


def test_extract_answers_the_audio_file(
    client: httpx.Client, test_video: Path, tmp_path: Path
) -> None:
    answer = client.post(
        "/api/v2/audio",
        files=_file(test_video),
        data={"format": "mp3", "start": "1", "duration": "2", "channels": "1"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "audio/mpeg"
    assert 'filename="audio.mp3"' in answer.headers["content-disposition"]
    saved = tmp_path / "out.mp3"
    saved.write_bytes(answer.content)
    made = Ffmpeg(FfmpegSettings()).probe(saved)
    assert made.audio is not None and made.audio.codec == "mp3" and made.video is None
    assert made.audio.get("channels") == 1
    assert made.duration == pytest.approx(2.0, abs=0.1)


def test_waveform_answers_a_png(client: httpx.Client, test_video: Path) -> None:
    answer = client.post(
        "/api/v2/audio",
        files=_file(test_video),
        data={"action": "waveform", "width": "300", "height": "80"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(answer.content)) as image:
        assert image.size == (300, 80)


def test_errors_are_problems(client: httpx.Client, test_video: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("no sound here\n")
    refused = client.post("/api/v2/audio", files=_file(text))
    assert refused.status_code == 415
    assert refused.headers["content-type"] == "application/problem+json"
    bad = client.post(
        "/api/v2/audio", files=_file(test_video), data={"format": "wav", "bitrate": "128k"}
    )
    assert bad.status_code == 422 and bad.json()["parameter"] == "bitrate"
    unknown = client.post("/api/v2/audio", files=_file(test_video), data={"format": "aiff"})
    assert unknown.status_code == 422 and unknown.json()["parameter"] == "format"


def test_openapi_documents_the_route(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    route = spec["paths"]["/api/v2/audio"]["post"]
    assert route["operationId"] == "audio"
    assert {"200", "202", "413", "415", "422", "429", "503"} <= set(route["responses"])
    content = route["responses"]["200"]["content"]
    assert {"application/json", "audio/wav", "audio/mpeg", "image/png"} <= set(content)
    ref = route["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    form = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]
    assert {"file", "action", "format", "start", "silence_threshold", "width"} <= set(form)
    assert all(form[name].get("description") for name in ("format", "bitrate", "silence_min"))


def test_transcribe_answers_subtitles(client: httpx.Client) -> None:
    speech = corpus_root() / "media" / "speech-a-little-bottle-of-water.mp3"
    if not speech.is_file():
        pytest.skip("test corpus not present")
    answer = client.post("/api/v2/audio", files=_file(speech), data={"action": "transcribe"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/vtt")
    assert answer.text.startswith("WEBVTT\n\n00:00:0")
    assert "water" in answer.text
