"""The build pipeline's exceptions: one root, one subclass per stage.

    BuildError                  anything that stops a build; the message is for the user
    ├── BundleError             the zip is malformed, too large, or would escape its directory
    ├── RequirementsError       a requirements.txt line is not a plain PEP 508 requirement
    ├── ImageError              no interpreter on this worker serves the requested image
    └── EnvironmentBuildError   creating or installing the environment failed or timed out

Every message is safe to show in the function's build log: it names the offending entry
or line, never the contents of a file on the worker.
"""

from __future__ import annotations


class BuildError(Exception):
    """A build cannot go on; `str(error)` explains why in terms the function's owner knows."""


class BundleError(BuildError):
    """The bundle zip is refused."""


class RequirementsError(BuildError):
    """A line of requirements.txt is refused."""


class ImageError(BuildError):
    """The image names no interpreter available on this worker."""


class EnvironmentBuildError(BuildError):
    """The environment could not be created or its requirements installed.

    `log` carries the installer's output so far, for the build log.
    """

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message)
        self.log = log
