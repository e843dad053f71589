"""The ``convert`` operation on the corpus's hostile files: refused with a clear input
error, nothing written outside the job's folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.scoring import corpus_root
from docworker.config import Settings
from docworker.errors import (
    CorruptDocument,
    HostileInput,
    InputError,
    LimitExceeded,
)
from docworker.operations import get_operation, validate_params
from docworker.operations.base import InputFile, operation_context

HOSTILE = corpus_root() / "hostile"
OPERATION = get_operation("convert")

pytestmark = pytest.mark.skipif(not HOSTILE.is_dir(), reason="corpus not present")


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("zip-slip.zip", HostileInput),
        ("zip-slip-windows.zip", HostileInput),
        ("zip-bomb-flat.zip", LimitExceeded),
        # Nested archives are files of the site like any other: unpacked once, not
        # recursed into; no page to lay out in them.
        ("zip-bomb-recursive.zip", CorruptDocument),
        ("zip-quine-droste.zip", CorruptDocument),
    ],
)
def test_hostile_zips_are_refused(tmp_path: Path, name: str, error: type[InputError]) -> None:
    workdir = tmp_path / "job"
    workdir.mkdir()
    ctx = operation_context(Settings(), workdir=workdir)
    with pytest.raises(error):
        OPERATION.run(ctx, InputFile(HOSTILE / name, name), validate_params(OPERATION, {}))
    written = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert written < 10 * 1024 * 1024
    assert list(tmp_path.rglob("evil.txt")) == []
