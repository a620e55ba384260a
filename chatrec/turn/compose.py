"""Prompt files (the package data ``chatrec.prompts``, from ``prompts/``), rendered with Jinja2 in strict mode.

A template that references a variable the caller did not pass raises
:class:`jinja2.UndefinedError` instead of silently rendering an empty string.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

# The repository's top-level ``prompts/`` folder is installed as the package data
# ``chatrec.prompts`` (pyproject ``package-dir``), so a wheel finds it too.
DEFAULT_DIR = Path(str(resources.files("chatrec.prompts")))


class Prompts:
    def __init__(self, directory: str | Path = DEFAULT_DIR):
        self.dir = Path(directory)
        if not self.dir.is_dir():
            raise FileNotFoundError(f"prompts folder not found: {self.dir}")
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(self.dir)),
                                      undefined=jinja2.StrictUndefined, autoescape=False,
                                      keep_trailing_newline=False, trim_blocks=False)
        self.instructions: dict[str, str] = tomllib.loads((self.dir / "instructions.toml").read_text("utf-8"))

    def render(self, name: str, **variables: Any) -> str:
        return self.env.get_template(name).render(**variables).strip()


@lru_cache(maxsize=4)
def load_prompts(directory: str | Path = DEFAULT_DIR) -> Prompts:
    return Prompts(directory)
