"""Signed, expiring bundle upload URLs, and the raw bundle PUT they authorise.

The published client PUTs the zip with no Authorization header, so the URL itself is the
credential: an HMAC over the function id and expiry. It is good for one function only,
until it expires or the bundle is posted for building, whichever comes first.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from flask import Blueprint, Response, current_app, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from compute.server.blobstore import CHUNK_SIZE, BlobStore, BlobTooLarge, bundle_key
from compute.server.extensions import db
from compute.server.models import BuildState, Function

from ..errors import ApiError, Conflict, NotFound

blueprint = Blueprint("uploads", __name__)

UPLOAD_CONTEXT = b"compute-bundle-upload"


def _signature(function_id: str, expires: int) -> str:
    key = hmac.new(current_app.config["SECRET_KEY"].encode(), UPLOAD_CONTEXT, hashlib.sha256)
    message = f"{function_id}:{expires}".encode()
    return hmac.new(key.digest(), message, hashlib.sha256).hexdigest()


def bundle_upload_url(function_id: str) -> str:
    """An absolute URL that lets its holder upload `function_id`'s bundle for a while."""
    expires = int(time.time()) + current_app.config["BUNDLE_UPLOAD_TTL_SECONDS"]
    signature = _signature(function_id, expires)
    path = url_for(
        "uploads.put_bundle", function_id=function_id, expires=expires, signature=signature
    )
    public_url: str | None = current_app.config.get("PUBLIC_URL")
    if public_url:
        # PUBLIC_URL is the API base (".../compute/v1"); the route lives under it too.
        root = public_url.rstrip("/").removesuffix("/compute/v1")
        return root + path
    return request.host_url.rstrip("/") + path


def _verify(function_id: str) -> None:
    # Any failure looks the same from outside: the URL does not name an upload.
    not_found = NotFound("No bundle upload at this URL (unknown, expired or invalid).")
    try:
        expires = int(request.args.get("expires", ""))
    except ValueError as error:
        raise not_found from error
    given = request.args.get("signature", "")
    if expires < time.time() or not hmac.compare_digest(given, _signature(function_id, expires)):
        raise not_found


class _HashingBody:
    """The request body as a stream, hashed as it is read, its first chunk read ahead."""

    def __init__(self, first: bytes) -> None:
        self._first: bytes | None = first
        self.digest = hashlib.sha256(first)

    def read(self, size: int) -> bytes:
        if self._first is not None:
            chunk, self._first = self._first, None
            return chunk
        chunk = request.stream.read(size)
        self.digest.update(chunk)
        return chunk


@blueprint.put("/functions/<function_id>/bundle_upload")
def put_bundle(function_id: str) -> Response:
    _verify(function_id)
    function = db.session.get(Function, function_id)
    if function is None:
        raise NotFound("No bundle upload at this URL (unknown, expired or invalid).")
    if function.build_state != BuildState.AWAITING_BUNDLE:
        raise Conflict("The bundle was already submitted for building; it cannot change.")
    max_bytes = current_app.config["MAX_BUNDLE_BYTES"]
    request.max_content_length = max_bytes
    store: BlobStore = current_app.extensions["blobstore"]
    key = bundle_key(function_id)
    try:
        # Refused bodies must leave an earlier upload in place: nothing is stored until
        # the body is known not to be empty, and the store replaces the blob only once
        # the whole body has arrived within the limit.
        first = request.stream.read(CHUNK_SIZE)
        if not first:
            raise ApiError("The bundle is empty.", {"bundle": ["empty"]}, status=400)
        body = _HashingBody(first)
        size = store.put_stream(key, body, max_bytes=max_bytes)
    except (BlobTooLarge, RequestEntityTooLarge) as error:
        raise ApiError(
            f"The bundle is larger than the {max_bytes} byte limit.",
            {"bundle": ["too large"]},
            status=413,
        ) from error
    function.bundle_key, function.bundle_size = key, size
    function.bundle_sha256 = body.digest.hexdigest()
    db.session.commit()
    return Response(status=200)
