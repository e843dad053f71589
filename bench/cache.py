"""A result cache hit against a cold extraction of the corpus's 619-page PDF, over HTTP.

``python -m bench.cache [--cold 3] [--hits 20] [--output markdown]`` starts a real
``docworker serve`` (the default settings: two workers, the result cache on disk in its
data folder), then times ``POST /api/v2/extract`` of ``pdf/huge-619-pages.pdf`` the
whole way a client sees it (the upload of its 2.8 MiB, the job, the answer read whole):

* cold: ``--cold`` requests with ``?cache=false``, each run by the workers;
* hit: one request that runs and keeps its result, then ``--hits`` requests answered
  from the cache (each a job marked ``cached``, checked).

Printed: the median of each, their ratio (the goal: a hit at least 50 times faster),
and whether the answers are the same bytes (the job id aside).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.scoring import corpus_root

DOCUMENT = corpus_root() / "pdf" / "huge-619-pages.pdf"


def extract(client: httpx.Client, data: bytes, output: str, query: str = "") -> httpx.Response:
    """One synchronous extraction, answered whole."""
    response = client.post(
        f"/api/v2/extract?wait=600{query}",
        files={"file": (DOCUMENT.name, data, "application/pdf")},
        data={"output": output},
    )
    if response.status_code != 200:
        raise SystemExit(f"extraction answered {response.status_code}: {response.text[:500]}")
    return response


def timed(client: httpx.Client, data: bytes, output: str, query: str = "") -> tuple[float, dict]:
    """Seconds of one extraction, and its job."""
    started = time.perf_counter()
    response = extract(client, data, output, query)
    seconds = time.perf_counter() - started
    job = client.get(f"/api/v2/jobs/{response.headers['X-Job-Id']}").json()
    return seconds, job | {"body": response.json()}


def _same(first: dict, second: dict) -> bool:
    return {k: v for k, v in first.items() if k != "job_id"} == {
        k: v for k, v in second.items() if k != "job_id"
    }


def main(argv: list[str] | None = None) -> None:
    # Imported here: the bench runs from the repository root, where ``tests`` is found.
    from tests.e2e.server import Server

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold", type=int, default=3)
    parser.add_argument("--hits", type=int, default=20)
    parser.add_argument("--output", default="markdown", choices=["text", "markdown", "html"])
    args = parser.parse_args(argv)
    data = DOCUMENT.read_bytes()
    with (
        tempfile.TemporaryDirectory(prefix="dw-bench-cache-") as folder,
        Server(Path(folder) / "server", DOCWORKER_CACHE__ENABLED="true") as server,
        server.client() as client,
    ):
        client.timeout = httpx.Timeout(900)
        cold = []
        for _ in range(args.cold):
            seconds, job = timed(client, data, args.output, "&cache=false")
            assert not job["cached"], "a cache=false request was answered from the cache"
            cold.append(seconds)
        _, kept = timed(client, data, args.output)
        hits = []
        for _ in range(args.hits):
            seconds, job = timed(client, data, args.output)
            assert job["cached"], "the repeated request was not answered from the cache"
            hits.append(seconds)
        same = _same(kept["body"], job["body"])
        stats = client.get("/api/v2/cache").json()
    cold_median = statistics.median(cold)
    hit_median = statistics.median(hits)
    content = len(str(job["body"].get("content", "")))
    print(f"document: {DOCUMENT.name}, {len(data) / 1024 / 1024:.1f} MiB, {args.output}")
    print(f"answer: {content:,} characters of content")
    print(f"cold (cache=false), {args.cold} runs: median {cold_median:.3f} s")
    print(f"hit, {args.hits} runs: median {hit_median * 1000:.1f} ms")
    print(f"ratio cold / hit: {cold_median / hit_median:.0f}x (goal >= 50x)")
    print(f"same answer: {same}")
    for tier in stats["tiers"]:
        print(
            f"tier {tier['tier']}: {tier['entries']} entries, {tier['bytes']:,} bytes, "
            f"{tier['hits']} hits, {tier['misses']} misses"
        )


if __name__ == "__main__":
    main()
