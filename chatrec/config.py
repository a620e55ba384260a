"""One typed settings tree: defaults < TOML file < ``CHATREC_*`` env vars < explicit overrides.

Nested fields use ``__`` in env vars, e.g. ``CHATREC_LLM__BACKEND=openai``; the TOML
file is ``--config`` (``load_settings(config_file)``) or ``CHATREC_CONFIG``. A missing
config file and an unknown ``CHATREC_*`` variable are errors (:class:`SettingsError`).
Nothing here reads files or the environment at import time, and nothing writes the
environment except :func:`apply_offline_env`; call :func:`load_settings`.
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

EMBEDDED_LLM = "embedded:smollm2-135m-instruct"
EMBEDDED_EMBEDDER = "embedded:all-minilm-l6-v2"

# Set before any Hugging Face / Gradio / Chroma import: nothing may phone home.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
}


def apply_offline_env() -> None:
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


class Section(BaseModel):
    """A settings section (``[name]`` in TOML, ``CHATREC_NAME__KEY``): a misspelt key is an error."""

    model_config = ConfigDict(extra="forbid")


# The registered LLM backends (chatrec/llm/registry.py); a test checks the registry names the same.
LLMBackendName = Literal["transformers", "llamacpp", "openai", "fake"]


DEFAULT_SLOTS = {"transformers": 8, "llamacpp": 1}  # llm.slots unset (benchmarks/results/load_*.md)


class LLMSettings(Section):
    backend: LLMBackendName = Field(
        "transformers",
        description="transformers: local model; llamacpp: local GGUF model through llama.cpp (xllamacpp); "
        "openai: any OpenAI-compatible server; fake: scripted (tests)",
    )
    model: str = Field(EMBEDDED_LLM, description="Hugging Face id, local folder, or the embedded SmolLM2")
    quantization: Literal["nf4", "none"] = Field("nf4", description="nf4 = bitsandbytes 4-bit NF4")
    adapter: str | None = Field(
        None,
        description="peft LoRA adapter folder (or a name under <data_dir>/adapters); "
        "llamacpp: a GGUF LoRA file (or a folder holding adapter_model.gguf), applied at run time; "
        "unset: the KB's own adapter (<kb_dir>/adapter, which the demo KB ships) when there is one; "
        "'none': the base model",
    )
    max_new_tokens: int = Field(96, ge=1, le=2048)
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 = greedy")
    threads: int | None = Field(
        None, ge=1, description="torch CPU threads; llamacpp: llama.cpp threads (default: the library's choice)"
    )
    context_size: int = Field(2048, ge=256, description="llamacpp: context tokens per slot")
    slots: int | None = Field(
        None,
        ge=1,
        le=64,
        description="generations decoded at once (the serve gate lets as many turns in): transformers: rows of one "
        "decode batch; llamacpp: parallel sequences (llama.cpp n_parallel). Unset: the measured default for 2 "
        f"cores (transformers {DEFAULT_SLOTS['transformers']}, llamacpp {DEFAULT_SLOTS['llamacpp']}; "
        "docs/engines.md)",
    )
    prefix_cache_entries: int = Field(
        8,
        ge=0,
        le=256,
        description="transformers: earlier generations' KV caches kept (the newest N) so a prompt that starts like one "
        "of them reads only its new tokens; 0 = off. Each entry holds its tokens' keys and values "
        "(SmolLM2-135M, float32: 45 KiB per token, about 44 MiB for a 1,000-token turn)",
    )
    adapters: dict[str, str] = Field(
        default_factory=dict,
        description="more LoRA adapters by name, loaded at start. transformers: name -> peft adapter folder "
        "(rows with different adapters decode in one batch); llamacpp: name -> GGUF LoRA file or folder; "
        "openai: name -> the engine's model name for that adapter (vLLM --lora-modules), or lora:N for "
        "llama.cpp's server (its per-request lora field, N = the adapter's --lora index); "
        "a request picks one by name (/v1/chat 'adapter', the OpenAI API's 'model')",
    )
    base_url: str | None = Field(None, description="openai backend: server URL, e.g. http://localhost:8000/v1")
    api_key: str = Field("not-needed", description="openai backend: API key")
    connect_timeout_s: float = Field(3.0, gt=0, description="openai backend: seconds to connect to the engine")
    read_timeout_s: float = Field(
        30.0, gt=0, description="openai backend: seconds to wait for the engine's next bytes (mid-stream too)"
    )
    retries: int = Field(
        2,
        ge=0,
        le=10,
        description="openai backend: retries after a connect error, timeout, 5xx or 429 (never another 4xx), "
        "with exponential backoff and jitter",
    )
    backoff_s: float = Field(0.25, ge=0, description="openai backend: first retry delay; doubles per retry, jittered")
    breaker_failures: int = Field(
        5, ge=1, description="openai backend: consecutive failed engine requests that open the circuit breaker"
    )
    breaker_open_s: float = Field(
        30.0,
        gt=0,
        description="openai backend: seconds an open breaker fails requests at once (turns answer with the "
        "grounded template), then one probe request",
    )

    _kb_dir: Path | None = PrivateAttr(None)  # set by Settings: the KB served with this model

    @property
    def engine_slots(self) -> int:
        """``slots``, or the backend's measured default when it is unset."""
        return self.slots or DEFAULT_SLOTS.get(self.backend, 1)

    @property
    def served_kb(self) -> Path | None:
        """The KB folder served with this model (for the adapter card's KB check), if known."""
        return self._kb_dir

    @model_validator(mode="after")
    def _check(self) -> LLMSettings:
        if self.backend == "openai" and not self.base_url:
            raise ValueError("llm.base_url is required when llm.backend is 'openai'")
        return self


class RetrievalSettings(Section):
    embedder: str = Field(EMBEDDED_EMBEDDER, description="sentence-transformers folder or id, or the embedded MiniLM")
    chroma_host: str | None = Field(None, description="use a Chroma server (HttpClient) instead of the local folder")
    chroma_port: int = 8000
    items_k: int = Field(
        50,
        ge=1,
        description="candidates per source and turn (dense, co-occurrence, popular); "
        "also the deepest ranked list evaluation scores",
    )
    templates_k: int = Field(3, ge=1)
    hnsw_ef_search: int = Field(200, ge=10, description="HNSW search breadth (recall vs exact search: benchmarks/)")
    exact_search: bool = Field(
        False,
        description="items and templates by exact cosine over all stored vectors, not HNSW "
        "(deterministic across processes; chatrec eval always uses it)",
    )
    template_min_similarity: float = Field(0.35, description="below this cosine no template answers a service turn")
    kg_hub_degree: int = Field(60, ge=1, description="KG walks pass through no entity with more neighbours than this")


class RankingSettings(Section):
    top_n: int = Field(4, ge=1, le=20, description="recommendations shown per turn")
    w_dense: float = 1.0
    w_kg: float = 0.6
    w_history: float = 0.3
    w_cooccur: float = 0.3
    w_popular: float = 0.15
    w_price_fit: float = 0.2
    w_pref_brand: float = 0.2
    w_kg_support: float = 0.2
    w_llm: float = Field(0.0, description="weight of the LLM relevance score (0 = not computed)")
    weights_file: Path | None = Field(
        None,
        description="fitted ranker file (`chatrec fit-ranker`: weights and training statistics); unset: "
        "<kb>/artifacts/ranker.json; replaces the w_* values above when the file exists",
    )
    llm_candidates: int = Field(12, ge=1, description="top fused candidates the LLM scores, in one batch")
    policy: Literal["fusion", "bandit"] = Field(
        "fusion",
        description="who orders the shown items: fusion = the fused score; bandit = the contextual bandit learned "
        "from feedback (chatrec learn; pip install 'chatrec[bandit]'; docs/feedback.md)",
    )
    explore: float = Field(
        0.0,
        ge=0.0,
        le=0.5,
        description="live turns: the probability that a slate position shows a random allowed candidate "
        "instead of the policy's best (epsilon-greedy; 0 = never), logged with its propensity",
    )
    policy_candidates: int = Field(
        20, ge=1, le=200, description="the best allowed fused candidates the policy orders, explores and logs"
    )
    position_bias: list[Annotated[float, Field(gt=0.0, le=1.0)]] = Field(
        default_factory=list,
        description="chatrec learn's off-policy gate: how likely a customer is to look at each slate position, "
        "top first (1.0 at the top; later positions take the last value); empty = every position alike",
    )


class GroundingSettings(Section):
    min_template_similarity: float = Field(
        0.55,
        description="a generated service answer must be at least this similar to its template, "
        "else the template is used",
    )


class ClarifySettings(Section):
    """When a turn asks one short question instead of guessing (chatrec/turn/clarify.py)."""

    enabled: bool = Field(True, description="ask clarifying questions at all")
    ask_device: bool = Field(True, description="a device accessory with no known device: ask which device")
    device_fit_share: float = Field(
        0.5, gt=0, description="ask only for accessories fitting on average less than this share of the devices"
    )
    ask_budget: bool = Field(True, description="no budget and the matching items' prices span widely: ask the budget")
    budget_span_ratio: float = Field(
        10.0,
        gt=1.0,
        description="ask the budget when the dearest matching item costs at least this many times the cheapest",
    )
    ask_order_number: bool = Field(True, description="an order question without an order number: ask for it")
    order_intents: list[str] = Field(
        ["track_order"], description="intents about one order, answered only with its number"
    )


class PIISettings(Section):
    """Personal data masked by the guard (chatrec/turn/pii.py) before a message reaches the prompt or the store."""

    keep: list[str] = Field(
        ["ORDER_REF"],
        description="PII labels found but left as written: ORDER_REF by default, since order questions are "
        "answered by number; [] masks order numbers too, add BOOKING_REF where bookings are answered by reference",
    )
    ner: bool = Field(
        False, description="also mask person names found by a spaCy NER model (pip install 'chatrec[ner]')"
    )


class TrainSettings(Section):
    """``chatrec train`` (QLoRA on the KB's transcripts); :class:`chatrec.train.sft.TrainConfig` takes its defaults
    from here. Cost on a 2-core CPU (NF4, batch 1, 512 tokens): about 7 s a step, 2.5 s an evaluated example."""

    max_steps: int = Field(150, ge=1, description="optimiser steps")
    time_budget_s: float | None = Field(None, gt=0, description="stop (and save) after this many seconds")
    learning_rate: float = Field(3e-4, gt=0)
    batch_size: int = Field(1, ge=1, description="examples per device step (train and eval)")
    grad_accum: int = Field(1, ge=1, description="gradient accumulation steps")
    lora_r: int = Field(16, ge=1, description="LoRA rank")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r)")
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    max_length: int = Field(512, ge=8, description="tokens per example; the oldest history turns are cut first")
    eval_steps: int = Field(50, ge=1, description="held-out loss every this many steps")
    save_steps: int = Field(50, ge=1, description="checkpoint every this many steps (an interrupted run resumes there)")
    max_eval_examples: int = Field(
        32, ge=1, description="held-out examples per evaluation (a full forward pass each: keep it small on CPU)"
    )
    seed: int = 7
    rank_negatives: int = Field(
        0,
        ge=0,
        description="> 0: also learn the LLM ranker's Yes/No task at logged "
        "recommendation turns, with this many hard negatives per turn",
    )
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        description="modules the LoRA adapter wraps",
    )


class EvalSettings(Section):
    """``chatrec eval`` run defaults; :class:`chatrec.eval.options.EvalOptions` takes its defaults from here."""

    ablations: list[str] = Field(
        default_factory=lambda: ["kg", "profile", "llm_rank"],
        description="parts switched off one at a time: kg, profile, llm_rank, history, adapter",
    )
    baselines: bool = Field(True, description="also score popularity / repeat_last / embedding_only")
    split: Literal["all", "heldout", "train"] = Field(
        "all", description="which conversations (heldout = the 10% hash split that training never sees)"
    )
    seed: int = Field(7, description="sampling, bootstrap, cross-fitting and permutation-test seed")
    workers: int = Field(1, ge=1, description="replay processes")
    generate: bool = Field(
        False,
        description="generate replies with the LLM (slow on CPU) instead of scoring the grounded template/list answer",
    )
    bootstrap: int = Field(1000, ge=100, description="bootstrap resamples for the confidence intervals")
    max_new_tokens: int = Field(96, ge=1, le=2048, description="reply length cap when generating")
    fusion: Literal["learned", "configured"] = Field(
        "learned", description="rank with fusion weights cross-fitted on the logs, or with the configured ranking.w_*"
    )


def normalize_origin(origin: str) -> str:
    """``https://Shop.Example:443/`` -> ``https://shop.example``; raises ValueError if it is not an origin.

    Pure, and here in the bottom layer so that the serve settings and the site-key store
    (:mod:`chatrec.store.keys`) share it without importing each other."""
    origin = origin.strip()
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not a web origin (scheme://host[:port]): {origin!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"an origin has no path, query or credentials: {origin!r}")
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


Switch = Literal["auto", "on", "off"]


def is_loopback(host: str) -> bool:
    """Is ``host`` (a bind address or name) reachable only from this machine?"""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class RouterSettings(Section):
    """The learned turn router (chatrec/turn/classify.py, docs/routing.md)."""

    enabled: bool = Field(True, description="route with the classifier learned from the logs (false: keyword rules)")
    c: float = Field(100.0, gt=0, description="inverse regularisation of the intent/route logistic regression")
    oos_threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="out-of-scope below this confidence (default: chosen on held-out logs)"
    )
    both_rate: float = Field(
        0.5, ge=0.0, le=1.0, description="a template whose logged turns showed items this often routes 'both'"
    )
    handoff_intents: list[str] = Field(
        ["contact_human", "contact_human_agent", "human_agent", "handoff"], description="intents that hand off"
    )
    chitchat_intents: list[str] = Field(["greeting", "thanks", "goodbye"], description="small-talk intents")
    escalate_intents: list[str] = Field(["complaint"], description="intents that escalate to a person")
    escalation_c: float = Field(4.0, gt=0, description="inverse regularisation of the escalation model")
    escalation_threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="escalate at this probability or more (default: best F1, cross-validated)"
    )
    repeat_similarity: float = Field(
        0.8, ge=0.0, le=1.0, description="word overlap at which a message repeats an earlier one (repeated failure)"
    )


class StoreSettings(Section):
    """Where conversations, turns, feedback and site keys live (chatrec/store/, docs/scaling.md)."""

    url: str | None = Field(
        None,
        description="None: the SQLite file <data_dir>/chatrec.sqlite3; postgresql://user:password@host:port/db: "
        "a PostgreSQL server that several processes share (pip install 'chatrec[postgres]')",
    )
    pool_size: int = Field(10, ge=1, le=500, description="postgresql: connections per process")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and v.split("://", 1)[0] not in ("postgresql", "postgres"):
            raise ValueError("store.url must be a postgresql:// URL (leave it unset for the SQLite file)")
        return v


class TenantSettings(Section):
    """One shop on a shared deployment (``[tenants.<name>]``; chatrec/serve/tenants.py, docs/scaling.md
    "Several shops"): its site keys (``chatrec keys add --tenant NAME``) are served from its own KB,
    index, learned policy, adapter, prompts and limits; the store is shared, scoped by site key."""

    kb_dir: Path = Field(description="this shop's knowledge-base folder")
    data_dir: Path | None = Field(
        None,
        description="this shop's state folder (its Chroma index); unset: <data_dir>/tenants/<name>",
    )
    adapter: str | None = Field(
        None, description="the LoRA adapter by name (llm.adapters) for this shop's turns; unset: the base model"
    )
    prompts_dir: Path | None = Field(None, description="this shop's prompt files; unset: the packaged prompts")
    rate_per_minute: float = Field(0, ge=0, description="requests per minute for all this shop's keys (0 = unlimited)")
    max_concurrent: int | None = Field(None, ge=1, description="this shop's turns generating at once; unset: no cap")


class ServeSettings(Section):
    """``chatrec serve``: the HTTP edge (chatrec/serve/); its command-line flags override these only when given."""

    host: str = Field("127.0.0.1", description="bind address")
    port: int = Field(8000, ge=0, le=65535)
    max_concurrent: int | None = Field(
        None, ge=1, description="turns generating at once; unset: the engine's slots (llm.slots or its default)"
    )
    max_queue: int = Field(8, ge=0, description="turns waiting for a slot; more are refused with 503")
    retry_after_s: int = Field(5, ge=1, description="Retry-After sent with 503 when the queue is full")
    max_body_bytes: int = Field(16 * 1024, ge=256, description="request bodies under /v1/ larger than this get 413")
    rate_per_minute_key: float = Field(120, ge=0, description="requests per minute per site key (0 = unlimited)")
    rate_per_minute_ip: float = Field(30, ge=0, description="requests per minute per client IP (0 = unlimited)")
    rate_limit_store: Literal["memory", "store"] = Field(
        "memory",
        description="where the rate-limit counters live: memory = this process's own; store = the shared store "
        "(store.url or the SQLite file), so the limits hold across replicas (docs/scaling.md)",
    )
    admin_token: str | None = Field(None, description="bearer token for /v1/admin/*; None disables the admin API")
    metrics_token: str | None = Field(
        None,
        description="bearer token for GET /v1/metrics (Prometheus), besides the admin token; "
        "with neither set the endpoint is off",
    )
    metrics_cache_s: float = Field(
        10, ge=0, description="GET /v1/metrics recomputes the store's figures at most this often"
    )
    require_key: bool | None = Field(None, description="None: a site key is required once any key exists")
    cors_origins: list[str] = Field(default_factory=list, description="origins allowed without a key's listing")
    accept_unsigned_user_id: bool = Field(
        False,
        description="also take a bare user_id (chat API) or user (OpenAI API) without a signed "
        "X-User-Token; only for trusted server-to-server clients, never on public sites",
    )
    user_token_max_lifetime_s: int = Field(
        3600, ge=60, le=86400, description="longest lifetime (exp - now) accepted for a signed user token"
    )
    expose_trace: bool = Field(False, description="include the turn trace (routing, timings) in responses")
    model_id: str = Field("chatrec", description="model id shown by the OpenAI-compatible API")
    ui: Switch = Field(
        "auto",
        description="the Gradio UI under /ui: auto = only when bound to a loopback address; on = also on "
        "other addresses, behind a login (user admin, password serve.admin_token); off",
    )
    docs: Switch = Field(
        "auto", description="/docs and /openapi.json: auto = only when bound to a loopback address; on; off"
    )
    demo: bool = Field(True, description="serve the demo shop page at /demo")
    demo_site_key: str | None = Field(None, description="site key written into the /demo page")
    ui_wait_s: float = Field(300, gt=0, description="how long a Gradio UI turn waits for a slot")
    rate_per_minute_ip_all: float = Field(
        600, ge=0, description="requests per minute per client IP on every path, pages and assets too (0 = unlimited)"
    )
    ui_max_body_bytes: int = Field(
        256 * 1024, ge=1024, description="request bodies outside /v1/ (the UI's calls) larger than this get 413"
    )
    body_timeout_s: float = Field(15, gt=0, description="a request body not fully received in this time gets 408")
    header_timeout_s: float = Field(
        10, gt=0, description="a connection that has not sent a whole request head in this time is closed"
    )
    keep_alive_s: float = Field(5, gt=0, description="an idle keep-alive connection is closed after this")
    max_connections: int = Field(
        256, ge=1, description="open connections; a new one beyond this is closed at once (idle ones included)"
    )
    limit_concurrency: int = Field(
        128, ge=1, description="connections + running requests before uvicorn answers 503 (uvicorn limit_concurrency)"
    )
    max_header_bytes: int = Field(
        16 * 1024, ge=1024, description="largest request head (uvicorn h11_max_incomplete_event_size); over it: 400"
    )

    @field_validator("ui", "docs", mode="before")
    @classmethod
    def _switch(cls, v: Any) -> Any:
        return {True: "on", False: "off"}.get(v, v) if isinstance(v, bool) else v

    @model_validator(mode="after")
    def _public_ui(self) -> ServeSettings:
        if self.ui == "on" and not is_loopback(self.host) and not self.admin_token:
            raise ValueError(
                f"serve.ui = 'on' on {self.host} (not a loopback address) needs serve.admin_token "
                "(the UI's login password); or set serve.ui = 'off'"
            )
        return self

    @property
    def public(self) -> bool:
        """Bound to an address other machines can reach."""
        return not is_loopback(self.host)

    @property
    def ui_mounted(self) -> bool:
        return self.ui == "on" or (self.ui == "auto" and not self.public)

    @property
    def docs_served(self) -> bool:
        return self.docs == "on" or (self.docs == "auto" and not self.public)

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        return [normalize_origin(o) for o in v]


class SettingsError(ValueError):
    """Settings that cannot be loaded: a missing config file, an unknown ``CHATREC_*`` variable."""


# Variables with the prefix that are not settings fields (read by name elsewhere).
NON_SETTINGS_ENV = frozenset(
    {
        "CHATREC_CONFIG",  # the TOML file
        "CHATREC_SCREENSHOT_DIR",  # tests/integration/test_widget_browser.py
        "CHATREC_REQUIRE_SERVERS",  # tests: a server a test needs (PostgreSQL, Chroma) fails rather than skips (CI)
    }
)

# Variables read before everything was a setting: now an error that names the setting.
RENAMED_ENV = {
    "CHATREC_SERVE_HOST": "CHATREC_SERVE__HOST",
    "CHATREC_SERVE_PORT": "CHATREC_SERVE__PORT",
    "CHATREC_ADMIN_TOKEN": "CHATREC_SERVE__ADMIN_TOKEN",
    "CHATREC_DEMO_SITE_KEY": "CHATREC_SERVE__DEMO_SITE_KEY",
}

# The TOML file of the load_settings call in progress (not the process environment).
_CONFIG_FILE: ContextVar[Path | None] = ContextVar("chatrec_config_file", default=None)


def check_sources(config_file: str | Path | None = None) -> Path | None:
    """Check what :func:`load_settings` reads before reading it: every ``CHATREC_*`` variable
    names a setting, and the config file (``config_file``, else ``CHATREC_CONFIG``) exists.
    Returns that file (None: no file); raises :class:`SettingsError`."""
    unknown = unknown_env_vars()
    if unknown:
        raise SettingsError("unknown CHATREC_ environment variable(s):\n  " + "\n  ".join(unknown))
    path, origin = (Path(config_file) if config_file is not None else None), "--config"
    if path is None and os.environ.get("CHATREC_CONFIG"):
        path, origin = Path(os.environ["CHATREC_CONFIG"]), "CHATREC_CONFIG"
    if path is not None and not path.is_file():
        raise SettingsError(
            f"config file {str(path)!r} (from {origin}) does not exist" + (" or is not a file" if path.exists() else "")
        )
    return path


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The settings section class behind a field annotation (``X``, ``X | None``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [m for m in map(_model_of, typing.get_args(annotation)) if m is not None]
        return models[0] if len(models) == 1 else None
    return None


def unknown_env_vars(environ: typing.Mapping[str, str] | None = None) -> list[str]:
    """One line per ``CHATREC_*`` variable that names no setting (nested ``__`` keys are checked
    too), each with the close match or the names valid at that level."""
    environ = os.environ if environ is None else environ
    problems = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith("CHATREC_") or upper in NON_SETTINGS_ENV:
            continue
        if upper in RENAMED_ENV:
            problems.append(f"{name}: renamed; use {RENAMED_ENV[upper]}")
            continue
        model: type[BaseModel] | None = Settings
        path: list[str] = []
        for part in upper.removeprefix("CHATREC_").lower().split("__"):
            fields = model.model_fields if model is not None else {}
            if part not in fields:
                if model is None:
                    problems.append(f"{name}: {'.'.join(path)} is a value, not a section")
                    break
                valid = sorted(fields)
                close = difflib.get_close_matches(part, valid, n=1)
                if not path:
                    sections = sorted(k for k, f in fields.items() if _model_of(f.annotation))
                    hint = (
                        f"valid sections: {', '.join(sections)}; other settings: "
                        f"{', '.join(k for k in valid if k not in sections)}"
                    )
                else:
                    hint = f"{'.'.join(path)} has: {', '.join(valid)}"
                suggestion = f"did you mean CHATREC_{'__'.join([*path, close[0]]).upper()}? " if close else ""
                problems.append(f"{name}: no setting {'.'.join([*path, part])!r}; {suggestion}{hint}")
                break
            path.append(part)
            model = _model_of(fields[part].annotation)
    return problems


KB_ADAPTER = "adapter"  # <kb_dir>/adapter: the KB's own LoRA adapter, used when llm.adapter is unset
NO_ADAPTER = "none"  # llm.adapter = "none" (--adapter none): the base model, even where the KB ships an adapter
_KB_ADAPTER_FILE = {"transformers": "adapter_model.safetensors", "llamacpp": "adapter_model.gguf"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHATREC_", env_nested_delimiter="__", extra="forbid")

    kb_dir: Path = Field(Path("kb"), description="knowledge-base folder")
    data_dir: Path = Field(Path(".chatrec"), description="state: Chroma index, SQLite store, adapters")
    cache_dir: Path = Field(Path.home() / ".cache" / "chatrec", description="converted model weights")
    max_message_chars: int = Field(2000, ge=1)
    db_busy_timeout_s: float = Field(
        3.0, gt=0, le=60, description="how long a store write waits for a locked database before failing (503)"
    )
    history_turns: int = Field(6, ge=0, description="past turns given to the model")
    prompts_dir: Path | None = Field(
        None, description="prompt files (Jinja2 + instructions.toml); unset: the packaged ones"
    )
    torch_threads: int | None = Field(
        None,
        ge=1,
        description="torch threads for every workload of the process (chat, serving, ranking, training, "
        "evaluation); unset: the measured rule, max(1, cores // 2) (chatrec/llm/threads.py, docs/engines.md)",
    )
    llm: LLMSettings = Field(default_factory=LLMSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    ranking: RankingSettings = Field(default_factory=RankingSettings)
    grounding: GroundingSettings = Field(default_factory=GroundingSettings)
    clarify: ClarifySettings = Field(default_factory=ClarifySettings)
    pii: PIISettings = Field(default_factory=PIISettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    router: RouterSettings = Field(default_factory=RouterSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    tenants: dict[str, TenantSettings] = Field(
        default_factory=dict,
        description="more shops on this deployment by name ([tenants.<name>]); the top-level settings are the "
        "'default' tenant (keys made without --tenant)",
    )

    @model_validator(mode="after")
    def _kb_adapter(self) -> Settings:
        """``llm.adapter`` unset: the adapter the KB ships (``<kb_dir>/adapter``, trained by ``chatrec
        train`` on its training conversations) when it holds one the backend can apply; ``"none"``:
        the base model."""
        self.llm._kb_dir = self.kb_dir
        if self.llm.adapter == NO_ADAPTER:
            self.llm.adapter = None
        elif self.llm.adapter is None and self.llm.backend in _KB_ADAPTER_FILE:
            if (self.kb_dir / KB_ADAPTER / _KB_ADAPTER_FILE[self.llm.backend]).is_file():
                self.llm.adapter = str(self.kb_dir / KB_ADAPTER)
        return self

    @field_validator("tenants")
    @classmethod
    def _tenant_names(cls, v: dict[str, TenantSettings]) -> dict[str, TenantSettings]:
        import re

        for name in v:
            if name == "default" or not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", name):
                raise ValueError(f"tenant name {name!r}: 1-40 of a-z 0-9 _ - (not 'default': the top-level settings)")
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Highest priority first: explicit values, CHATREC_* variables, the TOML file, then the defaults.
        toml_file = check_sources(_CONFIG_FILE.get())
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "chatrec.sqlite3"


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build settings; ``overrides`` (e.g. from CLI flags) win over everything else.

    Layers, lowest first: defaults < the TOML ``config_file`` (else ``CHATREC_CONFIG``)
    < ``CHATREC_*`` variables < ``overrides``. Nested overrides are dicts, e.g.
    ``llm={"adapter": "out/adapter"}``; they are merged with the lower layers rather
    than replacing them, and ``None`` values (an unset CLI flag) are left out.
    Raises :class:`SettingsError` for a missing config file or an unknown ``CHATREC_*``
    variable, and pydantic's ``ValidationError`` (also a ``ValueError``) for bad values.
    """

    def given(value: Any) -> Any:
        return {k: given(v) for k, v in value.items() if v is not None} if isinstance(value, dict) else value

    token = _CONFIG_FILE.set(Path(config_file) if config_file is not None else None)
    try:
        return Settings(**{k: given(v) for k, v in overrides.items() if v is not None})
    finally:
        _CONFIG_FILE.reset(token)
