"""What tracing costs a small synchronous extract, over HTTP: tracing off against tracing
on, exporting to an OTLP/HTTP receiver on loopback.

``python -m bench.tracing [--requests 300] [--warmup 20]`` starts two real ``docworker
serve`` (the default settings: two workers, SQLite; the result cache off, so that every
request is a job run by a worker), one with ``tracing.enabled`` and its endpoint on a
receiver in this process, then sends ``POST /api/v2/extract`` of a 40-byte text file
(``output=text``) to each in turn, one request at a time, so that a busy machine slows
both alike. Printed: the mean, median and 95th percentile of each in milliseconds, the
difference, and the spans the receiver took.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx

BODY = b"A short note, to be extracted as text.\n"


def _time(client: httpx.Client) -> float:
    started = time.perf_counter()
    answer = client.post(
        "/api/v2/extract", files={"file": ("note.txt", BODY)}, data={"output": "text"}
    )
    elapsed = time.perf_counter() - started
    if answer.status_code != 200:
        raise SystemExit(f"extract answered {answer.status_code}: {answer.text[:300]}")
    return elapsed


def _line(name: str, times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[int(len(ms) * 0.95) - 1]
    return (
        f"{name:<12} mean {statistics.fmean(ms):7.2f}  p50 {statistics.median(ms):7.2f}  "
        f"p95 {p95:7.2f} ms"
    )


def main() -> None:
    from tests.e2e.server import Server
    from tests.otlp_receiver import OtlpReceiver

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-tracing-"))
    with OtlpReceiver() as receiver:
        off = Server(folder / "off", DOCWORKER_LOG__LEVEL="WARNING")
        on = Server(
            folder / "on",
            DOCWORKER_LOG__LEVEL="WARNING",
            DOCWORKER_TRACING__ENABLED="true",
            DOCWORKER_TRACING__OTLP_ENDPOINT=receiver.endpoint,
        )
        with off, on, off.client() as plain, on.client() as traced:
            for _ in range(args.warmup):
                _time(plain)
                _time(traced)
            times: dict[str, list[float]] = {"tracing off": [], "tracing on": []}
            for _ in range(args.requests):
                times["tracing off"].append(_time(plain))
                times["tracing on"].append(_time(traced))
        spans = len(receiver.spans)
    for name, measured in times.items():
        print(_line(name, measured))
    extra = statistics.fmean(times["tracing on"]) - statistics.fmean(times["tracing off"])
    share = extra / statistics.fmean(times["tracing off"])
    print(f"difference   {extra * 1000:+.2f} ms a request ({share:+.1%})")
    print(f"spans received: {spans} ({spans / (args.requests + args.warmup):.1f} a request)")


if __name__ == "__main__":
    main()
