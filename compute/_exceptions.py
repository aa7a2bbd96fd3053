"""The exceptions raised by the compute SDK.

Every error the SDK raises on purpose derives from one root::

    ComputeError
    ├── ConfigurationError          no URL or token, or an unreadable config file
    ├── BundleError (ValueError)    the code bundle cannot be built or is not allowed
    ├── BuildFailedError            a Function's build failed on the server
    ├── JobFailedError              a Job failed or timed out: no result, here is why
    ├── ServiceUnavailableError     the service could not be reached (ConnectionError)
    └── ApiError                    the service answered with an error status
        ├── ClientError             4xx
        │   ├── BadRequestError         400
        │   ├── AuthenticationError     401
        │   ├── ForbiddenError          403
        │   ├── NotFoundError           404
        │   ├── ConflictError           409
        │   ├── PayloadTooLargeError    413
        │   ├── ValidationError         422
        │   └── RateLimitError          429
        └── ServerError             5xx

Errors from the HTTP library are translated into these in one place,
:mod:`compute._client`; they never reach the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .statuses import JobStatus


class ComputeError(Exception):
    """The root of every error raised by the compute SDK."""


class ConfigurationError(ComputeError):
    """The SDK is not configured: no service URL or token could be found."""


class BundleError(ComputeError, ValueError):
    """The code bundle of a Function cannot be built, or would not run remotely."""


class BuildFailedError(ComputeError):
    """The Function's build failed, so its jobs will never run."""


class JobFailedError(ComputeError):
    """A Job failed or timed out, so it has no result.

    Raised by ``Job.result()`` and ``Function.results()``; the message names the Job, its
    status and reason, followed by the last lines of its log.

    Attributes:
        job_id: The Job's id.
        status: ``JobStatus.FAILURE`` or ``JobStatus.TIMEOUT``.
        reason: Why it ended so, e.g. ``"ValueError: bad tile 17"`` for an exception the
            function raised, or the limit it exceeded; None if the service gave none.
        log_tail: The last lines of the Job's log (its traceback, usually); empty when
            the log could not be fetched.
    """

    def __init__(
        self,
        job_id: str,
        status: JobStatus | str,
        reason: str | None = None,
        log_tail: Sequence[str] = (),
    ) -> None:
        super().__init__(job_id, status, reason, tuple(log_tail))
        self.job_id = job_id
        self.status = JobStatus(status)
        self.reason = reason
        self.log_tail = list(log_tail)

    def __str__(self) -> str:
        ended = "timed out" if self.status == JobStatus.TIMEOUT else "failed"
        text = f"Job {self.job_id} {ended}: {self.reason or 'no reason was recorded'}"
        if self.log_tail:
            lines = "\n".join(f"  {line}" for line in self.log_tail)
            text = f"{text}\nLast lines of its log:\n{lines}"
        return text


class ServiceUnavailableError(ComputeError, ConnectionError):
    """The service could not be reached (connection refused, timeout, DNS failure...)."""


class ApiError(ComputeError):
    """The service answered a request with an error status.

    Attributes:
        status: The HTTP status code.
        detail: The human readable message sent by the service.
        errors: Per-field validation messages, ``{"field": ["message", ...]}``.
    """

    def __init__(
        self,
        detail: str,
        status: int | None = None,
        errors: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.errors: dict[str, list[str]] = errors or {}

    def __str__(self) -> str:
        text = f"{self.status} {self.detail}" if self.status else self.detail
        if self.errors:
            fields = "; ".join(f"{k}: {', '.join(v)}" for k, v in self.errors.items())
            text = f"{text} ({fields})"
        return text


class ClientError(ApiError):
    """The request was rejected by the service (a 4xx status)."""


class BadRequestError(ClientError):
    """The request was malformed (400), e.g. an unknown filter attribute."""


class AuthenticationError(ClientError):
    """The token is missing, invalid or expired (401)."""


class ForbiddenError(ClientError):
    """The token does not allow this request (403)."""


class NotFoundError(ClientError):
    """The object does not exist or belongs to someone else (404)."""


class ConflictError(ClientError):
    """The request conflicts with the object's state (409)."""


class PayloadTooLargeError(ClientError):
    """The request body, usually a code bundle, is too large (413)."""


class ValidationError(ClientError):
    """The request body failed validation (422); see :attr:`errors`."""


class RateLimitError(ClientError):
    """Too many requests (429)."""


class ServerError(ApiError):
    """The service failed to handle the request (a 5xx status)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitError,
}


def error_for_status(status: int, body: Any, reason: str = "") -> ApiError:
    """Build the exception matching an error response.

    Args:
        status: The HTTP status code (400 or above).
        body: The decoded JSON body, or anything else when it was not JSON.
        reason: A fallback message, such as the HTTP reason phrase.

    Returns:
        An instance of the most specific :class:`ApiError` subclass.
    """
    detail, errors = reason or f"HTTP {status}", {}
    if isinstance(body, dict):
        detail = str(body.get("detail") or body.get("message") or detail)
        raw = body.get("errors")
        if isinstance(raw, dict):
            errors = {
                str(k): [str(m) for m in (v if isinstance(v, list) else [v])]
                for k, v in raw.items()
            }
    if status in _BY_STATUS:
        cls = _BY_STATUS[status]
    elif status >= 500:
        cls = ServerError
    else:
        cls = ClientError
    return cls(detail, status=status, errors=errors)
