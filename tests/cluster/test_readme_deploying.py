"""The README's "A cluster of N worker machines", followed from its own text.

Its settings block names the settings the test gives each machine, by the role the block
gives each (no more, no fewer); the API machine's block runs as written (`compute db
upgrade`, `compute token create`, `compute serve`), and the worker machine's block runs
on two "machines", each a process tree under a host name of its own, with data and work
directories of its own. The API then lists both nodes as live, and jobs submitted with
the SDK run on both.

Only what the README leaves to the reader changes: its settings' hosts and passwords
become this test's PostgreSQL, Redis and S3 server, the API listens on a free port
rather than 8000, and each worker node takes a name of its own, as the README asks.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest
import requests

import compute
from compute import Function
from tests.cli.conftest import cli_environment, free_port
from tests.cluster.conftest import START_SECONDS, Node, on_host_of_its_own, stop_tree
from tests.conftest import _postgres_database
from tests.redis_databases import claimed_redis_url
from tests.s3 import S3Server, running_s3_server
from tests.worker.conftest import job_reachable_directory
from tests.worker.support import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Deploying"
SUBSECTION = "### A cluster of N worker machines"
API_BLOCK = "# On the API machine"
WORKER_BLOCK = "# On each worker machine"
# The settings block's groups, by the comment that opens each: the roles given them.
API, WORKER = "api", "worker"
SETTING_GROUPS = {"# Every machine": {API, WORKER}, "# The API machine only": {API}}
EXPORT = re.compile(r"export (?P<name>[A-Z][A-Z0-9_]*)=\S+")
# A line holding none of these means to a shell what shlex.split makes of it.
SHELL_SYNTAX = re.compile(r"[$`|&;<>(){}*?\[\]\\~#!]")
# The `compute` of the interpreter running the tests, first on every machine's PATH.
COMPUTE_BIN = Path(sys.executable).parent
NODES = ("node-a", "node-b")
JOBS = 24
COMMAND_SECONDS = 120
RUN_SECONDS = 60


def add(a: int, b: int) -> int:
    time.sleep(0.5)  # long enough that one node's slots cannot take every job alone
    return a + b


@dataclass(frozen=True)
class ClusterText:
    """What the README's cluster subsection says to set and to run."""

    # Each setting its block exports, and the roles (API, WORKER) its group names.
    settings: dict[str, frozenset[str]]
    api_commands: list[list[str]]
    worker_commands: list[list[str]]


def cluster_text() -> ClusterText:
    text = README.read_text()
    assert f"\n{SECTION}\n" in text, f"no {SECTION!r} in the README"
    section = text.split(f"\n{SECTION}\n", 1)[1].split("\n## ", 1)[0]
    assert f"\n{SUBSECTION}\n" in section, f"no {SUBSECTION!r} under {SECTION!r}"
    subsection = section.split(f"\n{SUBSECTION}\n", 1)[1].split("\n### ", 1)[0]
    blocks = [block.splitlines() for block in re.findall(r"```sh\n(.*?)```", subsection, re.S)]
    [api] = [block for block in blocks if block[:1] == [API_BLOCK]]
    [worker] = [block for block in blocks if block[:1] == [WORKER_BLOCK]]
    [exports] = [block for block in blocks if block[:1] and block[0] in SETTING_GROUPS]
    assert len(blocks) == 3, blocks
    return ClusterText(exported_settings(exports), commands(api), commands(worker))


def exported_settings(lines: list[str]) -> dict[str, frozenset[str]]:
    settings: dict[str, frozenset[str]] = {}
    roles: frozenset[str] = frozenset()
    for line in lines:
        if line.startswith("#"):
            assert line in SETTING_GROUPS, f"a settings group the test does not know: {line}"
            roles = frozenset(SETTING_GROUPS[line])
        elif line.strip():
            match = EXPORT.fullmatch(line)
            assert match, f"not an `export NAME=value` line: {line}"
            assert match["name"] not in settings, f"exported twice: {line}"
            settings[match["name"]] = roles
    return settings


def commands(lines: list[str]) -> list[list[str]]:
    """The block's commands as argv, each a `compute` command as a shell would run it."""
    argvs = []
    for line in lines[1:]:
        if not line.strip():
            continue
        assert not SHELL_SYNTAX.search(line), f"more than a plain command: {line}"
        argv = shlex.split(line)
        assert argv[0] == "compute", line
        argvs.append(argv)
    return argvs


def option_value(argv: list[str], option: str) -> str:
    assert option in argv, (option, argv)
    return argv[argv.index(option) + 1]


def with_option(argv: list[str], option: str, value: str) -> list[str]:
    """`argv` with the value of its `option` replaced."""
    index = argv.index(option)
    return [*argv[: index + 1], value, *argv[index + 2 :]]


def deployment_settings(database_url: str, redis_url: str, s3: S3Server) -> dict[str, str]:
    """This test's value for every setting a deployment sets, placeholders none."""
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "COMPUTE_BLOB_URL": s3.blob_url("deploying/blobs"),
        **s3.environment(),
        "COMPUTE_SECRET_KEY": secrets.token_urlsafe(32),
    }


def machine_environment(
    text: ClusterText, role: str, values: dict[str, str], home: Path
) -> dict[str, str]:
    """A machine's shell: the settings the README gives its role, none of this process's
    own, and the machine's own disk (its data directory, a worker's work directory)."""
    env = cli_environment()
    for name in text.settings:
        env.pop(name, None)
    env.update({name: values[name] for name, roles in text.settings.items() if role in roles})
    env["COMPUTE_DATA_DIR"] = str(home / "data")
    if role == WORKER:
        env["COMPUTE_WORK_DIR"] = str(home / "work")
    env["PATH"] = f"{COMPUTE_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def start(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def healthy(root: str) -> bool:
    try:
        return requests.get(f"{root}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def live_workers(root: str, token: str) -> dict[str, int]:
    """Each live worker node the API lists, and its slots."""
    response = requests.get(
        f"{root}/compute/v1/workers", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return {worker["node"]: worker["slots"] for worker in response.json()["data"]}


@contextlib.contextmanager
def sdk_configured(base_url: str, token: str) -> Iterator[None]:
    compute.configure(url=base_url, token=token)
    try:
        yield
    finally:
        compute.configure(url=None, token=None)


def test_the_cluster_blocks_are_commands_the_test_follows() -> None:
    text = cluster_text()
    db, token, serve = text.api_commands
    assert (db[1:3], token[1:3], serve[1]) == (["db", "upgrade"], ["token", "create"], "serve")
    assert [argv[1] for argv in text.worker_commands] == ["worker"]
    [worker] = text.worker_commands
    # The two values the test replaces are the README's own to replace.
    option_value(serve, "--port")
    option_value(worker, "--name")
    assert int(option_value(worker, "--concurrency")) >= 1
    assert shutil.which("compute", path=str(COMPUTE_BIN)) == str(COMPUTE_BIN / "compute")


def test_a_cluster_deployed_as_the_readme_says_runs_jobs_on_every_node() -> None:
    text = cluster_text()
    *set_up, serve = text.api_commands
    [worker] = text.worker_commands
    concurrency = int(option_value(worker, "--concurrency"))
    with (
        job_reachable_directory("compute-deploying-") as directory,
        claimed_redis_url() as redis_url,
        contextlib.closing(cast(Generator[str, None, None], _postgres_database())) as databases,
        running_s3_server() as s3,
        contextlib.ExitStack() as processes,
    ):
        values = deployment_settings(next(databases), redis_url, s3)
        # The README names no setting the test leaves out, and the test sets none it omits.
        assert set(text.settings) == set(values)
        started = time.monotonic()

        # The API machine: its block, in order; its last command serves until stopped.
        (directory / "api").mkdir(mode=0o711)
        api_env = machine_environment(text, API, values, directory / "api")
        printed = []
        for argv in set_up:
            done = subprocess.run(
                argv, env=api_env, capture_output=True, text=True, timeout=COMMAND_SECONDS
            )
            assert done.returncode == 0, (argv, done.stdout, done.stderr)
            printed.append(done.stdout.strip())
        token = printed[[argv[1:3] for argv in set_up].index(["token", "create"])]
        assert token.count(".") == 2, token  # a JWT, alone on its line
        port = free_port()
        api = start(with_option(serve, "--port", str(port)), api_env, directory / "serve.log")
        processes.callback(stop_tree, api)
        root = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: healthy(root),
            timeout=START_SECONDS,
            describe=lambda: (directory / "serve.log").read_text(errors="replace"),
        )

        # Each worker machine: the same block, under a name and a host name of its own.
        nodes: list[Node] = []

        def stop_nodes() -> None:
            for node in nodes:
                stop_tree(node.process)

        processes.callback(stop_nodes)
        for name in NODES:
            home = directory / name
            home.mkdir(mode=0o711)
            env = machine_environment(text, WORKER, values, home)
            argv = on_host_of_its_own(f"{name}-host", with_option(worker, "--name", name))
            log_path = directory / f"{name}.log"
            nodes.append(Node(name, start(argv, env, log_path), log_path))
        for node in nodes:
            wait_until(node.is_ready, timeout=START_SECONDS, interval=0.1, describe=node.log)

        def listed() -> dict[str, int]:
            workers = live_workers(root, token)
            return {
                node.name: slots
                for node in nodes
                for listed_node, slots in workers.items()
                if listed_node.startswith(f"{node.name}@")
            }

        live = wait_until(lambda: len(found := listed()) == len(nodes) and found, timeout=30)
        assert live == {name: concurrency for name in NODES}
        print(f"API and {len(nodes)} nodes up in {time.monotonic() - started:.1f} s")

        with sdk_configured(f"{root}/compute/v1", token):
            fn = Function(add, name="readme-deploying", timeout=60)
            fn.save()
            jobs = fn.map([[number, number] for number in range(JOBS)], progress=False)
            fn.wait_for_completion(timeout=RUN_SECONDS, interval=0.5, progress=False)
            assert fn.results() == [2 * number for number in range(JOBS)]
        ids = {job.id for job in jobs}

        def ran() -> dict[str, set[str]]:
            return {node.name: node.recorded_jobs() & ids for node in nodes}

        wait_until(lambda: set().union(*ran().values()) == ids, timeout=10, describe=lambda: ran())
        shares = {name: len(recorded) for name, recorded in ran().items()}
        print(f"jobs per node: {shares}; {time.monotonic() - started:.1f} s in all")
        assert all(shares.values()), shares
