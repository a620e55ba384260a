"""Importers: turn common public formats into the KB formats (docs/formats.md).

Each importer is registered here by name and loaded only when used; a new one is a
module in this folder with one entry function, added to :data:`IMPORTERS`, plus a
command in :mod:`chatrec.cli.importers`. Every importer masks PII and reports bad rows
as ``file:line: reason``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Importer:
    name: str
    target: str  # "module:function"
    reads: str

    def load(self) -> Callable[..., Any]:
        module, _, function = self.target.partition(":")
        return getattr(importlib.import_module(module), function)


IMPORTERS: dict[str, Importer] = {
    i.name: i
    for i in (
        Importer(
            "qa-logs",
            "chatrec.importers.qa_logs:import_file",
            "question-answer logs as CSV or JSON Lines (presets: bitext, generic) -> transcripts + templates",
        ),
        Importer(
            "redial",
            "chatrec.importers.redial:import_redial",
            "ReDial dialogues (JSON Lines), their movie list and a DBpedia sub-graph -> a whole KB",
        ),
        Importer(
            "inspired",
            "chatrec.importers.inspired:import_inspired",
            "INSPIRED dialogues (TSV) with recommendation outcomes and their movie database -> a whole KB",
        ),
    )
}


def get_importer(name: str) -> Callable[..., Any]:
    """The entry function of importer ``name``; an unknown name lists the registered ones."""
    if name not in IMPORTERS:
        raise KeyError(f"unknown importer {name!r}; choose from {', '.join(sorted(IMPORTERS))}")
    return IMPORTERS[name].load()
