"""What `compute up` shows of its children's lines, on lines they really print."""

from __future__ import annotations

from pathlib import Path

from compute.cli.child_output import LineFilter
from compute.cli.output_filters import ApiLines, BrokerLines, WorkerLines

# Lines as redis-server and the Celery worker print them: Redis starting and stopping; the
# worker losing its broker connection (a captured warning of several lines, a harmless
# error with its traceback, then the records that matter); the worker's own error.
SAMPLES = Path(__file__).parent / "samples"


def sample(name: str) -> str:
    return (SAMPLES / name).read_text()


def shown(line_filter: LineFilter, text: str) -> list[str]:
    return [line for line in map(line_filter, text.splitlines()) if line is not None]


def test_the_brokers_routine_notes_go_and_its_kernel_advice_is_one_line() -> None:
    assert shown(BrokerLines(), sample("redis_start.log")) == [
        "broker: Redis asks for memory overcommit; to allow it, run as root: "
        "sysctl vm.overcommit_memory=1"
    ]


def test_the_brokers_other_lines_are_named_as_its() -> None:
    line = (
        "41:M 03 Dec 2026 07:32:14.150 # Could not create server TCP listening socket "
        "127.0.0.1:6379: bind: Address already in use"
    )

    assert shown(BrokerLines(), line) == [
        "broker: Could not create server TCP listening socket 127.0.0.1:6379: bind: "
        "Address already in use"
    ]


def test_celerys_chatter_goes_whole_and_the_records_around_it_stay() -> None:
    assert shown(WorkerLines(), sample("celery_reconnect.log")) == [
        "[2026-12-03 07:38:48,533: WARNING/MainProcess] consumer: Connection to broker lost. "
        "Trying to re-establish the connection... (network:ConnectionError)",
        "[2026-12-03 07:38:48,554: ERROR/MainProcess] consumer: Cannot connect to "
        "redis://***@127.0.0.1:45563/0: Error 111 connecting to 127.0.0.1:45563. "
        "Connection refused..",
        "Trying again in 2.00 seconds... (1/100)",
        "",
        "[2026-12-03 07:38:50,565: INFO/MainProcess] Connected to redis://***@127.0.0.1:45563/0",
    ]


def test_the_workers_own_errors_keep_their_tracebacks() -> None:
    error = sample("worker_error.log")

    assert shown(WorkerLines(), error) == error.splitlines()


def test_a_deprecation_warning_of_the_services_own_code_stays() -> None:
    line = (
        "[2026-12-03 07:38:48,535: WARNING/MainProcess] /srv/worker/jobs.py:12: "
        "DeprecationWarning: use run()"
    )

    assert shown(WorkerLines(), line) == [line]


def test_the_api_drops_health_checks_only() -> None:
    health = (
        '127.0.0.1 - - [03/Dec/2026:07:32:18 +0000] "GET /healthz HTTP/1.1" 200 16 "-" '
        '"python-requests/2.34.2"'
    )
    request = (
        '127.0.0.1 - - [03/Dec/2026:07:32:19 +0000] "GET /compute/v1/jobs HTTP/1.1" 500 '
        '42 "-" "python-requests/2.34.2"'
    )
    failing_health = health.replace('" 200 ', '" 503 ')

    assert shown(ApiLines(), "\n".join([health, request, failing_health])) == [
        request,
        failing_health,
    ]
