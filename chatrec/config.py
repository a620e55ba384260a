"""One typed settings tree: defaults < TOML file < ``CHATREC_*`` env vars < explicit overrides.

Nested fields use ``__`` in env vars, e.g. ``CHATREC_LLM__BACKEND=openai``.
Nothing here reads files or the environment at import time; call
:func:`load_settings`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator
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


class LLMSettings(BaseModel):
    backend: Literal["transformers", "openai", "fake"] = Field(
        "transformers", description="transformers: local model; openai: any OpenAI-compatible server; fake: scripted (tests)")
    model: str = Field(EMBEDDED_LLM, description="Hugging Face id, local folder, or the embedded SmolLM2")
    quantization: Literal["nf4", "none"] = Field("nf4", description="nf4 = bitsandbytes 4-bit NF4")
    adapter: str | None = Field(None, description="peft LoRA adapter folder (or a name under <data_dir>/adapters)")
    max_new_tokens: int = Field(96, ge=1, le=2048)
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 = greedy")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (default: torch's choice)")
    base_url: str | None = Field(None, description="openai backend: server URL, e.g. http://localhost:8000/v1")
    api_key: str = Field("not-needed", description="openai backend: API key")

    @model_validator(mode="after")
    def _check(self) -> "LLMSettings":
        if self.backend == "openai" and not self.base_url:
            raise ValueError("llm.base_url is required when llm.backend is 'openai'")
        return self


class RetrievalSettings(BaseModel):
    embedder: str = Field(EMBEDDED_EMBEDDER, description="sentence-transformers folder or id, or the embedded MiniLM")
    chroma_host: str | None = Field(None, description="use a Chroma server (HttpClient) instead of the local folder")
    chroma_port: int = 8000
    items_k: int = Field(30, ge=1, description="dense candidates per turn")
    templates_k: int = Field(3, ge=1)
    hnsw_ef_search: int = Field(200, ge=10, description="HNSW search breadth (recall vs exact search: benchmarks/)")
    exact_search: bool = Field(False, description="items and templates by exact cosine over all stored vectors, not HNSW "
                                                  "(deterministic across processes; chatrec eval always uses it)")
    template_min_similarity: float = Field(0.35, description="below this cosine no template answers a service turn")
    kg_hub_degree: int = Field(60, ge=1, description="KG walks pass through no entity with more neighbours than this")


class RankingSettings(BaseModel):
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
    weights_file: Path | None = Field(None, description="learned fusion weights (`chatrec fit-ranker`); "
                                      "replace the w_* values above when the file exists")
    llm_candidates: int = Field(12, ge=1, description="top fused candidates the LLM scores, in one batch")


class GroundingSettings(BaseModel):
    min_template_similarity: float = Field(
        0.55, description="a generated service answer must be at least this similar to its template, else the template is used")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHATREC_", env_nested_delimiter="__", extra="forbid")

    kb_dir: Path = Field(Path("kb"), description="knowledge-base folder")
    data_dir: Path = Field(Path(".chatrec"), description="state: Chroma index, SQLite store, adapters")
    cache_dir: Path = Field(Path.home() / ".cache" / "chatrec", description="converted model weights")
    max_message_chars: int = Field(2000, ge=1)
    history_turns: int = Field(6, ge=0, description="past turns given to the model")
    llm: LLMSettings = Field(default_factory=LLMSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    ranking: RankingSettings = Field(default_factory=RankingSettings)
    grounding: GroundingSettings = Field(default_factory=GroundingSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = os.environ.get("CHATREC_CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file:
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

    Nested overrides are dicts, e.g. ``llm={"adapter": "out/adapter"}``; they are
    merged with the lower layers rather than replacing them.
    """
    if config_file is not None:
        os.environ["CHATREC_CONFIG"] = str(config_file)
    base = Settings()
    if not overrides:
        return base
    merged = base.model_dump()
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **{k: v for k, v in value.items() if v is not None}}
        elif value is not None:
            merged[key] = value
    return Settings.model_validate(merged)
