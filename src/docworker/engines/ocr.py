"""Tesseract OCR through tesserocr: language data, a per-process engine, page recognition.

Starting a Tesseract instance loads its language models (0.1–1 s), so each
process keeps its instances in a pool keyed by (languages, page segmentation
mode) and reuses them from job to job. An instance serves one thread at a time:
tesserocr releases the GIL while it recognises, so threads may share the pool.

:class:`TesseractOcr` is the :class:`~docworker.formats.base.OcrReader` the
operations hand to parsers. Images are prepared first (see
:mod:`docworker.engines.ocr_preprocess`); the words found are mapped back onto
the caller's image and grouped into lines and paragraphs.
"""

from __future__ import annotations

import os
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from docworker.errors import DependencyDown, EngineFailed, InvalidParameter
from docworker.formats.base import OcrLine, OcrPage, OcrParagraph, OcrWord, PixelBox
from docworker.metrics import engine_call
from docworker.tracing import engine_span, set_attributes

if TYPE_CHECKING:
    from docworker.engines.ocr_preprocess import BoxMapper, Prepared

#: Where Debian and most distributions put the language data, newest version first.
_TESSDATA_GLOBS = ("/usr/share/tesseract-ocr/*/tessdata", "/usr/share/tessdata")
#: Data files that are not languages to offer: orientation/script and equation models.
_NOT_LANGUAGES = frozenset({"osd", "equ"})
DEFAULT_PSM = 3
#: Page segmentation modes that find no text: orientation only (0), layout only (2).
_PSM_WITHOUT_TEXT = frozenset({0, 2})
#: Idle Tesseract instances a process keeps, all languages together (each holds
#: its language models: 30–100 MB); the least recently used are ended first.
_MAX_IDLE = 4
#: Orientation found with less confidence than this is not acted on (Tesseract's
#: own scale, where 15 is "reasonably confident").
_MIN_ORIENTATION_CONFIDENCE = 2.0
#: A reading whose mean word confidence is under this may be of turned text.
_CHECK_ORIENTATION_BELOW = 0.6
#: Scripts written without spaces between words (Han, kana), with their punctuation.
_UNSPACED = re.compile(
    r"[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]"
)


@dataclass(frozen=True)
class Preprocessing:
    """Which preparation steps run; the defaults are the ones measured to help."""

    #: Scale small text up to a size Tesseract reads well.
    normalize_resolution: bool = True
    #: Undo quarter turns found by Tesseract's orientation detection (needs ``osd``).
    orientation: bool = True
    #: Straighten a skew of up to 15 degrees.
    deskew: bool = True
    #: A 3×3 median filter against salt-and-pepper noise.
    denoise: bool = False
    #: Otsu thresholding to black and white before Tesseract's own.
    binarize: bool = False

    @classmethod
    def none(cls) -> Preprocessing:
        return cls(
            normalize_resolution=False,
            orientation=False,
            deskew=False,
            denoise=False,
            binarize=False,
        )


@cache
def _tesserocr() -> Any:
    # The tesserocr wheel's libtesseract is single-threaded, but one built against
    # a distribution's OpenMP libtesseract is not, and there OpenMP threads made a
    # page take 8.4 s instead of 3.0 s on two cores (STACK.md). The limit must be
    # set before the library loads.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    try:
        import tesserocr
    except ImportError as exc:
        raise DependencyDown(
            f"OCR is unavailable: tesserocr cannot be imported ({exc})", engine="Tesseract"
        ) from exc
    return tesserocr


@cache
def tessdata_dir() -> Path:
    """The folder holding Tesseract's ``*.traineddata`` files.

    ``TESSDATA_PREFIX`` first (the folder itself or its parent, as Tesseract
    accepts both), then the distributions' usual places.
    """
    candidates: list[Path] = []
    prefix = os.environ.get("TESSDATA_PREFIX")
    if prefix:
        candidates += [Path(prefix), Path(prefix) / "tessdata"]
    for pattern in _TESSDATA_GLOBS:
        root = Path("/")
        candidates += sorted(root.glob(pattern.lstrip("/")), reverse=True)
    for folder in candidates:
        if folder.is_dir() and any(folder.glob("*.traineddata")):
            return folder
    looked = ", ".join([*(["$TESSDATA_PREFIX"] if prefix else []), *_TESSDATA_GLOBS])
    raise DependencyDown(
        f"OCR is unavailable: no Tesseract language data found ({looked})", engine="Tesseract"
    )


def available_languages() -> list[str]:
    """The languages Tesseract can read here, e.g. ``["chi_sim", "eng", "kor"]``."""
    found = {path.stem for path in tessdata_dir().glob("*.traineddata")}
    return sorted(found - _NOT_LANGUAGES)


def _has_orientation_model() -> bool:
    return (tessdata_dir() / "osd.traineddata").is_file()


def validate_languages(spec: str, parameter: str = "ocr_lang") -> str:
    """``spec`` (``"eng+kor"``, ``"eng,kor"``) normalised to Tesseract's ``"eng+kor"``.

    Raises :class:`InvalidParameter` for ``parameter`` naming the languages that
    have no data here, so a request never reaches Tesseract with a bad name.
    """
    names = list(dict.fromkeys(part for part in re.split(r"[+,\s]+", spec.strip()) if part))
    if not names:
        raise InvalidParameter(parameter, "no OCR language given")
    known = available_languages()
    missing = [name for name in names if name not in known]
    if missing:
        raise InvalidParameter(
            parameter,
            f"no OCR data for {', '.join(missing)}; available: {', '.join(known)}",
        )
    return "+".join(names)


def check_psm(psm: int, parameter: str = "psm") -> None:
    """Refuse page segmentation modes that are out of range or recognise no text."""
    if not 0 <= psm <= 13 or psm in _PSM_WITHOUT_TEXT:
        raise InvalidParameter(parameter, f"page segmentation mode {psm} does not read text")


@dataclass
class _ApiPool:
    """Idle Tesseract instances of this process by (languages, mode), least recently used first."""

    _idle: OrderedDict[tuple[str, int], list[Any]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def api(self, languages: str, psm: int) -> Iterator[Any]:
        """An instance for this thread alone while the block runs."""
        key = (languages, psm)
        with self._lock:
            idle = self._idle.get(key)
            api = idle.pop() if idle else None
        if api is None:
            api = self._start(languages, psm)
        try:
            yield api
        finally:
            api.Clear()
            for surplus in self._put_back(key, api):
                surplus.End()

    def _put_back(self, key: tuple[str, int], api: Any) -> list[Any]:
        """Keep ``api`` idle; return the instances now over the limit, to be ended."""
        surplus = []
        with self._lock:
            self._idle.setdefault(key, []).append(api)
            self._idle.move_to_end(key)
            while sum(len(instances) for instances in self._idle.values()) > _MAX_IDLE:
                oldest, instances = next(iter(self._idle.items()))
                surplus.append(instances.pop(0))
                if not instances:
                    del self._idle[oldest]
        return surplus

    @staticmethod
    def _start(languages: str, psm: int) -> Any:
        tesserocr = _tesserocr()
        try:
            return tesserocr.PyTessBaseAPI(
                path=str(tessdata_dir()), lang=languages, psm=psm, init=True
            )
        except RuntimeError as exc:
            raise EngineFailed(
                f"Tesseract did not start for '{languages}': {exc}", engine="Tesseract"
            ) from exc


_POOL = _ApiPool()


@engine_call("tesseract")
def recognize(
    image: Image.Image,
    *,
    languages: str,
    psm: int = DEFAULT_PSM,
    dpi: int | None = None,
    preprocessing: Preprocessing | None = None,
    allowed_characters: str | None = None,
) -> OcrPage:
    """The text of ``image`` with word boxes (in ``image``'s pixels) and confidences.

    ``dpi`` is the image's scan resolution when known (it steers Tesseract's
    size heuristics); ``preprocessing`` defaults to the measured default steps.
    ``allowed_characters``, when not empty, are the only characters Tesseract
    may output (its ``tessedit_char_whitelist``).
    Orientation is checked only when the upright reading is poor: detection
    costs two thirds of a recognition, and upright text reads with a confidence
    over 0.65 where turned text, read as garbage, stays under 0.55 (measured).
    The turned reading is kept only if it is the better one.
    """
    spec = validate_languages(languages)
    check_psm(psm)
    attributes = {
        "engine": "tesseract",
        "ocr.languages": spec,
        "image.width": image.width,
        "image.height": image.height,
    }
    with engine_span("tesseract page", **attributes) as span:
        page = _recognize(image, spec, psm, dpi, preprocessing, allowed_characters)
        found = {"ocr.confidence": page.confidence, "ocr.paragraphs": len(page.paragraphs)}
        set_attributes(span, **found)
    return page


def _recognize(
    image: Image.Image,
    spec: str,
    psm: int,
    dpi: int | None,
    preprocessing: Preprocessing | None,
    allowed_characters: str | None,
) -> OcrPage:
    """:func:`recognize`'s work, in its span."""
    steps = Preprocessing() if preprocessing is None else preprocessing
    prepared = _prepare(image, steps)
    reading = _Reading(spec, psm, dpi, allowed_characters or "")
    page = _read(prepared, image, reading)
    if (
        steps.orientation
        and page.confidence < _CHECK_ORIENTATION_BELOW
        and _has_orientation_model()
    ):
        turn = _orientation(prepared)
        if turn:
            prepared.turn(turn)
            if steps.deskew:
                # Lines that ran down the page could not be measured before.
                prepared.deskew()
            turned = _read(prepared, image, reading)
            if turned.confidence > page.confidence:
                page = turned
    return page


def _prepare(image: Image.Image, steps: Preprocessing) -> Prepared:
    # OpenCV loads with the first image, not with this module: processes that
    # only import the operations (the API) stay ~55 MB lighter.
    from docworker.engines.ocr_preprocess import Prepared, grey_pixels, use_one_thread

    use_one_thread()
    prepared = Prepared(grey_pixels(image))
    if steps.normalize_resolution:
        prepared.normalize_resolution()
    if steps.deskew:
        prepared.deskew()
    if steps.denoise:
        prepared.denoise()
    if steps.binarize:
        prepared.binarize()
    return prepared


@dataclass(frozen=True)
class _Reading:
    """How an image is recognised: languages, page segmentation mode, the image's scan
    resolution when known, the only characters to output ("" for any)."""

    languages: str
    psm: int
    dpi: int | None
    allowed_characters: str


def _read(prepared: Prepared, original: Image.Image, reading: _Reading) -> OcrPage:
    with _POOL.api(reading.languages, reading.psm) as api:
        # Pooled instances keep their variables from job to job: set it every time.
        api.SetVariable("tessedit_char_whitelist", reading.allowed_characters)
        api.SetImage(Image.fromarray(prepared.image))
        if reading.dpi:
            api.SetSourceResolution(round(reading.dpi * prepared.scale))
        if not api.Recognize():
            raise EngineFailed("Tesseract could not recognise the image", engine="Tesseract")
        paragraphs = _paragraphs(api, prepared.box_mapper(original.width, original.height))
    words = [word for paragraph in paragraphs for word in paragraph.words]
    return OcrPage(
        width=original.width,
        height=original.height,
        confidence=_mean(word.confidence for word in words),
        paragraphs=tuple(paragraphs),
        rotation_applied=prepared.rotation,
        skew_degrees=prepared.skew_degrees,
        scale=round(prepared.scale, 3),
    )


def _orientation(prepared: Prepared) -> int:
    """Clockwise degrees that put the text upright, by Tesseract's orientation detection."""
    with _POOL.api("osd", _tesserocr().PSM.OSD_ONLY) as api:
        api.SetImage(Image.fromarray(prepared.image))
        try:
            found = api.DetectOrientationScript()
        except RuntimeError:
            # Too little text to decide: nothing to turn.
            return 0
    if not found or found["orient_conf"] < _MIN_ORIENTATION_CONFIDENCE:
        return 0
    # Tesseract reports the page's clockwise rotation; undoing it turns the other way.
    return (360 - int(found["orient_deg"])) % 360


def _mean(values: Iterator[float] | list[float]) -> float:
    values = list(values)
    return round(sum(values) / len(values), 4) if values else 0.0


def _enclosing(boxes: list[PixelBox]) -> PixelBox:
    return (
        min(box[0] for box in boxes),
        min(box[1] for box in boxes),
        max(box[2] for box in boxes),
        max(box[3] for box in boxes),
    )


def _paragraphs(api: Any, to_original: BoxMapper) -> list[OcrParagraph]:
    """Tesseract's words in reading order, grouped into its lines and paragraphs."""
    tesserocr = _tesserocr()
    ril = tesserocr.RIL
    paragraphs: list[list[list[OcrWord]]] = []
    iterator = api.GetIterator()
    for word in tesserocr.iterate_level(iterator, ril.WORD):
        empty = word.Empty(ril.WORD)
        text = "" if empty else (word.GetUTF8Text(ril.WORD) or "").strip()
        box = None if empty else word.BoundingBox(ril.WORD)
        if word.IsAtBeginningOf(ril.PARA) or not paragraphs:
            paragraphs.append([])
        if word.IsAtBeginningOf(ril.TEXTLINE) or not paragraphs[-1]:
            paragraphs[-1].append([])
        if text and box is not None:
            confidence = max(0.0, min(word.Confidence(ril.WORD) / 100.0, 1.0))
            paragraphs[-1][-1].append(OcrWord(text, to_original(box), round(confidence, 4)))
    return [_paragraph(lines) for lines in paragraphs if any(lines)]


def _paragraph(word_lines: list[list[OcrWord]]) -> OcrParagraph:
    lines = tuple(
        OcrLine(
            text=_join_words([word.text for word in words]),
            bbox=_enclosing([word.bbox for word in words]),
            confidence=_mean([word.confidence for word in words]),
            words=tuple(words),
        )
        for words in word_lines
        if words
    )
    words = [word for line in lines for word in line.words]
    return OcrParagraph(
        text=_join_lines([line.text for line in lines]),
        bbox=_enclosing([line.bbox for line in lines]),
        confidence=_mean([word.confidence for word in words]),
        lines=lines,
    )


def _glued(left: str, right: str) -> bool:
    """Whether two pieces of text meet without a space: inside Chinese or Japanese
    text, and between such text and punctuation."""
    a, b = left[-1], right[0]
    if _UNSPACED.match(a):
        return bool(_UNSPACED.match(b)) or unicodedata.category(b).startswith("P")
    return bool(_UNSPACED.match(b)) and unicodedata.category(a).startswith("P")


def _join_words(words: list[str]) -> str:
    """Words of a line, spaced as the script wants."""
    text = ""
    for word in words:
        text += word if not text or _glued(text, word) else f" {word}"
    return text


def _join_lines(lines: list[str]) -> str:
    """Lines of a paragraph as one text; a word hyphenated across lines is made whole."""
    text = ""
    for line in lines:
        if text.endswith("-") and len(text) > 1 and text[-2].isalpha() and line[:1].islower():
            text = text[:-1] + line
        elif text and _glued(text, line):
            text += line
        else:
            text = f"{text} {line}" if text else line
    return text


@dataclass(frozen=True)
class TesseractOcr:
    """An :class:`~docworker.formats.base.OcrReader` on Tesseract.

    Cheap to create (nothing starts until the first image): operations make
    one per job from their parameters, and the Tesseract instances it uses
    stay in the process for the next job.
    """

    languages: str = "eng"
    psm: int = DEFAULT_PSM
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    #: The scan resolution to assume when an image does not record a plausible one.
    dpi: int | None = None
    #: The only characters Tesseract may output; None or "" for any.
    allowed_characters: str | None = None

    def read(
        self, image: Image.Image, *, languages: str | None = None, picture: bool = False
    ) -> OcrPage:
        steps = self.preprocessing
        if picture:
            steps = replace(steps, normalize_resolution=False, orientation=False)
        return recognize(
            image,
            languages=languages or self.languages,
            psm=self.psm,
            dpi=_recorded_dpi(image) or self.dpi,
            preprocessing=steps,
            allowed_characters=self.allowed_characters,
        )


def _recorded_dpi(image: Image.Image) -> int | None:
    """The resolution the file records, when it is a plausible scan resolution."""
    dpi = image.info.get("dpi")
    try:
        value = round(float(dpi[0])) if dpi else 0
    except (TypeError, ValueError, IndexError):
        return None
    # 72 and 96 are screen defaults written by software, not scan resolutions.
    return value if 100 <= value <= 1200 else None
