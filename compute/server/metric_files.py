"""The worker nodes' event metrics, as prometheus-client's multi-process files left them.

Each worker node keeps its processes' metric files in a folder of its own under the
`METRICS_DIR` setting (cleared when the node starts, so two nodes on one machine never
clear each other's). Whoever serves them merges the files: the API every node's that
shares its data directory, a node its own on its metrics port.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)


def node_metrics_dir(metrics_dir: Path, node: str) -> Path:
    """The folder of one worker node's metric files (`celery@host` → `celery@host`)."""
    return metrics_dir / node.replace("/", "_")


class MetricFiles(Collector):
    """Sums the metric files of the node folders `folders` yields, at each collection."""

    def __init__(self, folders: Iterable[Path]) -> None:
        self.folders = list(folders)

    @classmethod
    def of_every_node(cls, metrics_dir: Path) -> MetricFiles:
        return cls(path for path in _subfolders(metrics_dir))

    def collect(self) -> Iterator[Metric]:
        files = [str(path) for folder in self.folders for path in sorted(folder.glob("*.db"))]
        if not files:
            return iter(())
        try:
            merged = MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
            return iter(merged)
        except (OSError, ValueError) as error:
            # A node's folder closed to this process, or a file cut short: say so, serve
            # the rest of the metrics.
            logger.warning("could not read the workers' metric files: %s", error)
            return iter(())


def _subfolders(metrics_dir: Path) -> list[Path]:
    try:
        return sorted(path for path in metrics_dir.iterdir() if path.is_dir())
    except OSError:
        return []
