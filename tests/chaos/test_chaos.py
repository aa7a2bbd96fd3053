"""Chaos: thousands of jobs run to the end, each recorded once, while everything is killed.

During one run the API is SIGKILLed in the middle of a bulk submit and started again
(the client repeats the submit with the same reference_id), worker pool processes are
SIGKILLed four times and the whole worker once, and Redis, which keeps nothing on
disk, is restarted. The test prints, then asserts: every job final, none lost, exactly
one terminal record per job, how many executions were duplicates, and how long the
run took to settle after the last fault.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
import sqlalchemy as sa

import compute
from compute import Function
from tests.chaos import jobs
from tests.chaos.conftest import WORKER_PROCESSES, ChaosStack
from worker.lease_owners import owner_pid

RUN_LIMIT_SECONDS = 1200
pytestmark = [pytest.mark.chaos, pytest.mark.timeout(RUN_LIMIT_SECONDS + 300)]

BATCHES = 4
JOB_SECONDS = 0.05
POOL_KILLS = 4
SETTLE_LIMIT_SECONDS = 30
REMAINING_AT_LAST_FAULT = 300
TERMINAL = re.compile(r"terminal record: job=(\w+) attempt=(\d+) status=(\w+)")
FINAL = ("success", "failure", "timeout")


class Faults:
    """What was done to the stack, and when."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str]] = []

    def note(self, what: str) -> None:
        self.events.append((time.time(), what))
        print(f"fault: {what}")

    @property
    def worker_kills(self) -> int:
        return sum(what.startswith("SIGKILL") and "worker" in what for _, what in self.events)

    @property
    def last(self) -> float:
        return self.events[-1][0]


def submit(session: requests.Session, url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """POST a bulk submit until it is answered, repeating it as any client would."""
    deadline = time.monotonic() + 120
    while True:
        try:
            response = session.post(url, json=body, timeout=30)
            if response.status_code in (200, 201):
                return response.json()
            assert response.status_code >= 500, response.text
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, "the bulk submit was never answered"
        time.sleep(0.2)


def query(stack: ChaosStack, sql: str) -> list[Any]:
    engine = sa.create_engine(stack.database_url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        return list(connection.execute(sa.text(sql)))


def counts(stack: ChaosStack) -> dict[str, int]:
    return dict(query(stack, "SELECT status, count(*) FROM jobs GROUP BY status"))  # type: ignore[arg-type]


def final_count(stack: ChaosStack) -> int:
    return sum(count for status, count in counts(stack).items() if status in FINAL)


def wait_final(stack: ChaosStack, count: int) -> None:
    """Wait until at least `count` jobs have ended."""
    deadline = time.monotonic() + RUN_LIMIT_SECONDS
    while final_count(stack) < count:
        assert time.monotonic() < deadline, f"fewer than {count} jobs ended: {counts(stack)}"
        time.sleep(0.2)


def kill_a_busy_pool_process(stack: ChaosStack, faults: Faults, killed: set[int]) -> None:
    """SIGKILL a pool process of the worker while it runs a job."""
    assert stack.worker is not None
    pool = {child.pid for child in psutil.Process(stack.worker.pid).children()} - killed
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        owners = query(stack, "SELECT lease_owner FROM jobs WHERE status = 'running'")
        busy = [owner_pid(owner) for (owner,) in owners if owner]
        victims = [pid for pid in busy if pid in pool]
        if victims:
            os.kill(victims[0], signal.SIGKILL)
            killed.add(victims[0])
            faults.note(f"SIGKILL worker pool process {victims[0]} while it ran a job")
            return
        time.sleep(0.02)
    raise AssertionError("no pool process was running a job")


def submit_through_api_kill(
    stack: ChaosStack, session: requests.Session, url: str, body: dict[str, Any], faults: Faults
) -> list[dict[str, Any]]:
    """Submit, SIGKILLing the API the moment the jobs are committed, before it can publish
    them or answer; the client repeats the submit once the API is back."""
    engine = sa.create_engine(stack.database_url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        before = connection.scalar(sa.text("SELECT count(*) FROM jobs"))
        answers: list[list[dict[str, Any]]] = []
        thread = threading.Thread(target=lambda: answers.append(submit(session, url, body)))
        thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            committed = connection.scalar(sa.text("SELECT count(*) FROM jobs")) - before
            if committed:
                break
            connection.rollback()
    stack.api.kill()
    faults.note(f"SIGKILL the API during a bulk submit, {committed} of its jobs committed")
    stack.api.start()
    thread.join(timeout=180)
    (answer,) = answers
    return answer


def submit_all(stack: ChaosStack, fn: Function, record: Path, total: int, faults: Faults) -> None:
    """Submit `total` jobs in batches; the API is killed in the middle of the second."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {stack.token}"
    url = stack.api.base_url + "/jobs/bulk"
    size = total // BATCHES
    for batch in range(BATCHES):
        indexes = range(batch * size, total if batch == BATCHES - 1 else (batch + 1) * size)
        body = {
            "function_id": fn.id,
            "bulk_args": [[str(record), index, JOB_SECONDS] for index in indexes],
            "reference_id": uuid.uuid4().hex,
        }
        if batch == 1:
            answer = submit_through_api_kill(stack, session, url, body, faults)
        else:
            answer = submit(session, url, body)
        assert [job["args"][1] for job in answer] == list(indexes)


def test_every_job_ends_once_through_kills_and_restarts(
    chaos_stack: ChaosStack, chaos_size: int
) -> None:
    stack = chaos_stack
    # Jobs may run as an unprivileged user: the record is theirs to append to.
    record = stack.data_dir / "executions"
    record.touch()
    record.chmod(0o666)
    compute.configure(url=stack.api.base_url, token=stack.token)
    faults = Faults()
    started = time.time()
    try:
        fn = Function(jobs.record_execution, name="chaos", timeout=60)
        fn.save()
        submit_all(stack, fn, record, chaos_size, faults)

        wait_final(stack, chaos_size // 2)
        killed: set[int] = set()
        for _ in range(POOL_KILLS):
            kill_a_busy_pool_process(stack, faults, killed)
            time.sleep(0.5)
        stack.kill_worker()
        faults.note("SIGKILL the whole worker (main process and pool)")
        stack.start_worker()
        # The last fault comes while a fixed number of jobs remain, so the time the run
        # takes to settle after it measures recovery, not the size of the run.
        wait_final(stack, chaos_size - REMAINING_AT_LAST_FAULT)
        stack.redis.kill()
        stack.redis.start()
        faults.note("restart Redis (every queue emptied)")

        wait_final(stack, chaos_size)
    finally:
        compute.configure(url=None, token=None)

    statuses = counts(stack)
    jobs_rows = query(stack, "SELECT id, args, status, end_date FROM jobs")
    indexes = collections.Counter(args[1] for _, args, _, _ in jobs_rows)
    last_final = max(end for _, _, _, end in jobs_rows).timestamp()
    terminal = collections.Counter(
        job_id for (job_id,) in query(stack, "SELECT job_id FROM chaos_terminal_records")
    )
    logged = len(TERMINAL.findall(stack.worker_output()))
    executions = collections.Counter(
        int(line.split()[0]) for line in record.read_text().splitlines() if line.strip()
    )
    duplicates = sum(executions.values()) - len(executions)
    settle = last_final - faults.last
    print(
        f"\nchaos: {chaos_size} jobs in {last_final - started:.1f} s; statuses {statuses}; "
        f"{faults.worker_kills} worker kills; lost {chaos_size - len(indexes)}; "
        f"terminal records {sum(terminal.values())} for {len(terminal)} jobs "
        f"({logged} logged by workers); "
        f"{sum(executions.values())} executions of {len(executions)} jobs, "
        f"{duplicates} duplicates; settled {settle:.1f} s after the last fault"
    )

    assert len(jobs_rows) == chaos_size and set(indexes) == set(range(chaos_size))
    assert max(indexes.values()) == 1, "a repeated submit created a second job"
    assert statuses == {"success": chaos_size}
    assert set(terminal) == {job_id for job_id, *_ in jobs_rows}
    assert max(terminal.values()) == 1, "a job has more than one terminal record"
    assert set(executions) == set(range(chaos_size)), "a job never ran"
    assert duplicates <= faults.worker_kills * WORKER_PROCESSES
    assert settle <= SETTLE_LIMIT_SECONDS
