"""Function: user code deployed to the service, which runs it as Jobs."""

from __future__ import annotations

import builtins
import collections
import gzip
import os
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ._attributes import Attribute, DatetimeAttribute
from ._bulk import bulk_arguments
from ._bundle import Bundle, build_bundle, check_image, default_image
from ._client import ComputeClient, get_default_client
from ._document import Document, DocumentState
from ._exceptions import BuildFailedError, BundleError
from ._job import Job
from ._progress import JobProgress, progress_wanted
from ._results import RESULTS_PER_REQUEST, chunks, fetch_results
from ._search import Search
from ._serializable import decode_result
from ._units import Cpus, Memory
from ._waiting import poll_until
from .statuses import FunctionStatus, JobStatus

JOB_STATISTICS = "job.statistics"
#: Job ids sent per cancel request.
CANCEL_CHUNK = 1000


class Function(Document):
    """User code that the service builds once and runs as many Jobs.

    Args:
        function: The callable to run, or the dotted path of an importable one.
        requirements: A requirements file path, or a list of PEP 508 requirements.
        include_data: Glob patterns of data files to ship with the code.
        include_modules: Names of local modules or packages to ship with the code.
        name: Defaults to the function's name.
        image: The runtime image, ``python3.X:latest`` of the local Python by default.
            It cannot change once set.
        cpus: CPUs per Job, e.g. ``2`` or ``"2VCPUs"``.
        memory: Memory per Job in MB, or a string such as ``"2Gi"``.
        maximum_concurrency: Jobs allowed to run at the same time.
        timeout: Seconds a Job may run.
        retry_count: Retries of a failed Job.
        **extra: Further attributes (``saved=True`` when they come from the service).

    Example:
        >>> def add(a, b):
        ...     return a + b
        >>> fn = Function(add, requirements=["numpy"], memory="2Gi")
        >>> jobs = fn.map([[1, 2], [3, 4]])
        >>> fn.wait_for_completion()
        >>> fn.results()  # one entry per input; JobFailedError if a Job failed
        [3, 7]
    """

    id = Attribute(str, filterable=True, sortable=True, readonly=True, doc="The Function's id.")
    creation_date = DatetimeAttribute(
        filterable=True, sortable=True, readonly=True, doc="When it was created (UTC)."
    )
    name = Attribute(str, filterable=True, sortable=True, doc="The Function's name.")
    image = Attribute(str, filterable=True, mutable=False, doc="The runtime image.")
    cpus = Attribute(Cpus, filterable=True, sortable=True, doc="CPUs per Job.")
    memory = Attribute(Memory, filterable=True, sortable=True, doc="Memory per Job, in MB.")
    maximum_concurrency = Attribute(
        int, filterable=True, sortable=True, doc="Jobs allowed to run at the same time."
    )
    timeout = Attribute(int, filterable=True, sortable=True, doc="Seconds a Job may run.")
    retry_count = Attribute(int, filterable=True, sortable=True, doc="Retries of a failed Job.")
    status = Attribute(
        FunctionStatus, filterable=True, sortable=True, readonly=True, doc="The FunctionStatus."
    )
    job_statistics = Attribute(
        dict, readonly=True, doc="Job counts by status, when fetched with job.statistics."
    )

    # Local-only settings, also defined here for documents built from service data.
    _function: Callable[..., Any] | str | None = None
    _requirements: Any = None
    _include_data: Iterable[str] | None = None
    _include_modules: Iterable[str] | None = None
    _include: list[str] | None = None
    _upload_url: str | None = None

    def __init__(
        self,
        function: Callable[..., Any] | str | None = None,
        requirements: str | os.PathLike[str] | Iterable[str] | None = None,
        include_data: Iterable[str] | None = None,
        include_modules: Iterable[str] | None = None,
        name: str | None = None,
        image: str | None = None,
        cpus: float | str | None = None,
        memory: int | str | None = None,
        maximum_concurrency: int | None = None,
        timeout: int | None = None,
        retry_count: int | None = None,
        **extra: Any,
    ) -> None:
        self._function = function
        self._requirements = requirements
        self._include_data = include_data
        self._include_modules = include_modules
        if not name and function is not None:
            name = function.rsplit(".", 1)[-1] if isinstance(function, str) else _name(function)
        super().__init__(
            name=name,
            image=image,
            cpus=cpus,
            memory=memory,
            maximum_concurrency=maximum_concurrency,
            timeout=timeout,
            retry_count=retry_count,
            **extra,
        )

    def __repr__(self) -> str:
        if self._deleted:
            return "Function (deleted)"
        return f"Function {self.name} ({self.id}): {self.status}"

    def __call__(self, *args: Any, **kwargs: Any) -> Job:
        """Save the Function if needed and submit one Job with these arguments."""
        self.save()
        job = Job(function_id=self.id, args=list(args), kwargs=kwargs)
        job.save()
        return job

    @classmethod
    def get(cls, id: str, include: Iterable[str] | None = None, **params: Any) -> Function:
        """Fetch a Function by id.

        Args:
            id: The Function's id.
            include: ``["job.statistics"]`` to fill :attr:`job_statistics`.

        Raises:
            NotFoundError: No such Function for this user.
        """
        if include is not None:
            params["include"] = [include] if isinstance(include, str) else list(include)
        function = cls._from_remote(
            get_default_client().json("GET", f"/functions/{id}", params=params)
        )
        function._include = params.get("include")
        return function

    @classmethod
    def search(cls) -> Search[Function]:
        """Start a lazy search over the user's Functions."""
        return Search(cls, "/functions")

    @classmethod
    def list(cls, page_size: int = 100, **params: Any) -> Search[Function]:
        """List Functions; ``params`` may hold ``include=["job.statistics"]``."""
        return cls.search().param(page_size=page_size, **params)

    @classmethod
    def update_credentials(cls) -> None:
        """Refresh the credentials the service gives this user's Jobs."""
        body = {"client_id": None, "client_secret": None}
        get_default_client().request("POST", "/credentials", json_body=body)

    @property
    def jobs(self) -> Search[Job]:
        """A search over this Function's Jobs."""
        return Job.search().filter(Job.function_id == self.id)

    def refresh(self) -> None:
        """Reload from the service, keeping job statistics if they were fetched before."""
        self._require_saved("refresh")
        include = self._include or ([JOB_STATISTICS] if self.job_statistics is not None else None)
        params = {"include": include} if include else None
        client = get_default_client()
        self._load_from_remote(client.json("GET", f"/functions/{self.id}", params=params))

    def save(self) -> None:
        """Create the Function (upload its code) or send the attributes changed locally.

        Raises:
            BundleError: The code cannot be bundled or cannot run on the image; raised
                before anything is sent.
            ValueError: The Function was deleted.
        """
        if self._deleted:
            raise ValueError(f"Cannot save Function {self._attributes.get('id')}: it was deleted")
        client = get_default_client()
        if self.state == DocumentState.NEW:
            self._create(client)
        elif self._upload_url:
            with self._bundle() as bundle:
                self._upload(client, bundle)
        if self.state == DocumentState.MODIFIED:
            body = self.to_dict(only_modified=True)
            self._load_from_remote(client.json("PATCH", f"/functions/{self.id}", json_body=body))

    def _bundle(self) -> Any:
        if self._function is None:
            raise BundleError("Function not provided: pass the callable to run")
        return build_bundle(
            self._function, self._requirements, self._include_data, self._include_modules
        )

    def _create(self, client: ComputeClient) -> None:
        if self.image is None:
            self.image = default_image()
        with self._bundle() as bundle:
            check_image(self.image, bundle)
            self.update_credentials()
            answer = client.json("POST", "/functions", json_body=self.to_dict(exclude_none=True))
            self._load_from_remote(answer["function"])
            self._upload_url = answer["bundle_upload_url"]
            self._upload(client, bundle)

    def _upload(self, client: ComputeClient, bundle: Bundle) -> None:
        client.upload(str(self._upload_url), bundle.path.read_bytes())
        self._load_from_remote(client.json("POST", f"/functions/{self.id}/bundle"))
        self._upload_url = None

    def delete(self) -> None:
        """Delete the Function with all its Jobs, results and logs."""
        self._require_saved("delete")
        get_default_client().request("DELETE", f"/functions/{self.id}")
        self._deleted = True

    def read_build_log(self) -> str:
        """Return the build log as text."""
        content = get_default_client().request("GET", f"/functions/{self.id}/log").content
        if content[:2] == b"\x1f\x8b":
            content = gzip.decompress(content)
        return content.decode("utf-8", errors="replace")

    def build_log(self) -> None:
        """Print the build log; see :meth:`read_build_log` to get it instead."""
        print(self.read_build_log())

    def map(
        self,
        args: Iterable[Any],
        iterargs: Iterable[Any] | None = None,
        *,
        progress: bool | None = None,
    ) -> builtins.list[Job]:
        """Submit one Job per element of ``args`` in a single request.

        Args:
            args: Each element is one Job's positional arguments: a list or tuple is
                spread (``[[1, 2], [3, 4]]`` calls ``f(1, 2)`` and ``f(3, 4)``), anything
                else is the single argument (``[1, 2]`` calls ``f(1)`` and ``f(2)``).
            iterargs: Either one mapping of keyword arguments per element of ``args``, or
                a list of iterables zipped with ``args`` as further positional arguments,
                like the builtin ``map(f, args, *iterargs)`` (each element of ``args`` is
                then the first argument, never spread).
            progress: Show a bar of the Jobs submitted (True), or not (False); when None,
                only if standard error is a terminal or this runs in a notebook, unless
                ``COMPUTE_PROGRESS=0``.

        Returns:
            The Jobs, in the order of ``args``.

        Raises:
            ValueError: ``iterargs`` is malformed or its length differs from ``args``.
            ConfigurationError: ``COMPUTE_PROGRESS`` is neither on nor off.

        The request carries a fresh ``reference_id``, so the service creates the Jobs once
        even when the request is sent again after a lost answer or a 502/503/504.
        """
        bulk_args, bulk_kwargs = bulk_arguments(args, iterargs)
        show_progress = progress_wanted(progress)
        self.save()
        body = {
            "function_id": self.id,
            "bulk_args": bulk_args,
            "bulk_kwargs": bulk_kwargs,
            "reference_id": str(uuid.uuid4()),
        }
        with JobProgress(f"{self.name} submitted", len(bulk_args), show_progress) as bar:
            answer = get_default_client().json(
                "POST", "/jobs/bulk", json_body=body, idempotent=True
            )
            jobs = [Job._from_remote(job) for job in answer]
            bar.show(len(jobs), len(bulk_args), collections.Counter(job.status for job in jobs))
        return jobs

    def rerun(self) -> builtins.list[Job]:
        """Resubmit the Function's failed, timed-out and canceled Jobs."""
        answer = get_default_client().json(
            "POST", "/jobs/rerun", json_body={"function_id": self.id}
        )
        return [Job._from_remote(job) for job in answer]

    def cancel_jobs(
        self, query: Search[Job] | None = None, job_ids: Iterable[str] | None = None
    ) -> dict[str, int]:
        """Cancel the Function's pending and running Jobs; see :meth:`Job.cancel`.

        Args:
            query: Only the Jobs this search of the Function's Jobs finds
                (``fn.jobs.filter(...)``).
            job_ids: Only the Jobs with these ids.

        Returns:
            How many pending Jobs were ``canceled`` and how many running ones are
            ``stopping`` (they read ``canceled`` within a second).
        """
        client = get_default_client()
        path = f"/functions/{self.id}/cancel"
        if query is None and job_ids is None:
            return dict(client.json("POST", path, json_body={}))
        wanted = builtins.list(job_ids or [])
        if query is not None:
            wanted.extend(job.id for job in query)
        totals = {"canceled": 0, "stopping": 0}
        for chunk in range(0, len(wanted), CANCEL_CHUNK):
            body = {"job_ids": wanted[chunk : chunk + CANCEL_CHUNK]}
            answer = client.json("POST", path, json_body=body)
            for name in totals:
                totals[name] += int(answer[name])
        return totals

    def iter_results(
        self, cast_type: type | None = None, return_exceptions: bool = False
    ) -> Iterator[Any]:
        """Yield one entry per Job, in submission order, so entries line up with inputs.

        A successful Job's entry is its result, a pending or running Job's is None (as
        :meth:`Job.result` answers). A failed or timed-out Job raises its
        :class:`JobFailedError`, or is that error, in place, with ``return_exceptions``.

        Args:
            cast_type: A :class:`Serializable` type whose ``deserialize`` rebuilds values.
            return_exceptions: Yield failures as ``JobFailedError`` objects (like
                ``asyncio.gather``) instead of raising the first.

        Raises:
            JobFailedError: A Job failed or timed out, unless ``return_exceptions``.
        """
        client = get_default_client()
        jobs = self.jobs.sort(Job.creation_date, Job.id).param(page_size=RESULTS_PER_REQUEST)
        for chunk in chunks(jobs, RESULTS_PER_REQUEST):
            succeeded = [job.id for job in chunk if job.status == JobStatus.SUCCESS]
            stored = fetch_results(client, succeeded) if succeeded else {}
            for job in chunk:
                if job.status in JobStatus.unsuccessful():
                    failure = job._failure()
                    if not return_exceptions:
                        raise failure
                    yield failure
                elif job.status != JobStatus.SUCCESS:
                    yield None
                elif stored is not None and job.id in stored:
                    yield decode_result(stored[job.id], cast_type)
                else:
                    yield job._fetch_result(cast_type)

    def results(
        self, cast_type: type | None = None, return_exceptions: bool = False
    ) -> builtins.list[Any]:
        """Return one entry per Job, in submission order, as a list; see :meth:`iter_results`.

        Raises:
            JobFailedError: A Job failed or timed out, unless ``return_exceptions``.
        """
        return list(self.iter_results(cast_type=cast_type, return_exceptions=return_exceptions))

    def wait_for_completion(
        self, timeout: float | None = None, interval: float = 10, *, progress: bool | None = None
    ) -> None:
        """Block until every submitted Job is done.

        Args:
            timeout: Seconds to wait at most; forever when None.
            interval: The longest pause between polls, in seconds (fractions allowed); the
                first polls come within 50 ms and the pause grows to it.
            progress: Show a bar of the Jobs done, with their counts by status (True), or
                not (False); when None, only if standard error is a terminal or this runs
                in a notebook, unless ``COMPUTE_PROGRESS=0``.

        Raises:
            BuildFailedError: The build failed, so the Jobs will never run.
            TimeoutError: Jobs were still outstanding after ``timeout`` seconds.
            ConfigurationError: ``COMPUTE_PROGRESS`` is neither on nor off.
        """
        show_progress = progress_wanted(progress)
        if show_progress:
            self._refresh_statistics()  # the bar starts from the counts as they are now
        print(f"Function {self.name} starting status {self.status}", file=sys.stderr)

        def done() -> bool:
            if self.status == FunctionStatus.BUILD_FAILED:
                raise BuildFailedError(
                    f"Function {self.name} ({self.id}) failed to build; see build_log()"
                )
            return self.status in (FunctionStatus.SUCCESS, FunctionStatus.FAILURE)

        message = f"Function {self.name} did not complete before timeout!"
        label = f"Function {self.name}"
        total = sum((self.job_statistics or {}).values())
        with JobProgress(f"{self.name} done", total, show_progress) as bar:

            def observe() -> None:
                bar.show_statistics(self.job_statistics or {})

            observe()
            poll_until(
                self, done, timeout, interval, message, label, observe=observe, say=bar.write
            )

    def _refresh_statistics(self) -> None:
        """Reload with the job statistics, which each later :meth:`refresh` then keeps."""
        self._require_saved("refresh")
        params = {"include": [JOB_STATISTICS]}
        client = get_default_client()
        self._load_from_remote(client.json("GET", f"/functions/{self.id}", params=params))


def _name(function: Callable[..., Any]) -> str:
    return getattr(function, "__name__", None) or type(function).__name__
