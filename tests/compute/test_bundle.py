from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import cloudpickle
import pytest

from compute import BundleError, Function
from compute._bundle import Bundle, build_bundle, check_image, default_image
from compute._entrypoint import PYTHON_VERSION

from . import bundle_samples

RUN_MAIN = (
    "import sys; sys.path.insert(0, sys.argv[1]); from __dlentrypoint__ import main; print(main(2))"
)


def double(x):
    return x * 2


def run_main(directory: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", RUN_MAIN, str(directory)],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def unpack(tmp_path: Path, function, **options) -> tuple[Path, list[str], str]:
    with build_bundle(function, **options) as bundle:
        assert bundle.path.exists()
        with zipfile.ZipFile(bundle.path) as archive:
            names = sorted(archive.namelist())
            archive.extractall(tmp_path / "bundle")
        kind = bundle.kind
    assert not bundle.path.exists(), "the temporary zip is removed"
    return tmp_path / "bundle", names, kind


def build(function, **options) -> str:
    with build_bundle(function, **options) as bundle:
        return bundle.kind


def meta(directory: Path) -> dict:
    return json.loads((directory / "__dlmeta__.json").read_text())


def test_plain_function_is_shipped_as_source(tmp_path):
    directory, names, kind = unpack(tmp_path, double)
    assert kind == "source"
    assert names == ["__dlentrypoint__.py", "__dlmeta__.json"]
    source = (directory / "__dlentrypoint__.py").read_text()
    assert source.startswith("def double(x):")
    assert source.endswith("\n\n\nmain = double\n")
    assert meta(directory) == {"python": PYTHON_VERSION, "kind": "source"}
    assert run_main(directory) == "4"


def test_imported_modules_become_import_lines(tmp_path):
    directory, _, kind = unpack(tmp_path, bundle_samples.uses_import)
    assert kind == "source"
    source = (directory / "__dlentrypoint__.py").read_text()
    assert source.startswith("from __future__ import annotations\nimport math\n")
    assert run_main(directory) == "4.0"


def test_dotted_path_imports_the_included_module(tmp_path):
    directory, names, kind = unpack(
        tmp_path,
        "tests.compute.bundle_samples.triple",
        include_modules=["tests.compute.bundle_samples"],
    )
    assert kind == "import"
    assert names == [
        "__dlentrypoint__.py",
        "__dlmeta__.json",
        "tests/__init__.py",
        "tests/compute/__init__.py",
        "tests/compute/bundle_samples.py",
    ]
    assert (directory / "__dlentrypoint__.py").read_text() == (
        "from tests.compute.bundle_samples import triple\n\n\nmain = triple\n"
    )
    assert run_main(directory) == "6"


def test_dotted_path_must_resolve():
    with pytest.raises(BundleError, match="no_such_function"):
        build("tests.compute.bundle_samples.no_such_function")
    with pytest.raises(BundleError, match="callable"):
        build("tests.compute.bundle_samples.OFFSET")


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        (lambda x: x + 1, "3"),
        (bundle_samples.make_adder(10), "12"),
        (bundle_samples.uses_global, "102"),
    ],
    ids=["lambda", "closure", "module-global"],
)
def test_unexpressible_functions_are_pickled(tmp_path, function, expected):
    directory, names, kind = unpack(tmp_path, function)
    assert kind == "cloudpickle"
    # No requirements: the service loads the pickle with its own cloudpickle.
    assert names == ["__dlentrypoint__.py", "__dlfunction__.pkl", "__dlmeta__.json"]
    assert meta(directory) == {
        "python": PYTHON_VERSION,
        "kind": "cloudpickle",
        "cloudpickle": cloudpickle.__version__,
    }
    assert run_main(directory) == expected


def test_a_pickled_functions_own_cloudpickle_requirement_is_kept(tmp_path):
    directory, _, kind = unpack(tmp_path, lambda x: x, requirements=["cloudpickle==3.0.0"])
    assert kind == "cloudpickle"
    assert (directory / "requirements.txt").read_text() == "cloudpickle==3.0.0\n"


def test_nested_function_is_pickled(tmp_path):
    def nested(x):
        return x - 1

    directory, _, kind = unpack(tmp_path, nested)
    assert kind == "cloudpickle"
    assert run_main(directory) == "1"


def test_requirements_list_and_file(tmp_path):
    _, names, _ = unpack(tmp_path / "a", double, requirements=["numpy>=1.0", "requests[socks]"])
    assert "requirements.txt" in names
    assert (tmp_path / "a/bundle/requirements.txt").read_text() == "numpy>=1.0\nrequests[socks]\n"

    file = tmp_path / "requirements.txt"
    file.write_text("# pinned\nnumpy==1.26  # comment\n\nscipy; python_version >= '3.8'\n")
    unpack(tmp_path / "b", double, requirements=str(file))
    assert (tmp_path / "b/bundle/requirements.txt").read_text() == (
        "numpy==1.26\nscipy; python_version >= '3.8'\n"
    )


def test_include_data_keeps_paths_relative_to_sys_path(tmp_path, monkeypatch):
    root = tmp_path / "project"
    (root / "data" / "deep").mkdir(parents=True)
    (root / "data" / "a.txt").write_text("a")
    (root / "data" / "deep" / "b.csv").write_text("b")
    monkeypatch.chdir(root)
    monkeypatch.syspath_prepend(str(root))
    _, names, _ = unpack(tmp_path, double, include_data=["data/**/*.*"])
    assert [n for n in names if n.startswith("data/")] == ["data/a.txt", "data/deep/b.csv"]


def test_include_data_rejects_missing_files_and_directories(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "folder").mkdir()
    with pytest.raises(BundleError, match="No data file"):
        build(double, include_data=["missing.txt"])
    with pytest.raises(BundleError, match="directory"):
        build(double, include_data=["folder"])
    with pytest.warns(UserWarning, match="no matches"):
        build(double, include_data=["*.nothing"])


def test_include_package_ships_every_module_and_parent_inits(tmp_path, monkeypatch):
    root = tmp_path / "src"
    package = root / "outer" / "inner"
    package.mkdir(parents=True)
    (root / "outer" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("from .helpers import VALUE\n")
    (package / "helpers.py").write_text("VALUE = 41\n")
    (root / "single.py").write_text("def plus_one(x):\n    return x + 1\n")
    monkeypatch.syspath_prepend(str(root))
    directory, names, kind = unpack(
        tmp_path, "single.plus_one", include_modules=["outer.inner", "single"]
    )
    assert kind == "import"
    assert [n for n in names if not n.startswith("__dl")] == [
        "outer/__init__.py",
        "outer/inner/__init__.py",
        "outer/inner/helpers.py",
        "single.py",
    ]
    assert run_main(directory) == "3"


def test_installed_modules_cannot_be_included():
    with pytest.raises(BundleError, match="installed module"):
        build(double, include_modules=["requests"])


def test_default_image_matches_local_python():
    assert default_image() == f"python{PYTHON_VERSION}:latest"


def test_pickled_bundle_refuses_another_python_image(tmp_path):
    pickled = Bundle(tmp_path / "x.zip", "cloudpickle")
    check_image(f"python{PYTHON_VERSION}:latest", pickled)
    check_image("custom-image:1", pickled)
    check_image("python2.7:latest", Bundle(tmp_path / "x.zip", "source"))
    with pytest.raises(BundleError, match="Python 2.7"):
        check_image("python2.7:latest", pickled)


def test_function_save_fails_before_sending_anything(monkeypatch):
    monkeypatch.setenv("COMPUTE_URL", "http://127.0.0.1:9/compute/v1")
    monkeypatch.setenv("COMPUTE_TOKEN", "unused")
    fn = Function(lambda x: x, image="python2.7:latest")
    with pytest.raises(BundleError, match="pickled"):
        fn.save()
    with pytest.raises(BundleError, match="pip options"):
        Function(double, requirements=["--index-url=http://evil"]).save()
    with pytest.raises(BundleError, match="not provided"):
        Function(name="empty").save()
