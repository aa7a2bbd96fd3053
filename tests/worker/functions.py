"""Functions the execution tests ship to the worker as source bundles."""

from __future__ import annotations

import os
import subprocess
import sys
import time


def double(x):
    return x * 2


def explode(message):
    print("about to fail")
    raise ValueError(message)


def tile(n):
    if n == 17:
        raise ValueError(f"bad tile {n}")
    return n * 10


def exits_with(code):
    print("exiting on purpose")
    sys.exit(code)


def raw_bytes(n):
    return bytes(range(n))


def uses_tinypkg():
    import tinypkg

    return {"value": tinypkg.VALUE, "hello": tinypkg.hello()}


def uses_included_code_and_data():
    import helpermod
    import helperpkg
    from helperpkg import sub

    with open("data/info.txt") as handle:
        data = handle.read()
    return {"pkg": helperpkg.NAME, "sub": sub.twice(21), "mod": helpermod.GREETING, "data": data}


def returns_json():
    return {"numbers": [1, 2.5, -3], "text": "héllo", "nothing": None, "flag": True}


def returns_bytes():
    return bytes(range(256))


def returns_serializable(x, y):
    class Point:
        def __init__(self, x, y):
            self.x, self.y = x, y

        def serialize(self):
            return f"{self.x},{self.y}".encode()

    return Point(x, y)


def returns_none():
    print("returning nothing")


def timed_sleep(seconds):
    start = time.time()
    time.sleep(seconds)
    return [start, time.time()]


def sleep_with_stubborn_child(seconds):
    # The child ignores SIGTERM, so only the kill after the grace period ends it.
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    child = subprocess.Popen([sys.executable, "-c", code])
    print(f"pids {os.getpid()} {child.pid}")
    time.sleep(seconds)


def hog_memory(megabytes):
    chunks = []
    for _ in range(megabytes // 10):
        chunks.append(b"x" * (10 * 1024 * 1024))  # filled, so the pages are really resident
        time.sleep(0.02)
    return len(chunks)


def always_fails():
    print("failing on purpose")
    raise RuntimeError("always fails")


def fails_once(marker_dir):
    marker = os.path.join(marker_dir, "failed-once")
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("the first attempt fails")
    return "second attempt"


def fails_without(marker_file):
    if not os.path.exists(marker_file):
        raise RuntimeError(f"{marker_file} does not exist yet")
    return "found it"


def what_the_job_sees():
    def proc_text(pid, name):
        try:
            with open(f"/proc/{pid}/{name}", "rb") as handle:
                return handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError as error:
            return f"<unreadable: {error}>"

    ancestors = []
    pid = os.getppid()
    while pid > 0:
        ancestors.append(
            {"pid": pid, "environ": proc_text(pid, "environ"), "cmdline": proc_text(pid, "cmdline")}
        )
        status = proc_text(pid, "status")
        ppid = [line.split()[1] for line in status.splitlines() if line.startswith("PPid:")]
        pid = int(ppid[0]) if ppid else 0
    return {
        "environ": dict(os.environ),
        "argv": sys.argv,
        "own_environ": proc_text(os.getpid(), "environ"),
        "ancestors": ancestors,
    }


def noop(x):
    return x


def read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError as error:
        return f"<unreadable: {error}>"


def sleep_recording_pid(path, seconds):
    with open(path, "a") as handle:
        handle.write(f"{os.getpid()}\n")
    time.sleep(seconds)
    return os.getpid()


def who_am_i():
    fields = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    try:
        os.setuid(0)
        regained = True
    except PermissionError:
        regained = False
    return {
        "uid": os.getuid(),
        "gid": os.getgid(),
        "groups": os.getgroups(),
        "no_new_privs": fields.get("NoNewPrivs"),
        "effective_capabilities": fields.get("CapEff"),
        "regained_root": regained,
    }


def list_dir(path):
    try:
        return sorted(os.listdir(path))
    except OSError as error:
        return f"<unlistable: {error}>"


def write_into_environment():
    target = os.path.join(sys.prefix, "poisoned.txt")
    try:
        with open(target, "w") as handle:
            handle.write("every later job imports this")
    except OSError as error:
        return f"<refused: {error}>"
    return target


def grandchild_hogs_memory(megabytes):
    # The job's child starts a grandchild that fills `megabytes`, well past the limit.
    hog = (
        "import time\n"
        f"chunks = [b'x' * (10 * 2**20) for _ in range({megabytes} // 10)]\n"
        "time.sleep(30)\n"
    )
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {hog!r}])"
    subprocess.run([sys.executable, "-c", child])
    return "the grandchild came back"


def many_threads(count):
    import threading

    def work():
        block = bytearray(2**20)
        time.sleep(0.5)
        return len(block)

    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(threads)


def stubborn_with_daemon(pid_dir):
    # Ignores SIGTERM, and so does a daemon it double-forks out of its session and tree;
    # each writes its pid to a file of its own in `pid_dir`.
    import signal

    daemon = (
        "import os, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        with open(os.path.join(sys.argv[1], 'daemon.pid'), 'w') as handle:\n"
        "            handle.write(str(os.getpid()))\n"
        "        devnull = os.open(os.devnull, os.O_RDWR)\n"
        "        for fd in (0, 1, 2):\n"
        "            os.dup2(devnull, fd)\n"
        "        time.sleep(600)\n"
        "    os._exit(0)\n"
        "os.wait()\n"
    )
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    subprocess.run([sys.executable, "-c", daemon, pid_dir], check=True)
    with open(os.path.join(pid_dir, "job.pid"), "w") as handle:
        handle.write(str(os.getpid()))
    print("daemon started", flush=True)
    while True:
        time.sleep(0.1)


def fork_bomb(marker):
    # Its processes carry `marker` in their command line, so the test can count them.
    bomb = (
        "import os, time\n"
        "while True:\n"
        "    try:\n"
        "        os.fork()\n"
        "    except OSError:\n"
        "        time.sleep(0.01)\n"
    )
    os.execv(sys.executable, [sys.executable, "-c", bomb, marker])


def prints(total_bytes, line_bytes, long_line_mb):
    # One line of `long_line_mb` megabytes, written a megabyte at a time, then
    # `total_bytes` in lines of `line_bytes`.
    for _ in range(long_line_mb):
        sys.stdout.write("x" * 2**20)
    sys.stdout.write("\n")
    block = ("y" * (line_bytes - 1) + "\n") * (2**20 // line_bytes)
    for _ in range(total_bytes // len(block)):
        sys.stdout.write(block)
    sys.stdout.flush()
    return total_bytes


def returns_bytes_of(size):
    return bytes(size)


def returns_pattern(size):
    period = bytes(range(251))  # a prime period: a piece stored out of place or twice shows
    return (period * (size // len(period) + 1))[:size]


def try_connect(targets):
    """Connect to each (host, port); say what happened, never hang."""
    import socket

    outcomes = {}
    for host, port in targets:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as connection:
            connection.settimeout(5)
            try:
                connection.connect((host, port))
                outcomes[f"{host}:{port}"] = "connected"
            except OSError as error:
                outcomes[f"{host}:{port}"] = f"refused: {error}"
    return outcomes


def sleep_recording_own_pid(pid_dir, name, seconds):
    import os
    import time

    with open(os.path.join(pid_dir, f"{name}.pid"), "w") as handle:
        handle.write(str(os.getpid()))
    time.sleep(seconds)
    return name


def snoop_on(pid_file, directories):
    """Everything a job might try against another job; each attempt's outcome."""
    import ctypes
    import os

    with open(pid_file) as handle:
        pid = int(handle.read())
    tried = {}

    def read(path, size=-1):
        with open(path, "rb") as handle:
            return handle.read(size)

    def overwrite(path):
        with open(path, "wb") as handle:
            handle.write(b"jbob")

    def attempt(name, action):
        try:
            action()
            tried[name] = "done"
        except OSError as error:
            tried[name] = f"denied: {error.strerror}"

    attempt("cwd", lambda: os.listdir(f"/proc/{pid}/cwd"))
    attempt("environ", lambda: read(f"/proc/{pid}/environ"))
    attempt("mem", lambda: read(f"/proc/{pid}/mem", 1))
    attempt("signal", lambda: os.kill(pid, 19))  # SIGSTOP

    def ptrace():
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.ptrace(16, pid, None, None) != 0:  # PTRACE_ATTACH
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))

    attempt("ptrace", ptrace)
    for directory in directories:
        attempt(f"list {directory}", lambda d=directory: os.listdir(d))
        attempt(f"call {directory}", lambda d=directory: read(f"{d}/call.json"))
        attempt(f"result {directory}", lambda d=directory: overwrite(f"{d}/out/result.bin"))
    return tried


def fill_disk(megabytes, marker):
    """Write `megabytes` in 8 MB files to /tmp and the home directory, then return."""
    import os

    chunk = b"x" * (8 * 1024 * 1024)
    for index in range(megabytes // 8):
        directory = "/tmp" if index % 2 else os.environ["HOME"]
        with open(os.path.join(directory, f"{marker}-{index}"), "wb") as handle:
            handle.write(chunk)
    return "written"


def ticks(count, seconds):
    """Print a line with the time it was printed, `count` times, `seconds` apart."""
    for index in range(count):
        print(f"tick {index} {time.time()}", flush=True)
        time.sleep(seconds)
    return count


def prints_then_sleeps(marker_dir, seconds):
    """Record its pid, say it started, then sleep: a job to cancel while it runs."""
    with open(os.path.join(marker_dir, f"{os.getpid()}.pid"), "w") as handle:
        handle.write(str(os.getpid()))
    print("started", flush=True)
    time.sleep(seconds)
    return "woke"


def ticks_recording_pid(marker_dir, count, seconds):
    """Record its pid, then print `count` lines, `seconds` apart."""
    with open(os.path.join(marker_dir, f"{os.getpid()}.pid"), "w") as handle:
        handle.write(str(os.getpid()))
    for index in range(count):
        print(f"tick {index} {time.time()}", flush=True)
        time.sleep(seconds)
    return count


def cpus_while_busy(seconds):
    """The CPUs this job may run on, and its span, after being busy `seconds`."""
    started = time.time()
    while time.time() - started < seconds:
        pass
    return {"cpus": sorted(os.sched_getaffinity(0)), "start": started, "end": time.time()}
