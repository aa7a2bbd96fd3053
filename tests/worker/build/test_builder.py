from __future__ import annotations

from pathlib import Path

import pytest

from compute.server.settings import Settings
from worker.build import BuildSettings, InstallerOptions, build_function
from worker.build.builder import interpreter_registry

from .conftest import IMAGE
from .zips import bundle_zip


@pytest.fixture
def settings(tmp_path: Path, installer_options: InstallerOptions) -> BuildSettings:
    return BuildSettings(
        env_root=tmp_path / "envs",
        installer=installer_options,
        scratch_root=tmp_path / "scratch",
    )


def test_build_succeeds_and_logs_every_step(settings: BuildSettings) -> None:
    bundle = bundle_zip(("requirements.txt", b"TinyPkg  # the test package\n"))
    result = build_function(bundle, IMAGE, settings)
    assert result.ok and result.error is None
    assert result.env_python is not None and result.env_python.exists()
    assert result.bundle_dir is None
    log = result.log_text
    for expected in [
        f"Image: {IMAGE}",
        "Bundle: 2 files",
        "Requirements (1):\n  tinypkg\n",
        f"Interpreter: Python {interpreter_registry().resolve(IMAGE).version}\n",
        "built in",
        "--- installer output ---",
        "+ tinypkg==1.0",
        "Build succeeded in",
    ]:
        assert expected in log, f"{expected!r} missing from:\n{log}"
    assert list(settings.scratch_root.iterdir()) == [], "the checked bundle is removed"

    again = build_function(bundle, IMAGE, settings)
    assert again.ok and again.env_python == result.env_python
    assert "cache hit" in again.log_text and "installer output" not in again.log_text


def test_bundle_is_kept_where_asked(settings: BuildSettings, tmp_path: Path) -> None:
    result = build_function(bundle_zip(), IMAGE, settings, unpack_to=tmp_path / "function")
    assert result.ok
    assert "Requirements: none" in result.log_text
    assert result.bundle_dir == tmp_path / "function"
    assert (result.bundle_dir / "__dlentrypoint__.py").exists()


def test_bundle_from_a_path(settings: BuildSettings, tmp_path: Path) -> None:
    path = tmp_path / "bundle.zip"
    path.write_bytes(bundle_zip())
    assert build_function(path, IMAGE, settings).ok


def test_unknown_image_lists_available_images(settings: BuildSettings, tmp_path: Path) -> None:
    target = tmp_path / "function"
    result = build_function(bundle_zip(), "python3.99:latest", settings, unpack_to=target)
    assert not result.ok and result.env_python is None and result.bundle_dir is None
    assert "is not available; available images: " in result.error and IMAGE in result.error
    assert result.log_text.rstrip().endswith(result.error)
    assert not target.exists()


def test_refused_requirement_is_named_and_never_read(settings: BuildSettings) -> None:
    bundle = bundle_zip(("requirements.txt", b"tinypkg\n-r /etc/passwd\n"))
    result = build_function(bundle, IMAGE, settings)
    assert not result.ok
    assert "requirements.txt line 2: '-r /etc/passwd': pip options are not accepted" in (
        result.log_text
    )
    assert "root:" not in result.log_text
    assert not (settings.env_root).exists() or not any(settings.env_root.glob("[0-9a-f]*"))


def test_bad_bundles_fail_with_the_reason(settings: BuildSettings) -> None:
    result = build_function(bundle_zip(("../escape.py", b"")), IMAGE, settings)
    assert not result.ok and "'..'" in result.error
    result = build_function(b"not a zip", IMAGE, settings)
    assert not result.ok and "not a valid zip" in result.log_text


def test_failed_install_log_has_the_installer_output(settings: BuildSettings) -> None:
    bundle = bundle_zip(("requirements.txt", b"missing-package==1\n"))
    result = build_function(bundle, IMAGE, settings)
    assert not result.ok
    assert result.error == "installing the requirements failed (exit status 1)"
    assert "missing-package" in result.log_text.split("--- installer output ---")[1]


def test_requirements_that_are_not_text(settings: BuildSettings) -> None:
    result = build_function(bundle_zip(("requirements.txt", b"\xff\xfe\x00")), IMAGE, settings)
    assert not result.ok and result.error == "requirements.txt is not UTF-8 text"


def test_settings_from_service_config(tmp_path: Path) -> None:
    settings = BuildSettings.from_settings(
        Settings.from_mapping(
            {
                "WORK_DIR": str(tmp_path),
                "WHEELHOUSE": str(tmp_path / "wheels"),
                "PACKAGE_INDEX_URL": None,
                "BUILD_TIMEOUT_SECONDS": 60,
                "PYTHON_INTERPRETERS": "/opt/python3.12/bin/python3.12, ",
            }
        )
    )
    assert settings.env_root == tmp_path / "envs"
    assert settings.installer.source_arguments() == [
        "--find-links",
        str(tmp_path / "wheels"),
        "--no-index",
    ]
    assert settings.installer.timeout_seconds == 60
    assert settings.interpreters == ("/opt/python3.12/bin/python3.12",)
