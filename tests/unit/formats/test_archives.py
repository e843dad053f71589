"""Walking archives: every corpus archive to the right entries, every hostile one refused
or cut at a limit with its reason, and the limits held while bytes are written."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from bench.scoring import corpus_root
from docworker.config import ArchiveSettings
from docworker.errors import CorruptDocument, InputError, UnsupportedFormat
from docworker.formats.archives import Entry, walk_archive
from docworker.formats.archives.names import decode_names, unsafe_reason
from tests.unit.formats.archive_files import (
    aes_zip,
    gzip_of,
    seven_zip_of,
    tar_of,
    tar_with_specials,
    zip_of,
    zip_with_symlink,
    zipcrypto_zip,
    zstd_tar,
)

CORPUS = corpus_root()
ARCHIVES = CORPUS / "archives"
HOSTILE = CORPUS / "hostile"
needs_corpus = pytest.mark.skipif(not ARCHIVES.is_dir(), reason="test corpus not present")

TEST_DOCUMENTS = {
    "testEXCEL.xls": (13824, "application/vnd.ms-excel"),
    "testHTML.html": (167, "text/html"),
    "testOpenOffice2.odt": (26448, "application/vnd.oasis.opendocument.text"),
    "testPDF.pdf": (34824, "application/pdf"),
    "testPPT.ppt": (16384, "application/vnd.ms-powerpoint"),
    "testRTF.rtf": (3410, "application/rtf"),
    "testTXT.txt": (49, "text/plain"),
    "testWORD.doc": (19456, "application/msword"),
    "testXML.xml": (766, "application/xml"),
}
GBK_FOLDER = "审计压缩包文件检索测试"
GBK_FILE = f"{GBK_FOLDER}/集团邮件审计系统2021年自动巡检需求文档_V4.0.doc"


def walk(
    path: Path, workdir: Path, password: str | None = None, **limits: int | float
) -> list[Entry]:
    workdir.mkdir(exist_ok=True)
    settings = ArchiveSettings(**limits)
    entries = list(
        walk_archive(path, name=path.name, limits=settings, workdir=workdir, password=password)
    )
    for entry in entries:
        if entry.file is not None:
            assert entry.file.parent == workdir
            data = entry.file.read_bytes()
            assert len(data) == entry.size
            assert hashlib.sha256(data).hexdigest() == entry.sha256
    return entries


def table(entries: list[Entry]) -> dict[str, tuple[int, str, str | None]]:
    return {e.path: (e.depth, e.status.value, e.code) for e in entries}


@needs_corpus
@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("test-documents.zip", ""),
        ("test-documents.tar.gz", "test-documents/"),
        ("test-documents.tar.bz2", "test-documents/"),
        ("test-documents.7z", "test-documents/"),
    ],
)
def test_the_test_documents_come_out_of_every_format(
    name: str, prefix: str, tmp_path: Path
) -> None:
    entries = walk(ARCHIVES / name, tmp_path / "work")
    found = {e.path: (e.size, e.mime) for e in entries}
    assert found == {prefix + file: facts for file, facts in TEST_DOCUMENTS.items()}
    assert all(e.status.value == "ok" and e.depth == 1 and e.file for e in entries)


@needs_corpus
def test_nested_archives_are_unpacked_under_their_paths(tmp_path: Path) -> None:
    zips = walk(ARCHIVES / "zip-of-zip.zip", tmp_path / "zip")
    assert [(e.path, e.depth, e.archive) for e in zips] == [
        ("html-within-zip.zip", 1, "zip"),
        ("html-within-zip.zip/text.html", 2, None),
    ]
    assert zips[0].file is None  # an archive unpacked in turn is not kept
    assert zips[1].mime == "text/html"
    tars = walk(ARCHIVES / "nested-tarball.tar", tmp_path / "tar")
    nested = "folderContainingTgz/inner/nested.tgz"
    assert [(e.path, e.depth, e.archive) for e in tars] == [
        (nested, 1, "gzip"),
        (f"{nested}/folderWithinTgz/testTXT.txt", 2, None),
    ]
    assert tars[1].file is not None
    assert tars[1].file.read_bytes().startswith(b"Test d'indexation de Txt")


@needs_corpus
def test_gbk_names_are_decoded(tmp_path: Path) -> None:
    entries = walk(ARCHIVES / "gbk-filenames.zip", tmp_path / "work")
    assert [e.path for e in entries] == [GBK_FILE]


@needs_corpus
def test_encrypted_zip_entries_need_the_password(tmp_path: Path) -> None:
    path = ARCHIVES / "encrypted.zip"
    assert table(walk(path, tmp_path / "none")) == {
        "unencrypted.txt": (1, "ok", None),
        "encrypted.txt": (1, "failed", "password-required"),
    }
    assert table(walk(path, tmp_path / "wrong", password="not it")) == {
        "unencrypted.txt": (1, "ok", None),
        "encrypted.txt": (1, "failed", "wrong-password"),
    }


@needs_corpus
def test_an_encrypted_7z_opens_with_its_password(tmp_path: Path) -> None:
    path = ARCHIVES / "encrypted-password-Tika.7z"
    (opened,) = walk(path, tmp_path / "right", password="Tika")
    assert (opened.path, opened.status.value) == ("text.txt", "ok")
    assert opened.file is not None
    assert opened.file.read_bytes().startswith(b"TEST DATA FOR TIKA.")
    (locked,) = walk(path, tmp_path / "none")
    assert (locked.status.value, locked.code) == ("failed", "password-required")
    (wrong,) = walk(path, tmp_path / "wrong", password="not it")
    assert wrong.status.value == "failed"
    assert "wrong password" in (wrong.reason or "")


def test_aes_and_zipcrypto_zips_open_with_their_password(tmp_path: Path) -> None:
    members = {"secret.txt": b"the content " * 100}
    aes = aes_zip(tmp_path / "aes.zip", members, "s3cret")
    (entry,) = walk(aes, tmp_path / "aes", password="s3cret")
    assert entry.status.value == "ok"
    assert entry.file is not None and entry.file.read_bytes() == members["secret.txt"]
    crypto = zipcrypto_zip(tmp_path / "zipcrypto.zip", members, "s3cret")
    if crypto is None:
        pytest.skip("Info-ZIP's zip is not installed (scripts/bootstrap dev installs it)")
    (entry,) = walk(crypto, tmp_path / "crypto", password="s3cret")
    assert entry.status.value == "ok"
    assert entry.file is not None and entry.file.read_bytes() == members["secret.txt"]
    (entry,) = walk(crypto, tmp_path / "crypto-wrong", password="nope")
    assert (entry.status.value, entry.code) == ("failed", "wrong-password")


def test_xz_and_zstd_tars_and_single_streams(tmp_path: Path) -> None:
    members = {"a/one.txt": b"one\n", "b/two.csv": b"x,y\n1,2\n"}
    xz = tar_of(tmp_path / "files.tar.xz", members, "w:xz")
    zst = zstd_tar(tmp_path / "files.tar.zst", members)
    for path in (xz, zst):
        assert table(walk(path, tmp_path / f"work-{path.name}")) == {
            "a/one.txt": (1, "ok", None),
            "b/two.csv": (1, "ok", None),
        }
    (single,) = walk(gzip_of(tmp_path / "notes.txt.gz", b"notes\n"), tmp_path / "gz")
    assert (single.path, single.mime, single.size) == ("notes.txt", "text/plain", 6)


def test_links_devices_and_escaping_paths_are_refused(tmp_path: Path) -> None:
    tar = table(walk(tar_with_specials(tmp_path / "specials.tar"), tmp_path / "tar"))
    assert tar == {
        "plain.txt": (1, "ok", None),
        "symlink": (1, "refused", "hostile-input"),
        "hardlink": (1, "refused", "hostile-input"),
        "fifo": (1, "refused", "hostile-input"),
        "device": (1, "refused", "hostile-input"),
    }
    zipped = table(walk(zip_with_symlink(tmp_path / "link.zip"), tmp_path / "zip"))
    assert zipped == {
        "plain.txt": (1, "ok", None),
        "link-to-passwd": (1, "refused", "hostile-input"),
    }
    names = {"/etc/cron.d/x": b"a", "C:/Windows/x.dll": b"b", "ok/../../up.txt": b"c"}
    escaping = table(walk(zip_of(tmp_path / "escape.zip", names), tmp_path / "escape"))
    assert {status for _, status, _ in escaping.values()} == {"refused"}


def test_a_stream_is_cut_at_its_ratio_while_it_is_inflated(tmp_path: Path) -> None:
    # A gzip stream declares no size a reader could trust: the ratio is counted as it inflates.
    bomb = gzip_of(tmp_path / "zeros.bin.gz", bytes(64 * 1024 * 1024))
    workdir = tmp_path / "work"
    (entry,) = walk(bomb, workdir, ratio_floor=256 * 1024, max_ratio=50)
    assert (entry.status.value, entry.code) == ("refused", "limit-exceeded")
    assert "compression ratio" in (entry.reason or "")
    assert list(workdir.iterdir()) == []  # what was written of it is gone


def test_the_ratio_counts_what_was_read_ahead_of_an_entry(tmp_path: Path) -> None:
    # In a tar.gz an entry's first bytes are decoded before it begins: its ratio is not
    # to be taken over what is read after it began. These lines compress about 30 times.
    lines = b"".join(os.urandom(25).hex().encode() + b"a" * 950 + b"\n" for _ in range(2048))
    archive = tar_of(tmp_path / "t.tar.gz", {"first.txt": b"first\n", "lines.txt": lines}, "w:gz")
    entries = walk(archive, tmp_path / "work", ratio_floor=256 * 1024, max_ratio=50)
    assert [(e.path, e.status.value) for e in entries] == [
        ("first.txt", "ok"),
        ("lines.txt", "ok"),
    ]


def test_entry_size_total_and_count_limits(tmp_path: Path) -> None:
    big = gzip_of(tmp_path / "big.bin.gz", os.urandom(300 * 1024))
    (cut,) = walk(big, tmp_path / "size", max_entry_bytes=100 * 1024)
    assert (cut.status.value, cut.code) == ("refused", "limit-exceeded")
    assert "entry size" in (cut.reason or "")
    three = tar_of(tmp_path / "three.tar", {f"{n}.bin": os.urandom(200 * 1024) for n in "abc"})
    total = walk(three, tmp_path / "total", max_total_bytes=300 * 1024)
    assert [(e.path, e.status.value) for e in total] == [("a.bin", "ok"), ("b.bin", "refused")]
    assert "unpacked bytes" in (total[1].reason or "")
    many = zip_of(tmp_path / "many.zip", {f"{n}.txt": b"x" for n in range(10)})
    counted = walk(many, tmp_path / "count", max_entries=3)
    assert [e.status.value for e in counted] == ["ok", "ok", "ok", "refused"]
    assert counted[-1].code == "limit-exceeded"


def test_a_7z_is_held_to_the_limits_as_it_is_unpacked(tmp_path: Path) -> None:
    members = {"a.txt": b"first", "zeros.bin": bytes(4 * 1024 * 1024), "b.txt": b"last"}
    archive = seven_zip_of(tmp_path / "three.7z", members)
    total = walk(archive, tmp_path / "total", max_total_bytes=2 * 1024 * 1024)
    assert [(e.path, e.status.value, e.code) for e in total] == [
        ("a.txt", "ok", None),
        ("zeros.bin", "refused", "limit-exceeded"),
    ]
    assert "unpacked bytes" in (total[1].reason or "")
    declared = table(walk(archive, tmp_path / "size", max_entry_bytes=1024 * 1024))
    assert declared == {
        "a.txt": (1, "ok", None),
        "zeros.bin": (1, "refused", "limit-exceeded"),
        "b.txt": (1, "ok", None),
    }


@needs_corpus
def test_nesting_deeper_than_the_limit_is_not_unpacked(tmp_path: Path) -> None:
    (entry,) = walk(ARCHIVES / "zip-of-zip.zip", tmp_path / "work", max_depth=1)
    assert (entry.path, entry.status.value, entry.code) == (
        "html-within-zip.zip",
        "refused",
        "limit-exceeded",
    )


#: Every hostile archive of the corpus: (limits, what each entry ends as).
HOSTILE_ARCHIVES: dict[str, dict[str, tuple[int, str, str | None]]] = {
    "zip-slip.zip": {
        "good.txt": (1, "ok", None),
        "../" * 40 + "tmp/evil.txt": (1, "refused", "hostile-input"),
    },
    "zip-slip-windows.zip": {
        "good.txt": (1, "ok", None),
        "../" * 40 + "Temp/evil.txt": (1, "refused", "hostile-input"),
    },
    "tar-slip.tar": {
        "good.txt": (1, "ok", None),
        "../" * 40 + "tmp/evil.txt": (1, "refused", "hostile-input"),
    },
    "zip-quine-droste.zip": {
        "droste.jpg": (1, "ok", None),
        "droste.zip": (1, "refused", "hostile-input"),
    },
    "gzip-quine.gz": {"gzip-quine": (1, "refused", "hostile-input")},
}


@needs_corpus
@pytest.mark.parametrize("name", sorted(HOSTILE_ARCHIVES))
def test_hostile_archives_are_refused_entry_by_entry(name: str, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    entries = walk(HOSTILE / name, workdir)
    assert table(entries) == HOSTILE_ARCHIVES[name]
    assert all(e.reason for e in entries if e.status.value != "ok")
    # Nothing lands outside the work folder: it holds only the files of the ok entries.
    written = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert written == {e.file for e in entries if e.file is not None}


@needs_corpus
def test_the_flat_zip_bomb_is_refused_from_its_directory(tmp_path: Path) -> None:
    entries = walk(HOSTILE / "zip-bomb-flat.zip", tmp_path / "work")
    refused = [e for e in entries if e.status.value == "refused"]
    assert len(entries) == 251 and len(refused) == 250
    assert {e.code for e in refused} == {"hostile-input", "limit-exceeded"}
    assert sum(e.size or 0 for e in entries if e.status.value == "ok") < 1024


@needs_corpus
def test_the_recursive_zip_bomb_unpacks_one_copy_a_level(tmp_path: Path) -> None:
    entries = walk(HOSTILE / "zip-bomb-recursive.zip", tmp_path / "work")
    unpacked = [e for e in entries if e.archive and not e.same_as]
    copies = [e for e in entries if e.same_as]
    assert [e.depth for e in unpacked] == [1, 2, 3, 4]  # nine copies a level, one unpacked
    assert len(copies) == 4 * 8
    assert all(e.status.value == "ok" and e.file is None for e in copies)
    deepest = [e for e in entries if e.depth == 5]
    assert len(deepest) == 9
    assert {(e.status.value, e.code) for e in deepest} == {("refused", "limit-exceeded")}
    assert len(entries) == 45
    cut = walk(HOSTILE / "zip-bomb-recursive.zip", tmp_path / "count", max_entries=10)
    assert len(cut) == 11 and cut[-1].code == "limit-exceeded"


@needs_corpus
def test_an_lzma_stream_asking_for_too_much_memory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CorruptDocument, match="max_decoder_memory"):
        walk(HOSTILE / "lzma-oom", tmp_path / "work")


@needs_corpus
@pytest.mark.parametrize("name", ["eicar.txt", "pdf-javascript-action.pdf", "not-a-zip.odt"])
def test_what_is_no_archive_is_refused_whole(name: str, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormat):
        walk(HOSTILE / name, tmp_path / "work")


def test_names_are_decoded_together_and_judged() -> None:
    gbk = [GBK_FOLDER.encode("gbk"), GBK_FILE.encode("gbk")]
    assert decode_names(gbk) == [GBK_FOLDER, GBK_FILE]
    assert decode_names(["é.txt".encode()]) == ["é.txt"]
    assert decode_names([b"caf\x82.txt"]) == ["café.txt"]  # code page 437, the ZIP default
    assert unsafe_reason("a/b.txt") is None
    for name in ("../x", "a/../../x", "/etc/passwd", "C:/x", "c:x", "\\\\server\\share\\x"):
        assert unsafe_reason(name) is not None, name


@needs_corpus
@pytest.mark.parametrize(
    "name", sorted(p.name for p in ARCHIVES.glob("*")) if ARCHIVES.is_dir() else []
)
def test_damaged_archives_fail_as_input_errors(name: str, tmp_path: Path) -> None:
    """Cut short or with bytes changed, an archive gives failed entries or an input error,
    never another exception (what would fail the job as the service's own fault)."""
    data = (ARCHIVES / name).read_bytes()
    changed = bytearray(data)
    for at in range(len(data) // 3, len(data), max(len(data) // 7, 1)):
        changed[at] ^= 0x5A
    for index, damaged in enumerate((data[: len(data) // 2], data[:-3], bytes(changed))):
        path = tmp_path / f"{index}-{name}"
        path.write_bytes(damaged)
        try:
            entries = walk(path, tmp_path / f"work-{index}", password="Tika")
        except InputError:
            continue
        assert all(e.code and e.reason for e in entries if e.status.value != "ok")


# -- RAR, through libarchive ----------------------------------------------------------
RARS = Path(__file__).resolve().parents[2] / "fixtures" / "rar"
RAR_SUBDIRS = {
    "sub/dir1/file1.txt": b"file1\n",
    "sub/dir2/file2.txt": b"file2\n",
    "sub/with space/long fn.txt": b"long fn\n",
    "sub/üȵĩöḋè/file.txt": b"file\n",
}


@pytest.mark.parametrize("name", ["rar3-subdirs.rar", "rar5-subdirs.rar"])
def test_rar_4_and_5_archives_are_read(name: str, tmp_path: Path) -> None:
    entries = walk(RARS / name, tmp_path / "work")
    assert {e.path: e.file.read_bytes() for e in entries if e.file} == RAR_SUBDIRS
    assert all((e.status.value, e.depth, e.mime) == ("ok", 1, "text/plain") for e in entries)


def test_a_rar_5_solid_archive_is_read_whole(tmp_path: Path) -> None:
    entries = walk(RARS / "rar5-solid.rar", tmp_path / "work")
    assert [(e.path, e.size) for e in entries] == [("stest1.txt", 2048), ("stest2.txt", 2048)]
    assert all(e.file and e.file.read_bytes().startswith(b"000\n001\n") for e in entries)


def test_a_rar_4_solid_archive_says_where_its_reading_stopped(tmp_path: Path) -> None:
    first, stopped = walk(RARS / "rar3-solid.rar", tmp_path / "work")
    assert (first.path, first.status.value, first.size) == ("stest1.txt", "ok", 2048)
    assert (stopped.path, stopped.status.value, stopped.code) == (
        ".",
        "failed",
        "corrupt-document",
    )
    assert (stopped.reason or "").endswith(
        "could not be read further: RAR solid archive support unavailable."
    )


def test_a_rar_link_is_refused_and_nothing_is_written_through_it(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    entries = table(walk(RARS / "rar5-evil-symlink-traversal.rar", workdir))
    assert entries == {"up": (1, "refused", "hostile-input"), "up/pwned.txt": (1, "ok", None)}
    # The file under the link's name is an entry of the work folder like any other.
    assert [p.parent for p in workdir.rglob("*") if p.is_file()] == [workdir]
    assert not (tmp_path / "pwned.txt").exists()


def test_an_encrypted_rar_is_refused_as_unread(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormat, match="encrypted RAR archives are not read"):
        walk(RARS / "rar5-hpsw.rar", tmp_path / "names")
    # Names in the clear, data encrypted: libarchive would hand the encrypted bytes over.
    entries = walk(RARS / "rar5-psw.rar", tmp_path / "data")
    assert table(entries) == {
        "stest1.txt": (1, "failed", "unsupported-format"),
        "stest2.txt": (1, "failed", "unsupported-format"),
    }
    assert all(e.file is None for e in entries)


def test_rar_5_copies_of_an_earlier_entry_are_refused_as_links(tmp_path: Path) -> None:
    # libarchive would hand each copy over empty.
    entries = table(walk(RARS / "rar5-dups.rar", tmp_path / "work"))
    assert entries.pop("stest1.txt") == (1, "ok", None)
    assert set(entries.values()) == {(1, "refused", "hostile-input")}
    assert len(entries) == 8


def test_a_rar_inside_a_zip_is_unpacked(tmp_path: Path) -> None:
    inner = (RARS / "rar5-subdirs.rar").read_bytes()
    outer = zip_of(tmp_path / "outer.zip", {"inner.rar": inner})
    entries = walk(outer, tmp_path / "work")
    assert (entries[0].path, entries[0].archive) == ("inner.rar", "rar")
    assert {e.path for e in entries[1:]} == {f"inner.rar/{p}" for p in RAR_SUBDIRS}


@pytest.mark.parametrize("name", sorted(p.name for p in RARS.glob("*.rar")))
def test_damaged_rars_fail_as_input_errors(name: str, tmp_path: Path) -> None:
    data = (RARS / name).read_bytes()
    changed = bytearray(data)
    for at in range(len(data) // 3, len(data), max(len(data) // 7, 1)):
        changed[at] ^= 0x5A
    for index, damaged in enumerate((data[: len(data) // 2], data[:-3], bytes(changed))):
        path = tmp_path / f"{index}-{name}"
        path.write_bytes(damaged)
        try:
            entries = walk(path, tmp_path / f"work-{index}")
        except InputError:
            continue
        assert all(e.code and e.reason for e in entries if e.status.value != "ok")
