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

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Each public name and the module that defines it, imported when first used: the
# service's own modules import `compute.statuses` and must not load the SDK's client
# (requests, cloudpickle) with it.
_HOMES = {
    "Attribute": "._attributes",
    "DatetimeAttribute": "._attributes",
    "Sort": "._attributes",
    "ComputeClient": "._client",
    "configure": "._client",
    "get_default_client": "._client",
    "Collection": "._collection",
    "load_config": "._config",
    "write_config": "._config",
    "Document": "._document",
    "DocumentState": "._document",
    "ApiError": "._exceptions",
    "AuthenticationError": "._exceptions",
    "BadRequestError": "._exceptions",
    "BuildFailedError": "._exceptions",
    "BundleError": "._exceptions",
    "ClientError": "._exceptions",
    "ComputeError": "._exceptions",
    "ConfigurationError": "._exceptions",
    "ConflictError": "._exceptions",
    "ForbiddenError": "._exceptions",
    "JobFailedError": "._exceptions",
    "NotFoundError": "._exceptions",
    "PayloadTooLargeError": "._exceptions",
    "RateLimitError": "._exceptions",
    "ServerError": "._exceptions",
    "ServiceUnavailableError": "._exceptions",
    "ValidationError": "._exceptions",
    "Expression": "._filters",
    "Function": "._function",
    "Job": "._job",
    "Search": "._search",
    "Serializable": "._serializable",
    "Cpus": "._units",
    "Memory": "._units",
    "FunctionStatus": ".statuses",
    "JobStatus": ".statuses",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])


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
