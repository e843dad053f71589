"""OCR quality and speed: character error rates per preparation step, pages per second.

``python -m bench.ocr [--skip-speed] [--skip-quality]`` prints

* the character error rate (CER: edit distance over the truth's length, after
  collapsing white space) of each corpus image whose text is known, with no
  preparation, with the default steps, and with each step taken out of (or
  added to) the default — plus two images turned by a quarter and a half turn,
  since the corpus has no page lying on its side;
* pages per second of one ``ocr`` job of an image-only PDF made from the
  rendered pages of ``pdf/multi-page-article.pdf`` (twice over), run by the
  local executor with one worker and with two (where the job is split into
  page ranges that run on both), beside the ceiling measured in the same run:
  Tesseract alone (tesserocr, no preparation) reading the same page images in
  one process and in two. Also whether the split job's text is the whole
  job's, and its token-F1 against the PDF's ground truth.

Truths for images without a corpus truth are in ``bench/ocr_truths/``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pillow_heif
import pypdfium2
from PIL import Image

from bench.scoring import corpus_root, score
from docworker.config import load_settings
from docworker.engines.ocr import Preprocessing, recognize, tessdata_dir
from docworker.jobs.events import JobEvents
from docworker.jobs.local import LocalExecutor
from docworker.jobs.queue import JobInput, JobQueue
from docworker.jobs.store import TERMINAL_STATUSES, JobRecord, JobStatus, JobStore
from docworker.sealing import SecretKeys
from docworker.storage import BlobStore

TRUTHS = Path(__file__).parent / "ocr_truths"
#: The goal for two processes over one.
TWO_PROCESS_GOAL = 1.8
_SCAN_SOURCE = "pdf/multi-page-article.pdf"
#: Resolution the substitute scan's pages are stored at (the OCR renders at 300).
_SCAN_DPI = 200
_SCAN_COPIES = 2


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance of ``a`` and ``b``, by Myers' bit-parallel algorithm.

    Each column of the dynamic-programming table is held as bit vectors of
    vertical differences in two integers, so a 3,000-character page costs
    milliseconds instead of the seconds a cell-by-cell table takes in Python.
    """
    if not a or not b:
        return len(a) + len(b)
    masks: dict[str, int] = {}
    for index, char in enumerate(a):
        masks[char] = masks.get(char, 0) | (1 << index)
    everything = (1 << len(a)) - 1
    last = 1 << (len(a) - 1)
    plus, minus, distance = everything, 0, len(a)
    for char in b:
        match = masks.get(char, 0)
        vertical = match | minus
        horizontal = (((match & plus) + plus) ^ plus) | match
        h_plus = minus | (~(horizontal | plus) & everything)
        h_minus = plus & horizontal
        if h_plus & last:
            distance += 1
        elif h_minus & last:
            distance -= 1
        h_plus = ((h_plus << 1) | 1) & everything
        h_minus = (h_minus << 1) & everything
        plus = h_minus | (~(vertical | h_plus) & everything)
        minus = h_plus & vertical
    return distance


def cer(output: str, truth: str) -> float:
    """Character error rate of ``output`` against ``truth``, white space collapsed."""
    said, meant = " ".join(output.split()), " ".join(truth.split())
    return edit_distance(said, meant) / max(len(meant), 1)


@dataclass(frozen=True)
class Case:
    """One image whose text is known, possibly turned to test orientation."""

    label: str
    path: str
    truth: Path
    frame: int = 0
    #: Degrees counter-clockwise the image is turned before OCR.
    turn: int = 0

    def image(self) -> Image.Image:
        with Image.open(corpus_root() / self.path) as opened:
            opened.seek(self.frame)
            image = opened.convert("RGB")
        return image.rotate(self.turn, expand=True) if self.turn else image


def cases() -> list[Case]:
    corpus_truth = corpus_root() / "images" / "docling-ocr.expected.md"
    return [
        Case("ocr-text.png", "images/ocr-text.png", TRUTHS / "ocr-text.txt"),
        Case("rotated-plus10.png", "images/rotated-plus10.png", TRUTHS / "rotated-plus10.txt"),
        Case("docling-ocr.webp", "images/docling-ocr.webp", corpus_truth),
        Case("multipage.tif p1", "images/multipage.tif", TRUTHS / "multipage-1.txt"),
        Case("multipage.tif p2", "images/multipage.tif", TRUTHS / "multipage-2.txt", frame=1),
        Case("document-page.heic", "images/document-page.heic", TRUTHS / "document-page.txt"),
        Case("docling-ocr.webp ↺90", "images/docling-ocr.webp", corpus_truth, turn=90),
        Case(
            "document-page.heic ↻180",
            "images/document-page.heic",
            TRUTHS / "document-page.txt",
            turn=180,
        ),
    ]


_DEFAULT = Preprocessing()
CONFIGS: dict[str, Preprocessing] = {
    "none": Preprocessing.none(),
    "default": _DEFAULT,
    "−resolution": replace(_DEFAULT, normalize_resolution=False),
    "−orientation": replace(_DEFAULT, orientation=False),
    "−deskew": replace(_DEFAULT, deskew=False),
    "+denoise": replace(_DEFAULT, denoise=True),
    "+binarize": replace(_DEFAULT, binarize=True),
}


def quality_table() -> None:
    names = list(CONFIGS)
    print("CER (lower is better) and seconds per configuration\n")
    print("| image | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    totals = dict.fromkeys(names, 0.0)
    seconds = dict.fromkeys(names, 0.0)
    all_cases = cases()
    for case in all_cases:
        image, truth = case.image(), case.truth.read_text(encoding="utf-8")
        row = []
        for name in names:
            started = time.perf_counter()
            page = recognize(image, languages="eng", preprocessing=CONFIGS[name])
            seconds[name] += time.perf_counter() - started
            rate = cer(page.text, truth)
            totals[name] += rate
            row.append(f"{rate:.3f}")
        print(f"| {case.label} | " + " | ".join(row) + " |")
    print("| **mean** | " + " | ".join(f"{totals[n] / len(all_cases):.3f}" for n in names) + " |")
    print("| seconds | " + " | ".join(f"{seconds[n]:.1f}" for n in names) + " |")


def make_scanned_pdf(folder: Path) -> tuple[Path, int]:
    """An image-only PDF of the multi-page article's pages, rendered, :data:`_SCAN_COPIES` times."""
    pdf = pypdfium2.PdfDocument(str(corpus_root() / _SCAN_SOURCE))
    try:
        pages = [
            pdf[index].render(scale=_SCAN_DPI / 72, grayscale=True).to_pil()
            for index in range(len(pdf))
        ] * _SCAN_COPIES
    finally:
        pdf.close()
    target = folder / "scanned-article.pdf"
    pages[0].save(target, save_all=True, append_images=pages[1:], resolution=_SCAN_DPI)
    return target, len(pages)


def _library_read(path: Path) -> float:
    """Tesseract alone (tesserocr, no preparation) on one page image; CPU seconds spent."""
    import tesserocr

    started = time.process_time()
    with Image.open(path) as image:
        tesserocr.image_to_text(image, lang="eng", psm=tesserocr.PSM.AUTO, path=str(tessdata_dir()))
    return time.process_time() - started


def _library_seconds(images: list[Path], processes: int) -> float:
    """Wall seconds for ``processes`` processes, each with its own Tesseract, to read
    ``images``: the ceiling a pool of workers can reach on this machine."""
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        # Warm: each process loads Tesseract's model before the clock starts.
        pool.map(_library_read, images[:processes], chunksize=1)
        started = time.perf_counter()
        pool.map(_library_read, images, chunksize=1)
        return time.perf_counter() - started


def _render_pages(path: Path, folder: Path) -> list[Path]:
    """The scan's pages as the ``ocr`` operation renders them (300 dpi, grey), as PNG files."""
    pdf = pypdfium2.PdfDocument(str(path))
    try:
        paths = []
        for index in range(len(pdf)):
            target = folder / f"page-{index + 1}.png"
            pdf[index].render(scale=300 / 72, grayscale=True).to_pil().save(target)
            paths.append(target)
        return paths
    finally:
        pdf.close()


@dataclass(frozen=True)
class _ServiceRun:
    workers: int
    seconds: float
    parts: int
    content: str


def _service_run(path: Path, folder: Path, workers: int) -> _ServiceRun:
    """One ``ocr`` job of the whole scan through the local executor with ``workers``
    worker processes (its own job and blob stores), timed from submit to result."""
    settings = load_settings(
        data_dir=folder / f"service-{workers}",
        executor={"workers": workers, "poll_interval": 0.05},
    )
    store = JobStore(settings.database_url)
    store.migrate()
    blobs = BlobStore(settings.storage_url)
    keys = SecretKeys.from_settings(settings)
    executor = LocalExecutor(settings, store, JobEvents(), keys=keys)
    queue = JobQueue(
        store,
        blobs,
        executor,
        executor.events,
        max_attempts=settings.executor.max_attempts,
        keys=keys,
    )
    executor.start()
    try:
        # Warm every worker (started, Tesseract loaded) before the clock starts.
        tiny = blobs.put_file(corpus_root() / "images" / "ocr-text.png")
        warm = [queue.submit("ocr", {}, JobInput(tiny))[0] for _ in range(workers)]
        for record in warm:
            _wait(store, record.id)
        blob = blobs.put_file(path)
        started = time.perf_counter()
        record, _ = queue.submit("ocr", {}, JobInput(blob, name=path.name))
        done = _wait(store, record.id)
        seconds = time.perf_counter() - started
        if done.status != JobStatus.SUCCEEDED:
            raise SystemExit(f"the ocr job ended {done.status}: {done.error}")
        content = str(queue.result(done)["content"])
        return _ServiceRun(workers, seconds, done.children_total, content)
    finally:
        executor.stop()
        store.close()


def _wait(store: JobStore, job_id: str, timeout: float = 600) -> JobRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = store.get(job_id)
        if record.status in TERMINAL_STATUSES:
            return record
        # Seldom: a look at the store costs CPU the workers would rather have.
        time.sleep(0.1)
    raise SystemExit(f"job {job_id} did not end within {timeout} s")


def speed_table() -> None:
    truth = (corpus_root() / _SCAN_SOURCE).with_suffix(".expected.md").read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        path, count = make_scanned_pdf(folder)
        images = _render_pages(path, folder)
        library = {n: _library_seconds(images, n) for n in (1, 2)}
        service = {n: _service_run(path, folder, n) for n in (1, 2)}
    # The scan holds the article _SCAN_COPIES times over: so does the truth it is scored on.
    f1 = score(service[1].content, "md", "\n\n".join([truth] * _SCAN_COPIES), "md")
    print(
        f"\nOCR of an image-only {count}-page PDF ({_SCAN_SOURCE} rendered at {_SCAN_DPI} dpi, "
        f"{_SCAN_COPIES} copies), pages read at 300 dpi\n"
    )
    print("| reader | processes | seconds | pages/s | parts |")
    print("|---|---:|---:|---:|---:|")
    for n in (1, 2):
        print(
            f"| Tesseract alone (ceiling) | {n} | {library[n]:.1f} | {count / library[n]:.2f} | |"
        )
    for n in (1, 2):
        run = service[n]
        print(
            f"| ocr job, local executor | {n} | {run.seconds:.1f} | {count / run.seconds:.2f} "
            f"| {run.parts or 1} |"
        )
    ours = service[1].seconds / service[2].seconds
    ceiling = library[1] / library[2]
    verdict = "meets" if ours >= TWO_PROCESS_GOAL else "misses"
    print(
        f"\n2 workers ÷ 1: {ours:.2f}× ({verdict} the {TWO_PROCESS_GOAL}× goal); "
        f"Tesseract alone in 2 processes ÷ 1 on this machine: {ceiling:.2f}×, "
        f"so the split reaches {ours / ceiling:.0%} of what the machine allows"
    )
    same = service[1].content == service[2].content
    print(f"the split job's text is {'identical to' if same else 'DIFFERENT from'} the whole job's")
    print(f"token-F1 of the OCR text against the PDF's ground truth: {f1:.3f}")
    print(f"load average over the last minute when done: {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-quality", action="store_true", help="no CER table")
    parser.add_argument("--skip-speed", action="store_true", help="no pages/s table")
    args = parser.parse_args()
    pillow_heif.register_heif_opener()
    if not args.skip_quality:
        quality_table()
    if not args.skip_speed:
        speed_table()


if __name__ == "__main__":
    main()
