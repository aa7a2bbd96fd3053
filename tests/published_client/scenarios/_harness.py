"""Shared by the scenario scripts, which run in the Python 3.10 venv of the published client.

Importing this module first (before `descarteslabs`) does two things:

- refuses any network connection that is not to 127.0.0.1, so a scenario fails loudly if
  the client ever tries to reach the outside world (IAM refresh, settings, telemetry);
- checks the environment the test gave it: `DESCARTESLABS_COMPUTE_URL`, `DESCARTESLABS_TOKEN`.

A scenario script defines cases as functions decorated with `@case`; `main()` runs the case
named by argv[1] with the JSON object in env `SCENARIO_INPUT` and writes the JSON the case
returns to the file named by env `SCENARIO_OUTPUT`. A failed assertion or an unexpected
exception exits non-zero with the traceback on stderr.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import sys
import traceback

ALLOWED_HOSTS = {"127.0.0.1", "localhost", "::1"}
_original_connect = socket.socket.connect
_original_create_connection = socket.create_connection


def _host(address):
    return address[0] if isinstance(address, tuple) else address


def _guarded_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and _host(address) not in ALLOWED_HOSTS:
        raise AssertionError(f"the client tried to reach {address!r}; only 127.0.0.1 is allowed")
    return _original_connect(self, address)


def _guarded_create_connection(address, *args, **kwargs):
    if _host(address) not in ALLOWED_HOSTS:
        raise AssertionError(f"the client tried to reach {address!r}; only 127.0.0.1 is allowed")
    return _original_create_connection(address, *args, **kwargs)


socket.socket.connect = _guarded_connect
socket.create_connection = _guarded_create_connection

for _name in ("DESCARTESLABS_COMPUTE_URL", "DESCARTESLABS_TOKEN", "DESCARTESLABS_IAM_URL"):
    if not os.environ.get(_name):
        raise SystemExit(f"scenario: environment variable {_name} is not set")

CASES = {}


def case(function):
    """Register `function(inputs) -> JSON-able` as a case of this scenario."""
    CASES[function.__name__] = function
    return function


def captured_stdout(call, *args, **kwargs):
    """Run `call` and return what it printed (the client prints logs instead of returning them)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        call(*args, **kwargs)
    return buffer.getvalue()


def error_of(call, *args, **kwargs):
    """Run `call`, which must raise; return the exception's class name and message."""
    try:
        call(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - the scenario reports whatever was raised
        return {"type": type(error).__name__, "message": str(error)}
    raise AssertionError(f"{getattr(call, '__name__', call)} did not raise")


def function_json(function):
    """The client-side view of a Function, as plain JSON."""
    return {
        "id": function.id,
        "name": function.name,
        "image": function.image,
        "cpus": function.cpus,
        "memory": function.memory,
        "maximum_concurrency": function.maximum_concurrency,
        "timeout": function.timeout,
        "retry_count": function.retry_count,
        "status": str(function.status) if function.status is not None else None,
        "creation_date": function.creation_date.isoformat() if function.creation_date else None,
        "job_statistics": function.job_statistics,
    }


def job_json(job):
    """The client-side view of a Job, as plain JSON."""
    return {
        "id": job.id,
        "function_id": job.function_id,
        "args": job.args,
        "kwargs": job.kwargs,
        "runtime": job.runtime,
        "status": str(job.status) if job.status is not None else None,
        "creation_date": job.creation_date.isoformat() if job.creation_date else None,
    }


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in CASES:
        raise SystemExit(f"usage: {sys.argv[0]} CASE, one of {sorted(CASES)}")
    inputs = json.loads(os.environ.get("SCENARIO_INPUT") or "{}")
    try:
        result = CASES[sys.argv[1]](inputs)
    except Exception:
        traceback.print_exc()
        raise SystemExit(f"scenario case {sys.argv[1]!r} failed (traceback above)") from None
    output = os.environ.get("SCENARIO_OUTPUT")
    text = json.dumps(result, default=str)
    if output:
        with open(output, "w") as file:
            file.write(text)
    else:
        print(text)
