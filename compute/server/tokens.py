"""Users and their API tokens: made by `compute token create` and read by the API.

Tokens are HS256 JWTs with `sub` (the user id), `name`, `exp` and `jti` (the id of the
token's row in `tokens`): the published client only decodes the payload and checks
`exp`; the server verifies the signature, that the user still exists and that the
token was not revoked, on every request.

Tokens issued before tokens were recorded carry no `jti`. They stay valid until they
expire, unless their user's tokens were all revoked (`revoke_user_tokens`) since.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import jwt
import sqlalchemy as sa

from .extensions import db, matched_rows
from .models import Token, TokenCutoff, User, utcnow
from .settings import current_settings

ALGORITHM = "HS256"
ISSUER = "compute"
# One answer for every token that does not open the service, revoked ones included:
# the caller learns nothing about which tokens exist.
NOT_VALID = "The token is not valid."


class TokenRefused(Exception):
    """A token that names no current user; the message says why, for the caller."""


@dataclass(frozen=True)
class TokenInfo:
    """What a verified token says of itself.

    Attributes:
        id: Its `jti`, the id of its row; None for a token issued before tokens were
            recorded.
        created: When it was issued, if it says.
        expires: When it stops working.
        label: What it was issued for, if the operator said.
    """

    id: str | None
    created: dt.datetime | None
    expires: dt.datetime
    label: str | None = None


@dataclass(frozen=True)
class Bearer:
    """The user a request's token names, and the token itself."""

    user: User
    token: TokenInfo


def get_or_create_user(name: str, is_admin: bool = False) -> User:
    """Return the user called `name`, creating it (or raising it to admin) as needed."""
    user = db.session.scalar(sa.select(User).where(User.name == name))
    if user is None:
        user = User(name=name, is_admin=is_admin)
        db.session.add(user)
    elif is_admin and not user.is_admin:
        user.is_admin = True
    db.session.commit()
    return user


def find_user(name: str) -> User | None:
    """The user called `name`, if there is one."""
    return db.session.scalar(sa.select(User).where(User.name == name))


def issue_token(user: User, ttl_seconds: int | None = None, label: str | None = None) -> str:
    """A signed token for `user`, valid for `ttl_seconds` (the configured TTL by default),
    recorded so that it can be listed and revoked."""
    settings = current_settings()
    now = utcnow().replace(microsecond=0)  # as the token's `iat` says it
    ttl = ttl_seconds if ttl_seconds is not None else settings.token_ttl_seconds
    record = Token(
        user_id=user.id,
        creation_date=now,
        expires_at=now + dt.timedelta(seconds=ttl),
        label=label,
    )
    db.session.add(record)
    db.session.commit()
    claims = {
        "sub": user.id,
        "name": user.name,
        "iss": ISSUER,
        "iat": int(now.timestamp()),
        "exp": int(record.expires_at.timestamp()),
        "jti": record.id,
    }
    return jwt.encode(claims, _secret(), algorithm=ALGORITHM)


def user_of_token(token: str) -> User:
    """The user `token` was issued to; see :func:`verify_token`."""
    return verify_token(token).user


def verify_token(token: str) -> Bearer:
    """The user `token` was issued to and what it says, once its signature, expiry and
    record check out.

    Raises:
        TokenRefused: expired, not signed by this service, revoked, or its user is gone.
    """
    try:
        claims = jwt.decode(
            token,
            _secret(),
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["sub", "exp"]},
        )
    except jwt.ExpiredSignatureError as error:
        raise TokenRefused("The token has expired.") from error
    except jwt.InvalidTokenError as error:
        raise TokenRefused(NOT_VALID) from error
    user = db.session.get(User, claims["sub"])
    if user is None:
        raise TokenRefused("The token's user no longer exists.")
    return Bearer(user, _current_token(user, claims))


def _current_token(user: User, claims: dict[str, Any]) -> TokenInfo:
    issued = claims.get("iat")
    created = _from_timestamp(issued) if isinstance(issued, (int, float)) else None
    expires = _from_timestamp(claims["exp"])
    jti = claims.get("jti")
    if jti is None:
        cutoff = db.session.get(TokenCutoff, user.id)
        # A token without `iat` cannot show it came after the cutoff.
        if cutoff is not None and (created is None or created < cutoff.not_before):
            raise TokenRefused(NOT_VALID)
        return TokenInfo(None, created, expires)
    record = db.session.get(Token, jti)
    if record is None or record.user_id != user.id or record.revoked_at is not None:
        raise TokenRefused(NOT_VALID)
    return TokenInfo(record.id, created, expires, record.label)


def list_tokens(user_id: str | None = None) -> list[tuple[Token, str]]:
    """The recorded tokens, newest first, each with its user's name; only that user's if
    `user_id` is given."""
    statement = sa.select(Token, User.name).join(User, Token.user_id == User.id)
    if user_id is not None:
        statement = statement.where(Token.user_id == user_id)
    statement = statement.order_by(Token.creation_date.desc(), Token.id.desc())
    return [(token, name) for token, name in db.session.execute(statement).tuples()]


def revoke_token(token_id: str, user_id: str | None = None) -> Token | None:
    """Revoke the recorded token `token_id` (only if it is that user's, when `user_id` is given).

    Returns:
        Its row, revoked now or before; None when there is no such token.
    """
    record = db.session.get(Token, token_id)
    if record is None or (user_id is not None and record.user_id != user_id):
        return None
    if record.revoked_at is None:
        record.revoked_at = utcnow()
        db.session.commit()
    return record


def revoke_user_tokens(user: User) -> int:
    """Revoke every token of `user`, recorded or issued before tokens were recorded.

    Returns:
        How many recorded tokens were still valid.
    """
    now = utcnow()
    revoked = db.session.execute(
        sa.update(Token)
        .where(Token.user_id == user.id, Token.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    cutoff = db.session.get(TokenCutoff, user.id)
    if cutoff is None:
        db.session.add(TokenCutoff(user_id=user.id, not_before=now))
    else:
        cutoff.not_before = now
    db.session.commit()
    return matched_rows(revoked)


def _from_timestamp(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)


def _secret() -> str:
    secret = current_settings().secret_key
    if not secret:  # the service app always sets one; a bare Settings may not
        raise RuntimeError("no SECRET_KEY: tokens can be neither issued nor checked")
    return secret
