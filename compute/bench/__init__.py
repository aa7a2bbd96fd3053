"""The benchmark suite: `python -m compute.bench` (needs the `server` extra).

It starts what it measures: a redis-server of its own, `compute up` on it (SQLite in a
data directory of its own), and a raw Celery worker with as many processes on the same
redis-server. Each figure is measured with its baseline in the same run on the same
machine and reported as a ratio besides its absolute numbers; the plan is `plan.FIGURES`.
"""
