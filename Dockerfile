# One image for every service of the stack: the API, the worker and the migrations.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    COMPUTE_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY compute compute
COPY api api
COPY worker worker
# nftables: the worker's network policy for job uids (README "Containment").
RUN apt-get update \
    && apt-get install -y --no-install-recommends nftables \
    && rm -rf /var/lib/apt/lists/*
RUN pip install ".[server]" \
    && useradd --create-home --uid 1000 compute \
    && mkdir -p /data/blobs \
    && chown -R compute /data

USER compute
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "api.wsgi:app"]
