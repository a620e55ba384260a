"""Several shops on one deployment: each site key belongs to a tenant (``SiteKey.tenant``).

A tenant is configured as ``[tenants.<name>]`` (:class:`~chatrec.config.TenantSettings`): its
own KB folder, state folder (Chroma index; its learned policy is in the shared store), LoRA adapter (a name in
``llm.adapters``, served by the shared engine), prompt files and limits (requests per minute
over all its keys, turns at once). The top-level settings are the ``default`` tenant, so a
configuration without tenants behaves as a single shop.

The app holds one :class:`~chatrec.chatbot.Chatbot` per tenant, built on first use and kept;
they share the engine and the store. What keeps tenants apart:

* a request is served by its key's tenant's bot, so retrieval, ranking, item ids (grounding
  and feedback) and customer histories come only from that tenant's KB;
* conversations (and so turns and feedback) are owned by the site key that started them
  (``tenant_id`` = key id, checked when opened: 404 otherwise), and a key belongs to exactly
  one tenant, for good;
* user tokens verify with the presented key's own signing secret;
* a named tenant's turns use its adapter only: a request naming another adapter is 400.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from chatrec.chatbot import Chatbot
from chatrec.config import ServeSettings, Settings, TenantSettings
from chatrec.llm.base import UnknownAdapter
from chatrec.serve.errors import ApiError
from chatrec.serve.limits import Limiter, RateLimiter, StoreRateLimiter
from chatrec.store.keys import DEFAULT_TENANT, SiteKey
from chatrec.turn.policy import policy_kind


def tenant_settings(base: Settings, name: str) -> Settings:
    """The settings a tenant's bot runs with: ``base`` with the tenant's KB, state and prompt folders."""
    if name == DEFAULT_TENANT:
        return base
    t: TenantSettings = base.tenants[name]
    return base.model_copy(
        update={
            "kb_dir": t.kb_dir,
            "data_dir": t.data_dir or Path(base.data_dir) / "tenants" / name,
            "prompts_dir": t.prompts_dir or base.prompts_dir,
            "tenants": {},
        }
    )


@dataclass
class Tenant:
    """One shop as the HTTP edge serves it."""

    name: str
    bot: Chatbot
    adapter: str | None = None  # a named tenant's only adapter (None: the base model)
    named: bool = False  # False: the default tenant, whose requests may pick any adapter
    limiter: Limiter | None = None
    max_concurrent: int | None = None
    running: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def pick_adapter(self, requested: str | None) -> str | None:
        """The adapter a turn of this tenant uses; another tenant's adapter (or any, for a tenant
        without one) is an :class:`UnknownAdapter`."""
        if not self.named:
            return requested
        if requested is not None and requested != self.adapter:
            raise UnknownAdapter(f"unknown adapter {requested!r} for this site key")
        return self.adapter

    def check_rate(self) -> None:
        if self.limiter is not None and (wait := self.limiter.take(self.name)) > 0:
            raise ApiError(
                429,
                "too many requests for this shop",
                code="rate_limited",
                headers={"Retry-After": str(max(1, int(wait + 0.999)))},
            )

    def take_slot(self, retry_after_s: int) -> None:
        """A place among this tenant's turns running at once (``max_concurrent``), else 503."""
        with self._lock:
            if self.max_concurrent is not None and self.running >= self.max_concurrent:
                raise ApiError(
                    503,
                    "this shop's assistant is busy; please retry shortly",
                    code="overloaded",
                    headers={"Retry-After": str(retry_after_s)},
                )
            self.running += 1

    def release_slot(self) -> None:
        with self._lock:
            self.running = max(0, self.running - 1)


class Tenants:
    """The tenants of one app: the default one (the app's bot) and the configured ones, built lazily."""

    def __init__(self, bot: Chatbot, serve: ServeSettings):
        self.base, self.serve = bot.settings, serve
        self._lock = threading.Lock()
        self._tenants: dict[str, Tenant] = {DEFAULT_TENANT: Tenant(DEFAULT_TENANT, bot)}

    @property
    def default(self) -> Tenant:
        return self._tenants[DEFAULT_TENANT]

    def names(self) -> list[str]:
        return [DEFAULT_TENANT, *self.base.tenants]

    def of(self, record: SiteKey | None) -> Tenant:
        """The tenant of a request's key (no key: the default); a key of a tenant no longer configured is 403."""
        name = record.tenant if record is not None else DEFAULT_TENANT
        if name != DEFAULT_TENANT and name not in self.base.tenants:
            raise ApiError(403, f"this site key's shop {name!r} is not configured here", code="unknown_tenant")
        return self.get(name)

    def get(self, name: str) -> Tenant:
        """The tenant ``name``, its bot built on first use (one at a time; then kept)."""
        if (t := self._tenants.get(name)) is not None:
            return t
        with self._lock:
            if (t := self._tenants.get(name)) is None:
                t = self._tenants[name] = self._build(name)
            return t

    def _build(self, name: str) -> Tenant:
        conf = self.base.tenants[name]
        default = self.default.bot
        bot = Chatbot(
            tenant_settings(self.base, name), llm=default.llm, store=default.store, policy_kind=policy_kind(name)
        )
        if conf.adapter is not None:
            bot.llm_for(conf.adapter)  # an adapter the engine does not serve fails here, not per turn
        limiter: Limiter | None = None
        if conf.rate_per_minute > 0:
            if self.serve.rate_limit_store == "store":
                limiter = StoreRateLimiter(default.store, conf.rate_per_minute, "tenant")
            else:
                limiter = RateLimiter(conf.rate_per_minute)
        return Tenant(name, bot, conf.adapter, True, limiter, conf.max_concurrent)
