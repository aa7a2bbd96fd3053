from __future__ import annotations

import pytest

from compute import BundleError
from compute._requirements import check_requirement, read_requirements


@pytest.mark.parametrize(
    "line",
    [
        "numpy",
        "numpy==1.26.4",
        "requests[socks]>=2,<3",
        "pandas ; python_version >= '3.9'",
        "a-b.c_d~=1.0",
    ],
)
def test_plain_requirements_are_accepted(line):
    assert check_requirement(line) == line


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("-r other.txt", "pip options"),
        ("-e .", "pip options"),
        ("--index-url https://example.com/simple", "pip options"),
        ("-f https://example.com", "pip options"),
        ("https://example.com/pkg.whl", "URLs"),
        ("pkg @ https://example.com/pkg.whl", "URL"),
        ("git+https://github.com/a/b", "URL"),
        ("./local/path", "paths"),
        ("not a requirement!", "Invalid"),
    ],
)
def test_options_urls_and_garbage_are_rejected(line, reason):
    with pytest.raises(BundleError, match=reason):
        check_requirement(line)


def test_a_bare_string_is_a_file_path():
    with pytest.raises(BundleError, match="wrapped in a list"):
        read_requirements("numpy")


def test_file_comments_and_blank_lines_are_dropped(tmp_path):
    file = tmp_path / "requirements.txt"
    file.write_text("numpy  # fast arrays\n\n# nothing\nscipy\n")
    assert read_requirements(file) == ["numpy", "scipy"]
    file.write_text("numpy\n--extra-index-url https://x\n")
    with pytest.raises(BundleError, match="pip options"):
        read_requirements(str(file))
