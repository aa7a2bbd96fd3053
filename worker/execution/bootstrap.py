"""Runs inside the function's environment, in the job's own process: call `main`, save its value.

Invoked as `python -I bootstrap.py BUNDLE_DIR CALL_FILE RESULT_FILE FAILURE_FILE`. Only
the standard library is used here, so it runs on every supported Python. The call file
holds JSON `{"args": [...], "kwargs": {...}}`; the result file receives a one-byte
encoding tag followed by the encoded value (PROTOCOL.md "Results"):
`j` JSON, `b` raw bytes, `s` bytes from `serialize()`, `n` None.

An exception prints its traceback (the job's log), writes its one-line summary
(`ValueError: bad tile 17`) to the failure file and ends the process with
`EXCEPTION_EXIT_CODE`; `sys.exit(n)` ends it with `n`, as it ends a script.

A pickled function (`__dlmeta__.json` kind `cloudpickle`) is loaded with the cloudpickle
the function requires itself if any, else with the worker's copy in `packages/` beside
this script (`runtime.py`).
"""

from __future__ import annotations

import importlib
import io
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn, cast

PR_SET_DUMPABLE = 4
EXCEPTION_EXIT_CODE = 1
# The worker reads less than this and cleans it: this bound only spares the disk.
MAX_SUMMARY_CHARS = 4096
META_FILE = "__dlmeta__.json"
# Last on sys.path: the environment's own packages come first, so a version the
# function requires itself wins over the worker's.
RUNNER_PACKAGES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "packages")


class IncompatiblePickleError(Exception):
    """The pickled function did not load, and another cloudpickle version pickled it."""


def encode(value: object) -> bytes:
    if value is None:
        return b"n"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return b"b" + bytes(value)
    serialize = getattr(value, "serialize", None)
    if callable(serialize) and not isinstance(value, type):
        data = serialize()
        if isinstance(data, str):
            data = data.encode()
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"serialize() must return bytes, not {type(data).__name__}")
        return b"s" + bytes(data)
    try:
        return b"j" + json.dumps(value).encode()
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"The return value of type {type(value).__name__} is not JSON-serialisable, "
            f"bytes, or an object with a serialize() method: {error}"
        ) from error


def summarize(error: BaseException) -> str:
    """The last line of the exception's traceback: `type: message`, or `type` alone."""
    kind = type(error)
    name = kind.__qualname__
    if kind.__module__ not in ("builtins", "__main__", __name__):
        name = f"{kind.__module__}.{name}"
    try:
        message = str(error)
    except BaseException:  # a hostile __str__ must not hide the failure itself
        message = "<exception str() failed>"
    return f"{name}: {message}" if message else name


def write_summary(failure_file: str | None, text: str) -> None:
    """Leave `text` where the worker reads it once the process has ended; best effort."""
    if not failure_file:
        return
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        with os.fdopen(os.open(failure_file, flags, 0o600), "w", errors="replace") as handle:
            handle.write(text[:MAX_SUMMARY_CHARS])
    except BaseException:  # the exit code and the traceback in the log still tell it
        pass


def exit_like_a_script(stop: SystemExit, failure_file: str | None) -> NoReturn:
    """End the process as the interpreter ends a script on `sys.exit(code)`."""
    sys.stdout.flush()
    sys.stderr.flush()
    if stop.code is None or isinstance(stop.code, int):
        os._exit(stop.code & 0xFF if stop.code else 0)
    print(stop.code, file=sys.stderr, flush=True)
    write_summary(failure_file, summarize(stop))
    os._exit(EXCEPTION_EXIT_CODE)


def fail(error: BaseException, failure_file: str | None) -> NoReturn:
    """Log the traceback, leave the summary, and end the process."""
    traceback.print_exc()
    sys.stderr.flush()
    try:
        summary = summarize(error)
    except BaseException:  # out of memory, say: the log has the traceback
        summary = None
    if summary:
        write_summary(failure_file, summary)
    os._exit(EXCEPTION_EXIT_CODE)


def run_call(
    load_entrypoint: Callable[[], Callable[..., Any]],
    call: dict[str, Any] | str,
    result_file: str,
    failure_file: str | None = None,
) -> None:
    """Call the entrypoint with the call's arguments and save its encoded value.

    `call` is the call itself (`{"args": [...], "kwargs": {...}}`, from a warm executor's
    request) or the path of the file holding it (a cold start's).

    Any exception, the entrypoint's import included, prints its traceback to stderr,
    writes its summary to `failure_file` and ends the process with `EXCEPTION_EXIT_CODE`,
    leaving no result file. `sys.exit(n)` ends it with `n` and leaves no summary.
    """
    if isinstance(call, str):
        with open(call, "rb") as handle:
            arguments = json.load(handle)
    else:
        arguments = call
    try:
        entrypoint = load_entrypoint()
        value = entrypoint(*(arguments.get("args") or []), **(arguments.get("kwargs") or {}))
        encoded = encode(value)
    except SystemExit as stop:
        exit_like_a_script(stop, failure_file)
    except BaseException as error:
        fail(error, failure_file)
    temporary = result_file + ".tmp"
    with open(temporary, "wb") as handle:
        handle.write(encoded)
    os.replace(temporary, result_file)
    sys.stdout.flush()
    sys.stderr.flush()


def forbid_tracing() -> None:
    """Make this process undumpable: no other process of its uid may ptrace it or read
    its memory, and its /proc entries become root's."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (ImportError, OSError, AttributeError):
        pass  # an interpreter without ctypes: separate uids still keep other jobs out


def enter_bundle(bundle_dir: str) -> None:
    """Work in the bundle and import from it first, and from the runner's packages last."""
    os.chdir(bundle_dir)
    sys.path.insert(0, bundle_dir)
    sys.path.append(RUNNER_PACKAGES)


def load_bundle_entrypoint() -> Callable[..., Any]:
    """The bundle's `main`; run in the bundle's directory (`enter_bundle`).

    Raises:
        IncompatiblePickleError: the pickled function did not load and was pickled by a
            cloudpickle other than the one loading it; the message names both versions.
    """
    try:
        from __dlentrypoint__ import main
    except Exception as error:
        mismatch = pickle_mismatch(error)
        if mismatch is None:
            raise
        raise mismatch from error
    entrypoint: Callable[..., Any] = main
    return entrypoint


def pickle_mismatch(error: BaseException) -> IncompatiblePickleError | None:
    """An error naming both cloudpickle versions when `error` may come from them differing."""
    meta = read_meta()
    pickled_with = meta.get("cloudpickle")
    if meta.get("kind") != "cloudpickle" or not pickled_with:
        return None
    loaded_with = cloudpickle_version()
    if loaded_with == pickled_with:
        return None
    if loaded_with:
        loading = f"this worker loads it with cloudpickle {loaded_with}"
    else:
        loading = "this worker has no cloudpickle to load it with"
    # The last line only: it reads as one sentence, and a failure reason is one line.
    cause = traceback.format_exception_only(type(error), error)[-1].strip()
    return IncompatiblePickleError(
        f"the function was pickled with cloudpickle {pickled_with}; {loading}: {cause}"
    )


def read_meta() -> dict[str, Any]:
    try:
        with open(META_FILE, encoding="utf-8") as handle:
            meta = json.load(handle)
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def cloudpickle_version() -> str | None:
    module = sys.modules.get("cloudpickle")
    if module is None:
        try:
            module = importlib.import_module("cloudpickle")
        except Exception:
            return None
    version: str | None = getattr(module, "__version__", None)
    return version


def main() -> None:
    bundle_dir, call_file, result_file, failure_file = sys.argv[1:5]
    forbid_tracing()
    call_file = os.path.abspath(call_file)
    result_file = os.path.abspath(result_file)
    failure_file = os.path.abspath(failure_file)
    enter_bundle(bundle_dir)
    # Line-buffered output lets the parent timestamp each line as it is printed. Both are
    # the interpreter's own text streams here, which sys's types do not promise.
    cast(io.TextIOWrapper, sys.stdout).reconfigure(line_buffering=True)
    cast(io.TextIOWrapper, sys.stderr).reconfigure(line_buffering=True)
    run_call(load_bundle_entrypoint, call_file, result_file, failure_file)


if __name__ == "__main__":
    main()
