"""The build step: turn a function's uploaded bundle into a ready environment, or fail it.

User mistakes (a bad bundle, requirement or image) end `build_failed` with the reason in
the build log and fail the jobs already waiting; faults of the worker raise, so Celery
redelivers the build.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from flask import current_app

from compute.server.blobstore import build_log_key
from compute.server.extensions import db
from compute.server.models import BuildState, Function
from compute.server.settings import current_settings
from compute.server.transitions import fail_pending_jobs, set_build_state

from . import metrics
from .build import BuildSettings, build_function
from .bundle_fetch import fetched_bundle

logger = logging.getLogger(__name__)


class BuildElsewhere(Exception):
    """This node cannot run the function's image, and another live node can: the build is
    theirs to judge."""


def run_build(function_id: str, offered_elsewhere: Callable[[str], bool] | None = None) -> bool:
    """Build `function_id` if it is waiting for a build; return whether it is built.

    Args:
        offered_elsewhere: whether another live node offers an image this one lacks.

    Raises:
        BuildElsewhere: the image is missing here only; nothing was recorded.
    """
    function = db.session.get(Function, function_id)
    if function is None:
        return False
    if function.build_state != BuildState.BUILDING:
        return function.build_state == BuildState.BUILT
    store = current_app.extensions["blobstore"]
    settings = BuildSettings.from_settings(current_settings())
    started = time.monotonic()
    with fetched_bundle(store, function.bundle_key, settings.scratch_root) as bundle:
        if bundle is None:
            return _fail(
                function, "the uploaded bundle is missing", "The bundle could not be found."
            )
        result = build_function(bundle, function.image, settings)
    if result.image_missing and offered_elsewhere and offered_elsewhere(function.image):
        # One node's lack is not the function's fault: it must not fail for all.
        logger.info("build of %s left to a node offering %s", function.id, function.image)
        db.session.rollback()
        raise BuildElsewhere(function.image)
    metrics.build_finished(result.ok, time.monotonic() - started)
    store.put(build_log_key(function.id), result.log_text.encode())
    if not result.ok:
        return _fail(function, result.error or "the build failed", None)
    function.build_log_key = build_log_key(function.id)
    function.build_error = None
    moved = set_build_state(db.session, function.id, BuildState.BUILT, BuildState.BUILDING)
    db.session.commit()
    logger.info("built function %s (%s)", function.id, "moved" if moved else "already moved")
    return True


def _fail(function: Function, reason: str, log_text: str | None) -> bool:
    if log_text is not None:
        current_app.extensions["blobstore"].put(build_log_key(function.id), log_text.encode())
    function.build_error = reason
    function.build_log_key = build_log_key(function.id)
    set_build_state(db.session, function.id, BuildState.BUILD_FAILED, BuildState.BUILDING)
    failed = fail_pending_jobs(db.session, function.id, f"the function failed to build: {reason}")
    db.session.commit()
    logger.info("build of %s failed (%s); %d pending jobs failed", function.id, reason, failed)
    return False
