"""Mutated documents of every parser family are parsed or refused with a 4xx, never more.

Each family is fuzzed for ``DOCWORKER_FUZZ_SECONDS`` (default 3) from the seed
``DOCWORKER_FUZZ_SEED`` (default 1); see :mod:`tests.fuzz.harness` for how cases are
made and run. Inputs that broke a parser once are kept under ``crashers/`` and parsed
again on every run. Longer runs, and where their findings go: docs/testing.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fuzz.harness import CRASHERS, FAMILIES, Case, ParseChild, fuzz

SECONDS = float(os.environ.get("DOCWORKER_FUZZ_SECONDS", "3"))
SEED = int(os.environ.get("DOCWORKER_FUZZ_SEED", "1"))


@pytest.fixture(scope="module")
def child() -> Iterator[ParseChild]:
    runner = ParseChild()
    runner.start()
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def findings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("DOCWORKER_FUZZ_FINDINGS")
    return Path(given) if given else tmp_path_factory.mktemp("fuzz-findings")


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_mutated_documents_are_parsed_or_refused(
    family: str, child: ParseChild, findings: Path
) -> None:
    cases, found = fuzz(FAMILIES[family], child, seconds=SECONDS, seed=SEED, findings=findings)
    assert cases > 0
    report = "\n\n".join(
        f"{f.path} (from {f.case.seed}, as {f.case.mime or 'detected'}): "
        f"{f.outcome.kind}\n{f.outcome.detail}"
        for f in found
    )
    assert not found, f"{len(found)} of {cases} inputs broke the {family} parsers:\n{report}"


def _kept() -> list[Path]:
    return sorted(p for p in CRASHERS.rglob("*") if p.is_file() and p.suffix != ".mime")


@pytest.mark.parametrize("path", _kept(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_inputs_that_once_broke_a_parser_are_parsed_or_refused(
    path: Path, child: ParseChild
) -> None:
    sidecar = path.with_name(path.name + ".mime")
    mimes = [None, sidecar.read_text().strip()] if sidecar.exists() else [None]
    for mime in mimes:
        outcome = child.parse(Case(path.read_bytes(), mime, path.name, path.name))
        assert outcome.held, f"{path} as {mime or 'detected'}: {outcome.kind}\n{outcome.detail}"
