"""Who is asking: the tenant (the site key) and the end user (a signed user token).

A shop proves who its logged-in customer is with a short-lived JWT that its own backend
signs (HS256) with the site key's signing secret (:mod:`chatrec.store.keys`): ``sub`` is
the user id, ``exp`` is required and at most ``serve.user_token_max_lifetime_s`` ahead.
The token comes in the ``X-User-Token`` header (chat and OpenAI APIs; the widget's
``data-user-token``). A bad, expired or unverifiable token is a 401. A bare ``user_id``
(chat API) or ``user`` (OpenAI API) is ignored unless ``serve.accept_unsigned_user_id``.
See docs/security.md ("Identity and ownership") for the shop's side.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from chatrec.config import ServeSettings
from chatrec.extras import require
from chatrec.serve.errors import ApiError
from chatrec.store.keys import SiteKey

USER_TOKEN_HEADER = "x-user-token"
MAX_USER_ID_CHARS = 128
LEEWAY_S = 5


@dataclass(frozen=True)
class Caller:
    """The credentials a conversation is owned by: tenant (site key id, ``None`` without a key)
    and user (a verified id, ``None`` for an anonymous visitor)."""

    tenant: int | None
    user_id: str | None


def _invalid(reason: str) -> ApiError:
    return ApiError(401, f"invalid user token: {reason}", code="invalid_user_token")


def verify_user_token(token: str, record: SiteKey | None, max_lifetime_s: int, now: float | None = None) -> str:
    """The user id (``sub``) of a user token signed with ``record``'s secret; :class:`ApiError` 401 otherwise."""
    jwt = require("jwt", purpose="signed user tokens")
    if record is None or not record.signing_secret:
        raise _invalid("a user token needs a site key (X-Site-Key) whose secret signed it")
    now = time.time() if now is None else now
    try:
        claims = jwt.decode(
            token,
            record.signing_secret,
            algorithms=["HS256"],
            options={"require": ["exp", "sub"]},
            leeway=LEEWAY_S,
        )
    except jwt.ExpiredSignatureError:
        raise _invalid("expired") from None
    except jwt.InvalidTokenError as exc:
        raise _invalid(str(exc) or type(exc).__name__) from None
    exp, sub = claims.get("exp"), claims.get("sub")
    if not isinstance(exp, (int, float)) or exp - now > max_lifetime_s + LEEWAY_S:
        raise _invalid(f"exp is more than {max_lifetime_s} s ahead; issue short-lived tokens")
    if not isinstance(sub, str) or not sub.strip() or len(sub) > MAX_USER_ID_CHARS:
        raise _invalid(f"sub must be a user id of 1-{MAX_USER_ID_CHARS} characters")
    return sub


def caller_of(token: str | None, unsigned: str | None, record: SiteKey | None, settings: ServeSettings) -> Caller:
    """The caller of a request: the token's user if a token came, else the unsigned id only
    where ``serve.accept_unsigned_user_id`` allows it, else anonymous."""
    tenant = record.id if record is not None else None
    if token is not None:
        return Caller(tenant, verify_user_token(token.strip(), record, settings.user_token_max_lifetime_s))
    if unsigned and settings.accept_unsigned_user_id:
        return Caller(tenant, unsigned)
    return Caller(tenant, None)
