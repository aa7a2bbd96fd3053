"""The broker is not trusted: a job can reach Redis, so anyone can publish to it.

Messages serialized with pickle, whose payload creates a marker file when unpickled, go
to a running worker's function queue, its build queue and its control channel; JSON
messages name jobs and functions that do not exist, belong to another user, or are not
ids at all. Nothing is unpickled, no other user's row changes, and the worker goes on
running jobs. A static check keeps pickle out of every module that handles messages.
"""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import redis
import requests
import sqlalchemy as sa
from celery import Celery

from compute import Function as SdkFunction
from compute import JobStatus
from compute._bundle import build_bundle
from compute.server.dispatch import (
    BUILD_QUEUE,
    BUILD_TASK,
    CONTROL_EXCHANGE,
    RUN_TASK,
    function_queue,
)
from compute.server.extensions import db
from compute.server.models import Function, Job
from tests.conftest import ApiClient
from tests.worker import functions
from tests.worker.conftest import ExecutionStack
from tests.worker.support import wait_for_job, wait_until
from worker.publishing import publisher

REPO_ROOT = Path(__file__).resolve().parents[2]
REFUSED_PICKLE = "Refusing to deserialize untrusted content of type pickle"
# Run in the job's own interpreter (`python -I <script>` in the function's environment),
# where the user's code runs anyway; everything else is the service's own process.
JOB_SIDE_MODULES = {"worker/execution/bootstrap.py", "worker/execution/executor_main.py"}
UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "shelve", "jsonpickle"}
UNSAFE_SERIALIZERS = {"pickle", "application/x-python-serialize", "yaml", "msgpack"}


class Unpickled:
    """Creates the file at `path` in whatever process unpickles it."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


@pytest.fixture
def hostile(execution_stack: ExecutionStack) -> Iterator[Celery]:
    """A publisher on the worker's broker that serializes with pickle."""
    app = Celery("hostile", broker=execution_stack.server.app.config["REDIS_URL"])
    app.conf.task_serializer = "pickle"
    app.conf.accept_content = ["pickle", "json"]
    yield app
    app.close()


@pytest.fixture
def attacker_function(exec_user: ApiClient) -> SdkFunction:
    """A built function of the attacker's whose queue the worker consumes: one job ran."""
    fn = SdkFunction(functions.double, name="attacker", timeout=60)
    fn.save()
    job = fn(1)
    job.wait_for_completion(timeout=120, interval=0.1)
    assert job.status == JobStatus.SUCCESS
    return fn


def _owner_id(api: ApiClient) -> str:
    return jwt.decode(api.token or "", options={"verify_signature": False})["sub"]


def victim_rows(stack: ExecutionStack, owner_id: str) -> tuple[int, str]:
    """How many function and job rows `owner_id` has, and a hash of their content."""
    with stack.server.app.app_context():
        rows = [
            json.dumps([str(value) for value in row])
            for model in (Function, Job)
            for row in db.session.execute(
                sa.select(*model.__table__.columns).where(model.owner_id == owner_id)
            ).all()
        ]
        db.session.rollback()
    return len(rows), hashlib.sha256("\n".join(sorted(rows)).encode()).hexdigest()


@pytest.fixture
def victim(execution_stack: ExecutionStack) -> dict[str, Any]:
    """Another user: a built function with a finished job, one waiting for its bundle."""
    api = execution_stack.user_api()
    created = api.post("/functions", json={"name": "victim", "timeout": 60}).json()
    built_id = created["function"]["id"]
    with build_bundle(functions.double) as bundle:
        upload = requests.put(
            created["bundle_upload_url"], data=bundle.path.read_bytes(), timeout=30
        )
    assert upload.status_code == 200, upload.text
    assert api.post(f"/functions/{built_id}/bundle").status_code == 200
    done = api.post("/jobs", json={"function_id": built_id, "args": [21]}).json()
    assert wait_for_job(api, done["id"])["status"] == "success"
    waiting = api.post("/functions", json={"name": "victim-waiting"}).json()["function"]
    pending = api.post("/jobs", json={"function_id": waiting["id"], "args": [1]}).json()
    return {
        "api": api,
        "owner_id": _owner_id(api),
        "built": built_id,
        "done_job": done["id"],
        "waiting": waiting["id"],
        "pending_job": pending["id"],
    }


def drained(stack: ExecutionStack, *queues: str, unless: Any = None) -> None:
    """Wait until the worker has taken and settled every message on `queues`.

    `unless`, when it returns something true, ends the wait early: the test has failed.
    """
    client = redis.Redis.from_url(stack.server.app.config["REDIS_URL"])

    def settled() -> bool:
        empty = all(client.llen(queue) == 0 for queue in queues) and client.hlen("unacked") == 0
        return empty or bool(unless and unless())

    try:
        wait_until(
            settled,
            timeout=60,
            describe=lambda: {queue: client.llen(queue) for queue in (*queues, "unacked")},
        )
    finally:
        client.close()


def still_runs_jobs(stack: ExecutionStack, fn: SdkFunction) -> None:
    assert stack.worker.poll() is None, stack.worker_output()[-3000:]
    job = fn(20)
    job.wait_for_completion(timeout=120, interval=0.1)
    assert job.status == JobStatus.SUCCESS and job.result() == 40


def test_pickled_messages_are_never_unpickled(
    execution_stack: ExecutionStack,
    attacker_function: SdkFunction,
    hostile: Celery,
    tmp_path: Path,
) -> None:
    queue = function_queue(attacker_function.id)
    markers = {
        name: tmp_path / f"unpickled-{name}"
        for name in ("run task", "build task", "protocol 1", "control")
    }
    refusals_before = execution_stack.worker_output().count(REFUSED_PICKLE)

    hostile.send_task(RUN_TASK, args=[Unpickled(markers["run task"])], queue=queue)
    hostile.send_task(BUILD_TASK, args=[Unpickled(markers["build task"])], queue=BUILD_QUEUE)
    # A protocol 1 message: no task header, so the worker decodes the body itself.
    with hostile.connection_for_write() as connection:
        connection.Producer().publish(
            {"task": RUN_TASK, "id": str(uuid.uuid4()), "args": [Unpickled(markers["protocol 1"])]},
            serializer="pickle",
            exchange="",
            routing_key=queue,
        )
    hostile.conf.control_exchange = CONTROL_EXCHANGE  # an attacker knows it too
    hostile.control.broadcast("add_consumer", arguments={"queue": Unpickled(markers["control"])})

    def unpickled() -> list[str]:
        return [name for name, marker in markers.items() if marker.exists()]

    drained(execution_stack, queue, BUILD_QUEUE, unless=unpickled)
    assert unpickled() == []
    still_runs_jobs(execution_stack, attacker_function)
    # The messages arrived and were refused, rather than lost on the way.
    refusals = execution_stack.worker_output().count(REFUSED_PICKLE) - refusals_before
    assert refusals >= 3, execution_stack.worker_output()[-5000:]


def test_messages_naming_others_jobs_or_no_jobs_change_nothing(
    execution_stack: ExecutionStack,
    attacker_function: SdkFunction,
    victim: dict[str, Any],
) -> None:
    queue = function_queue(attacker_function.id)
    before = victim_rows(execution_stack, victim["owner_id"])
    app = publisher(execution_stack.server.app.config["REDIS_URL"])
    messages: list[tuple[str, list[Any], str]] = [
        (RUN_TASK, [uuid.uuid4().hex], queue),
        (RUN_TASK, [victim["done_job"]], queue),
        (RUN_TASK, [victim["done_job"]], BUILD_QUEUE),
        (RUN_TASK, [victim["built"]], queue),
        (RUN_TASK, [12345], queue),
        (RUN_TASK, [{"id": victim["done_job"]}], queue),
        (RUN_TASK, [[victim["done_job"]]], queue),
        (RUN_TASK, ["a\x00b"], queue),
        (RUN_TASK, ["x" * 100_000], queue),
        (RUN_TASK, [], queue),
        (RUN_TASK, [victim["done_job"], "extra"], queue),
        (BUILD_TASK, [victim["built"]], BUILD_QUEUE),
        (BUILD_TASK, [victim["waiting"]], BUILD_QUEUE),
        (BUILD_TASK, [uuid.uuid4().hex], BUILD_QUEUE),
        (BUILD_TASK, ["../../../etc/passwd"], BUILD_QUEUE),
        (BUILD_TASK, [{"id": victim["built"]}], BUILD_QUEUE),
        ("compute.no_such_task", [victim["done_job"]], queue),
    ]
    for task, args, destination in messages:
        app.send_task(task, args=args, queue=destination)

    drained(execution_stack, queue, BUILD_QUEUE)
    still_runs_jobs(execution_stack, attacker_function)
    assert victim_rows(execution_stack, victim["owner_id"]) == before
    api = victim["api"]
    assert api.get(f"/jobs/{victim['done_job']}/result").json() == 42
    assert api.get(f"/functions/{victim['waiting']}").json()["status"] == "awaiting_bundle"


def test_a_message_for_a_job_waiting_on_its_build_leaves_it_waiting(
    execution_stack: ExecutionStack,
    attacker_function: SdkFunction,
    victim: dict[str, Any],
) -> None:
    queue = function_queue(attacker_function.id)
    before = victim_rows(execution_stack, victim["owner_id"])
    app = publisher(execution_stack.server.app.config["REDIS_URL"])
    app.send_task(RUN_TASK, args=[victim["pending_job"]], queue=queue)
    drained(execution_stack, queue)
    still_runs_jobs(execution_stack, attacker_function)
    assert victim["api"].get(f"/jobs/{victim['pending_job']}").json()["status"] == "pending"
    assert victim_rows(execution_stack, victim["owner_id"]) == before


# --- static checks: which serializers the processes accept, and who imports pickle ---


def test_worker_and_publisher_speak_only_json(tmp_path: Path) -> None:
    # Imported in a fresh interpreter: the worker's module builds its app on import.
    probe = (
        "import json; from worker.celery_app import app; "
        "print(json.dumps({'accept': list(app.conf.accept_content), "
        "'task': app.conf.task_serializer, 'result': app.conf.result_serializer, "
        "'result_accept': app.conf.result_accept_content}))"
    )
    environment = {
        "PATH": "/usr/bin:/bin",
        "COMPUTE_DATA_DIR": str(tmp_path),
        "REDIS_URL": "redis://127.0.0.1:6379/15",
    }
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    worker = json.loads(completed.stdout.strip().splitlines()[-1])
    assert worker["accept"] == ["json"] and worker["task"] == "json"
    assert worker["result_accept"] in (None, ["json"]) and worker["result"] == "json"
    api = publisher("redis://127.0.0.1:6379/15")
    assert list(api.conf.accept_content) == ["json"] and api.conf.task_serializer == "json"


def _service_modules() -> list[Path]:
    return sorted(
        path
        for package in ("api", "worker")
        for path in (REPO_ROOT / package).rglob("*.py")
        if path.relative_to(REPO_ROOT).as_posix() not in JOB_SIDE_MODULES
    )


def unsafe_uses(path: Path, root: Path = REPO_ROOT) -> list[str]:
    """Imports of pickle-like modules, their `loads`/`load` calls, unsafe serializer names."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in UNSAFE_MODULES:
                found.append(f"from {node.module}")
            if node.module.startswith("kombu.serialization"):
                found += [
                    f"from {node.module} import {a.name}"
                    for a in node.names
                    if a.name in {"loads", "enable_insecure_serializers", "registry"}
                ]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if (
                node.func.attr in {"loads", "load", "Unpickler"}
                and isinstance(owner, ast.Name)
                and owner.id in UNSAFE_MODULES
            ):
                found.append(f"{owner.id}.{node.func.attr}()")
            if node.func.attr in {"import_module", "__import__"}:
                found += [
                    f"import_module({arg.value!r})"
                    for arg in node.args
                    if isinstance(arg, ast.Constant) and arg.value in UNSAFE_MODULES
                ]
        elif isinstance(node, ast.Constant) and node.value in UNSAFE_SERIALIZERS:
            found.append(f"serializer name {node.value!r}")
    return [f"{path.relative_to(root)}: {use}" for use in found]


def test_no_service_module_can_unpickle() -> None:
    modules = _service_modules()
    assert len(modules) > 40, "the scan found the service's modules"
    assert [use for path in modules for use in unsafe_uses(path)] == []


def test_the_scan_would_see_an_unpickling_module(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import pickle\nfrom cloudpickle import loads\nimport importlib\n"
        "pickle.loads(b'')\nimportlib.import_module('dill')\n"
        "app.conf.accept_content = ['json', 'pickle']\n"
    )
    uses = [use.split(": ", 1)[1] for use in unsafe_uses(sample, tmp_path)]
    assert uses == [
        "pickle",
        "from cloudpickle",
        "pickle.loads()",
        "import_module('dill')",
        "serializer name 'pickle'",
    ]


def test_the_job_side_modules_run_in_the_jobs_interpreter() -> None:
    """The exempt modules are scripts the job's Python runs, importing nothing of ours."""
    from worker.execution import executor, job_monitor

    assert job_monitor.BOOTSTRAP == REPO_ROOT / "worker/execution/bootstrap.py"
    assert executor.EXECUTOR_MAIN == REPO_ROOT / "worker/execution/executor_main.py"
    for module in JOB_SIDE_MODULES:
        tree = ast.parse((REPO_ROOT / module).read_text())
        imported = {
            name.split(".")[0]
            for node in ast.walk(tree)
            for name in (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
        }
        # The user's own entrypoint is the one other module they import.
        assert imported <= {*sys.stdlib_module_names, "__dlentrypoint__"}, (module, imported)
