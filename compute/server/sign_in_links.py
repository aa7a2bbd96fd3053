"""One-time links that sign a user in to the admin pages (`compute admin-link`).

A link carries a token signed with a key of its own (see `derived_keys`) naming the
user, an expiry a few minutes away and a random nonce. The operator's command needs
only the data directory's secret to make one, not a connection to the broker; the API
spends the nonce in Redis the first time the link is used, so a second use is refused
(`spend_nonce`). The spent nonce expires with the link, after which the link is refused
for its expiry anyway.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

import jwt
import redis

from .derived_keys import derived_key
from .models import User, utcnow
from .tokens import ALGORITHM, ISSUER, TokenRefused

LINK_TTL_SECONDS = 300
LINK_PURPOSE = "admin-sign-in-link"
# Spent nonces, beside the broker's own keys (see `compute.server.dispatch`).
SPENT_NONCE_PREFIX = "compute:admin-link:"


@dataclass(frozen=True)
class SignInLink:
    """What a valid link's token says: whom it signs in, and its single-use nonce."""

    user_id: str
    nonce: str
    expires_at: dt.datetime

    def seconds_left(self) -> int:
        return max(1, int((self.expires_at - utcnow()).total_seconds()))


def issue_link_token(user: User, ttl_seconds: int = LINK_TTL_SECONDS) -> str:
    """A link token for `user`, valid `ttl_seconds` and once."""
    now = utcnow()
    claims = {
        "sub": user.id,
        "nonce": secrets.token_urlsafe(16),
        "aud": LINK_PURPOSE,
        "iss": ISSUER,
        "iat": int(now.timestamp()),
        "exp": int((now + dt.timedelta(seconds=ttl_seconds)).timestamp()),
    }
    return jwt.encode(claims, derived_key(LINK_PURPOSE), algorithm=ALGORITHM)


def read_link_token(token: str) -> SignInLink:
    """The link `token` stands for, once its signature and expiry check out.

    Raises:
        TokenRefused: expired, or not a link this service made.
    """
    try:
        claims = jwt.decode(
            token,
            derived_key(LINK_PURPOSE),
            algorithms=[ALGORITHM],
            audience=LINK_PURPOSE,
            issuer=ISSUER,
            options={"require": ["sub", "exp", "nonce"]},
        )
    except jwt.ExpiredSignatureError as error:
        raise TokenRefused("This sign-in link has expired.") from error
    except jwt.InvalidTokenError as error:
        raise TokenRefused("This is not a valid sign-in link.") from error
    expires_at = dt.datetime.fromtimestamp(claims["exp"], tz=dt.timezone.utc)
    return SignInLink(str(claims["sub"]), str(claims["nonce"]), expires_at)


def spend_nonce(client: redis.Redis, link: SignInLink) -> bool:
    """Mark `link` used; False when it was used before (SET NX: one caller wins)."""
    key = SPENT_NONCE_PREFIX + link.nonce
    return bool(client.set(key, link.user_id, nx=True, ex=link.seconds_left()))
