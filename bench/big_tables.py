"""Large tables: time per row and memory against the output, for a CSV and an XLSX.

``python -m bench.big_tables [--rows 100000] [--rounds 1] [--outputs text,markdown,json]``
writes a CSV and an XLSX of ``--rows`` rows of eight mixed columns
(``bench/large_tables.py``) in a temporary folder, then extracts each, in each output,
through the ``extract`` operation, each extraction in a child process of its own
(``--child``) so that its peak RSS is its own. A child first extracts a small table of
the same kind (imports and lazy loads done), then the large one, and serializes the
result as the job stores it. Printed: seconds, microseconds per row, the child's peak
RSS, the work (that peak less the peak after the warm-up) and the work against the
size of the stored result. The library ceiling is measured in the same run, each in a
child too: the standard ``csv`` module reading the CSV's rows, python-calamine (the
reader the XLSX parser uses) iterating the sheet's rows, and openpyxl in read-only mode
when it is importable (it is not a dependency: put it on ``PYTHONPATH`` to compare).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.large_tables import write_csv, write_xlsx
from bench.memory import peak_rss_kib

OUTPUTS = ("text", "markdown", "json")
#: Rows of the table extracted first in a child, so that imports are not measured.
WARM_ROWS = 50


def _extract(path: Path, output: str) -> int:
    """The ``extract`` operation on ``path``: bytes of the result as a job stores it."""
    from docworker.operations.base import InputFile, OperationContext
    from docworker.operations.extract import ExtractOperation, ExtractParams

    result = ExtractOperation().run(
        OperationContext(), InputFile(path=path, name=path.name), ExtractParams(output=output)
    )
    return len(json.dumps(result.payload, ensure_ascii=False).encode())


def _read_csv(path: Path) -> int:
    with path.open(newline="", encoding="utf-8") as source:
        return sum(len(row) for row in csv.reader(source))


def _read_calamine(path: Path) -> int:
    from python_calamine import CalamineWorkbook

    workbook = CalamineWorkbook.from_path(str(path))
    try:
        return sum(len(row) for row in workbook.get_sheet_by_index(0).iter_rows())
    finally:
        workbook.close()


def _read_openpyxl(path: Path) -> int:
    import openpyxl

    workbook = openpyxl.load_workbook(path, read_only=True)
    try:
        return sum(len(row) for row in workbook.worksheets[0].iter_rows(values_only=True))
    finally:
        workbook.close()


CEILINGS = {"csv module": _read_csv, "calamine": _read_calamine, "openpyxl": _read_openpyxl}


def child(way: str, path: Path, warm: Path, output: str) -> dict[str, Any]:
    """One measurement in this process: seconds, peak RSS and the work above the warm-up."""
    if way == "extract":
        _extract(warm, output)
        baseline = peak_rss_kib()
        started = time.perf_counter()
        size = _extract(path, output)
    else:
        CEILINGS[way](warm)
        baseline = peak_rss_kib()
        started = time.perf_counter()
        size = CEILINGS[way](path)  # the cells read
    seconds = time.perf_counter() - started
    peak = peak_rss_kib()
    return {"seconds": seconds, "peak_kib": peak, "work_kib": peak - baseline, "size": size}


def _run_child(way: str, path: Path, warm: Path, output: str = "") -> dict[str, Any] | None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.big_tables", "--child", way, str(path), str(warm), output],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        print(f"  {way} on {path.name}: {last}")
        return None
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _median(way: str, path: Path, warm: Path, output: str, rounds: int) -> dict[str, Any] | None:
    runs = [_run_child(way, path, warm, output) for _ in range(rounds)]
    if any(run is None for run in runs):
        return None
    kept = [run for run in runs if run is not None]
    return {
        "seconds": statistics.median(run["seconds"] for run in kept),
        "peak_kib": max(run["peak_kib"] for run in kept),
        "work_kib": max(run["work_kib"] for run in kept),
        "size": kept[0]["size"],
    }


def _line(label: str, rows: int, figures: dict[str, Any], output_bytes: int | None) -> str:
    seconds = figures["seconds"]
    work_mib = figures["work_kib"] / 1024
    text = (
        f"  {label:24} {seconds:7.2f} s {seconds / rows * 1e6:7.1f} µs/row"
        f"   peak {figures['peak_kib'] / 1024:6.0f} MiB   work {work_mib:+6.0f} MiB"
    )
    if output_bytes:
        ratio = work_mib * 2**20 / output_bytes
        text += f"   result {output_bytes / 2**20:6.1f} MiB   work/result {ratio:5.1f}×"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--outputs", default=",".join(OUTPUTS))
    parser.add_argument("--child", nargs=4, metavar=("WAY", "PATH", "WARM", "OUTPUT"))
    args = parser.parse_args()
    if args.child:
        way, path, warm, output = args.child
        print(json.dumps(child(way, Path(path), Path(warm), output)))
        return
    outputs = [name for name in args.outputs.split(",") if name]
    with tempfile.TemporaryDirectory(prefix="bench-big-tables-") as name:
        folder = Path(name)
        files = {
            "csv": (
                write_csv(folder / "big.csv", args.rows),
                write_csv(folder / "warm.csv", WARM_ROWS),
            ),
            "xlsx": (
                write_xlsx(folder / "big.xlsx", args.rows),
                write_xlsx(folder / "warm.xlsx", WARM_ROWS),
            ),
        }
        ceilings = {"csv": ["csv module"], "xlsx": ["calamine", "openpyxl"]}
        for kind, (path, warm) in files.items():
            size_mib = path.stat().st_size / 2**20
            rounds = f"{args.rounds} round(s)"
            print(f"{kind}: {args.rows:,} rows × 8 columns, {size_mib:.1f} MiB, {rounds}")
            for output in outputs:
                figures = _median("extract", path, warm, output, args.rounds)
                if figures is not None:
                    print(_line(f"extract → {output}", args.rows, figures, figures["size"]))
            for way in ceilings[kind]:
                if way == "openpyxl" and importlib.util.find_spec("openpyxl") is None:
                    print("  ceiling: openpyxl         not installed")
                    continue
                figures = _median(way, path, warm, "", args.rounds)
                if figures is not None:
                    print(_line(f"ceiling: {way}", args.rows, figures, None))


if __name__ == "__main__":
    main()
