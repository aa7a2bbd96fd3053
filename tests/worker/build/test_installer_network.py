"""Builds reach what the worker's host reaches: its private CA, its index settings, its
proxies, under the network policy a worker gives builds; and configuration files found
in a bundle or near a build stay unread.

Real builds against an index served over HTTPS on 127.0.0.1 with a certificate of a
private CA made for the test. As root they run as a build uid of the test's own range,
as a worker runs them.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from tests.capabilities import ROOT, missing_capability, requires
from tests.worker.execution.conftest import job_python
from worker.build import (
    BuildSettings,
    Environment,
    EnvironmentBuildError,
    EnvironmentCache,
    InstallerOptions,
    Interpreter,
    InterpreterRegistry,
    build_function,
)
from worker.build.installer import Installer
from worker.execution.job_user import JobIdentities
from worker.execution.network import (
    NetworkPolicy,
    Service,
    apply_network_policy,
    remove_network_policy,
    services_of,
)

from .conftest import IMAGE
from .tls_index import PrivateCa, TlsIndex, make_private_ca, serving_index
from .zips import bundle_zip

FIRST_UID = 331_000
COUNT = 4
BROKEN_TOML = b"this is [[ not toml\n"
BROKEN_INI = b"[global]\nindex-url = https://127.0.0.1:9/simple\nno equals sign here\n"
SNOOPED = (
    "HTTPS_PROXY",
    "no_proxy",
    "SSL_CERT_DIR",
    "UV_SYSTEM_CERTS",
    "UV_NATIVE_TLS",
    "PIP_INDEX_URL",
    "AWS_SECRET_ACCESS_KEY",
)
SNOOP_BACKEND = """
import json, os

def _snoop(*_args, **_kwargs):
    seen = {{name: os.environ.get(name) for name in {names!r}}}
    cert = os.environ.get("SSL_CERT_FILE")
    seen["SSL_CERT_FILE"] = cert
    try:
        with open(cert) as handle:
            seen["cert"] = handle.read()
    except (OSError, TypeError) as error:
        seen["cert"] = str(error)
    raise RuntimeError("SNOOP " + json.dumps(seen) + " END")

get_requires_for_build_wheel = _snoop
build_wheel = _snoop
"""


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory: pytest.TempPathFactory) -> PrivateCa:
    # Made in a directory of root's alone: builds read the worker's copy.
    return make_private_ca(tmp_path_factory.mktemp("private-ca"))


@pytest.fixture(scope="module")
def index(private_ca: PrivateCa, wheelhouse: Path) -> Iterator[TlsIndex]:
    with serving_index(private_ca, [next(wheelhouse.glob("tinypkg-*.whl"))]) as served:
        yield served


@pytest.fixture(scope="module")
def interpreter() -> Interpreter:
    runs_as = (FIRST_UID, FIRST_UID) if ROOT else None
    registry = InterpreterRegistry([job_python()], search_path=False, runs_as=runs_as)
    return next(iter(registry.interpreters().values()))


@contextlib.contextmanager
def build_network(services: Sequence[Service]) -> Iterator[NetworkPolicy]:
    """The test range's build network as a worker makes it: `outbound` but for `services`."""
    policy = apply_network_policy(FIRST_UID, COUNT, "outbound", services, who="build")
    try:
        yield policy
    finally:
        if policy.enforced:
            remove_network_policy(FIRST_UID, COUNT)


def installer_options(
    tmp_path: Path, environment: Mapping[str, str], installer: str = "auto", **settings: object
) -> InstallerOptions:
    """A worker's options with this environment; as root its builds take the test's uids."""
    identities = JobIdentities(FIRST_UID, COUNT, switches=True, lock_dir=tmp_path / "locks")
    return InstallerOptions(
        timeout_seconds=120,
        installer=installer,  # type: ignore[arg-type]
        environment=environment,
        builds_as=identities if ROOT else None,
        **settings,  # type: ignore[arg-type]
    )


def build_settings(tmp_path: Path, environment: Mapping[str, str], installer: str) -> BuildSettings:
    """A worker's build settings under `tmp_path/work`, with this environment."""
    work = tmp_path / "work"
    return BuildSettings(
        env_root=work / "envs",
        installer=installer_options(tmp_path, environment, installer),
        interpreters=(job_python(),),
        scratch_root=work / "scratch",
        runs_as=(FIRST_UID, FIRST_UID) if ROOT else None,
        work_dir=work,
    )


def build(
    options: InstallerOptions, root: Path, interpreter: Interpreter, requirements: list[str]
) -> Environment:
    """Build under the network policy a worker with `options` gives its builds."""
    with build_network(services_of(options.network_urls())):
        return EnvironmentCache(root, options).get(interpreter, requirements)


def imported_value(environment: Environment) -> str:
    return subprocess.run(
        [str(environment.python), "-c", "import tinypkg; print(tinypkg.VALUE)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.mark.parametrize(
    ("installer", "variable"),
    [("uv", "UV_INDEX_URL"), ("uv", "PIP_INDEX_URL"), ("pip", "PIP_INDEX_URL")],
)
def test_a_build_trusts_the_ca_and_uses_the_index_of_the_workers_environment(
    tmp_path: Path,
    interpreter: Interpreter,
    index: TlsIndex,
    private_ca: PrivateCa,
    installer: str,
    variable: str,
) -> None:
    environment = {"SSL_CERT_FILE": str(private_ca.certificate), variable: index.url}
    options = installer_options(tmp_path, environment, installer)
    built = build(options, tmp_path / "envs", interpreter, ["tinypkg"])
    assert imported_value(built) == "42"
    assert f"--index-url {index.url}" in built.installer_log, built.installer_log
    assert "/files/tinypkg-1.0-py3-none-any.whl" in index.requested


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_without_the_ca_a_build_fails_with_a_certificate_error_in_its_log(
    tmp_path: Path, index: TlsIndex, installer: str
) -> None:
    # The system's store (uv trusts it too) knows nothing of the test's CA.
    settings = build_settings(tmp_path, {"PIP_INDEX_URL": index.url}, installer)
    with build_network(services_of(settings.installer.network_urls())):
        result = build_function(bundle_zip(("requirements.txt", b"tinypkg\n")), IMAGE, settings)
    assert not result.ok
    assert (result.error or "").startswith("installing the requirements failed"), result.error
    log = result.log_text.lower()
    assert "certificate" in log and ("unknownissuer" in log or "verify failed" in log), log


def test_the_build_network_lets_builds_reach_the_loopback_index_they_were_given(
    tmp_path: Path, interpreter: Interpreter, index: TlsIndex, private_ca: PrivateCa
) -> None:
    environment = {"SSL_CERT_FILE": str(private_ca.certificate), "UV_INDEX_URL": index.url}
    options = installer_options(tmp_path, environment, "uv")
    assert services_of(options.network_urls()) == services_of([index.url])
    with build_network([]) as policy:
        if not policy.enforced:
            missing_capability(f"a policy keeping builds off loopback ({policy.description})")
        # Without the exception the index is out of a build's reach, as loopback is.
        with pytest.raises(EnvironmentBuildError) as refused:
            EnvironmentCache(tmp_path / "refused", options).get(interpreter, ["tinypkg"])
    assert "connect" in refused.value.log.lower(), refused.value.log
    built = build(options, tmp_path / "envs", interpreter, ["tinypkg"])
    assert imported_value(built) == "42"


def test_the_operators_uv_config_is_read_from_where_builds_cannot_go(
    tmp_path: Path, interpreter: Interpreter, index: TlsIndex, private_ca: PrivateCa
) -> None:
    private = tmp_path / "operator"
    private.mkdir(mode=0o700)
    config = private / "uv.toml"
    config.write_text(f'index-url = "{index.url}"\n')
    config.chmod(0o600)
    environment = {"UV_CONFIG_FILE": str(config), "SSL_CERT_FILE": str(private_ca.certificate)}
    options = installer_options(tmp_path, environment, "uv")
    assert index.url in options.network_urls()
    built = build(options, tmp_path / "envs", interpreter, ["tinypkg"])
    assert imported_value(built) == "42"
    assert "--config-file <build>/" in built.installer_log, built.installer_log


@requires(ROOT, "root (only a root worker builds as a uid of its own)")
def test_a_local_source_the_build_cannot_read_is_named_in_its_log(
    tmp_path: Path, interpreter: Interpreter, wheelhouse: Path
) -> None:
    closed = tmp_path / "closed-wheelhouse"
    shutil.copytree(wheelhouse, closed)
    closed.chmod(0o700)
    options = installer_options(tmp_path, {}, "uv", wheelhouse=closed)
    with pytest.raises(EnvironmentBuildError) as failed:
        build(options, tmp_path / "envs", interpreter, ["tinypkg"])
    assert f"note: the build cannot read {closed}\n" in failed.value.log, failed.value.log


def _sdist(directory: Path, name: str, backend: str) -> None:
    files = {
        f"{name}-1.0/pyproject.toml": (
            f'[project]\nname = "{name}"\nversion = "1.0"\n\n'
            '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
        ),
        f"{name}-1.0/backend.py": backend,
        f"{name}-1.0/PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
    }
    with tarfile.open(directory / f"{name}-1.0.tar.gz", "w:gz") as archive:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_an_installer_sees_the_workers_proxies_and_trust_and_nothing_else(
    tmp_path: Path, interpreter: Interpreter, private_ca: PrivateCa, installer: str
) -> None:
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir(mode=0o755)
    _sdist(wheelhouse, "envsnoop", SNOOP_BACKEND.format(names=SNOOPED))
    (wheelhouse / "envsnoop-1.0.tar.gz").chmod(0o644)
    environment = {
        "HTTPS_PROXY": "http://builder:proxy-password@proxy.invalid:3128",
        "no_proxy": "localhost",
        "SSL_CERT_FILE": str(private_ca.certificate),
        "SSL_CERT_DIR": "/etc/ssl/certs",
        "PIP_INDEX_URL": "https://mirror.invalid/simple",
        "AWS_SECRET_ACCESS_KEY": "never for builds",
    }
    options = installer_options(tmp_path, environment, installer, wheelhouse=wheelhouse)
    with pytest.raises(EnvironmentBuildError) as failed:
        build(options, tmp_path / "envs", interpreter, ["envsnoop"])
    log = failed.value.log
    assert "RuntimeError: SNOOP " in log, log
    seen = json.loads(log.split("RuntimeError: SNOOP ", 1)[1].split(" END", 1)[0])
    assert seen["HTTPS_PROXY"] == environment["HTTPS_PROXY"]
    assert seen["no_proxy"] == "localhost" and seen["SSL_CERT_DIR"] == "/etc/ssl/certs"
    # The service's settings (the wheelhouse) leave the environment's index aside.
    assert seen["PIP_INDEX_URL"] is None and seen["AWS_SECRET_ACCESS_KEY"] is None
    # The build reads the CA from a copy of the worker's, wherever the original lies.
    assert seen["cert"] == private_ca.certificate.read_text(), seen
    if ROOT:
        assert seen["SSL_CERT_FILE"] != str(private_ca.certificate)
    if installer == "uv":
        assert "true" in (seen["UV_SYSTEM_CERTS"], seen["UV_NATIVE_TLS"])


def _scatter_broken_configuration(directory: Path) -> None:
    """Configuration files uv and pip would read from a working directory or HOME, each
    unparsable: an installer that read any of them would fail."""
    for relative in ("uv.toml", ".config/uv/uv.toml"):
        (directory / relative).parent.mkdir(parents=True, exist_ok=True)
        (directory / relative).write_bytes(BROKEN_TOML)
    (directory / "pyproject.toml").write_bytes(b"[tool.uv]\n" + BROKEN_TOML)
    for relative in ("pip.conf", ".config/pip/pip.conf", ".pip/pip.conf"):
        (directory / relative).parent.mkdir(parents=True, exist_ok=True)
        (directory / relative).write_bytes(BROKEN_INI)


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_configuration_files_in_the_scratch_directory_and_home_are_ignored(
    tmp_path: Path,
    interpreter: Interpreter,
    wheelhouse: Path,
    installer: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scratch, target, logs = tmp_path / "scratch", tmp_path / "env", tmp_path / "logs"
    for directory in (scratch, target, logs):
        directory.mkdir()
    _scatter_broken_configuration(scratch)
    _scatter_broken_configuration(tmp_path)  # above the working directory
    monkeypatch.setenv("HOME", str(scratch))  # the installer's HOME is the worker's here
    options = installer_options(tmp_path, {}, installer, wheelhouse=wheelhouse)
    runner = Installer(options, scratch, log_path=logs / "installer.log")
    runner.create(interpreter.path, target)
    (target / "pip.conf").write_bytes(BROKEN_INI)  # pip's per-environment file
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("tinypkg\n")
    runner.install(target / "bin" / "python", requirements)
    assert "tinypkg" in runner.output()


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_configuration_files_in_a_bundle_or_above_the_build_are_ignored(
    tmp_path: Path, index: TlsIndex, private_ca: PrivateCa, installer: str
) -> None:
    settings = build_settings(
        tmp_path,
        {"SSL_CERT_FILE": str(private_ca.certificate), "PIP_INDEX_URL": index.url},
        installer,
    )
    work = tmp_path / "work"
    (work / "envs").mkdir(parents=True)
    _scatter_broken_configuration(work)
    _scatter_broken_configuration(work / "envs")
    bundle = bundle_zip(
        ("requirements.txt", b"tinypkg\n"),
        ("uv.toml", BROKEN_TOML),
        ("pyproject.toml", b"[tool.uv]\n" + BROKEN_TOML),
        ("pip.conf", BROKEN_INI),
        (".config/uv/uv.toml", BROKEN_TOML),
    )
    with build_network(services_of(settings.installer.network_urls())):
        result = build_function(bundle, IMAGE, settings)
    assert result.ok, result.log_text
    assert result.environment is not None and imported_value(result.environment) == "42"
