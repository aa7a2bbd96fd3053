"""The arrows between the packages run one way: the SDK and the service core import
neither the API nor the worker, the worker never imports the API, and no module but the
WSGI entry point builds an app when it is imported."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "compute" / "server"
# What gunicorn loads: building the app is its whole job.
WSGI_ENTRY = ROOT / "api" / "wsgi.py"
APP_FACTORIES = {"create_app", "service_app"}


def modules(top: Path) -> Iterator[Path]:
    yield from sorted(top.rglob("*.py"))


def imported(path: Path) -> Iterator[str]:
    """Every module `path` imports, at any depth of its code, as absolute names."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                yield ".".join([*base, node.module] if node.module else base)
            else:
                yield node.module or ""


def offenders(top: Path, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules(top)
        if "migrations" not in path.parts
        for name in imported(path)
        if any(name == root or name.startswith(root + ".") for root in forbidden)
    ]


@pytest.mark.parametrize(
    ("top", "forbidden"),
    [
        (ROOT / "worker", ("api",)),
        (CORE, ("api", "worker", "celery", "kombu", "werkzeug", "compute.cli")),
    ],
    ids=["worker", "core"],
)
def test_no_arrow_runs_backwards(top: Path, forbidden: tuple[str, ...]) -> None:
    assert offenders(top, forbidden) == []


def test_the_sdk_imports_no_part_of_the_service() -> None:
    sdk = [
        path
        for path in modules(ROOT / "compute")
        if CORE not in path.parents and (ROOT / "compute" / "cli") not in path.parents
    ]
    found = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sdk
        for name in imported(path)
        if name.split(".")[0] in {"api", "worker"} or name.startswith("compute.server")
    ]
    assert found == []


def test_no_module_builds_an_app_when_imported() -> None:
    found = []
    for top in ("api", "worker", "compute"):
        for path in modules(ROOT / top):
            if path == WSGI_ENTRY:
                continue
            for statement in ast.parse(path.read_text()).body:
                for node in ast.walk(statement):
                    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                        break
                    if (
                        isinstance(node, ast.Call)
                        and isinstance(node.func, ast.Name)
                        and node.func.id in APP_FACTORIES
                    ):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_the_checks_read_relative_imports(tmp_path: Path) -> None:
    assert "api" in {name.split(".")[0] for name in imported(ROOT / "api" / "wsgi.py")}
    assert "compute.server.extensions" in set(imported(CORE / "models.py"))


def loaded_by(statement: str, **environment: str) -> set[str]:
    """The top-level modules a fresh interpreter holds after running `statement`."""
    script = f"import sys\n{statement}\nprint(' '.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **environment},
        check=True,
        timeout=60,
    )
    return set(result.stdout.split())


def test_the_core_loads_no_sdk_client() -> None:
    loaded = loaded_by("import compute.server.models, compute.server.transitions")
    assert not {"requests", "cloudpickle", "compute._function", "celery", "api"} & loaded


def test_the_worker_loads_no_web_layer() -> None:
    loaded = loaded_by(
        "import worker.celery_app, worker.tasks, worker.startup",
        REDIS_URL="redis://127.0.0.1:6379/15",
    )
    assert "celery" in loaded
    assert not {name for name in loaded if name == "api" or name.startswith("api.")}
