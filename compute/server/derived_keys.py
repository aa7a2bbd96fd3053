"""Keys derived from the service's secret, one per purpose.

The secret signs API tokens. Everything else that signs with it (the admin pages'
session cookie, their one-time sign-in links) signs with a key of its own derived from
it, so that no signature made for one purpose is ever accepted for another: a session
cookie is not a token, and a sign-in link is neither.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from .settings import current_settings


def derived_key(purpose: str) -> bytes:
    """A key for `purpose`, derived from the active app's secret (HMAC-SHA256)."""
    secret = current_settings().secret_key
    if not secret:  # the service app always sets one; a bare Settings may not
        raise RuntimeError(f"no SECRET_KEY: no key for {purpose} can be derived")
    return _derive(secret, purpose)


@lru_cache(maxsize=16)
def _derive(secret: str, purpose: str) -> bytes:
    # Cached: the session's key is asked for on every request the app serves.
    return hmac.new(secret.encode(), f"compute:{purpose}".encode(), hashlib.sha256).digest()
