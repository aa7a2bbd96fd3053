from __future__ import annotations

import io
import stat
import struct
import time
import zipfile
from pathlib import Path

import pytest

from worker.build import BundleError, BundleLimits, unpack_bundle
from worker.build.ziptail import declared_entry_count

from .zips import ENTRYPOINT_SOURCE, bundle_zip, make_zip, special_entry, symlink_entry, tree


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """Where bundles unpack, with a sentinel directory beside it that must never change."""
    sentinel = tmp_path / "sandbox" / "sentinel"
    sentinel.mkdir(parents=True)
    (sentinel / "keep.txt").write_bytes(b"untouched")
    return tmp_path / "sandbox" / "bundle"


def refuse(data: bytes, target: Path, match: str, limits: BundleLimits | None = None) -> None:
    """Unpacking `data` is refused for `match`, and nothing is written anywhere."""
    outside = target.parent.parent
    before = tree(outside)
    with pytest.raises(BundleError, match=match):
        unpack_bundle(data, target, limits)
    assert not target.exists(), "a refused bundle leaves nothing behind"
    assert tree(outside) == before, "a refused bundle writes nothing outside its directory"


def test_valid_bundle_unpacks_files_packages_and_data(target: Path) -> None:
    data = bundle_zip(
        ("requirements.txt", b"tinypkg\n"),
        ("pkg/", b""),
        ("pkg/__init__.py", b""),
        ("pkg/mod.py", b"def f():\n    return 1\n"),
        ("data/nested/values.csv", b"a,b\n1,2\n"),
    )
    unpacked = unpack_bundle(data, target)
    assert unpacked.path == target
    assert unpacked.files == 5
    assert (target / "__dlentrypoint__.py").read_bytes() == ENTRYPOINT_SOURCE
    assert (target / "pkg" / "mod.py").read_text().startswith("def f")
    assert (target / "data" / "nested" / "values.csv").read_bytes() == b"a,b\n1,2\n"
    assert unpacked.requirements_path == target / "requirements.txt"
    assert unpacked.total_bytes == sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    assert stat.S_IMODE((target / "pkg" / "mod.py").stat().st_mode) == 0o644


def test_unpacks_from_a_path(tmp_path: Path, target: Path) -> None:
    path = tmp_path / "bundle.zip"
    path.write_bytes(bundle_zip())
    assert unpack_bundle(path, target).files == 1
    assert unpack_bundle(path, tmp_path / "other").requirements_path is None


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil.py", "'..'"),
        ("pkg/../../evil.py", "'..'"),
        ("/etc/evil.py", "absolute"),
        ("C:/evil.py", "absolute"),
        ("C:\\evil.py", "backslash"),
        ("..\\evil.py", "backslash"),
        ("pkg//evil.py", "empty"),
        ("./evil.py", "'.'"),
        ("evil\x01.py", "control"),
        ("a" * 300 + ".py", "too long"),
    ],
)
def test_escaping_and_odd_names_are_refused(target: Path, name: str, reason: str) -> None:
    refuse(bundle_zip((name, b"owned")), target, reason)
    assert not (target.parent.parent / "evil.py").exists()
    assert not Path("/etc/evil.py").exists()


def test_symlink_is_refused(target: Path) -> None:
    refuse(bundle_zip(symlink_entry("data/passwd", "/etc/passwd")), target, "symbolic link")


@pytest.mark.parametrize("link", ["../sentinel", "../../sandbox/sentinel", "/tmp"])
def test_writing_through_a_symlink_is_refused(target: Path, link: str) -> None:
    # The link would make the next entry land in the sentinel directory.
    data = bundle_zip(symlink_entry("data", link), ("data/keep.txt", b"overwritten"))
    refuse(data, target, "symbolic link")
    assert (target.parent / "sentinel" / "keep.txt").read_bytes() == b"untouched"


def test_an_escape_after_valid_entries_writes_none_of_them(target: Path) -> None:
    data = bundle_zip(("data/fine.txt", b"fine"), ("../sentinel/keep.txt", b"overwritten"))
    refuse(data, target, "'..'")


@pytest.mark.parametrize("file_type", [stat.S_IFIFO, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFSOCK])
def test_special_files_are_refused(target: Path, file_type: int) -> None:
    refuse(bundle_zip(special_entry("data/odd", file_type)), target, "special file")


def test_duplicate_names_are_refused(target: Path) -> None:
    refuse(bundle_zip(("data/a.txt", b"1"), ("data/a.txt", b"2")), target, "more than once")
    refuse(bundle_zip(("data/", b""), ("data/", b"")), target, "more than once")


def test_file_and_directory_of_one_name_are_refused(target: Path) -> None:
    refuse(bundle_zip(("data", b"1"), ("data/a.txt", b"2")), target, "both a file and a directory")


def test_missing_entrypoint_is_refused(target: Path) -> None:
    refuse(make_zip([("main.py", b"")]), target, "no __dlentrypoint__.py")
    refuse(make_zip([("pkg/__dlentrypoint__.py", b"")]), target, "no __dlentrypoint__.py")


def test_zip_bomb_is_refused_by_ratio(target: Path) -> None:
    bomb = bundle_zip(("data/zeros.bin", bytes(20 * 1024 * 1024)))
    assert len(bomb) < 100_000
    refuse(bomb, target, "compression ratio")


def test_zip_bomb_of_many_small_entries_is_refused_by_total_ratio(target: Path) -> None:
    # Each entry is small enough to be exempt from the per-entry ratio; together they
    # would inflate 150 kB into 200 MB.
    megabyte_of_zeros = bytes(1024 * 1024)
    bomb = bundle_zip(*[(f"data/{n}.bin", megabyte_of_zeros) for n in range(200)])
    assert len(bomb) < 250_000
    refuse(bomb, target, "unpacks to 209,715,[0-9]+ bytes from .*compression ratio of")


def test_small_repetitive_files_are_not_taken_for_bombs(target: Path) -> None:
    assert unpack_bundle(bundle_zip(("data/zeros.bin", bytes(512 * 1024))), target).files == 2


def test_ordinary_compressible_code_is_accepted(target: Path) -> None:
    # Source text compresses well, far below the ratio cap.
    source = b"".join(b"def function_%d(x):\n    return x + %d\n\n" % (n, n) for n in range(60_000))
    assert len(source) > 2 * 1024 * 1024
    assert unpack_bundle(bundle_zip(("pkg/big.py", source)), target).files == 2


def test_total_size_caps(target: Path) -> None:
    data = bundle_zip(("data/a.bin", bytes(1000)), ("data/b.bin", bytes(1000)))
    refuse(data, target, "unpacks to more than 1,500", BundleLimits(max_uncompressed_bytes=1500))
    refuse(data, target, "the limit is 100 bytes", BundleLimits(max_compressed_bytes=100))


def test_entry_lying_about_its_size_is_refused(target: Path) -> None:
    data = bytearray(bundle_zip(("data/a.bin", b"x" * 1000)))
    # Shrink the declared size in both the local and the central header to 10 bytes.
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        struct.pack_into("<L", data, data.rindex(signature) + offset, 10)
    refuse(bytes(data), target, "not a valid zip|larger than it declares")


def test_100000_entries_are_refused_quickly_without_extracting(target: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("__dlentrypoint__.py", ENTRYPOINT_SOURCE)
        for number in range(100_000):
            archive.writestr(f"f{number}", b"")
    data = buffer.getvalue()
    started = time.perf_counter()
    refuse(data, target, "100,001 entries; the limit is 10,000")
    refusing = time.perf_counter() - started
    # The count comes from the archive's last bytes: not even its entries are listed.
    started = time.perf_counter()
    assert len(zipfile.ZipFile(io.BytesIO(data)).infolist()) == 100_001
    listing = time.perf_counter() - started
    assert refusing < listing / 10, {"refusing": refusing, "listing the entries": listing}


def test_an_end_record_that_understates_the_count_is_caught(target: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("__dlentrypoint__.py", ENTRYPOINT_SOURCE)
        for number in range(100_000):
            archive.writestr(f"f{number}", b"")
    data = bytearray(buffer.getvalue())
    # Claim one entry in the Zip64 end record and in the classic one.
    zip64_end = data.rindex(b"PK\x06\x06")
    struct.pack_into("<QQ", data, zip64_end + 24, 1, 1)
    end = data.rindex(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 1, 1)
    assert declared_entry_count(io.BytesIO(bytes(data))) == 1
    refuse(bytes(data), target, "100,001 entries; the limit is 10,000")


def test_entry_count_is_checked_on_the_parsed_directory_too(target: Path) -> None:
    data = bundle_zip(*[(f"f{n}", b"") for n in range(20)])
    refuse(data, target, "21 entries; the limit is 10", BundleLimits(max_entries=10))


def test_encrypted_and_exotic_compression_are_refused(target: Path) -> None:
    data = bytearray(bundle_zip(("data/secret", b"x")))
    # zipfile writes no encrypted entries: set the flag in the headers afterwards.
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        data[data.rindex(signature) + offset] |= 0x1
    refuse(bytes(data), target, "encrypted")
    refuse(make_zip([("__dlentrypoint__.py", b"")], zipfile.ZIP_BZIP2), target, "method 12")


def test_garbage_is_refused(target: Path) -> None:
    refuse(b"this is not a zip", target, "not a valid zip")
    refuse(bundle_zip()[:-10], target, "not a valid zip")


def test_declared_entry_count_reads_the_end_records() -> None:
    assert declared_entry_count(io.BytesIO(bundle_zip(("a", b""), ("b", b"")))) == 3
    assert declared_entry_count(io.BytesIO(b"no end record here")) is None
