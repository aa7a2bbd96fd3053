"""Read how many entries a zip declares from its end records, without parsing its directory.

`zipfile.ZipFile` builds a `ZipInfo` for every central-directory entry as it opens an
archive, which for a hostile bundle of millions of empty entries is the slow part. The
end-of-central-directory record (and its Zip64 twin for more than 65,535 entries) states
the count in a few bytes at the end of the file.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

END_RECORD = struct.Struct("<4s4H2LH")
END_SIGNATURE = b"PK\x05\x06"
ZIP64_LOCATOR = struct.Struct("<4sLQL")
ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")
ZIP64_END_SIGNATURE = b"PK\x06\x06"
MAX_COMMENT = 0xFFFF


def declared_entry_count(stream: BinaryIO) -> int | None:
    """The total entry count the archive's end records state, or None if they can't be read.

    The stream's position is restored. None leaves the decision to `zipfile`, which
    refuses an archive whose end records are missing.
    """
    start = stream.tell()
    try:
        return _read_count(stream)
    finally:
        stream.seek(start)


def _read_count(stream: BinaryIO) -> int | None:
    size = stream.seek(0, 2)
    tail_start = max(0, size - END_RECORD.size - MAX_COMMENT)
    stream.seek(tail_start)
    tail = stream.read()
    position = tail.rfind(END_SIGNATURE)
    if position < 0 or len(tail) - position < END_RECORD.size:
        return None
    record = END_RECORD.unpack_from(tail, position)
    total: int = record[4]
    if total != 0xFFFF:
        return total
    return _zip64_count(stream, tail_start + position)


def _zip64_count(stream: BinaryIO, end_offset: int) -> int | None:
    locator_offset = end_offset - ZIP64_LOCATOR.size
    if locator_offset < 0:
        return None
    stream.seek(locator_offset)
    locator = ZIP64_LOCATOR.unpack(stream.read(ZIP64_LOCATOR.size))
    if locator[0] != ZIP64_LOCATOR_SIGNATURE:
        return None
    # The locator's offset is wrong for archives with data prepended; the record also sits
    # directly before the locator, so look there too.
    for offset in (locator[2], locator_offset - ZIP64_END_RECORD.size):
        if offset < 0:
            continue
        stream.seek(offset)
        data = stream.read(ZIP64_END_RECORD.size)
        if len(data) == ZIP64_END_RECORD.size and data[:4] == ZIP64_END_SIGNATURE:
            count: int = ZIP64_END_RECORD.unpack(data)[7]
            return count
    return None
