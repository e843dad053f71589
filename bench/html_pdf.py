"""HTML → PDF: WeasyPrint against the warm headless Chromium, on the corpus's web pages.

Each engine runs in a child process of its own, so its peak memory is its own:
WeasyPrint's is the child's peak RSS; Chromium's is the peak, sampled every
50 ms, of the child plus the browser's processes: the sum of their RSS (which
counts shared pages once per process) and of their PSS (which shares them out).
Chromium's first render (browser start included) is reported apart; files/s is over the warm rounds.
Neither engine fetches anything remote (WeasyPrint is given a fetcher limited
to ``file:`` and ``data:`` URLs; Chromium answers remote requests by the URL
policy, whose allow-list is empty here).

    .venv/bin/python -m bench.html_pdf [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pypdfium2

from bench.memory import peak_rss_kib
from bench.scoring import corpus_root

FILES = (
    "web/wiki-duck.html",
    "web/with-scripts.html",
    "web/table-rowspan.html",
    "web/cp1252.html",
    "web/utf16le.html",
)


class PeakRss:
    """Samples the RSS of a process and its descendants until stopped; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            total = pss = 0
            for proc in [self.process, *self.process.children(recursive=True)]:
                try:
                    memory = proc.memory_full_info()
                except psutil.Error:
                    continue
                total += memory.rss
                pss += memory.pss
            self.peak = max(self.peak, total)
            self.peak_pss = max(self.peak_pss, pss)
            self._stop.wait(self.interval)


def _weasyprint(paths: list[Path], rounds: int, out: Path) -> dict[str, Any]:
    import weasyprint
    from weasyprint.urls import URLFetcher

    fetcher = URLFetcher(allowed_protocols=("file", "data"))
    pages = 0
    per_file = dict.fromkeys(FILES, 0.0)
    started = time.perf_counter()
    for _ in range(rounds):
        for name, path in zip(FILES, paths, strict=True):
            begun = time.perf_counter()
            data = weasyprint.HTML(filename=str(path), url_fetcher=fetcher).write_pdf()
            target = out / f"{path.stem}.weasy.pdf"
            target.write_bytes(data)
            per_file[name] += time.perf_counter() - begun
            pages += _pages(target)
    elapsed = time.perf_counter() - started
    peak = peak_rss_kib() * 1024
    return {
        "seconds": elapsed,
        "renders": rounds * len(paths),
        "pages": pages,
        "peak": peak,
        "per_file": per_file,
    }


def _chromium(paths: list[Path], rounds: int, out: Path) -> dict[str, Any]:
    from docworker.config import ChromiumSettings
    from docworker.engines.chromium import ChromiumEngine
    from docworker.url_policy import UrlPolicy

    policy = UrlPolicy()
    with PeakRss(psutil.Process().pid) as peak, ChromiumEngine(ChromiumSettings()) as engine:
        started = time.perf_counter()
        engine.print_pdf(paths[0], out / "first.pdf", policy=policy, root=paths[0].parent)
        first = time.perf_counter() - started
        pages = 0
        per_file = dict.fromkeys(FILES, 0.0)
        started = time.perf_counter()
        for _ in range(rounds):
            for name, path in zip(FILES, paths, strict=True):
                begun = time.perf_counter()
                info = engine.print_pdf(
                    path, out / f"{path.stem}.chromium.pdf", policy=policy, root=path.parent
                )
                per_file[name] += time.perf_counter() - begun
                pages += info.pages or 0
        elapsed = time.perf_counter() - started
    return {
        "seconds": elapsed,
        "renders": rounds * len(paths),
        "pages": pages,
        "peak": peak.peak,
        "peak_pss": peak.peak_pss,
        "first": first,
        "per_file": per_file,
    }


def _pages(path: Path) -> int:
    with pypdfium2.PdfDocument(path) as pdf:
        return len(pdf)


def _child(engine: str, rounds: int) -> None:
    paths = [corpus_root() / name for name in FILES]
    with tempfile.TemporaryDirectory(prefix="bench-html-pdf-") as folder:
        run = _weasyprint if engine == "weasyprint" else _chromium
        print(json.dumps(run(paths, rounds, Path(folder))))


def _measure(engine: str, rounds: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.html_pdf", "--child", engine, "--rounds", str(rounds)],
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"the {engine} run failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3, help="passes over the files")
    parser.add_argument("--child", choices=("weasyprint", "chromium"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.rounds)
        return
    print(f"{len(FILES)} corpus HTML files × {args.rounds} rounds: {', '.join(FILES)}")
    print(f"{'engine':<11} {'files/s':>8} {'s/file':>7} {'pages':>6} {'peak RSS MB':>12}  note")
    rows = {}
    for engine in ("weasyprint", "chromium"):
        row = rows[engine] = _measure(engine, args.rounds)
        rate = row["renders"] / row["seconds"]
        note = ""
        if "first" in row:
            pss = row["peak_pss"] / 2**20
            note = f"PSS {pss:.0f} MB; first render with start {row['first']:.2f} s"
        print(
            f"{engine:<11} {rate:>8.2f} {row['seconds'] / row['renders']:>7.3f} "
            f"{row['pages'] // args.rounds:>6} {row['peak'] / 2**20:>12.0f}  {note}"
        )
    weasy, chromium = rows["weasyprint"], rows["chromium"]
    speed = (chromium["renders"] / chromium["seconds"]) / (weasy["renders"] / weasy["seconds"])
    memory = chromium["peak"] / weasy["peak"]
    print(f"chromium/weasyprint: files/s ×{speed:.2f}, peak RSS ×{memory:.2f}")
    print(f"\n{'seconds per file':<26} {'weasyprint':>10} {'chromium':>9}")
    for name in FILES:
        w, c = (rows[e]["per_file"][name] / args.rounds for e in ("weasyprint", "chromium"))
        print(f"{name:<26} {w:>10.3f} {c:>9.3f}")


if __name__ == "__main__":
    main()
