"""Celery workers: build each function's environment and run its jobs."""
