"""Jobs through the published client: submit, map, read, search, refresh, rerun, result, log."""

import _harness  # noqa: F401, I001 - must come first: it guards the network
from _harness import captured_stdout, case, function_json, job_json, main

from descarteslabs.compute import Function, Job, JobStatus


def add(a, b=0):
    return a + b


def new_function(inputs):
    return Function(add, name=inputs["name"], image=inputs["image"], cpus=1, memory=512)


@case
def submit(inputs):
    """fn(...) right after creation (the client saves first), Job(...).save(), fn.map(...)."""
    fn = new_function(inputs)
    called = fn(1, 2)
    keyword = fn(5, b=6)
    explicit = Job(function_id=fn.id, args=[3], kwargs={"b": 4})
    assert explicit.state == "new", explicit.state
    explicit.save()
    mapped = fn.map([[10, 1], [20, 2], [30, 3], [40, 4]])
    scalars = fn.map([7, 8, 9])
    with_kwargs = fn.map([[1], [2]], [{"b": 100}, {"b": 200}])
    after = Function.get(fn.id, include=["job.statistics"])
    return {
        "function": function_json(after),
        "called": job_json(called),
        "keyword": job_json(keyword),
        "explicit": job_json(explicit),
        "mapped": [job_json(job) for job in mapped],
        "scalars": [job_json(job) for job in scalars],
        "with_kwargs": [job_json(job) for job in with_kwargs],
    }


@case
def read(inputs):
    """Job.get, job.refresh, Job.search by function and status, the legacy Job.list params."""
    job = Job.get(inputs["job_id"])
    job.refresh()
    waited = captured_stdout(job.wait_for_completion, timeout=10, interval=0.1)
    by_function = Job.search().filter(Job.function_id == inputs["function_id"])
    pending = by_function.filter(Job.status == JobStatus.PENDING)
    fn = Function.get(inputs["function_id"])
    return {
        "job": job_json(job),
        "waited": waited,
        "function_of_job": job.function.id,
        "by_function": [j.id for j in by_function.sort(Job.creation_date)],
        "by_function_count": by_function.count(),
        "pending": [j.id for j in pending],
        "pending_in": [
            j.id for j in by_function.filter(Job.status.in_([JobStatus.PENDING, JobStatus.RUNNING]))
        ],
        "finished": [
            j.id for j in by_function.filter(Job.status.in_([JobStatus.SUCCESS, "failure"]))
        ],
        "fn_jobs": [j.id for j in fn.jobs],
        "paged": [j.id for j in Job.list(page_size=2).filter(Job.function_id == fn.id)],
        "legacy": [j.id for j in Job.list(function_id=fn.id, status="pending")],
        "newest_first": [j.id for j in by_function.sort(-Job.creation_date).limit(2)],
    }


@case
def rerun(inputs):
    """fn.rerun() with nothing failed resubmits nothing."""
    fn = Function.get(inputs["function_id"])
    return {"rerun": [job_json(job) for job in fn.rerun()]}


@case
def outputs(inputs):
    """job.result() decodes JSON, falls back to bytes, None for no result; job.log() prints."""
    results = {}
    for name, job_id in inputs["results"].items():
        value = Job.get(job_id).result()
        results[name] = value.hex() if isinstance(value, bytes) else value
        results[name + "_type"] = type(value).__name__
    logs = {}
    for name, job_id in inputs["logs"].items():
        job = Job.get(job_id)
        logs[name] = captured_stdout(job.log, timestamps=False)
        logs[name + "_timestamped"] = captured_stdout(job.log)
    return {"results": results, "logs": logs}


@case
def delete(inputs):
    """job.delete() removes one job; the state of the local object says so."""
    job = Job.get(inputs["job_id"])
    job.delete()
    return {"deleted": job._deleted}


if __name__ == "__main__":
    main()
