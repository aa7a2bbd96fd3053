from __future__ import annotations

import pytest

from compute import Cpus, Memory


@pytest.mark.parametrize(
    ("value", "expected"),
    [("8VCPUs", 8.0), ("2", 2.0), (0.5, 0.5), (4, 4.0), ("0.25 vcpu", 0.25)],
)
def test_cpus_parses_numbers_and_strings(value, expected):
    cpus = Cpus(value)
    assert isinstance(cpus, float)
    assert cpus == expected


def test_cpus_without_digits_is_rejected():
    with pytest.raises(ValueError, match="CPUs"):
        Cpus("lots")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2Gi", 2048),
        ("512Mb", 512),
        ("1.5Gb", 1536),
        ("512", 512),
        ("512 mi", 512),
        ("1gb", 1024),
        ("1Ti", 1024 * 1024),
        (2048, 2048),
        (1024.0, 1024),
    ],
)
def test_memory_converts_to_megabytes(value, expected):
    memory = Memory(value)
    assert isinstance(memory, int)
    assert memory == expected


@pytest.mark.parametrize("value", ["two gigs", "5Pb", "", "Gi"])
def test_memory_rejects_unknown_spellings(value):
    with pytest.raises(ValueError, match="megabytes"):
        Memory(value)
