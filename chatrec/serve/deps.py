"""What the routes need, each as one function wrapped once in an ``Annotated[T, Depends(fn)]`` alias.

A route declares what it uses (``bot: BotDep``, ``_: SiteKeyDep``), and a test swaps one
need on an app built once: ``app.dependency_overrides[get_gate] = lambda: Gate(1, 0)``.
The shared objects live on ``app.state`` (made by :func:`chatrec.serve.app.create_app`);
the getters only read them, so an override replaces one need and nothing else. The
turn starter (:data:`TurnsDep`) is built from the bot, gate and settings dependencies,
so overriding any of those reaches the turns too. (The Gradio UI under ``/ui`` is no
FastAPI route: it keeps the app's own bot and gate.)

Access control, in the order a request meets it:

1. :class:`~chatrec.serve.middleware.EdgeMiddleware`: CORS (is the origin listed by any
   key?) and the body size limit, before any route runs.
2. :func:`site_key` / :func:`openai_site_key`: the per-address rate limit, the presented
   key (required once any key exists, or with ``require_key``), whether *that* key lists
   the browser's origin, and the per-key rate limit. Dependencies run before the body is
   validated, so a request that is refused gets 401/403/429 whatever its body.
3. :func:`require_admin` (``AdminOnly``, on the whole admin router): the admin bearer token.
4. In the chat, OpenAI and feedback routes, :func:`chatrec.serve.identity.caller_of`: the end
   user from a signed ``X-User-Token`` (401 if it does not verify with the key's secret); the
   site key's id and that user own the conversations the request may touch (404 otherwise).
5. :func:`site_tenant` / :func:`openai_tenant`: the key's shop (:mod:`chatrec.serve.tenants`), its
   requests-per-minute limit (429); its bot, adapter and turn cap serve the request.
"""

from __future__ import annotations

import hmac
import math
from typing import Annotated

from fastapi import Depends, Request

from chatrec.chatbot import Chatbot
from chatrec.config import ServeSettings, normalize_origin
from chatrec.serve.errors import ApiError
from chatrec.serve.gate import Gate
from chatrec.serve.limits import RateLimits
from chatrec.serve.middleware import same_origin
from chatrec.serve.tenants import Tenant, Tenants
from chatrec.serve.turns import AsyncTurn, Turns
from chatrec.store.keys import KeyStore, SiteKey

# ---------------------------------------------------------------- the app's shared objects
# (async: they only read app.state, so they need no trip through the thread pool)


async def get_bot(request: Request) -> Chatbot:
    return request.app.state.bot


async def get_serve_settings(request: Request) -> ServeSettings:
    return request.app.state.settings


async def get_keys(request: Request) -> KeyStore:
    return request.app.state.keys


async def get_gate(request: Request) -> Gate:
    return request.app.state.gate


async def get_rate_limits(request: Request) -> RateLimits:
    return request.app.state.limits


async def get_live_turns(request: Request) -> set[AsyncTurn]:
    return request.app.state.live_turns


async def get_tenants(request: Request) -> Tenants:
    return request.app.state.tenants


BotDep = Annotated[Chatbot, Depends(get_bot)]
ServeSettingsDep = Annotated[ServeSettings, Depends(get_serve_settings)]
KeysDep = Annotated[KeyStore, Depends(get_keys)]
GateDep = Annotated[Gate, Depends(get_gate)]
RateLimitsDep = Annotated[RateLimits, Depends(get_rate_limits)]
LiveTurnsDep = Annotated[set[AsyncTurn], Depends(get_live_turns)]
TenantsDep = Annotated[Tenants, Depends(get_tenants)]


async def get_turns(bot: BotDep, gate: GateDep, settings: ServeSettingsDep, live: LiveTurnsDep) -> Turns:
    return Turns(bot, gate, settings, live)


TurnsDep = Annotated[Turns, Depends(get_turns)]

# ---------------------------------------------------------------- access


def bearer(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _origin_or_none(origin: str) -> str | None:
    try:
        return normalize_origin(origin)
    except ValueError:
        return None


def _retry_after(wait: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(wait)))}


def admit(
    request: Request, presented: str | None, settings: ServeSettings, keys: KeyStore, limits: RateLimits
) -> SiteKey | None:
    """IP rate limit, site key and its origin, key rate limit. Raises ApiError."""
    ip = request.client.host if request.client else "unknown"
    if (wait := limits.ip.take(ip)) > 0:
        raise ApiError(429, "too many requests from this address", code="rate_limited", headers=_retry_after(wait))
    record = keys.lookup(presented) if presented else None
    key_required = settings.require_key if settings.require_key is not None else keys.any_active()
    if key_required and record is None:
        raise ApiError(
            401,
            "a valid site key is required (X-Site-Key header)" if not presented else "unknown or revoked site key",
            code="invalid_api_key",
        )
    origin = request.headers.get("origin")
    if (
        record is not None
        and origin
        and not same_origin(origin, request.headers.get("host"))
        and not record.allows(origin)
        and _origin_or_none(origin) not in settings.cors_origins
    ):
        raise ApiError(403, f"this site key is not valid on {origin}", code="origin_not_allowed")
    if record is not None and (wait := limits.key.take(f"key:{record.id}")) > 0:
        raise ApiError(429, "too many requests for this site key", code="rate_limited", headers=_retry_after(wait))
    return record


def site_key(request: Request, settings: ServeSettingsDep, keys: KeysDep, limits: RateLimitsDep) -> SiteKey | None:
    """The chatrec API's access check; the key comes in the ``X-Site-Key`` header."""
    return admit(request, request.headers.get("x-site-key"), settings, keys, limits)


def openai_site_key(
    request: Request, settings: ServeSettingsDep, keys: KeysDep, limits: RateLimitsDep
) -> SiteKey | None:
    """The OpenAI API's access check: ``X-Site-Key``, or the client's ``api_key`` (the bearer token)."""
    return admit(request, request.headers.get("x-site-key") or bearer(request), settings, keys, limits)


def require_admin(request: Request, settings: ServeSettingsDep) -> None:
    """The admin bearer token; without a configured token the admin API does not exist (404)."""
    if not settings.admin_token:
        raise ApiError(404, "the admin API is disabled (no admin token configured)")
    token = bearer(request) or ""
    if not hmac.compare_digest(token.encode(), settings.admin_token.encode()):
        raise ApiError(401, "admin token required", headers={"WWW-Authenticate": "Bearer"})


SiteKeyDep = Annotated[SiteKey | None, Depends(site_key)]
OpenAIKeyDep = Annotated[SiteKey | None, Depends(openai_site_key)]


def site_tenant(record: SiteKeyDep, tenants: TenantsDep) -> Tenant:
    """The shop of the chatrec API's key (no key: the default), after its rate limit."""
    tenant = tenants.of(record)
    tenant.check_rate()
    return tenant


def openai_tenant(record: OpenAIKeyDep, tenants: TenantsDep) -> Tenant:
    """The shop of the OpenAI API's key (no key: the default), after its rate limit."""
    tenant = tenants.of(record)
    tenant.check_rate()
    return tenant


SiteTenantDep = Annotated[Tenant, Depends(site_tenant)]
OpenAITenantDep = Annotated[Tenant, Depends(openai_tenant)]
AdminOnly = Depends(require_admin)  # for APIRouter(dependencies=[AdminOnly]): no admin route can forget it
