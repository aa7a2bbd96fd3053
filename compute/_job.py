"""Job: one invocation of a Function."""

from __future__ import annotations

import builtins
import contextlib
import json
import sys
import time
import uuid
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._attributes import Attribute, DatetimeAttribute, parse_datetime
from ._client import IDEMPOTENCY_KEY_HEADER, get_default_client
from ._document import Document, DocumentState
from ._exceptions import ComputeError, JobFailedError
from ._search import Search
from ._serializable import decode_result
from ._waiting import poll_until
from .statuses import JobStatus

if TYPE_CHECKING:
    from ._function import Function

#: How much of a failed Job's log its JobFailedError shows, in lines and bytes fetched.
LOG_TAIL_LINES = 20
LOG_TAIL_BYTES = 16 * 1024
#: How often a followed log is read while its Job runs, in seconds.
FOLLOW_SECONDS = 0.4


class Job(Document):
    """A single invocation of a Function with its arguments.

    Args:
        function_id: The id of the Function to run.
        args: Positional arguments for the function.
        kwargs: Keyword arguments for the function.
        **extra: Further attributes (``saved=True`` when they come from the service).

    Example:
        >>> job = Job(function.id, args=[1, 2])
        >>> job.save()
        >>> job.wait_for_completion()
        >>> job.result()  # raises JobFailedError, saying why, if the Job failed
    """

    id = Attribute(str, filterable=True, sortable=True, readonly=True, doc="The Job's id.")
    function_id = Attribute(
        str, filterable=True, mutable=False, doc="The id of the Function the Job runs."
    )
    creation_date = DatetimeAttribute(
        filterable=True, sortable=True, readonly=True, doc="When the Job was created (UTC)."
    )
    args = Attribute(list, doc="The positional arguments of the call.")
    kwargs = Attribute(dict, doc="The keyword arguments of the call.")
    runtime = Attribute(
        float, filterable=True, sortable=True, readonly=True, doc="Seconds the Job ran, once done."
    )
    status = Attribute(
        JobStatus, filterable=True, sortable=True, readonly=True, doc="The Job's JobStatus."
    )
    error = Attribute(
        str,
        readonly=True,
        doc="Why the Job's last attempt failed or timed out, e.g. ``ValueError: bad tile 17``.",
    )

    def __init__(
        self,
        function_id: str | None = None,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(function_id=function_id, args=args, kwargs=kwargs, **extra)

    def __repr__(self) -> str:
        if self._deleted:
            return "Job (deleted)"
        if self.status in JobStatus.unsuccessful() and self.error:
            return f"Job {self.id}: {self.status} ({self.error})"
        return f"Job {self.id}: {self.status}"

    @property
    def function(self) -> Function:
        """Fetch the Function this Job belongs to."""
        from ._function import Function

        return Function.get(self.function_id)

    @classmethod
    def get(cls, id: str) -> Job:
        """Fetch a Job by id.

        Raises:
            NotFoundError: No such Job for this user.
        """
        return cls._from_remote(get_default_client().json("GET", f"/jobs/{id}"))

    @classmethod
    def search(cls) -> Search[Job]:
        """Start a lazy search over the user's Jobs."""
        return Search(cls, "/jobs")

    @classmethod
    def list(cls, page_size: int = 100, **params: Any) -> Search[Job]:
        """List Jobs; ``params`` may hold plain filters such as ``function_id`` or ``status``.

        Args:
            page_size: Jobs fetched per request.
            **params: Further query parameters.
        """
        return cls.search().param(page_size=page_size, **params)

    def refresh(self) -> None:
        """Reload the Job from the service, discarding local changes."""
        self._require_saved("refresh")
        self._load_from_remote(get_default_client().json("GET", f"/jobs/{self.id}"))

    def _refresh_when_final(self, seconds: float) -> None:
        """Reload the Job once it is final, or after ``seconds``: the service waits."""
        self._require_saved("refresh")
        params = {"wait": f"{seconds:.3f}"}
        self._load_from_remote(get_default_client().json("GET", f"/jobs/{self.id}", params=params))

    def save(self) -> None:
        """Create the Job, or send the attributes changed since it was loaded.

        Creating sends a fresh ``Idempotency-Key``, so the service creates the Job once
        even when the request is sent again after a lost answer or a 502/503/504.

        Raises:
            ValueError: The Job was deleted.
        """
        state = self.state
        if state == DocumentState.SAVED:
            return
        client = get_default_client()
        if state == DocumentState.NEW:
            data = client.json(
                "POST",
                "/jobs",
                json_body=self.to_dict(exclude_none=True),
                headers={IDEMPOTENCY_KEY_HEADER: str(uuid.uuid4())},
                idempotent=True,
            )
        elif state == DocumentState.MODIFIED:
            body = self.to_dict(only_modified=True)
            data = client.json("PATCH", f"/jobs/{self.id}", json_body=body)
        else:
            raise ValueError(f"Cannot save Job {self._attributes.get('id')}: it was deleted")
        self._load_from_remote(data)

    def delete(self) -> None:
        """Delete the Job with its result and log.

        Raises:
            ValueError: The Job was never saved.
        """
        self._require_saved("delete")
        get_default_client().request("DELETE", f"/jobs/{self.id}")
        self._deleted = True

    def result(self, cast_type: type | None = None) -> Any:
        """Fetch the Job's return value, refreshing its status first.

        Args:
            cast_type: A :class:`Serializable` type whose ``deserialize`` rebuilds the value.

        Returns:
            The decoded JSON or the raw bytes; None when the function returned None, and
            while the Job is still pending or running.

        Raises:
            JobFailedError: The Job failed or timed out; the error carries the reason and
                the last lines of the Job's log.
            ValueError: ``cast_type`` does not implement ``deserialize``, or the Job was
                never saved.
        """
        self._require_saved("fetch the result of")
        job = self._current()
        if job.status in JobStatus.unsuccessful():
            raise job._failure()
        return job._fetch_result(cast_type)

    def _failure(self) -> JobFailedError:
        """What :meth:`result` raises for this failed or timed-out Job, as last fetched."""
        return JobFailedError(self.id, self.status, self.error, self._log_tail())

    def _current(self) -> Job:
        """The Job as the service holds it now: this object, unless it has local changes."""
        if self.is_modified:
            return Job.get(self.id)
        self.refresh()
        return self

    def _fetch_result(self, cast_type: type | None) -> Any:
        response = get_default_client().request("GET", f"/jobs/{self.id}/result")
        return decode_result(response.content, cast_type)

    def _log_tail(self) -> builtins.list[str]:
        """The last lines of the log, or none when it cannot be fetched: the error still
        has the reason."""
        lines: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        path = f"/jobs/{self.id}/log"
        try:
            for entry in get_default_client().iter_ndjson(path, tail_bytes=LOG_TAIL_BYTES):
                lines.append(str(entry.get("log", "")))
        except (ComputeError, ValueError):
            return []
        return list(lines)

    def iter_log(self, timestamps: bool = True, follow: bool = False) -> Iterator[str]:
        """Yield the lines the Job printed.

        Args:
            timestamps: Prefix each line with its time, in the local timezone.
            follow: Keep yielding lines as the Job prints them (within about a second)
                until it ends; without it, only what it has printed so far.
        """
        entries = self._follow_log() if follow else self._log_entries()
        for entry in entries:
            line = str(entry.get("log", ""))
            if timestamps and entry.get("date"):
                line = f"{parse_datetime(entry['date']).astimezone()} {line}"
            yield line

    def log(self, timestamps: bool = True, follow: bool = False) -> None:
        """Print the lines the Job printed; see :meth:`iter_log` to get them instead.

        Args:
            timestamps: Prefix each line with its time, in the local timezone.
            follow: Keep printing lines as the Job prints them, until it ends.
        """
        for line in self.iter_log(timestamps=timestamps, follow=follow):
            print(line, flush=follow)

    def _log_entries(self) -> Iterator[dict[str, Any]]:
        return get_default_client().iter_ndjson(f"/jobs/{self.id}/log")

    def _follow_log(self) -> Iterator[dict[str, Any]]:
        """The log's entries as they are written: read from where the last read ended,
        waiting on the Job's status in between, and once more after it has ended (its
        worker stores the whole log before it records the end)."""
        self._require_saved("follow the log of")
        client = get_default_client()
        path = f"/jobs/{self.id}/log"
        offset, unfinished = 0, b""
        while True:
            asked = time.monotonic()
            self._refresh_when_final(FOLLOW_SECONDS)
            ended = self.status in JobStatus.final()
            chunk = client.read_from(path, offset)
            offset += len(chunk)
            *lines, unfinished = (unfinished + chunk).split(b"\n")
            for line in lines:
                if line.strip():
                    with contextlib.suppress(ValueError):
                        yield json.loads(line)
            if ended:
                return
            # The service answers at once when it is too busy to wait.
            time.sleep(max(0.0, FOLLOW_SECONDS - (time.monotonic() - asked)))

    def cancel(self) -> None:
        """Cancel the Job: a pending Job never starts; a running one is stopped within a
        second, keeping the log it printed. Either ends with status ``canceled``; a
        running Job reads ``running`` until its worker has stopped it. A Job that has
        already ended is left as it is.

        Raises:
            ValueError: The Job was never saved.
        """
        self._require_saved("cancel")
        self._load_from_remote(get_default_client().json("POST", f"/jobs/{self.id}/cancel"))

    def wait_for_completion(self, timeout: float | None = None, interval: float = 10) -> None:
        """Block until the Job succeeds, fails or times out.

        Args:
            timeout: Seconds to wait at most; forever when None.
            interval: The longest pause between polls, in seconds (fractions allowed); the
                first polls come within 50 ms and the pause grows to it.

        Raises:
            TimeoutError: The Job was still running after ``timeout`` seconds.
        """
        print(f"Job {self.id} starting status {self.status}", file=sys.stderr)
        poll_until(
            self,
            lambda: self.status in JobStatus.final(),
            timeout,
            interval,
            f"Job {self.id} did not complete before timeout!",
            f"Job {self.id}",
            refresh_waiting=self._refresh_when_final,
        )
