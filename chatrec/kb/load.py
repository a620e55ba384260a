"""Loading and validating the knowledge base directory (``kb/``).

A KB is read whole or not at all: every row of every file is validated, every
problem is collected as ``file:line: reason``, and :class:`KBError` lists them
all. Formats are documented in ``docs/formats.md``.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

from pydantic import BaseModel, ValidationError

from chatrec.types import (
    Conversation,
    Event,
    Item,
    ShopFacts,
    Template,
    Triple,
    User,
)

FILES = {
    "shop": "shop.json",
    "catalogue": "catalogue.jsonl",
    "templates": "templates.jsonl",
    "kg": "kg.tsv",
    "users": "users.jsonl",
    "events": "events.jsonl",
    "transcripts": "transcripts.jsonl",
}
REQUIRED = ("shop", "catalogue", "templates")
KG_PREDICATES_NEEDING_ITEMS = {"brand", "category", "compatible_with", "suits_need", "successor_of", "in_series"}
MAX_REPORTED = 50

M = TypeVar("M", bound=BaseModel)


class KBError(ValueError):
    """The KB is invalid; ``errors`` holds every ``file:line: reason``."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        shown = errors[:MAX_REPORTED]
        more = f"\n... and {len(errors) - MAX_REPORTED} more" if len(errors) > MAX_REPORTED else ""
        super().__init__(f"{len(errors)} problem(s) in the knowledge base:\n" + "\n".join(shown) + more)


@dataclass
class KnowledgeBase:
    root: Path
    shop: ShopFacts
    items: dict[str, Item]
    templates: dict[str, Template]
    triples: list[Triple] = field(default_factory=list)
    users: dict[str, User] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    transcripts: list[Conversation] = field(default_factory=list)

    def events_of(self, user_id: str) -> list[Event]:
        return [e for e in self.events if e.user_id == user_id]

    def fingerprint(self) -> str:
        """Hash of the KB files' bytes: names the data a model or index was built from."""
        h = hashlib.sha256()
        for name in sorted(FILES.values()):
            p = self.root / name
            if p.exists():
                h.update(name.encode())
                h.update(p.read_bytes())
        return h.hexdigest()[:16]


def is_heldout(conversation_id: str, percent: int = 10) -> bool:
    """Deterministic held-out split by conversation: never trained or indexed on, used by eval."""
    digest = hashlib.sha256(conversation_id.encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < percent


RECOMMEND_LABEL = "__recommend__"


def template_examples(kb: KnowledgeBase) -> dict[str, tuple[str, str]]:
    """Past customer messages and what answered them, from training conversations only:
    ``{example_id: (customer text, template_id or RECOMMEND_LABEL)}``."""
    out: dict[str, tuple[str, str]] = {}
    for conv in kb.transcripts:
        if is_heldout(conv.conversation_id):
            continue
        for i, (q, a) in enumerate(zip(conv.turns, conv.turns[1:])):
            if q.role == "user" and a.role == "agent" and (a.template_id or a.recommended):
                label = a.template_id if a.template_id and not a.recommended else RECOMMEND_LABEL
                out[f"{conv.conversation_id}:{i}"] = (q.text, label)
    return out


def json_objects(path: Path, lines: Iterable[str], problems: list[str]) -> Iterator[tuple[int, dict]]:
    """``(line_no, object)`` for each non-blank line holding a JSON object; any other line
    becomes ``file:line: reason`` in ``problems`` (the KB loader and the importers share this)."""
    for line_no, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{line_no}: invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(data, dict):
            problems.append(f"{path}:{line_no}: expected a JSON object, got {type(data).__name__}")
            continue
        yield line_no, data


def read_jsonl(path: Path, model: type[M], errors: list[str]) -> Iterator[tuple[int, M]]:
    """Yield ``(line_no, row)`` for valid rows; append ``file:line: reason`` for bad ones."""
    try:
        with path.open("r", encoding="utf-8", newline="") as fh:
            for line_no, data in json_objects(path, fh, errors):
                try:
                    yield line_no, model.model_validate(data)
                except ValidationError as exc:
                    errors.append(f"{path}:{line_no}: {_explain(exc)}")
    except UnicodeDecodeError as exc:
        errors.append(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})")


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "row"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def read_triples(path: Path, errors: list[str]) -> Iterator[tuple[int, Triple]]:
    """Read a ``subject<TAB>predicate<TAB>object`` file with a header line."""
    try:
        with path.open("r", encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(reader, None)
            if header != ["subject", "predicate", "object"]:
                errors.append(f"{path}:1: header must be 'subject<TAB>predicate<TAB>object', got {header!r}")
                return
            for row in reader:
                line_no = reader.line_num
                if not row or not any(c.strip() for c in row):
                    continue
                if len(row) != 3:
                    errors.append(f"{path}:{line_no}: expected 3 tab-separated fields, got {len(row)}")
                    continue
                try:
                    yield line_no, Triple(subject=row[0].strip(), predicate=row[1].strip(), object=row[2].strip())
                except ValidationError as exc:
                    errors.append(f"{path}:{line_no}: {_explain(exc)}")
    except UnicodeDecodeError as exc:
        errors.append(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})")


R = TypeVar("R", Item, Template, User)


def _by_id(
    path: Path, model: type[R], what: str, errors: list[str], check: Callable[[R], str | None] | None = None
) -> dict[str, R]:
    """The rows of a JSONL file by their ``id``; duplicates and failed checks become errors."""
    rows: dict[str, R] = {}
    for line_no, row in read_jsonl(path, model, errors):
        if row.id in rows:
            errors.append(f"{path}:{line_no}: duplicate {what} id {row.id!r}")
        if check is not None and (problem := check(row)):
            errors.append(f"{path}:{line_no}: {problem}")
        rows[row.id] = row
    return rows


def load_kb(root: str | Path) -> KnowledgeBase:
    """Load and cross-check every KB file under ``root``; raise :class:`KBError` on any problem."""
    root = Path(root)
    errors: list[str] = []
    if not root.is_dir():
        raise KBError([f"{root}: knowledge-base directory not found"])
    for key in REQUIRED:
        if not (root / FILES[key]).exists():
            errors.append(f"{root / FILES[key]}: required file missing")
    if errors:
        raise KBError(errors)

    shop_path = root / FILES["shop"]
    shop = ShopFacts(name="")
    try:
        shop = ShopFacts.model_validate(json.loads(shop_path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        errors.append(f"{shop_path}:1: invalid JSON: {exc}")
    except ValidationError as exc:
        errors.append(f"{shop_path}:1: {_explain(exc)}")

    items = _by_id(root / FILES["catalogue"], Item, "item", errors)
    shop_slots = set(shop.slot_values())

    def slots_known(tpl: Template) -> str | None:
        missing = [s for s in tpl.slot_names if s not in shop_slots and s not in tpl.slots]
        return f"slot(s) {missing} are neither shop facts nor given a default in 'slots'" if missing else None

    templates = _by_id(root / FILES["templates"], Template, "template", errors, slots_known)

    triples: list[Triple] = []
    kg_path = root / FILES["kg"]
    if kg_path.exists():
        for line_no, t in read_triples(kg_path, errors):
            for end in (t.subject, t.object):
                if ":" not in end and end not in items:
                    errors.append(
                        f"{kg_path}:{line_no}: unknown item id {end!r} (prefix other entities, e.g. 'brand:X')"
                    )
            triples.append(t)

    upath = root / FILES["users"]
    users = _by_id(upath, User, "user", errors) if upath.exists() else {}

    events: list[Event] = []
    epath = root / FILES["events"]
    if epath.exists():
        for line_no, ev in read_jsonl(epath, Event, errors):
            if ev.user_id not in users:
                errors.append(f"{epath}:{line_no}: unknown user id {ev.user_id!r}")
            if ev.item_id not in items:
                errors.append(f"{epath}:{line_no}: unknown item id {ev.item_id!r}")
            events.append(ev)

    transcripts: list[Conversation] = []
    cpath = root / FILES["transcripts"]
    if cpath.exists():
        for line_no, conv in read_jsonl(cpath, Conversation, errors):
            errors.extend(f"{cpath}:{line_no}: {p}" for p in check_conversation(conv, items, templates))
            transcripts.append(conv)

    if errors:
        raise KBError(errors)
    return KnowledgeBase(root, shop, items, templates, triples, users, events, transcripts)


def check_conversation(conv: Conversation, items: dict[str, Item], templates: dict[str, Template]) -> list[str]:
    """Reference checks of one logged conversation against the catalogue and templates."""
    problems = []
    for i, turn in enumerate(conv.turns):
        unknown = [x for x in [*turn.recommended, *turn.mentions, *turn.liked, *turn.disliked] if x not in items]
        if unknown:
            problems.append(f"turn {i}: unknown item id(s) {unknown}")
        if turn.template_id and turn.template_id not in templates:
            problems.append(f"turn {i}: unknown template id {turn.template_id!r}")
    return problems
