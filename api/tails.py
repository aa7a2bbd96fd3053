"""Serving the end of a stored text: a suffix range (`Range: bytes=-N`) and nothing more.

Our SDK asks for the last bytes of a job's log to show beside a failure; other clients,
the published one included, send no `Range` and get the whole body as before. Any other
range is ignored, which HTTP allows: the answer is then the whole body with a 200.
"""

from __future__ import annotations

from flask import Response, request

PARTIAL_CONTENT = 206


def tail_response(body: bytes, mimetype: str) -> Response:
    """`body`, or its last N bytes (a 206) when the request's `Range` is `bytes=-N`."""
    wanted = request.range
    if wanted is None or wanted.units != "bytes" or len(wanted.ranges) != 1 or not body:
        return Response(body, mimetype=mimetype)
    start, stop = wanted.ranges[0]
    if start >= 0 or stop is not None:
        return Response(body, mimetype=mimetype)
    first = max(0, len(body) + start)
    response = Response(body[first:], status=PARTIAL_CONTENT, mimetype=mimetype)
    response.headers["Content-Range"] = f"bytes {first}-{len(body) - 1}/{len(body)}"
    return response
