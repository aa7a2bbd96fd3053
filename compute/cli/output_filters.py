"""What `compute up` shows of each child's output: their own lines, less the noise.

A filter is made for each run of a child; it takes one line and returns it, another
wording of it, or None to drop it.

Dropped: what repeats `compute up`'s own lines (Redis's start-up and shutdown notes), the
API's health checks, and third-party notices nobody running the service can act on
(Celery's deprecation notices, an error Celery logs and recovers from when the broker
restarts), each a whole log record with its continuation lines. Reworded: Redis's
paragraphs of kernel advice, in one line saying what to run. Everything else, the
worker's and the API's errors and tracebacks above all, passes unchanged. What a child
can be told not to print at all is told on its command line (`commands`).
"""

from __future__ import annotations

import re

# `pid:role date time level message`, as redis-server logs; `pid:signal-handler (time) message`.
REDIS_LINE = re.compile(
    r"^\d+:(?:[XCSMR] \d{1,2} \w{3} \d{4} [\d:.]+ [.\-*#]|signal-handler \(\d+\)) (?P<message>.*)$"
)
REDIS_ROUTINE = (
    "Reading config from stdin",
    "oO0OoO0OoO0Oo Redis is starting",
    "Redis version=",
    "Configuration loaded",
    "Server initialized",
    "Received SIGTERM scheduling shutdown",
    "Received SIGINT scheduling shutdown",
    "User requested shutdown",
    "Redis is now ready to exit",
)
# Redis's paragraphs of kernel advice, by their first words: what to run instead.
REDIS_ADVICE = {
    "WARNING Memory overcommit must be enabled": (
        "Redis asks for memory overcommit; to allow it, run as root: sysctl vm.overcommit_memory=1"
    ),
    "WARNING you have Transparent Huge Pages (THP) support enabled": (
        "Redis asks for transparent huge pages off; to turn them off, run as root: "
        "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled"
    ),
}
# The first line of each record the worker logs: `[date time,ms: LEVEL/Process] message`.
CELERY_RECORD = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,]+: [A-Z]+/[\w-]+\] ")
CELERY_NOISE = (
    # Warnings Celery captures, such as the one on every lost broker connection about a
    # default changing in Celery 6.0: the service's leases, not Celery's acks, decide
    # what runs again.
    re.compile(r"\] \S*/(?:celery|kombu|billiard)/\S+:\d+: \w*DeprecationWarning: "),
    # Celery closing the gossip channel of a broker connection already gone; it
    # reconnects all the same.
    re.compile(r"\] Error on restarting Gossip: AttributeError\("),
)
HEALTH_CHECK = re.compile(r'"GET /healthz HTTP/[\d.]+" 200 ')


class BrokerLines:
    """redis-server's lines, named as the broker's; its routine notes dropped."""

    def __call__(self, line: str) -> str | None:
        found = REDIS_LINE.match(line)
        message = found.group("message") if found else line
        if message.startswith(REDIS_ROUTINE):
            return None
        for opening, advice in REDIS_ADVICE.items():
            if message.startswith(opening):
                return f"broker: {advice}"
        return f"broker: {message}"


class WorkerLines:
    """The Celery worker's lines; its noise dropped record by record.

    One per run of the worker: a record cut short by a death says nothing of the next run.
    """

    def __init__(self) -> None:
        self.skipping = False

    def __call__(self, line: str) -> str | None:
        if CELERY_RECORD.match(line):
            self.skipping = any(pattern.search(line) for pattern in CELERY_NOISE)
        return None if self.skipping else line


class ApiLines:
    """gunicorn's lines; successful health checks (`compute up` polls one) dropped."""

    def __call__(self, line: str) -> str | None:
        return None if HEALTH_CHECK.search(line) else line
