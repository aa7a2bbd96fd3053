"""What the `compute` command exits with, so that scripts can tell failures apart.

=====  ==========================================================================
code   meaning
=====  ==========================================================================
0      done
1      any other error (the service refused the request, a job failed, ...)
2      the command line itself is wrong (click's usage errors)
3      the function, job, token or user named does not exist (or is not yours)
4      no token is configured, or the service refused it
5      the service could not be reached
=====  ==========================================================================

Every command fails by raising one of the errors below: click prints its message on
one line of stderr (``Error: ...``) and exits with its code.
"""

from __future__ import annotations

from enum import IntEnum

import click


class ExitCode(IntEnum):
    """The exit codes of the `compute` command."""

    OK = 0
    ERROR = 1
    USAGE = 2
    NOT_FOUND = 3
    NOT_AUTHORIZED = 4
    UNREACHABLE = 5


class CommandError(click.ClickException):
    """A command failed; the message names what it was acting on."""

    exit_code = ExitCode.ERROR

    def __init__(self, message: str) -> None:
        # One line: a service's detail or a job's reason may hold newlines.
        super().__init__(" ".join(message.split()))


class NotFound(CommandError):
    """The object named does not exist, or belongs to someone else."""

    exit_code = ExitCode.NOT_FOUND


class NotAuthorized(CommandError):
    """No token is configured, or the service refused it."""

    exit_code = ExitCode.NOT_AUTHORIZED


class Unreachable(CommandError):
    """The service did not answer."""

    exit_code = ExitCode.UNREACHABLE
