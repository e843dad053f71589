"""What walking an archive costs: entries per second, and memory flat in the entry count.

``python -m bench.archives [--files 2000]`` writes a zip and a tar.gz of ``--files``
small text files (100 lines each, in 20 folders) and, in the same run, one ten times
larger; walks each with the default ``archives`` settings, taking each file as it comes
and deleting it (as a batch would hand it on); then walks the corpus's hostile
archives. It prints the entries, the seconds, the entries per second, and this
process's peak resident memory after each walk: it should not grow with the files.
"""

from __future__ import annotations

import argparse
import io
import shutil
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

from bench.memory import peak_rss_kib
from bench.scoring import corpus_root
from docworker.config import ArchiveSettings
from docworker.formats.archives import walk_archive


def write_zip(path: Path, files: int) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(files):
            archive.writestr(f"d{index % 20}/f{index}.txt", _text(index))
    return path


def write_tar_gz(path: Path, files: int) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for index in range(files):
            data = _text(index)
            info = tarfile.TarInfo(f"d{index % 20}/f{index}.txt")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def _text(index: int) -> bytes:
    return (f"line {index} of a small text file\n" * 100).encode()


def walk(path: Path, folder: Path) -> tuple[int, float]:
    """Entries and seconds of one walk, each file deleted as it comes."""
    workdir = Path(tempfile.mkdtemp(dir=folder))
    started = time.perf_counter()
    count = 0
    for entry in walk_archive(path, name=path.name, limits=ArchiveSettings(), workdir=workdir):
        count += 1
        if entry.file is not None:
            entry.file.unlink()
    seconds = time.perf_counter() - started
    shutil.rmtree(workdir)
    return count, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-archives-") as name:
        folder = Path(name)
        inputs = []
        for files in (args.files, args.files * 10):
            inputs.append(write_zip(folder / f"{files}.zip", files))
            inputs.append(write_tar_gz(folder / f"{files}.tar.gz", files))
        hostile = corpus_root() / "hostile"
        inputs += [hostile / "zip-bomb-recursive.zip", hostile / "zip-bomb-flat.zip"]
        print(f"{'archive':<26} {'entries':>8} {'seconds':>8} {'entries/s':>10} {'peak MiB':>9}")
        for path in inputs:
            if not path.is_file():
                continue
            count, seconds = walk(path, folder)
            print(
                f"{path.name:<26} {count:>8} {seconds:>8.2f} {count / seconds:>10.0f} "
                f"{peak_rss_kib() / 1024:>9.1f}"
            )


if __name__ == "__main__":
    main()
