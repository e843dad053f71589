"""Chromium's temporary folder, where it makes its singleton socket: a path that a Unix
socket can have, however deep the worker's folder lies in the data folder."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from docworker.engines.chromium import _short_path, _temporary_folder


def test_a_short_folder_is_used_as_it_is() -> None:
    folder = Path(tempfile.mkdtemp(prefix="dwc-", dir="/tmp"))
    try:
        (folder / "tmp").mkdir()
        assert _temporary_folder(folder) == folder / "tmp"
    finally:
        shutil.rmtree(folder)


def test_a_deep_folder_is_reached_by_a_short_link(tmp_path: Path) -> None:
    folder = tmp_path.joinpath(*["deep-folder-of-a-worker"] * 6) / "docworker-chromium-x"
    (folder / "tmp").mkdir(parents=True)
    chosen = _temporary_folder(folder)
    try:
        socket = chosen / "org.chromium.Chromium.abcdef" / "SingletonSocket"
        assert len(str(socket)) <= 107
        assert chosen.resolve() == (folder / "tmp").resolve()
        (chosen / "file").write_text("x")  # what Chromium writes lands in the folder
        assert (folder / "tmp" / "file").read_text() == "x"
    finally:
        _short_path(folder).unlink(missing_ok=True)
