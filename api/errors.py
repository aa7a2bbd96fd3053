"""The one error path of the API: every failure answers `{"detail": ..., "errors": {...}}`.

Client mistakes raise `ApiError` (or a subclass) with a 4xx status naming the field;
werkzeug's HTTP errors and database errors are translated here, so no handler ever
leaks a stack trace or a 500 for something the client did.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

logger = logging.getLogger(__name__)

FieldErrors = dict[str, list[str]]


class ApiError(Exception):
    """A failure with an HTTP status and a message the client can act on."""

    status = 400

    def __init__(
        self, detail: str, errors: FieldErrors | None = None, status: int | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or {}
        if status is not None:
            self.status = status


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class Invalid(ApiError):
    """A body that parsed but breaks the rules for one or more fields (422)."""

    status = 422

    @classmethod
    def field(cls, name: str, message: str) -> Invalid:
        return cls(f"Invalid value for '{name}': {message}", {name: [message]})


def error_response(status: int, detail: str, errors: FieldErrors | None = None) -> Response:
    response = jsonify({"detail": detail, "errors": errors or {}})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def handle_api_error(error: ApiError) -> Response:
    return error_response(error.status, error.detail, error.errors)


def handle_http_exception(error: HTTPException) -> Response:
    return error_response(error.code or 500, error.description or error.name)


def handle_integrity_error(error: IntegrityError) -> Response:
    logger.info("integrity error: %s", error.orig)
    return error_response(409, "The request conflicts with the current state of the resource.")


def handle_data_error(error: DataError) -> Response:
    logger.info("data error: %s", error.orig)
    return error_response(422, "A value is out of range for its field.")


def handle_operational_error(error: OperationalError) -> Response:
    # The database is down or locked: the request may succeed if repeated.
    logger.warning("database unavailable: %s", error.orig)
    response = error_response(503, "The database is temporarily unavailable; retry shortly.")
    response.headers["Retry-After"] = "1"
    return response


def handle_unexpected(error: Exception) -> Response:
    logger.exception("unhandled error")
    return error_response(500, "Internal server error.")


def register_error_handlers(app: Flask) -> None:
    handlers: list[tuple[Any, Any]] = [
        (ApiError, handle_api_error),
        (HTTPException, handle_http_exception),
        (IntegrityError, handle_integrity_error),
        (DataError, handle_data_error),
        (OperationalError, handle_operational_error),
        (Exception, handle_unexpected),
    ]
    for exception_class, handler in handlers:
        app.register_error_handler(exception_class, handler)
