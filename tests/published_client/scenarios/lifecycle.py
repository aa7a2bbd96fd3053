"""One user's whole session with the published client, start to finish, on any server."""

import _harness  # noqa: F401, I001 - must come first: it guards the network
from _harness import captured_stdout, case, function_json, job_json, main

from descarteslabs.compute import Function, Job


def multiply(a, b=1):
    return a * b


@case
def lifecycle(inputs):
    """Create, submit, read, search, change and delete; statuses are whatever the server says."""
    fn = Function(
        multiply, name=inputs["name"], image=inputs["image"], cpus=1, memory="1Gi", timeout=60
    )
    fn.save()
    created = function_json(fn)
    single = fn(6, b=7)
    mapped = fn.map([[1, 2], [3, 4], [5, 6]])
    fetched = Job.get(single.id)
    single.refresh()
    fn.refresh()
    jobs = Job.search().filter(Job.function_id == fn.id).sort(Job.creation_date)
    by_name = Function.search().filter(Function.name == inputs["name"])
    fn.memory = 2048
    fn.save()
    result = {
        "created": created,
        "single": job_json(single),
        "fetched": job_json(fetched),
        "mapped": [job_json(job) for job in mapped],
        "jobs": [job.id for job in jobs],
        "job_count": jobs.count(),
        "by_name": [f.id for f in by_name],
        "statistics": Function.get(fn.id, include=["job.statistics"]).job_statistics,
        "memory": Function.get(fn.id).memory,
        "build_log": captured_stdout(fn.build_log),
        "rerun": [job.id for job in fn.rerun()],
        "listed": [f.id for f in Function.list(page_size=1)],
    }
    mapped[0].delete()
    result["after_job_delete"] = jobs.count()
    fn.delete()
    result["after_delete"] = Function.search().count()
    return result


if __name__ == "__main__":
    main()
