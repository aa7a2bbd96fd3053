"""A warm executor: imports a function's entrypoint once, then forks one child per job.

Runs inside the function's environment as `python -I executor_main.py BUNDLE_DIR`, with
the standard library only. Requests arrive as JSON lines on stdin; replies go out as
JSON lines on stdout: `{"ready": true}` (or `{"import_error": "..."}`) once, then per
job `{"started": pid}` and `{"exited": pid, "code": n}`. The forked child waits at a
gate FIFO until the worker has confined it, connects its output to the job's FIFOs and
calls `main`; the executor runs no user code after the import, so one job cannot see
another's state.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import traceback
from collections.abc import Callable
from types import ModuleType
from typing import Any, NoReturn


def _load_bootstrap() -> ModuleType:
    # Loaded by path: putting this directory on sys.path would let its module names
    # shadow the user's.
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bootstrap.py")
    spec = importlib.util.spec_from_file_location("_compute_bootstrap", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the bootstrap from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BOOTSTRAP = _load_bootstrap()
NOT_RELEASED_EXIT_CODE = 70


def reply(message: dict[str, Any]) -> None:
    CONTROL.write(json.dumps(message) + "\n")
    CONTROL.flush()


def run_child(request: dict[str, Any], entrypoint: Callable[..., Any]) -> NoReturn:
    os.setsid()
    # Wait at the gate until the worker has put this process under the job's limits.
    # The worker holds the gate open from before this fork until the job is over: opened
    # without waiting for a writer, a gate already let go of reads as closed at once.
    gate = os.open(request["gate"], os.O_RDONLY | os.O_NONBLOCK)
    os.set_blocking(gate, True)
    released = os.read(gate, 2)
    os.close(gate)
    if released != b"go":
        # The worker let go of the gate without releasing the child: it was never
        # confined, so it must not run the job.
        os._exit(NOT_RELEASED_EXIT_CODE)
    stdin = os.open(os.devnull, os.O_RDONLY)
    stdout = os.open(request["stdout"], os.O_WRONLY)
    stderr = os.open(request["stderr"], os.O_WRONLY)
    os.dup2(stdin, 0)
    os.dup2(stdout, 1)
    os.dup2(stderr, 2)
    if request.get("cpus"):
        os.sched_setaffinity(0, request["cpus"])
    os.environ.clear()
    os.environ.update(request.get("env", {}))
    os.chdir(request["cwd"])
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - lives with the child
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    BOOTSTRAP.run_call(lambda: entrypoint, request["call"], request["result"], request["failure"])
    os._exit(0)


def serve(entrypoint: Callable[..., Any]) -> None:
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            try:
                run_child(request, entrypoint)
            finally:
                os._exit(1)
        reply({"started": pid})
        _, status = os.waitpid(pid, 0)
        reply({"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def main() -> None:
    global CONTROL
    bundle_dir = sys.argv[1]
    BOOTSTRAP.forbid_tracing()  # its job children inherit it
    # The control channel is a private copy of stdout: user code's prints, even at
    # import time, go to stderr instead of corrupting it.
    CONTROL = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    BOOTSTRAP.enter_bundle(bundle_dir)
    try:
        entrypoint = BOOTSTRAP.load_bundle_entrypoint()
    except BaseException:
        reply({"import_error": traceback.format_exc()})
        return
    reply({"ready": True})
    serve(entrypoint)


CONTROL = sys.stdout

if __name__ == "__main__":
    main()
