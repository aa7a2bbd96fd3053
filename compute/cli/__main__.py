"""`python -m compute.cli` runs the `compute` command line."""

from __future__ import annotations

from . import main

if __name__ == "__main__":
    main(prog_name="compute")
