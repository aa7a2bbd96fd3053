"""The worker's copy of a job's result (`job_files.read_result`, `job_result.JobResult`):
small ones in memory, large ones in an unnamed private file, none past its limit."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.worker.execution.conftest import pattern
from worker.execution import job_files
from worker.execution.job_files import read_result
from worker.execution.job_result import SPOOL_MEMORY_BYTES, JobResult, copy_capped
from worker.execution.job_user import JobUser

ME = JobUser("worker", os.getuid(), os.getgid(), switches=False)
LIMIT = 4 * SPOOL_MEMORY_BYTES


def written(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "result.bin"
    path.write_bytes(data)
    return path


def test_a_small_result_stays_in_memory(tmp_path: Path, spools: list[Any]) -> None:
    result, refused = read_result(written(tmp_path, b"j42"), ME, LIMIT, tmp_path)
    assert refused is None and result is not None
    with result:
        assert (result.tag, result.size, result.value_bytes()) == (b"j", 2, b"42")
        assert result.in_memory and result.has_value
        assert not spools[0]._rolled
        assert result.value_bytes() == b"42"  # read again from its start
    assert list(tmp_path.iterdir()) == [tmp_path / "result.bin"]


def test_a_large_result_goes_to_an_unnamed_private_file_in_the_spool_directory(
    tmp_path: Path, spools: list[Any]
) -> None:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    value = pattern(3 * SPOOL_MEMORY_BYTES + 7)
    result, refused = read_result(written(tmp_path, b"b" + value), ME, LIMIT, spool_dir)
    assert refused is None and result is not None
    assert (result.tag, result.size) == (b"b", len(value))
    assert not result.in_memory and spools[0]._rolled
    info = os.fstat(spools[0]._file.fileno())
    assert info.st_dev == spool_dir.stat().st_dev
    assert info.st_nlink == 0 and info.st_uid == os.geteuid()  # no job can open it
    assert stat.S_IMODE(info.st_mode) & 0o077 == 0
    assert list(spool_dir.iterdir()) == []
    stream = result.stream()
    pieces = iter(lambda: stream.read(SPOOL_MEMORY_BYTES), b"")
    assert b"".join(pieces) == value
    result.close()
    assert spools[0].closed
    result.close()  # twice is harmless


@pytest.mark.parametrize(("data", "tag"), [(b"n", b"n"), (b"", b"")])
def test_none_and_an_empty_file_have_no_value_to_store(
    tmp_path: Path, data: bytes, tag: bytes
) -> None:
    result, refused = read_result(written(tmp_path, data), ME, LIMIT, tmp_path)
    assert refused is None and result is not None
    with result:
        assert (result.tag, result.size, result.has_value) == (tag, 0, False)


def test_a_result_past_the_limit_is_refused_before_a_byte_is_copied(
    tmp_path: Path, spools: list[Any]
) -> None:
    path = written(tmp_path, b"b" + bytes(LIMIT + 1))
    result, refused = read_result(path, ME, LIMIT, tmp_path)
    assert result is None
    assert refused == f"its result of {LIMIT + 1} bytes exceeds the {LIMIT} byte limit"
    assert spools == []


class _Shrunk:
    """`os` as `job_files` uses it, but with files reported smaller than they are, as if
    they grew between the size check and the copy."""

    def __init__(self, by: int) -> None:
        self.by = by

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def fstat(self, fd: int) -> os.stat_result:
        fields = list(os.fstat(fd))[:10]
        fields[stat.ST_SIZE] -= self.by
        return os.stat_result(fields)


def test_a_result_that_grew_past_the_limit_after_the_check_is_refused(
    tmp_path: Path, spools: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = written(tmp_path, b"b" + bytes(LIMIT + SPOOL_MEMORY_BYTES))
    monkeypatch.setattr(job_files, "os", _Shrunk(2 * SPOOL_MEMORY_BYTES))
    result, refused = read_result(path, ME, LIMIT, tmp_path)
    assert result is None
    # Copied only one byte past the limit, and let go of.
    assert refused == f"its result of {LIMIT + 1} bytes exceeds the {LIMIT} byte limit"
    assert len(spools) == 1 and spools[0].closed


def test_a_copy_stops_at_its_limit() -> None:
    source, target = io.BytesIO(pattern(10)), io.BytesIO()
    assert copy_capped(source, target, 4) == 4
    assert target.getvalue() == pattern(4)
    assert copy_capped(io.BytesIO(b"ab"), io.BytesIO(), 4) == 2


def test_a_result_made_of_bytes_reads_back_as_a_job_wrote_it() -> None:
    with JobResult.from_bytes(b'j"done"') as result:
        assert (result.tag, result.size, result.value_bytes()) == (b"j", 6, b'"done"')
    with JobResult.from_bytes(b"") as empty:
        assert (empty.tag, empty.size, empty.has_value) == (b"", 0, False)
