"""The published client's jobs really run: results, logs and the build log, on a worker."""

import _harness  # noqa: F401, I001 - must come first: it guards the network
from _harness import captured_stdout, case, function_json, main

from descarteslabs.compute import Function
from descarteslabs.core.compute.compute import Serializable


def square_and_say(x):
    print(f"squaring {x}")
    return x * x


def raw_bytes(n):
    return bytes(range(n))


def point(x, y):
    class Point:
        def serialize(self):
            return f"{x},{y}".encode()

    return Point()


class Point(Serializable):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def serialize(self):
        return f"{self.x},{self.y}".encode()

    @classmethod
    def deserialize(cls, data):
        return cls(*(int(part) for part in data.decode().split(",")))


def run(function, args, image, timeout):
    fn = Function(function, name=function.__name__, image=image, cpus=1, memory=512, timeout=60)
    fn.save()
    jobs = fn.map(args)
    fn.wait_for_completion(timeout=timeout, interval=0.2)
    return fn, jobs


@case
def execution(inputs):
    """Save, map, wait, read results (JSON, bytes, a Serializable), a job log, the build log."""
    image, timeout = inputs["image"], inputs["timeout"]
    squares, jobs = run(square_and_say, [1, 2, 3], image, timeout)
    raw, _ = run(raw_bytes, [3], image, timeout)
    points, _ = run(point, [[3, 4]], image, timeout)
    return {
        "function": function_json(squares),
        "squares": squares.results(),
        "job_log": captured_stdout(jobs[1].log),
        "build_log": captured_stdout(squares.build_log),
        "raw": [list(value) for value in raw.results()],
        "points": [[p.x, p.y] for p in points.results(cast_type=Point)],
        "statuses": [str(f.status) for f in (squares, raw, points)],
    }


if __name__ == "__main__":
    main()
