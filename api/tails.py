"""Serving part of a stored text: its last N bytes (`Range: bytes=-N`) or all of it from
byte N on (`Range: bytes=N-`), and nothing more.

Our SDK asks for the last bytes of a job's log to show beside a failure, and follows a
running job's log by asking for what follows the bytes it has read. Other clients, the
published one included, send no `Range` and get the whole body as before. Any other
range is ignored, which HTTP allows: the answer is then the whole body with a 200.
"""

from __future__ import annotations

from flask import Response, request

PARTIAL_CONTENT = 206
RANGE_NOT_SATISFIABLE = 416


def tail_response(body: bytes, mimetype: str) -> Response:
    """`body`, or the part of it the request's `Range` asks for (a 206).

    A start at or past the end is a 416 carrying the body's length, which is how a
    follower learns that nothing new has been written yet.
    """
    wanted = request.range
    if wanted is None or wanted.units != "bytes" or len(wanted.ranges) != 1:
        return Response(body, mimetype=mimetype)
    start, stop = wanted.ranges[0]
    if stop is not None:
        return Response(body, mimetype=mimetype)
    if start >= 0:
        if start >= len(body):
            response = Response(status=RANGE_NOT_SATISFIABLE, mimetype=mimetype)
            response.headers["Content-Range"] = f"bytes */{len(body)}"
            return response
        first = start
    elif not body:
        return Response(body, mimetype=mimetype)
    else:
        first = max(0, len(body) + start)
    response = Response(body[first:], status=PARTIAL_CONTENT, mimetype=mimetype)
    response.headers["Content-Range"] = f"bytes {first}-{len(body) - 1}/{len(body)}"
    return response
