"""The Procfile, docker-compose.yml, Dockerfile and README describe a stack that can start.

No container engine runs here, so these tests read the files: the compose file against the
Compose Specification's schema (and `docker compose config` where the plugin is present),
then what it names against the package: every command is a `compute` command that parses,
every variable a setting, every health check a route or a module that imports.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from urllib.parse import urlparse

import click
import pytest
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema
from jsonschema.validators import validator_for

from api import create_app
from compute.cli import main
from compute.server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
# What an operator must set: none of them has a default in the file. URL-safe values, as
# the passwords go into DATABASE_URL and REDIS_URL.
SECRETS = ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "COMPUTE_SECRET_KEY", "MINIO_ROOT_PASSWORD")
VARIABLES = {name: f"{name.lower().replace('_', '-')}-value" for name in SECRETS}
# `$$` (a `$` for the container), `${NAME}`, `${NAME:-default}`, `${NAME:?error}`, `$NAME`.
INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>\w+)(?:(?P<operator>:[-?])(?P<argument>[^}]*))?\}|\$(?P<bare>\w+)"
)


class UnsetVariable(KeyError):
    """A `${NAME:?error}` whose variable is unset: Compose refuses the file."""


def interpolate(text: str, variables: dict[str, str]) -> str:
    """`text` with its variables replaced as Compose replaces them."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        if value := variables.get(name):
            return value
        if match.group("operator") == ":?":
            raise UnsetVariable(name)
        return match.group("argument") or ""

    return INTERPOLATION.sub(replace, text)


@pytest.fixture(scope="module")
def compose() -> dict:
    """The compose file as Compose reads it, with the secrets set."""
    return yaml.safe_load(interpolate(COMPOSE_FILE.read_text(), VARIABLES))


@pytest.fixture(scope="module")
def procfile() -> dict[str, list[str]]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = shlex.split(command)
    return entries


def code_services(compose: dict) -> dict[str, dict]:
    """The services built from our Dockerfile, i.e. those that run our code."""
    return {name: service for name, service in compose["services"].items() if "build" in service}


def is_one_shot(service: dict) -> bool:
    return service.get("restart") == "no"


def minimal_environment(tmp_path: Path) -> dict[str, str]:
    """This environment less its database, with a data directory of the test's own."""
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(COMPUTE_DATA_DIR=str(tmp_path / "data"), REDIS_URL="redis://127.0.0.1:6379/0")
    return env


def run_in_subprocess(argv: list[str], tmp_path: Path) -> None:
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=minimal_environment(tmp_path),
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def import_in_subprocess(module: str, attribute: str, tmp_path: Path) -> None:
    """Import `module` and read `attribute` in a fresh interpreter with a minimal config."""
    code = "import importlib, sys; getattr(importlib.import_module(sys.argv[1]), sys.argv[2])"
    run_in_subprocess([sys.executable, "-c", code, module, attribute], tmp_path)


def option_value(argv: list[str], name: str) -> str:
    for index, arg in enumerate(argv):
        if arg == name:
            return argv[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{name} missing from {argv}")


def cli_context(argv: list[str]) -> click.Context:
    """The context `compute` would run `argv` (its words after `compute`) in, parsed but
    not invoked: an unknown command or option fails here."""
    command: click.Command = main
    names = ["compute"]
    words = list(argv)
    while isinstance(command, click.Group) and words and not words[0].startswith("-"):
        sub = command.get_command(click.Context(command), words[0])
        assert sub is not None, f"no command {' '.join([*names, words[0]])}"
        command = sub
        names.append(words.pop(0))
    return command.make_context(" ".join(names), words)


def health_test(service: dict) -> list[str]:
    """A healthcheck's command as argv (a CMD-SHELL command split as sh would)."""
    kind, *test = service["healthcheck"]["test"]
    return shlex.split(test[0]) if kind == "CMD-SHELL" else test


def test_the_file_follows_the_compose_specification(compose: dict) -> None:
    # The schema Compose itself validates against, as check-jsonschema vendors it.
    schema = get_builtin_schema("vendor.compose-spec")
    validator = validator_for(schema)(schema)
    errors = [
        f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(compose)
    ]
    assert errors == []
    # Where Docker's compose plugin is installed, it reads the file too (not here: no
    # container engine runs on this machine, which the schema check stands in for).
    if docker_compose_present():
        argv = ["docker", "compose", "-f", str(COMPOSE_FILE), "config", "-q"]
        env = {**os.environ, **VARIABLES}
        result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, result.stderr


def docker_compose_present() -> bool:
    try:
        found = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    except FileNotFoundError:
        return False
    return found.returncode == 0


@pytest.mark.parametrize("secret", SECRETS)
def test_every_secret_must_be_set(secret: str) -> None:
    variables = {name: value for name, value in VARIABLES.items() if name != secret}
    with pytest.raises(UnsetVariable, match=secret):
        interpolate(COMPOSE_FILE.read_text(), variables)


def test_every_service_is_health_checked_and_started_in_order(compose: dict) -> None:
    """A service that stays up has a healthcheck, which whatever needs it waits for; a
    one-shot has none, and whatever needs it waits for it to succeed."""
    services = compose["services"]
    awaited = set()
    for name, service in services.items():
        if is_one_shot(service):
            assert "healthcheck" not in service and "ports" not in service, name
        else:
            assert service["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
        for dependency, rule in service.get("depends_on", {}).items():
            expected = (
                "service_completed_successfully"
                if is_one_shot(services[dependency])
                else "service_healthy"
            )
            assert rule["condition"] == expected, (name, dependency)
            awaited.add(dependency)
    assert {name for name, service in services.items() if is_one_shot(service)} <= awaited


def test_the_api_and_workers_start_on_a_set_up_stack(compose: dict) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["compute", "db", "upgrade"]
    assert set(services["migrate"]["depends_on"]) == {"postgres"}
    for name in ("api", "worker"):
        assert {"migrate", "minio-bucket", "redis"} <= set(services[name]["depends_on"])


def test_redis_keeps_its_data_behind_a_password(compose: dict) -> None:
    redis = compose["services"]["redis"]
    password = VARIABLES["REDIS_PASSWORD"]
    script = " ".join(redis["command"])
    assert "--appendonly yes" in script
    # The password comes from the variable the healthcheck's redis-cli reads too.
    assert "requirepass $REDISCLI_AUTH" in script
    assert password not in script
    assert redis["environment"]["REDISCLI_AUTH"] == password
    assert health_test(redis) == ["redis-cli", "ping"]
    assert any(mount.endswith(":/data") for mount in redis["volumes"])
    for service in code_services(compose).values():
        broker = urlparse(service["environment"]["REDIS_URL"])
        assert (broker.hostname, broker.password) == ("redis", password)


def test_the_database_url_names_the_postgres_service(compose: dict) -> None:
    postgres = compose["services"]["postgres"]["environment"]
    for service in code_services(compose).values():
        database = urlparse(service["environment"]["DATABASE_URL"])
        assert database.scheme == "postgresql"
        assert database.hostname == "postgres"
        assert (database.username, database.password) == (
            postgres["POSTGRES_USER"],
            postgres["POSTGRES_PASSWORD"],
        )
        assert database.path == f"/{postgres['POSTGRES_DB']}"


def test_the_blob_store_is_the_bucket_minio_serves(compose: dict) -> None:
    services = compose["services"]
    minio = services["minio"]["environment"]
    script = " ".join(services["minio-bucket"]["entrypoint"])
    for service in code_services(compose).values():
        environment = service["environment"]
        blob_url = urlparse(environment["COMPUTE_BLOB_URL"])
        assert blob_url.scheme == "s3"
        assert re.search(rf"mc mb (--\S+ )*\w+/{blob_url.netloc}\b", script), script
        assert urlparse(environment["AWS_ENDPOINT_URL"]).hostname == "minio"
        assert environment["AWS_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
        assert environment["AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]


def test_every_code_service_runs_a_compute_command(compose: dict) -> None:
    for name, service in code_services(compose).items():
        command = service["command"]
        assert command[0] == "compute", name
        cli_context(command[1:])


def test_every_variable_a_code_service_sets_is_a_documented_setting(compose: dict) -> None:
    settings = {f"COMPUTE_{item.name.upper()}" for item in fields(Settings)}
    readme = (ROOT / "README.md").read_text()
    configuration = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    for name, service in code_services(compose).items():
        for variable in service["environment"]:
            if variable.startswith("COMPUTE_"):
                assert variable in settings, (name, variable)
            else:
                # The well-known names the service reads besides: DATABASE_URL, AWS_*, ...
                assert f"`{variable}`" in configuration, (name, variable)


def test_every_volume_is_declared_and_used(compose: dict) -> None:
    used = {
        mount.split(":")[0]
        for service in compose["services"].values()
        for mount in service.get("volumes", [])
    }
    assert used == set(compose["volumes"])


def test_the_api_healthcheck_asks_a_route_the_api_serves(compose: dict, tmp_path: Path) -> None:
    api = compose["services"]["api"]
    port = cli_context(api["command"][1:]).params["port"]
    assert f"{port}:{port}" in api["ports"]
    python, option, code = health_test(api)
    assert (python, option) == ("python", "-c")
    compile(code, "<healthcheck>", "exec")
    url = urlparse(re.findall(r"https?://[^'\"\s]+", code)[0])
    assert url.port == port
    app = create_app({"DATA_DIR": str(tmp_path)})
    endpoint, _ = app.url_map.bind("localhost").match(url.path, method="GET")
    assert app.view_functions[endpoint].__module__ == "api.health"


def test_the_worker_healthcheck_pings_its_own_node(compose: dict, tmp_path: Path) -> None:
    worker = compose["services"]["worker"]
    node = cli_context(worker["command"][1:]).params["name"]
    argv = health_test(worker)
    assert argv[0] == "celery" and argv[3:5] == ["inspect", "ping"]
    # `compute worker` names its node NAME@<host name>, the container's $HOSTNAME.
    assert option_value(argv, "-d") == f"{node}@$HOSTNAME"
    import_in_subprocess(option_value(argv, "-A"), "app", tmp_path)


def test_procfile_worker_is_one_compute_worker_node(procfile: dict[str, list[str]]) -> None:
    # exec: the runner's signals reach the node itself, not a shell waiting on it.
    command = procfile["worker"]
    assert command[:3] == ["exec", "compute", "worker"]
    cli_context(command[2:])


def test_compose_builds_from_the_dockerfile(compose: dict) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for service in code_services(compose).values():
        assert service["build"] == "."
    for package in ("compute", "api", "worker"):
        assert f"COPY {package} {package}" in dockerfile


def web_steps(procfile: dict[str, list[str]]) -> list[list[str]]:
    """The commands `web` chains with `&&`."""
    steps: list[list[str]] = [[]]
    for word in procfile["web"]:
        if word == "&&":
            steps.append([])
        else:
            steps[-1].append(word)
    return steps


def test_procfile_web_migrates_then_serves_an_importable_app(
    procfile: dict[str, list[str]], tmp_path: Path
) -> None:
    migrate, serve = web_steps(procfile)
    assert migrate == ["compute", "db", "upgrade"]
    run_in_subprocess([sys.executable, "-m", "compute.cli", *migrate[1:]], tmp_path)
    assert (tmp_path / "data" / "compute.db").exists()
    # exec: the runner's signals reach the server itself, not a shell waiting on it.
    assert serve[:3] == ["exec", "compute", "serve"]
    assert option_value(serve, "--port") == "$PORT"
    # The platform's port, as the shell gives it.
    context = cli_context([word.replace("$PORT", "5000") for word in serve[2:]])
    assert (context.params["host"], context.params["port"]) == ("0.0.0.0", 5000)


def test_procfile_runs_no_one_off_process(procfile: dict[str, list[str]]) -> None:
    # honcho and foreman stop every process when one exits: a `release` entry would stop
    # the service as soon as the migrations were done.
    assert set(procfile) == {"web", "worker"}


def test_readme_set_up_is_two_commands_the_second_running_ci() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", section, flags=re.S)
    assert len(commands) == 2, commands
    assert "\n" not in commands[0] and "compute up" in commands[0]
    assert commands[1] == "bash .ci/run"
    assert (ROOT / ".ci" / "run").exists()


def test_the_compose_worker_contains_jobs_as_compute_up_does(compose: dict) -> None:
    """Root in its container with the capabilities containment needs, as `compute up` is
    on a host: jobs switch to uids of their own, mounts and nftables rules are allowed."""
    services = code_services(compose)
    worker = services["worker"]
    assert worker["user"] == "0:0"
    assert {"SYS_ADMIN", "NET_ADMIN"} <= set(worker["cap_add"])
    assert "apparmor:unconfined" in worker["security_opt"]
    # The data directory's files are private to whoever writes them: one user for all.
    assert {service["user"] for service in services.values()} == {"0:0"}


def test_a_stopped_worker_has_time_to_finish_its_jobs(compose: dict) -> None:
    # Docker's default grace is 10 s; jobs routinely run for minutes.
    grace = compose["services"]["worker"]["stop_grace_period"]
    assert re.fullmatch(r"\d+m", grace) and int(grace[:-1]) >= 10, grace


def test_the_worker_keeps_its_environments_in_a_cache_of_its_own(compose: dict) -> None:
    services = code_services(compose)
    work_dir = Path(services["worker"]["environment"]["COMPUTE_WORK_DIR"])
    mounts = [mount.split(":") for mount in services["worker"]["volumes"]]
    (volume,) = [source for source, target in mounts if work_dir.is_relative_to(target)]
    for name, service in services.items():
        if name != "worker":
            assert volume not in {mount.split(":")[0] for mount in service["volumes"]}, name


def test_the_image_installs_what_the_network_policy_needs() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "nftables" in dockerfile


def test_the_image_installs_the_service() -> None:
    # `pip install .` alone is the SDK: no gunicorn, Celery or database driver to run.
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'pip install ".[server]"' in dockerfile
