"""Runs inside the function's environment, in the job's own process: call `main`, save its value.

Invoked as `python -I bootstrap.py BUNDLE_DIR CALL_FILE RESULT_FILE`. Only the standard
library is used here, so it runs on every supported Python. The call file holds JSON
`{"args": [...], "kwargs": {...}}`; the result file receives a one-byte encoding tag
followed by the encoded value (PROTOCOL.md "Results"):
`j` JSON, `b` raw bytes, `s` bytes from `serialize()`, `n` None.
"""

import json
import os
import sys
import traceback

PR_SET_DUMPABLE = 4


def encode(value):
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


def run_call(load_entrypoint, call_file, result_file):
    """Call the entrypoint with the call file's arguments and save its encoded value.

    Any exception, the entrypoint's import included, prints its traceback to stderr and
    ends the process with status 1, leaving no result file.
    """
    with open(call_file, "rb") as handle:
        call = json.load(handle)
    try:
        entrypoint = load_entrypoint()
        value = entrypoint(*(call.get("args") or []), **(call.get("kwargs") or {}))
        encoded = encode(value)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    temporary = result_file + ".tmp"
    with open(temporary, "wb") as handle:
        handle.write(encoded)
    os.replace(temporary, result_file)
    sys.stdout.flush()
    sys.stderr.flush()


def forbid_tracing():
    """Make this process undumpable: no other process of its uid may ptrace it or read
    its memory, and its /proc entries become root's."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (ImportError, OSError, AttributeError):
        pass  # an interpreter without ctypes: separate uids still keep other jobs out


def load_bundle_entrypoint():
    from __dlentrypoint__ import main as entrypoint

    return entrypoint


def main():
    bundle_dir, call_file, result_file = sys.argv[1:4]
    forbid_tracing()
    call_file = os.path.abspath(call_file)
    result_file = os.path.abspath(result_file)
    os.chdir(bundle_dir)
    sys.path.insert(0, bundle_dir)
    # Line-buffered output lets the parent timestamp each line as it is printed.
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    run_call(load_bundle_entrypoint, call_file, result_file)


if __name__ == "__main__":
    main()
