"""Speech recognition: the words spoken in 16 kHz mono audio, with their times.

The recogniser is CMU PocketSphinx (``pocketsphinx`` on PyPI), whose wheel ships an
American English model (acoustic model, language model and dictionary): nothing is
downloaded at run time. Another PocketSphinx model is used by pointing
``speech.model_dir`` at a folder laid out as the packaged one (``<language>/`` the
acoustic model, ``<language>.lm.bin`` and ``cmudict-<language>.dict``) and naming it
in ``speech.language``.

Audio arrives in chunks as FFmpeg decodes it (:meth:`Transcription.feed`), so memory
does not grow with the length of the recording: PocketSphinx's voice activity
detector cuts it into utterances at the pauses, each decoded when it ends, and only
the words found so far are kept. The decoder (its model is about 40 MB, a second and
a half to load) is kept for the life of the worker process, per model.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docworker.config import SpeechSettings
from docworker.errors import DependencyDown, EngineFailed

NAME = "PocketSphinx"
#: Sample rate the recogniser reads (16-bit mono PCM).
SAMPLE_RATE = 16_000
#: PocketSphinx's frames per second (its word times are in frames).
_FRAMES_PER_SECOND = 100
#: Tokens that are not words: sentence marks, silence and noise fillers.
_NOT_WORDS = re.compile(r"^(<s>|</s>|<sil>|\[.*\]|\+\+.*\+\+)$")
#: The pronunciation variant a word may carry: ``lot(2)``.
_VARIANT = re.compile(r"\(\d+\)$")


@dataclass(frozen=True)
class Word:
    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Model:
    """The files of a PocketSphinx model."""

    language: str
    acoustic: Path
    language_model: Path
    dictionary: Path


def model_of(settings: SpeechSettings) -> Model:
    """The model ``settings`` name; :class:`DependencyDown` when it is not there."""
    language = settings.language
    if settings.model_dir is not None:
        folder = Path(settings.model_dir)
    else:
        try:
            import pocketsphinx
        except ImportError:
            raise DependencyDown(
                f"{NAME} is not installed here (pip install pocketsphinx)", engine=NAME
            ) from None
        folder = Path(pocketsphinx.get_model_path()) / language
    model = Model(
        language=language,
        acoustic=folder / language,
        language_model=folder / f"{language}.lm.bin",
        dictionary=folder / f"cmudict-{language}.dict",
    )
    missing = [
        str(path)
        for path in (model.acoustic, model.language_model, model.dictionary)
        if not path.exists()
    ]
    if missing:
        raise DependencyDown(
            f"the speech model '{language}' is incomplete: {', '.join(missing)} not found",
            engine=NAME,
        )
    return model


@functools.lru_cache(maxsize=2)
def _decoder(model: Model) -> Any:
    from pocketsphinx import Decoder

    try:
        return Decoder(
            hmm=str(model.acoustic),
            lm=str(model.language_model),
            dict=str(model.dictionary),
            samprate=SAMPLE_RATE,
            loglevel="FATAL",
        )
    except (RuntimeError, ValueError) as exc:
        raise EngineFailed(f"{NAME} could not load its model: {exc}", engine=NAME) from None


class Transcription:
    """One recording's recognition: fed 16 kHz mono 16-bit PCM as it is decoded."""

    def __init__(self, model: Model) -> None:
        from pocketsphinx import Endpointer

        self._decoder = _decoder(model)
        self._endpointer = Endpointer(sample_rate=SAMPLE_RATE)
        self._frame_bytes: int = self._endpointer.frame_bytes
        self._pending = bytearray()
        self._in_utterance = False
        self._utterance_start = 0.0
        self.words: list[Word] = []
        #: Seconds of audio read so far.
        self.seconds = 0.0

    def feed(self, chunk: bytes) -> None:
        self._pending.extend(chunk)
        size = self._frame_bytes
        while len(self._pending) >= size:
            frame = bytes(self._pending[:size])
            del self._pending[:size]
            self.seconds += size / 2 / SAMPLE_RATE
            self._speech(self._endpointer.process(frame), ended=False)

    def finish(self) -> list[Word]:
        """The words of the whole recording, in order."""
        if self._endpointer.in_speech:
            self._speech(self._endpointer.end_stream(bytes(self._pending)), ended=True)
        elif self._in_utterance:
            self._end_utterance()
        self._pending.clear()
        return self.words

    def _speech(self, speech: bytes | None, *, ended: bool) -> None:
        if speech is None:
            return
        if not self._in_utterance:
            self._decoder.start_utt()
            self._in_utterance = True
            self._utterance_start = float(self._endpointer.speech_start)
        self._decoder.process_raw(speech, False, False)
        if ended or not self._endpointer.in_speech:
            self._end_utterance()

    def _end_utterance(self) -> None:
        self._decoder.end_utt()
        self._in_utterance = False
        offset = self._utterance_start
        for segment in self._decoder.seg():
            word = _VARIANT.sub("", segment.word)
            if _NOT_WORDS.match(word):
                continue
            self.words.append(
                Word(
                    text=word,
                    start=round(offset + segment.start_frame / _FRAMES_PER_SECOND, 2),
                    end=round(offset + (segment.end_frame + 1) / _FRAMES_PER_SECOND, 2),
                )
            )
