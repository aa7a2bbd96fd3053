"""Errors through the published client: the exception class each server answer maps to."""

import _harness  # noqa: F401, I001 - must come first: it guards the network
from _harness import captured_stdout, case, error_of, main

from descarteslabs.compute import Function, Job


def add(a, b=0):
    return a + b


@case
def missing(inputs):
    """Unknown ids are a NotFoundError, for functions and jobs alike."""
    missing_id = inputs["missing_id"]
    return {
        "function_get": error_of(Function.get, missing_id),
        "job_get": error_of(Job.get, missing_id),
        "job_on_missing_function": error_of(Job(function_id=missing_id, args=[1]).save),
    }


@case
def foreign(inputs):
    """Another user's function and job are invisible: not found, not listed, not counted."""
    return {
        "function_get": error_of(Function.get, inputs["function_id"]),
        "job_get": error_of(Job.get, inputs["job_id"]),
        "submit": error_of(Job(function_id=inputs["function_id"], args=[1]).save),
        "listed": [f.id for f in Function.list()],
        "jobs_listed": [
            j.id for j in Job.search().filter(Job.function_id == inputs["function_id"])
        ],
        "count": Function.search().count(),
    }


@case
def bad_queries(inputs):
    """Malformed searches are a BadRequestError, raised when the search runs."""
    return {
        "bad_json": error_of(Function.search().param(filter="[{bad").collect),
        "unknown_attribute": error_of(
            Function.search().param(filter='[{"name":"nope","op":"eq","val":1}]').collect
        ),
        "unknown_operator": error_of(
            Function.search().param(filter='[{"name":"name","op":"like","val":"x"}]').count
        ),
        "unknown_parameter": error_of(Function.search().param(bogus="1").collect),
        "bad_sort": error_of(Job.search().param(sort=["nope"]).collect),
    }


@case
def invalid_input(inputs):
    """Invalid bodies are a 422 ValidationError naming the field; nothing is created."""
    image = inputs["image"]
    negative_cpus = Function(add, name="negative", image=image, cpus=-1, memory=512)
    zero_memory = Function(add, name="zero", image=image, cpus=1, memory=0)
    good = Function(add, name=inputs["name"], image=image, cpus=1, memory=512)
    good.save()
    lengths = error_of(good.map, [[1], [2]], [{"b": 1}])
    good.memory = -5
    patch = error_of(good.save)
    return {
        "negative_cpus": error_of(negative_cpus.save),
        "zero_memory": error_of(zero_memory.save),
        "bulk_kwargs_length": lengths,
        "patch": patch,
        "function_id": good.id,
    }


@case
def conflict(inputs):
    """Submitting to a function whose build failed is a ConflictError naming the failure;
    waiting for it returns at once (the client waits for `success` or `failure` only)."""
    fn = Function.get(inputs["function_id"])
    return {
        "status": str(fn.status),
        "call": error_of(fn, 1),
        "map": error_of(fn.map, [[1], [2]]),
        "waited": captured_stdout(fn.wait_for_completion, timeout=10, interval=0.1),
    }


if __name__ == "__main__":
    main()
