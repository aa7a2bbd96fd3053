from __future__ import annotations

import compute
from compute import statuses


def test_all_names_exist_and_are_unique():
    assert len(compute.__all__) == len(set(compute.__all__))
    for name in compute.__all__:
        assert hasattr(compute, name), name


def test_descarteslabs_compute_names_are_exported():
    expected = {
        "Function",
        "Job",
        "JobStatus",
        "FunctionStatus",
        "Serializable",
        "Search",
        "Collection",
        "Cpus",
        "Memory",
        "configure",
    }
    assert expected <= set(compute.__all__)


def test_status_enums_are_the_shared_ones():
    assert compute.JobStatus is statuses.JobStatus
    assert compute.FunctionStatus is statuses.FunctionStatus


def test_exception_tree():
    client_errors = [
        compute.BadRequestError,
        compute.AuthenticationError,
        compute.ForbiddenError,
        compute.NotFoundError,
        compute.ConflictError,
        compute.PayloadTooLargeError,
        compute.ValidationError,
        compute.RateLimitError,
    ]
    for error in client_errors:
        assert issubclass(error, compute.ClientError)
    assert issubclass(compute.ClientError, compute.ComputeError)
    assert issubclass(compute.ServerError, compute.ComputeError)
    assert issubclass(compute.ServiceUnavailableError, ConnectionError)
    assert issubclass(compute.BundleError, ValueError)
    for name in compute.__all__:
        value = getattr(compute, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, compute.ComputeError), name


def test_private_modules_stay_private():
    assert not [name for name in compute.__all__ if name.startswith("_")]
