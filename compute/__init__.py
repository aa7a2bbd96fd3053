"""Python SDK of the self-hosted batch compute service.

Compatible with the ``descarteslabs.compute`` API: deploy a Python function once, then
run it as many Jobs::

    from compute import Function

    def add(a, b):
        return a + b

    fn = Function(add, requirements=["numpy"], memory="2Gi")
    fn.map([[1, 2], [3, 4]])
    fn.wait_for_completion()
    print(fn.results())

The service URL and token come from ``COMPUTE_URL`` / ``COMPUTE_TOKEN``, the config
file written by ``compute login``, or :func:`configure`.
"""

from __future__ import annotations

from ._attributes import Attribute, DatetimeAttribute, Sort
from ._client import ComputeClient, configure, get_default_client
from ._collection import Collection
from ._config import load_config, write_config
from ._document import Document, DocumentState
from ._exceptions import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    BuildFailedError,
    BundleError,
    ClientError,
    ComputeError,
    ConfigurationError,
    ConflictError,
    ForbiddenError,
    JobFailedError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
    ValidationError,
)
from ._filters import Expression
from ._function import Function
from ._job import Job
from ._search import Search
from ._serializable import Serializable
from ._units import Cpus, Memory
from .statuses import FunctionStatus, JobStatus

__all__ = [
    # resources
    "Function",
    "Job",
    "FunctionStatus",
    "JobStatus",
    "Serializable",
    "Cpus",
    "Memory",
    # searching
    "Search",
    "Collection",
    "Expression",
    "Sort",
    # documents
    "Attribute",
    "DatetimeAttribute",
    "Document",
    "DocumentState",
    # configuration
    "ComputeClient",
    "configure",
    "get_default_client",
    "load_config",
    "write_config",
    # exceptions
    "ComputeError",
    "ConfigurationError",
    "BundleError",
    "BuildFailedError",
    "JobFailedError",
    "ServiceUnavailableError",
    "ApiError",
    "ClientError",
    "BadRequestError",
    "AuthenticationError",
    "ForbiddenError",
    "NotFoundError",
    "ConflictError",
    "PayloadTooLargeError",
    "ValidationError",
    "RateLimitError",
    "ServerError",
]
