"""What the golden tests share: one LibreOffice for the session, for the legacy Office files.

The engine starts on the first legacy file parsed, so a run that selects none
pays nothing. Where LibreOffice is not installed the fixture is None, and the
tests skip the files that need it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from docworker.config import LibreOfficeSettings
from docworker.engines.libreoffice import LibreOfficeEngine


@pytest.fixture(scope="session")
def convert() -> Iterator[Callable[[Path, str], Path] | None]:
    """The converter parsers get as ``ParseContext.convert``, or None without LibreOffice."""
    engine = LibreOfficeEngine(LibreOfficeSettings())
    if not engine.status()["installed"]:
        yield None
        return
    with engine:
        yield engine.convert
