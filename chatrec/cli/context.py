"""What every command shares: settings from the global flags, and the chatbot built from them.

Command modules import this; nothing here imports a command module.
"""

from __future__ import annotations

from pathlib import Path

import click
from pydantic import BaseModel

from chatrec.config import Settings, SettingsError, check_sources, load_settings
from chatrec.kb import KBError, KnowledgeBase, load_kb
from chatrec.llm.threads import Workload, configure_threads


def check_settings_sources(config: str | None) -> None:
    """Run by the command group for every command: a missing config file or an unknown
    ``CHATREC_*`` variable is a usage error before any work starts."""
    try:
        check_sources(config)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc


def default_of(section: str, key: str) -> str:
    """Help text for a flag that falls back to a settings field: its default and its setting names."""
    section_model = Settings.model_fields[section].annotation
    assert isinstance(section_model, type) and issubclass(section_model, BaseModel)
    field = section_model.model_fields[key]
    default = field.get_default(call_default_factory=True)
    shown = ",".join(default) if isinstance(default, list) else "unset" if default is None else default
    return f"[default: {shown}; setting {section}.{key}, CHATREC_{section.upper()}__{key.upper()}]"


def settings_from(ctx: click.Context, **overrides) -> Settings:
    """Settings from the global flags plus ``overrides`` (a command's flags; None = not given)."""
    o = ctx.obj or {}
    llm = {
        k: v
        for k, v in (
            ("adapter", overrides.pop("adapter", None)),
            ("backend", o.get("backend")),
            ("model", o.get("model")),
        )
        if v
    }
    base = {k: v for k, v in (("kb_dir", o.get("kb")), ("data_dir", o.get("data_dir"))) if v}
    try:
        settings = load_settings(o.get("config"), **base, **({"llm": llm} if llm else {}), **overrides)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    adapter = settings.llm.adapter
    if adapter and not Path(adapter).exists():
        named = settings.data_dir / "adapters" / adapter  # an adapter made by `chatrec train --name`
        if not named.exists():
            raise click.UsageError(f"adapter {adapter!r} is neither a folder nor a trained adapter in {named.parent}")
        settings = settings.model_copy(update={"llm": settings.llm.model_copy(update={"adapter": str(named)})})
    configure_threads(_WORKLOADS.get(ctx.info_name or "", "other"), settings)  # before any torch work
    return settings


# command -> the workload it runs, for chatrec.llm.threads (the rule is the same for all today)
_WORKLOADS: dict[str, Workload] = {
    "chat": "chat",
    "ask": "chat",
    "serve": "serve",
    "train": "train",
    "eval": "eval",
    "fit-ranker": "eval",
    "index": "index",
}


def load_kb_or_fail(settings: Settings) -> KnowledgeBase:
    """The KB of ``settings``; its problems (``file:line: reason``) become the command's error."""
    try:
        return load_kb(settings.kb_dir)
    except KBError as exc:
        raise click.ClickException(str(exc)) from exc


def make_chatbot(settings: Settings, progress: bool = True):
    from chatrec.chatbot import Chatbot

    try:
        return Chatbot(settings, progress=progress)
    except KBError as exc:
        raise click.ClickException(str(exc)) from exc
