"""Functions through the published client: create, read, list, search, change, delete, log."""

import _harness  # noqa: I001 - must come first: it guards the network
from _harness import captured_stdout, case, function_json, job_json, main

from datetime import datetime

from descarteslabs.compute import Function, FunctionStatus, Job


def add(a, b=0):
    return a + b


@case
def create(inputs):
    """Save a Function with every setting, then read it back three ways."""
    fn = Function(
        add,
        name=inputs["name"],
        image=inputs["image"],
        cpus=0.5,
        memory="2Gi",
        maximum_concurrency=3,
        timeout=120,
        retry_count=2,
        requirements=inputs["requirements"],
    )
    fn.save()
    saved = function_json(fn)
    assert fn.state == "saved", fn.state
    # save() of an unchanged, saved Function sends nothing and changes nothing
    fn.save()
    bare = Function(add, name=inputs["name"] + "-bare", image=inputs["image"], cpus=1, memory=512)
    bare.save()
    return {
        "saved": saved,
        "get": function_json(Function.get(fn.id)),
        "get_with_statistics": function_json(Function.get(fn.id, include=["job.statistics"])),
        "listed": [function_json(listed) for listed in Function.list()],
        "bare": function_json(bare),
    }


@case
def list_all(inputs):
    """Function.list() with a small page size pages through every Function."""
    paged = [f.id for f in Function.list(page_size=inputs["page_size"])]
    return {
        "paged": paged,
        "default": [f.id for f in Function.list()],
        "collected": [f.id for f in Function.search().collect()],
        "count": Function.search().count(),
        "with_statistics": [
            f.job_statistics for f in Function.list(page_size=2, include=["job.statistics"])
        ],
    }


@case
def search(inputs):
    """Filters on name/status/creation_date/cpus, in_, sort and limit, as the client sends them.

    The client keeps range comparisons on the class attribute (`Function.cpus >= 2` stores
    `gte` on `Function.cpus` for chained `1 < x < 4`), so a later `Function.cpus < 4` in the
    same process still carries `gte 2`. Each range attribute is therefore compared with one
    bound per process; `other_ranges` runs the remaining bounds in a process of its own.
    """
    since = datetime.fromisoformat(inputs["since"])
    building = [FunctionStatus.BUILDING, FunctionStatus.AWAITING_BUNDLE]
    by_name = Function.search().filter(Function.name == inputs["name"])

    def ids(search):
        return [f.id for f in search]

    return {
        "by_name": ids(by_name),
        "by_name_count": by_name.count(),
        "status_in": ids(Function.search().filter(Function.status.in_(building))),
        "awaiting": ids(Function.search().filter(Function.status == "awaiting_bundle")),
        "since": ids(Function.search().filter(Function.creation_date >= since)),
        "cpus_at_least_2": ids(Function.search().filter(Function.cpus >= 2)),
        "memory_or": ids(
            Function.search().filter((Function.memory == 512) | (Function.memory == 8192))
        ),
        "name_ne": ids(Function.search().filter(Function.name != inputs["name"])),
        "sorted_cpus_desc": ids(Function.search().sort(-Function.cpus, Function.name)),
        "sorted_name": ids(Function.search().sort(Function.name)),
        "limited": ids(Function.search().sort(-Function.creation_date).limit(3)),
        "limited_paged": ids(
            Function.search().param(page_size=2).sort(Function.creation_date).limit(5)
        ),
        "combined": ids(
            Function.search()
            .filter(Function.cpus >= 2)
            .filter(Function.status.in_(building))
            .filter(Function.creation_date >= since)
            .sort(-Function.memory)
            .limit(2)
        ),
        "combined_count": Function.search()
        .filter(Function.cpus >= 2)
        .filter(Function.status.in_(building))
        .count(),
    }


@case
def other_ranges(inputs):
    """The bounds `search` cannot use in its process: creation_date < x, 1 < cpus < 4."""
    before = datetime.fromisoformat(inputs["since"])
    return {
        "before": [f.id for f in Function.search().filter(Function.creation_date < before)],
        "cpus_between": [
            f.id for f in Function.search().filter((Function.cpus > 1) & (Function.cpus < 4))
        ],
    }


@case
def update(inputs):
    """Change attributes and save: a PATCH of the changed fields only; image is immutable."""
    fn = Function.get(inputs["id"])
    fn.memory = "4Gi"
    fn.cpus = 2
    assert fn.state == "modified", fn.state
    fn.save()
    after_save = function_json(fn)
    image_error = _harness.error_of(setattr, fn, "image", "python3.11:latest")
    again = Function.get(inputs["id"])
    again.name = inputs["new_name"]
    again.retry_count = 0
    again.save()
    return {"after_save": after_save, "image_error": image_error, "renamed": function_json(again)}


@case
def refresh(inputs):
    """fn.refresh() picks up changes made elsewhere, keeping job statistics when it had them."""
    plain = Function.get(inputs["id"])
    with_statistics = Function.get(inputs["id"], include=["job.statistics"])
    before = function_json(with_statistics)
    # built with nothing outstanding is `success`: the client's wait returns at once
    waited = captured_stdout(plain.wait_for_completion, timeout=10, interval=0.1)
    elsewhere = Function.get(inputs["id"])
    elsewhere.memory = 1024
    elsewhere.save()
    Job(function_id=inputs["id"], args=[1, 2]).save()
    Job(function_id=inputs["id"], args=[3, 4]).save()
    plain.refresh()
    with_statistics.refresh()
    return {
        "before": before,
        "waited": waited,
        "plain": function_json(plain),
        "with_statistics": function_json(with_statistics),
    }


@case
def build_log(inputs):
    """The build log arrives gzip-compressed; the client gunzips and prints it."""
    fn = Function.get(inputs["id"])
    return {"printed": captured_stdout(fn.build_log)}


@case
def delete(inputs):
    """fn.delete() pages through the Function's jobs deleting each, then deletes it."""
    fn = Function(add, name=inputs["name"], image=inputs["image"], cpus=1, memory=512)
    jobs = fn.map([[number, number] for number in range(inputs["jobs"])])
    result = {"id": fn.id, "job_ids": [job.id for job in jobs], "first": job_json(jobs[0])}
    fn.delete()
    result["deleted_error"] = _harness.error_of(getattr, fn, "id")
    return result


if __name__ == "__main__":
    main()
