"""What a worker does when it starts: say how limits are enforced, pick up existing queues,
and start its reconciler; what each pool process does when it is forked."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.platforms import EX_FAILURE
from celery.signals import worker_init, worker_process_init, worker_ready, worker_shutdown
from celery.worker import state as celery_state

from compute.server.database import schema_problem
from compute.server.dispatch import function_queue
from compute.server.extensions import db
from compute.server.metric_files import node_metrics_dir
from compute.server.s3_blobstore import S3BlobStore
from compute.server.settings import Settings, load_settings

from .build import InstallerOptions
from .celery_app import app, service
from .execution.host_enforcement import describe_enforcement
from .execution.job_user import build_identities, describe_job_identities, job_identities
from .execution.network import (
    Service,
    apply_network_policy,
    service_endpoints,
    services_of,
    show_services,
)
from .execution.runtime import scripts_directory
from .execution.sandbox import describe_sandbox
from .execution.scratch import job_scratch_root
from .metrics import serve_metrics, use_metrics_directory
from .presence import Presence
from .publishing import broker_client
from .queues import active_function_ids
from .reconciler import Reconciler, ReconcilerSettings

logger = logging.getLogger(__name__)

# A worker started beside the process that migrates (a Procfile's web) waits for the
# schema (`schema_wait_seconds`) rather than start without its reconciler.
SCHEMA_POLL_SECONDS = 1.0
SCHEMA_REMINDER_SECONDS = 15.0

_reconcilers: list[Reconciler] = []
_presences: list[Presence] = []


@worker_init.connect
def on_worker_init(sender: Any = None, **_: Any) -> None:
    # Before the pool forks: every pool process starts jobs from one copy, removed at exit,
    # and keeps its metrics in the node's folder.
    scripts_directory()
    use_metrics_directory(node_metrics_dir(load_settings().metrics_dir, sender.hostname))


@worker_ready.connect
def on_worker_ready(sender: Any = None, **_: Any) -> None:
    settings = Settings.of(service())
    mode = settings.resource_enforcement
    limits = dict(describe_enforcement(mode))
    for limit, mechanism in limits.items():
        logger.info("limit %s enforced by: %s", limit, mechanism)
    limits["job users"] = _describe_job_identities(settings)
    logger.info("jobs run as: %s", limits["job users"])
    limits["file system"] = describe_sandbox()
    logger.info("job file system: %s", limits["file system"])
    limits["network"] = _apply_network_policy(settings)
    limits["disk"] = f"{settings.job_disk_mb} MB of scratch per job, measured while it runs"
    if problem := wait_for_schema(settings.schema_wait_seconds):
        # Raising here would only be logged: Celery would go on, taking builds but no
        # function's jobs. The worker stops instead, with a status supervisors see.
        logger.critical("this worker cannot run: %s", problem)
        celery_state.should_stop = EX_FAILURE  # type: ignore[assignment]  # typed None by its stubs
        return
    with service().app_context():
        function_ids = active_function_ids()
    consumer = sender  # the worker's Consumer
    for function_id in function_ids:
        consumer.add_task_queue(function_queue(function_id))
    logger.info("consuming the queues of %d functions with outstanding jobs", len(function_ids))
    reconciling = ReconcilerSettings.from_settings(settings)
    reconciler = Reconciler(service(), app, reconciling)
    reconciler.start()
    _reconcilers.append(reconciler)
    logger.info(
        "reconciler started: every %g s; leases of %g s; %d lost-worker retries",
        reconciling.interval_seconds,
        reconciling.lease_seconds,
        reconciling.lost_worker_retries,
    )
    _announce(consumer, settings, limits)


@worker_shutdown.connect
def on_worker_shutdown(**_: Any) -> None:
    for reconciler in _reconcilers:
        reconciler.stop()
    for presence in _presences:
        presence.stop()


def _announce(consumer: Any, settings: Settings, limits: dict[str, str]) -> None:
    """Serve the node's metrics if asked to, and keep its presence record from now on."""
    node = consumer.hostname
    if port := settings.worker_metrics_port:
        try:
            serve_metrics(port, node_metrics_dir(settings.metrics_dir, node))
        except OSError as error:
            logger.error("cannot serve this worker's metrics on port %d: %s", port, error)
    client = broker_client(app.conf.broker_url)
    presence = Presence(client, settings, node, consumer.controller.concurrency, limits)
    presence.start()
    _presences.append(presence)


@worker_process_init.connect
def on_pool_process_start(**_: Any) -> None:
    # A pool process forked after the main process has used the database (a replaced
    # child, say) inherits its pooled connections: never share them, open its own.
    with service().app_context():
        db.engine.dispose(close=False)


def wait_for_schema(wait_seconds: float) -> str | None:
    """Wait until the database holds this release's schema; return why the worker cannot
    run when it never does within `wait_seconds`, or holds a later release's."""
    started = time.monotonic()
    reminded: float | None = None
    while True:
        try:
            found = schema_problem(service())
            if found is None:
                return None
            if not found.upgrade_helps:
                return found.reason
            problem = "the database schema is behind this release"
        except Exception as error:  # noqa: BLE001 - unreachable, not yet created: keep waiting
            problem = f"the database cannot be read ({type(error).__name__}: {error})"
        now = time.monotonic()
        if now - started > wait_seconds:
            return f"{problem}; run `compute db upgrade`, then start the worker again"
        if reminded is None or now - reminded > SCHEMA_REMINDER_SECONDS:
            logger.warning("waiting: %s (`compute db upgrade` brings it up to date)", problem)
            reminded = now
        time.sleep(SCHEMA_POLL_SECONDS)


def _describe_job_identities(settings: Settings) -> str:
    work_dir = settings.work_dir
    try:
        identities = job_identities(settings)
    except ValueError as error:
        return describe_job_identities(str(error), work_dir)
    return describe_job_identities(identities, work_dir, job_scratch_root(work_dir))


def _apply_network_policy(settings: Settings) -> str:
    """Refuse job uids the host's own and link-local addresses (see `network.py`), and
    build uids the same but for every index, find-links host and proxy their installer
    uses, which may listen on this host (`InstallerOptions.network_urls`); return how
    the jobs' network is restricted."""
    own = _own_services(settings)
    if own:
        logger.info("jobs and builds are refused the service's own %s", show_services(own))
    policy = apply_network_policy(
        settings.job_uid_base, settings.job_uid_count, settings.job_network, refused=own
    )
    (logger.info if policy.enforced else logger.warning)("%s", policy.description)
    jobs_network = policy.description
    builds = build_identities(settings)
    needed = InstallerOptions.from_settings(settings).network_urls()
    policy = apply_network_policy(
        builds.first_uid,
        builds.count,
        "outbound",
        services_of(needed),
        who="build",
        refused=own,
    )
    (logger.info if policy.enforced else logger.warning)("%s", policy.description)
    return jobs_network


def _own_services(settings: Settings) -> list[Service]:
    """The database, broker and blob store this worker uses, wherever they are."""
    store = service().extensions["blobstore"]
    blob_endpoint = store.endpoint_url if isinstance(store, S3BlobStore) else None
    return service_endpoints(settings.sqlalchemy_database_uri, settings.redis_url, blob_endpoint)
