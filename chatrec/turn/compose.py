"""Composing the prompt: prompt files rendered with Jinja2 in strict mode, template slots, KG facts.

Prompt files are the package data ``chatrec.prompts`` (the top-level ``prompts/`` folder).

A template that references a variable the caller did not pass raises
:class:`jinja2.UndefinedError` instead of silently rendering an empty string.
"""

from __future__ import annotations

import re
import tomllib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from chatrec.kb import KnowledgeBase
from chatrec.kg.base import KnowledgeGraph
from chatrec.llm.base import Message
from chatrec.turn.state import DialogueState
from chatrec.types import Recommendation

# The repository's top-level ``prompts/`` folder is installed as the package data
# ``chatrec.prompts`` (pyproject ``package-dir``), so a wheel finds it too.
DEFAULT_DIR = Path(str(resources.files("chatrec.prompts")))


class Prompts:
    def __init__(self, directory: str | Path = DEFAULT_DIR):
        self.dir = Path(directory)
        if not self.dir.is_dir():
            raise FileNotFoundError(f"prompts folder not found: {self.dir}")
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.dir)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            trim_blocks=False,
        )
        self.instructions: dict[str, str] = tomllib.loads((self.dir / "instructions.toml").read_text("utf-8"))

    def render(self, name: str, **variables: Any) -> str:
        return self.env.get_template(name).render(**variables).strip()


@lru_cache(maxsize=4)
def load_prompts(directory: str | Path = DEFAULT_DIR) -> Prompts:
    return Prompts(directory)


# ------------------------------------------------------------------ the turn's prompt

_ORDER_ID = re.compile(r"#\s?([A-Z]{2,4}-?\d{4,}|\d{5,})\b")


def slot_values(kb: KnowledgeBase, text: str, state: DialogueState, user_id: str | None) -> dict[str, str]:
    """Values for an answer template's named slots, only from known data: the shop's facts,
    the customer's first name, an order number they gave, the item they mentioned last."""
    values = kb.shop.slot_values()
    user = kb.users.get(user_id or "")
    if user and user.name:
        values["customer_name"] = user.name.split()[0]
    past = " ".join(h["content"] for h in state.history if h["role"] == "user")
    if m := _ORDER_ID.search(text) or _ORDER_ID.search(past):
        values["order_id"] = "#" + m.group(1)
    if state.mentioned_items:
        values["item_title"] = "your " + kb.items[state.mentioned_items[-1]].title
    return values


def kg_facts(kg: KnowledgeGraph, state: DialogueState, recs: list[Recommendation], limit: int = 6) -> list[str]:
    """A few KG facts for the prompt: facts about the two items mentioned last. A listed item's
    strongest path is not repeated here: its reason (``Items to recommend``) already says it in
    words, and the duplicate cost about 25 tokens per item (benchmarks/bench_conversation.py)."""
    facts: list[str] = []
    for item_id in state.mentioned_items[-2:]:
        for t in kg.facts(item_id, limit=3):
            facts.append(f"{kg.label(t.subject)} {t.predicate.replace('_', ' ')} {kg.label(t.object)}")
    return list(dict.fromkeys(facts))[:limit]


# The part of the profile that changes during a conversation (``Planner._profile``); the rest,
# behaviour as of the conversation's start, is constant for the conversation.
LIKED_PREFIX = " In this conversation they said they like: "


def build_messages(
    prompts: Prompts,
    shop_name: str,
    example_id: str,
    history: list[dict[str, str]],
    history_turns: int,
    text: str,
    profile: str,
    facts: list[str],
    recs: list[Recommendation],
    template_text: str | None,
    route: str,
) -> list[Message]:
    """Built for prompt caching: what repeats comes first and each turn only appends.

    1. system: instructions, shop name and the customer's profile as of the conversation's
       start (the same on every turn of a conversation);
    2. the conversation so far (the last ``history_turns`` exchanges; :func:`~chatrec.turn.replay.advance`
       drops old exchanges in blocks, so most turns only append to it);
    3. this turn's context (what the customer liked so far, KG facts, items, answer template),
       the message and the route's instruction: the only part a cached engine reads anew, with
       the previous exchange.
    """
    constant, _, liked = profile.partition(LIKED_PREFIX)
    system = prompts.render("system.j2", shop_name=shop_name, example_id=example_id, profile=constant)
    msgs: list[Message] = [{"role": "system", "content": system}]
    n = 2 * history_turns
    for h in history[-n:] if n else []:
        msgs.append({"role": h["role"], "content": h["content"]})
    msgs.append(
        {
            "role": "user",
            "content": prompts.render(
                "turn.j2",
                liked=liked.rstrip(".").strip(),
                facts=facts,
                items=[r.model_dump() for r in recs],
                template=template_text,
                message=text,
                instruction=prompts.instructions[route],
            ),
        }
    )
    return msgs
