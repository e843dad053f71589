"""Extraction quality on the corpus, beside the bars the peers set.

``python -m bench.quality`` extracts every non-hostile, non-archive, non-media
corpus file to Markdown with the extract operation as a job runs it (OCR and LibreOffice
included, default settings, no password, as the peers
ran), then prints per folder the success rate (no error and non-empty text)
and the mean token-F1 over the files with a ground truth (a failed file scores
0), beside the ``PEERS.md`` bar, and the same per file beside the best peer.
MarkItDown, when installed, is re-measured in the same run on the same files.
Scores are those of :mod:`bench.scoring`; a truth exported by a peer does not
count for that peer.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from bench.extractors import Extractor, docworker_service, markitdown_extractor
from bench.scoring import CorpusFile, GroundTruth, documents, ground_truths, peer_bars
from docworker.telemetry import configure_logging

_NOT_RUN = "—"


@dataclass(frozen=True)
class Outcome:
    """One tool on one file: its text, or the error it raised."""

    text: str = ""
    error: str | None = None

    @property
    def success(self) -> bool:
        return self.error is None and bool(self.text.strip())


@dataclass
class ToolRun:
    """A tool's outcome on every file and its score on every file with a truth."""

    name: str
    outcomes: dict[str, Outcome]
    scores: dict[str, float]


def run_tool(name: str, extractor: Extractor, files: Sequence[CorpusFile]) -> ToolRun:
    """Extract every file with ``extractor`` and score it against its truth, if any."""
    truths = {truth.document: truth for truth in ground_truths()}
    outcomes: dict[str, Outcome] = {}
    scores: dict[str, float] = {}
    for item in files:
        try:
            outcome = Outcome(text=extractor(item.absolute))
        except Exception as exc:  # noqa: BLE001 - a failure is a figure here, not a crash
            outcome = Outcome(error=f"{type(exc).__name__}: {exc}")
        outcomes[item.path] = outcome
        truth = truths.get(item.path)
        if truth is not None and _counts_for(truth, name):
            scores[item.path] = truth.score(outcome.text) if outcome.error is None else 0.0
    return ToolRun(name, outcomes, scores)


def _counts_for(truth: GroundTruth, tool: str) -> bool:
    return truth.produced_by is None or truth.produced_by not in tool.lower()


def _success(run: ToolRun, folder: str | None = None) -> str:
    chosen = [
        o for path, o in run.outcomes.items() if folder is None or path.startswith(f"{folder}/")
    ]
    return f"{sum(o.success for o in chosen)}/{len(chosen)}"


def _mean_f1(run: ToolRun | None, folder: str) -> str:
    if run is None:
        return _NOT_RUN
    scores = [s for path, s in run.scores.items() if path.startswith(f"{folder}/")]
    return f"{statistics.mean(scores):.3f}" if scores else _NOT_RUN


def print_folders(ours: ToolRun, peer: ToolRun | None) -> None:
    bars = peer_bars()
    folders = sorted({path.split("/", 1)[0] for path in ours.outcomes})
    print(
        "\n| folder | success | token-F1 | PEERS bar | MarkItDown success | MarkItDown token-F1 |"
    )
    print("|---|---|---|---|---|---|")
    for folder in folders:
        bar = bars.folders.get(folder)
        peer_success = _success(peer, folder) if peer else _NOT_RUN
        print(
            f"| {folder} | {_success(ours, folder)} | {_mean_f1(ours, folder)} | "
            f"{_NOT_RUN if bar is None else f'{bar:.3f}'} | {peer_success} | "
            f"{_mean_f1(peer, folder)} |"
        )
    peers = ", ".join(f"{name} {done}/{tried}" for name, (done, tried) in bars.success.items())
    measured = f"; MarkItDown here {_success(peer)}" if peer else ""
    print(f"\nSuccess overall: ours {_success(ours)} (PEERS.md: {peers}{measured})")


def print_files(ours: ToolRun, peer: ToolRun | None) -> None:
    best = peer_bars().files
    print("\n| file | ours | best peer | ours − best | MarkItDown here | note |")
    print("|---|---|---|---|---|---|")
    for path, exact in ours.scores.items():
        # PEERS.md gives three decimals; a score that rounds to the bar meets it.
        score = round(exact, 3)
        bar = best.get(path)
        peer_score = peer.scores.get(path) if peer else None
        outcome = ours.outcomes[path]
        note = outcome.error or ("below the bar" if bar is not None and score < bar else "")
        print(
            f"| {path} | {score:.3f} | {_NOT_RUN if bar is None else f'{bar:.3f}'} | "
            f"{_NOT_RUN if bar is None else f'{score - bar:+.3f}'} | "
            f"{_NOT_RUN if peer_score is None else f'{peer_score:.3f}'} | {note} |"
        )


def print_failures(ours: ToolRun) -> None:
    failed = {path: o for path, o in ours.outcomes.items() if not o.success}
    print(f"\nFiles without text ({len(failed)}):")
    for path, outcome in failed.items():
        print(f"  {path}: {outcome.error or 'empty text'}")


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging(level="WARNING")
    parser = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__)
    parser.add_argument(
        "--no-markitdown",
        action="store_true",
        help="skip re-measuring MarkItDown (it takes minutes on the 619-page PDF)",
    )
    args = parser.parse_args(argv)
    files = documents()
    ours = run_tool("docworker", docworker_service, files)
    markitdown = None if args.no_markitdown else markitdown_extractor()
    peer = run_tool("MarkItDown", markitdown, files) if markitdown is not None else None
    print(f"Quality on {len(files)} corpus files, Markdown output, scored as PEERS.md says")
    if peer is None and not args.no_markitdown:
        print("MarkItDown: not installed — run scripts/bench")
    print_folders(ours, peer)
    print_files(ours, peer)
    print_failures(ours)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
