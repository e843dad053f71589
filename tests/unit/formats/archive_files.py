"""Archives for the archive tests, made in a test's folder with the libraries and tools
that make them in the wild: zipfile and pyzipper (AES), Info-ZIP's ``zip -P``
(ZipCrypto), tarfile (links, devices, compressed tars), zstandard, gzip, py7zr."""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import py7zr
import pyzipper
import zstandard


def zip_of(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def aes_zip(path: Path, members: dict[str, bytes], password: str) -> Path:
    with pyzipper.AESZipFile(
        path, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES
    ) as archive:
        archive.setpassword(password.encode())
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def zipcrypto_zip(path: Path, members: dict[str, bytes], password: str) -> Path | None:
    """A ZipCrypto archive made by Info-ZIP's ``zip``; None where it is not installed."""
    zip_tool = shutil.which("zip")
    if zip_tool is None:
        return None
    folder = path.parent / f"{path.stem}-files"
    folder.mkdir()
    for name, data in members.items():
        (folder / name).write_bytes(data)
    subprocess.run(
        [zip_tool, "-q", "-P", password, str(path.resolve()), *members],
        cwd=folder,
        check=True,
    )
    return path


def zip_with_symlink(path: Path) -> Path:
    """A zip holding a plain file and a symbolic link (Unix mode in the external attributes)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("plain.txt", b"plain")
        link = zipfile.ZipInfo("link-to-passwd")
        link.create_system = 3
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/passwd")
    return path


def tar_of(path: Path, members: dict[str, bytes], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def tar_with_specials(path: Path) -> Path:
    """A tar with a plain file, a symbolic link, a hard link, a FIFO and a device."""
    with tarfile.open(path, "w") as archive:
        plain = tarfile.TarInfo("plain.txt")
        plain.size = 5
        archive.addfile(plain, io.BytesIO(b"plain"))
        for name, kind, target in (
            ("symlink", tarfile.SYMTYPE, "/etc/passwd"),
            ("hardlink", tarfile.LNKTYPE, "plain.txt"),
            ("fifo", tarfile.FIFOTYPE, ""),
            ("device", tarfile.CHRTYPE, ""),
        ):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            archive.addfile(info)
    return path


def zstd_tar(path: Path, members: dict[str, bytes]) -> Path:
    raw = tar_of(path.with_suffix(".plain"), members)
    path.write_bytes(zstandard.ZstdCompressor().compress(raw.read_bytes()))
    raw.unlink()
    return path


def gzip_of(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data))
    return path


def seven_zip_of(path: Path, members: dict[str, bytes]) -> Path:
    with py7zr.SevenZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(data, name)
    return path
