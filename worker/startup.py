"""What a worker does when it starts: say how limits are enforced, pick up existing queues,
and start its reconciler; what each pool process does when it is forked."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from celery.signals import worker_init, worker_process_init, worker_ready, worker_shutdown

from api.dispatch import function_queue
from api.extensions import db

from .celery_app import app, flask_app
from .execution.job_user import build_identities, describe_job_identities, job_identities
from .execution.limits import describe_enforcement
from .execution.network import apply_network_policy, services_of
from .execution.runtime import scripts_directory
from .execution.sandbox import describe_sandbox
from .execution.scratch import job_scratch_root
from .queues import active_function_ids
from .reconciler import Reconciler, ReconcilerSettings

logger = logging.getLogger(__name__)
# Where builds may need to connect on this host, besides the package index.
PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")

_reconcilers: list[Reconciler] = []


@worker_init.connect
def on_worker_init(**_: Any) -> None:
    # Before the pool forks: every pool process starts jobs from one copy, removed at exit.
    scripts_directory()


@worker_ready.connect
def on_worker_ready(sender: Any = None, **_: Any) -> None:
    mode = flask_app.config.get("RESOURCE_ENFORCEMENT", "auto")
    for limit, mechanism in describe_enforcement(mode).items():
        logger.info("limit %s enforced by: %s", limit, mechanism)
    logger.info("jobs run as: %s", _describe_job_identities(flask_app.config))
    logger.info("job file system: %s", describe_sandbox())
    _apply_network_policy(flask_app.config)
    with flask_app.app_context():
        function_ids = active_function_ids()
    consumer = sender  # the worker's Consumer
    for function_id in function_ids:
        consumer.add_task_queue(function_queue(function_id))
    logger.info("consuming the queues of %d functions with outstanding jobs", len(function_ids))
    settings = ReconcilerSettings.from_config(flask_app.config)
    reconciler = Reconciler(flask_app, app, settings)
    reconciler.start()
    _reconcilers.append(reconciler)
    logger.info(
        "reconciler started: every %g s; leases of %g s; %d lost-worker retries",
        settings.interval_seconds,
        settings.lease_seconds,
        settings.lost_worker_retries,
    )


@worker_shutdown.connect
def on_worker_shutdown(**_: Any) -> None:
    for reconciler in _reconcilers:
        reconciler.stop()


@worker_process_init.connect
def on_pool_process_start(**_: Any) -> None:
    # A pool process forked after the main process has used the database (a replaced
    # child, say) inherits its pooled connections: never share them, open its own.
    with flask_app.app_context():
        db.engine.dispose(close=False)


def _describe_job_identities(config: Any) -> str:
    work_dir = Path(config["WORK_DIR"])
    try:
        identities = job_identities(config)
    except ValueError as error:
        return describe_job_identities(str(error), work_dir)
    return describe_job_identities(identities, work_dir, job_scratch_root(work_dir))


def _apply_network_policy(config: Any) -> None:
    """Refuse job uids the host's own and link-local addresses (see `network.py`), and
    build uids the same but for the package index and proxies builds need."""
    policy = apply_network_policy(
        int(config["JOB_UID_BASE"]), int(config["JOB_UID_COUNT"]), config.get("JOB_NETWORK")
    )
    (logger.info if policy.enforced else logger.warning)("%s", policy.description)
    builds = build_identities(config)
    needed = [config.get("PACKAGE_INDEX_URL"), *(os.environ.get(name) for name in PROXIES)]
    policy = apply_network_policy(
        builds.first_uid, builds.count, "outbound", services_of(needed), who="build"
    )
    (logger.info if policy.enforced else logger.warning)("%s", policy.description)
