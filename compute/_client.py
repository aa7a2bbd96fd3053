"""The HTTP client: one object owning the session, and the module-level default one.

All HTTP traffic of the SDK goes through :class:`ComputeClient`, which is also the one
place where errors of the HTTP library are translated into :mod:`compute._exceptions`.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from . import _config
from ._exceptions import ClientError, ServerError, ServiceUnavailableError, error_for_status

logger = logging.getLogger(__name__)

#: (connect, read) timeouts in seconds.
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 120.0)
#: Only these methods are retried: repeating them cannot create a second object.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
USER_AGENT = "compute-python"
#: The statuses beyond the published protocol this SDK reads; without this header the
#: service shows a canceled job as a ``failure`` (for the published client).
STATUSES_HEADER = "X-Compute-Statuses"
EXTRA_STATUSES = "canceled"
#: The header that makes a single job's creation safe to repeat.
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
#: Answers after which a request marked ``idempotent`` is sent again: a proxy or the
#: service was briefly unavailable, and the request may or may not have been applied.
REPEAT_STATUSES = frozenset({502, 503, 504})
#: The answer to a ``Range`` request: only the part asked for.
PARTIAL_CONTENT = 206
#: The answer to a ``Range`` starting at or past the end: nothing follows yet.
RANGE_NOT_SATISFIABLE = 416
#: How often such a request is sent again at most, and the first pause (it doubles).
REPEAT_ATTEMPTS = 3
REPEAT_BACKOFF_SECONDS = 0.2
#: The longest ``Retry-After`` pause honoured between repeats.
MAX_RETRY_AFTER_SECONDS = 10.0
#: Failures after which the request may still have reached the service.
TRANSIENT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


def default_retry() -> Retry:
    """The retry policy of sessions the client creates itself."""
    return Retry(
        total=5,
        connect=3,
        read=2,
        status=3,
        backoff_factor=0.2,
        status_forcelist=(502, 503, 504),
        allowed_methods=IDEMPOTENT_METHODS,
        raise_on_status=False,
        respect_retry_after_header=True,
    )


class ComputeClient:
    """Talks to one compute service as one user.

    Args:
        url: The API base URL; resolved by :func:`compute._config.load_settings` if None.
        token: The bearer token; resolved the same way if None.
        session: A ``requests.Session`` to use as is (no retry policy is added to it);
            by default the client creates one that retries idempotent requests.
        timeout: ``(connect, read)`` timeouts in seconds.

    Raises:
        ConfigurationError: No URL or token could be found.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        session: requests.Session | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        self.settings = _config.load_settings(url, token).require()
        self.timeout = timeout
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(max_retries=default_retry())
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self.session = session

    @property
    def url(self) -> str:
        """The API base URL, without a trailing slash."""
        return self.settings.url or ""

    def __repr__(self) -> str:
        return f"<ComputeClient {self.url}>"

    def close(self) -> None:
        """Close the underlying HTTP session."""
        self.session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json_body: Any = None,
        stream: bool = False,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = False,
    ) -> requests.Response:
        """Send an authenticated request to ``base URL + path``.

        Args:
            method: The HTTP method.
            path: The path under the base URL, starting with ``/``.
            params: Query parameters; list values become repeated parameters.
            json_body: A JSON-serialisable body.
            stream: Whether to stream the response body.
            headers: Further request headers.
            idempotent: The request can be applied twice with no further effect (a POST
                carrying an idempotency key), so like GET it is sent again after a
                connection error or a 502/503/504 answer.

        Returns:
            The successful response.

        Raises:
            ApiError: The service answered with an error status (a subclass per status).
            ServiceUnavailableError: The service could not be reached.
        """
        sent = {
            **(headers or {}),
            "Authorization": f"Bearer {self.settings.token}",
            "User-Agent": USER_AGENT,
            STATUSES_HEADER: EXTRA_STATUSES,
        }
        return self._send(
            method,
            self.url + path,
            repeats=REPEAT_ATTEMPTS if idempotent and method not in IDEMPOTENT_METHODS else 0,
            headers=sent,
            params=params,
            json=json_body,
            stream=stream,
        )

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Like :meth:`request`, returning the decoded JSON body (None when empty)."""
        return _decode_json(self.request(method, path, **kwargs))

    def upload(self, url: str, data: bytes) -> None:
        """PUT a bundle to a pre-authorised absolute URL, without the Authorization header.

        Args:
            url: The absolute upload URL the service handed out.
            data: The body; bytes, not a file, so that a repeated PUT sends it whole.
        """
        headers = {"Content-Type": "application/octet-stream", "User-Agent": USER_AGENT}
        self._send("PUT", url, headers=headers, data=data)

    def iter_pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Yield the items of a paged list, following ``meta.page_cursor``.

        The first request carries ``params``; later ones carry only the cursor.
        """
        query: dict[str, Any] = params
        while True:
            page = self.json("GET", path, params=query)
            yield from page["data"]
            cursor = page.get("meta", {}).get("page_cursor")
            if not cursor:
                return
            query = {"page_cursor": cursor}

    def iter_ndjson(self, path: str, tail_bytes: int | None = None) -> Iterator[dict[str, Any]]:
        """Yield the JSON objects of a newline-delimited JSON response, skipping blank lines.

        Args:
            path: The path under the base URL.
            tail_bytes: Ask for about the last this many bytes only (``Range: bytes=-N``),
                and yield the whole lines among them; a service that ignores the range
                sends everything.
        """
        headers = None
        if tail_bytes is not None:
            # One byte more: when it is a newline, the first line sent is a whole one.
            headers = {"Range": f"bytes=-{tail_bytes + 1}"}
        response = self.request("GET", path, stream=True, headers=headers)
        # A part that does not start at byte 0 starts inside a line (or at its newline).
        partial = response.status_code == PARTIAL_CONTENT and not response.headers.get(
            "Content-Range", ""
        ).startswith("bytes 0-")
        try:
            for line in response.iter_lines():
                if partial:
                    partial = False
                    continue
                if line.strip():
                    yield json.loads(line)
        except requests.RequestException as exc:
            raise ServiceUnavailableError(f"Connection lost while reading {path}: {exc}") from exc
        finally:
            response.close()

    def read_from(self, path: str, offset: int) -> bytes:
        """The bytes of a stored text from ``offset`` on (``Range: bytes=N-``); empty when
        nothing follows yet. A service that ignores the range sends it whole, which is
        cut here."""
        try:
            response = self.request("GET", path, headers={"Range": f"bytes={offset}-"})
        except ClientError as error:
            if error.status == RANGE_NOT_SATISFIABLE:
                return b""
            raise
        if response.status_code == PARTIAL_CONTENT:
            return response.content
        return response.content[offset:]

    def _send(self, method: str, url: str, repeats: int = 0, **kwargs: Any) -> requests.Response:
        """Send once, and up to `repeats` more times while the failure is transient.

        Idempotent methods are repeated by the session's own retry policy instead; this
        covers the single requests marked safe to repeat, whatever the session.
        """
        for attempt in range(repeats + 1):
            last = attempt == repeats
            try:
                response = self.session.request(method, url, timeout=self.timeout, **kwargs)
            except TRANSIENT_ERRORS as exc:
                if last:
                    raise ServiceUnavailableError(f"{method} {url} failed: {exc}") from exc
                logger.info("%s %s failed (%s); sending it again", method, url, exc)
                time.sleep(REPEAT_BACKOFF_SECONDS * 2**attempt)
                continue
            except requests.RequestException as exc:
                raise ServiceUnavailableError(f"{method} {url} failed: {exc}") from exc
            if last or response.status_code not in REPEAT_STATUSES:
                break
            logger.info("%s %s answered %d; sending it again", method, url, response.status_code)
            response.close()
            time.sleep(_pause(response, REPEAT_BACKOFF_SECONDS * 2**attempt))
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            raise error_for_status(response.status_code, body, response.reason or "")
        return response


def _pause(response: requests.Response, backoff: float) -> float:
    """Seconds to wait before repeating: the answer's ``Retry-After``, else `backoff`."""
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:  # absent, or an HTTP date
        return backoff
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS) if math.isfinite(seconds) else backoff


def _decode_json(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:
        raise ServerError(
            f"The service sent a body that is not JSON: {response.text[:200]!r}",
            status=response.status_code,
        ) from exc


_lock = threading.Lock()
_default: ComputeClient | None = None
_overrides: dict[str, Any] = {}


def configure(
    url: str | None = None,
    token: str | None = None,
    *,
    session: requests.Session | None = None,
) -> None:
    """Set up the default client used by Function, Job and Search.

    Values left as None are read again from the environment and the config file; the
    previous explicit values are forgotten, so ``configure()`` with no arguments goes
    back to the environment. The client itself is created on first use.

    Args:
        url: The API base URL, e.g. ``http://127.0.0.1:8000/compute/v1``.
        token: The bearer token.
        session: A ``requests.Session`` for the client to use.
    """
    global _default
    with _lock:
        _overrides.clear()
        _overrides.update(url=url, token=token, session=session)
        _default = None


def get_default_client() -> ComputeClient:
    """Return the default client, re-created whenever the resolved settings change.

    Raises:
        ConfigurationError: No URL or token could be found.
    """
    global _default
    settings = _config.load_settings(_overrides.get("url"), _overrides.get("token"))
    with _lock:
        if _default is None or _default.settings != settings:
            _default = ComputeClient(
                settings.url, settings.token, session=_overrides.get("session")
            )
        return _default
