"""The SDK as the client commands use it, its errors made command errors.

The commands read the service URL and token as the SDK does, and go through the same
session, retries and error translation (`compute._client`); only the wording of a
failure and its exit code (`exit_codes`) are theirs: one line naming what failed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from compute._document import Document
from compute._exceptions import (
    ApiError,
    AuthenticationError,
    ComputeError,
    ConfigurationError,
    ForbiddenError,
    NotFoundError,
    ServiceUnavailableError,
)

from .exit_codes import CommandError, NotAuthorized, NotFound, Unreachable


@contextmanager
def service_errors(subject: str) -> Iterator[None]:
    """Turn an SDK error raised inside into the command error of its exit code.

    Args:
        subject: What the command acts on, as its messages name it: ``function 0a1b``,
            or ``functions`` for a listing.

    Raises:
        NotFound: the service answered 404 for `subject`.
        NotAuthorized: no token is configured, or the service refused it (401, 403).
        Unreachable: the service did not answer.
        CommandError: the service refused the request in any other way.
    """
    try:
        yield
    except NotFoundError as error:
        raise NotFound(f"{subject} not found") from error
    except (AuthenticationError, ForbiddenError) as error:
        raise NotAuthorized(f"the service refused the token: {error}") from error
    except ConfigurationError as error:
        raise NotAuthorized(str(error)) from error
    except ServiceUnavailableError as error:
        raise Unreachable(f"cannot reach the compute service: {error}") from error
    except ApiError as error:
        # Its text is the status, the service's detail and any per-field messages.
        raise CommandError(f"{subject}: the service answered {error}") from error
    except ComputeError as error:
        raise CommandError(f"{subject}: {error}") from error


def record_of(document: Document) -> dict[str, Any]:
    """A Function's or Job's fields as JSON values, with those the SDK does not declare."""
    # Undeclared fields are kept aside by the document; --json shows all the service sent.
    return {**document.to_dict(), **document._extra}
