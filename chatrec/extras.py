"""Optional extras: import a package that only an extra installs, or fail with the line that installs it.

``pip install chatrec`` gives the chat (CLI, UI, local and OpenAI-compatible models);
the extras in pyproject.toml add the rest: ``train`` (``chatrec train``), ``serve``
(``chatrec serve``), ``eval`` (``chatrec eval``, ``fit-ranker``), ``dev`` (the tests).
Import their packages where they are used, through :func:`require`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# Top-level import name -> the extra in pyproject.toml that installs it
# (tests/unit/test_packaging.py checks this against [project.optional-dependencies]).
EXTRA_OF = {
    "trl": "train",
    "datasets": "train",
    "fastapi": "serve",
    "uvicorn": "serve",
    "starlette": "serve",
    "jwt": "serve",
    "prometheus_client": "serve",
    "rouge_score": "eval",
    "sklearn": "eval",
    "scipy": "eval",
    "pytest": "dev",
    "httpx": "dev",
    "openai": "dev",
    "playwright": "dev",
    "spacy": "ner",
    "xllamacpp": "llamacpp",
    "psycopg": "postgres",
    "psycopg_pool": "postgres",
    "vowpalwabbit": "bandit",
    "ray": "ray",
}


class MissingExtra(ImportError):
    """An optional package is not installed; the message ends with the ``pip install`` line."""

    def __init__(self, module: str, extra: str, purpose: str | None = None):
        self.extra = extra
        need = f"{purpose} needs" if purpose else "chatrec needs"
        super().__init__(
            f"{need} the optional package {module.split('.')[0]!r}, which is not installed. "
            f"Install the '{extra}' extra:\n    pip install 'chatrec[{extra}]'",
            name=module,
        )


def install_line(extra: str) -> str:
    return f"pip install 'chatrec[{extra}]'"


def require(module: str, extra: str | None = None, purpose: str | None = None) -> ModuleType:
    """``import module`` and return it; if it (not one of its own imports) is missing, raise
    :class:`MissingExtra` naming ``extra`` (default: the extra that installs it, from ``EXTRA_OF``)."""
    top = module.split(".")[0]
    extra = extra or EXTRA_OF[top]
    try:
        importlib.import_module(top)  # the package itself first: a loaded submodule must not hide its absence
        return importlib.import_module(module)
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing != top:  # the package is there but broken: show the real error
            raise
        raise MissingExtra(module, extra, purpose) from exc


def as_missing_extra(exc: ImportError, purpose: str | None = None) -> MissingExtra | None:
    """The :class:`MissingExtra` for an ImportError of a package that an extra installs (None otherwise):
    for edges (the CLI) that catch a plain ``import`` failing somewhere below them."""
    if isinstance(exc, MissingExtra):
        return exc
    top = (exc.name or "").split(".")[0]
    return (
        MissingExtra(top, EXTRA_OF[top], purpose) if isinstance(exc, ModuleNotFoundError) and top in EXTRA_OF else None
    )


def require_extra(extra: str, purpose: str | None = None) -> None:
    """Import every package of ``extra`` (fail fast, before a long run, with the install line)."""
    for module, of in EXTRA_OF.items():
        if of == extra:
            require(module, extra, purpose)
