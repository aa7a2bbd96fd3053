"""Resource quantities of a Function: CPUs and memory, parsed from friendly spellings."""

from __future__ import annotations

import re

_NUMBER = r"\d+(?:\.\d*)?|\.\d+"
_MEMORY = re.compile(rf"^\s*({_NUMBER})\s*([a-z]*)\s*$", re.IGNORECASE)
_MEMORY_FACTORS = {
    "": 1,
    "m": 1,
    "mb": 1,
    "mi": 1,
    "mib": 1,
    "g": 1024,
    "gb": 1024,
    "gi": 1024,
    "gib": 1024,
    "t": 1024 * 1024,
    "tb": 1024 * 1024,
    "ti": 1024 * 1024,
    "tib": 1024 * 1024,
}


class Cpus(float):
    """A number of CPUs, from a number or a string such as ``"2"`` or ``"8VCPUs"``.

    Raises:
        ValueError: The value holds no number.
    """

    def __new__(cls, value: str | float | int) -> Cpus:
        if isinstance(value, str):
            digits = re.sub(r"[^0-9.]", "", value)
            if not digits:
                raise ValueError(f"Unable to read a number of CPUs from {value!r}")
            value = digits
        return super().__new__(cls, value)


class Memory(int):
    """An amount of memory in megabytes.

    Accepts numbers (megabytes) and strings with an optional unit: ``"512"``,
    ``"512Mb"``, ``"512Mi"``, ``"2Gi"`` (2048), ``"1.5Gb"`` (1536), ``"1Ti"``.

    Raises:
        ValueError: The string is not a number with a known unit.
    """

    def __new__(cls, value: str | float | int) -> Memory:
        if isinstance(value, str):
            match = _MEMORY.match(value)
            factor = _MEMORY_FACTORS.get(match.group(2).lower()) if match else None
            if match is None or factor is None:
                raise ValueError(f"Unable to convert memory to megabytes: {value!r}")
            value = float(match.group(1)) * factor
        return super().__new__(cls, int(value))
