"""This worker node says it is alive, and what it offers, every few seconds.

A thread of the node's main process renews one short-lived record in the broker's Redis
(`compute.server.presence` reads it): nothing is written per job, and a node that dies
drops out when its record expires. What the record says is gathered here: the images
its interpreters serve (found once), its warm executors (counted from its process tree
at each renewal) and the limit mechanisms its start-up chose.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import psutil
import redis

from compute.server.dispatch import (
    WORKER_PRESENCE_REFRESH_SECONDS,
    WORKER_PRESENCE_TTL_SECONDS,
    WORKERS_KEY,
    worker_key,
)
from compute.server.presence import OfferedImage, WorkerPresence
from compute.server.settings import Settings

from .build import BuildSettings
from .build.builder import interpreter_copies_root, interpreter_registry
from .execution.runtime import EXECUTOR_MAIN, job_script

logger = logging.getLogger(__name__)


def offered_images(settings: Settings) -> tuple[OfferedImage, ...]:
    """The images this worker's builds can serve, as its builds find them."""
    build = BuildSettings.from_settings(settings)
    registry = interpreter_registry(
        tuple(build.interpreters),
        build.runs_as,
        interpreter_copies_root(build.work_dir) if build.work_dir else None,
    )
    return tuple(OfferedImage(image, python) for image, python in registry.releases().items())


def warm_executor_count() -> int:
    """Warm executors this node's pool processes keep: children of a pool process running
    the executor script. (A job an executor forks is its child, a level further down.)"""
    script = str(job_script(EXECUTOR_MAIN))
    count = 0
    for pool_process in psutil.Process().children():
        try:
            children = pool_process.children()
        except psutil.Error:
            continue
        for child in children:
            try:
                if script in child.cmdline():
                    count += 1
            except psutil.Error:
                continue
    return count


@dataclass
class Presence:
    """The node's record and the thread renewing it; `stop` takes it down at once."""

    client: redis.Redis
    settings: Settings
    node: str
    slots: int
    limits: Mapping[str, str]
    images: tuple[OfferedImage, ...] = ()
    _stopped: threading.Event = field(default_factory=threading.Event)

    def start(self) -> threading.Thread:
        # Found before the node says it is ready, not in the thread: finding them runs
        # each interpreter once, and a worker's process tree should be settled by then.
        try:
            self.images = offered_images(self.settings)
        except Exception:  # noqa: BLE001 - a node that cannot list its images still runs jobs
            logger.exception("could not list the images this worker offers")
        thread = threading.Thread(target=self._run, name="compute-presence", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stopped.set()
        try:
            pipeline = self.client.pipeline()
            pipeline.delete(worker_key(self.node))
            pipeline.srem(WORKERS_KEY, self.node)
            pipeline.execute()
        except redis.RedisError as error:
            logger.warning("could not withdraw this worker's presence: %s", error)

    def record(self) -> WorkerPresence:
        port = self.settings.worker_metrics_port
        return WorkerPresence(
            node=self.node,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            slots=self.slots,
            warm_executors=warm_executor_count(),
            images=self.images,
            limits=dict(self.limits),
            metrics_port=port or None,
            seen_at=time.time(),
        )

    def renew(self) -> None:
        """Write the record for another `WORKER_PRESENCE_TTL_SECONDS`."""
        pipeline = self.client.pipeline()
        pipeline.set(worker_key(self.node), self.record().to_json(), ex=WORKER_PRESENCE_TTL_SECONDS)
        pipeline.sadd(WORKERS_KEY, self.node)
        pipeline.execute()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self.renew()
            except (redis.RedisError, OSError) as error:
                logger.warning("could not renew this worker's presence: %s", error)
            if self._stopped.wait(WORKER_PRESENCE_REFRESH_SECONDS):
                return
