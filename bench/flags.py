"""The cost of a feature flag evaluation (docs/flags.md): the file provider with a tenant
rule and a rollout, through the OpenFeature client and the service's hook (metric; no
span recording), and what a convert submission pays for its flags.

    .venv/bin/python -m bench.flags [--number 20000]
"""

from __future__ import annotations

import argparse
import timeit

from docworker.auth import Principal
from docworker.config import FlagDefinition, FlagRollout, FlagSettings
from docworker.flags import HTML_ENGINE_FLAG, Flags, bucket


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=20_000, help="evaluations timed")
    number = parser.parse_args().number
    flag = FlagDefinition(
        variants={"weasyprint": "weasyprint", "chromium": "chromium"},
        default="weasyprint",
        tenants={"acme": "chromium"},
        rollout=[FlagRollout(variant="chromium", percent=25)],
    )
    flags = Flags(FlagSettings(definitions={HTML_ENGINE_FLAG: flag}))
    caller = Principal(tenant="tenant-42", key_id="k1", scopes=frozenset({"submit"}))
    figures = {
        "bucket (sha256)": timeit.timeit(
            lambda: bucket(HTML_ENGINE_FLAG, "tenant-42"), number=number
        ),
        "evaluation (rollout)": timeit.timeit(
            lambda: flags.string(HTML_ENGINE_FLAG, "weasyprint", caller), number=number
        ),
        "convert submission's flags": timeit.timeit(
            lambda: flags.decide("convert", {}, caller), number=number
        ),
    }
    for name, seconds in figures.items():
        print(f"{name:<28} {seconds / number * 1e6:8.1f} µs")


if __name__ == "__main__":
    main()
