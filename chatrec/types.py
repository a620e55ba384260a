"""Typed records: the knowledge-base rows and the structured turn result.

Every KB row type forbids unknown fields, so a typo in a column name is an
error with a file and line rather than a silently ignored value.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_SLOT_RE = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)\}")
AttrValue = str | int | float | bool | list[str]


class Unavailable(RuntimeError):
    """A dependency of the turn (the store, the index, the model engine) is down or busy for now.

    Subclasses name the dependency; the HTTP edge answers 503 with ``Retry-After`` and
    ``/readyz`` reports not ready until it works again. Retrying later may succeed."""


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


GENERIC_HELP = (
    "I can help with orders, shipping, returns, warranty and payments, or recommend products. What do you need?"
)


class ShopFacts(BaseModel):
    """Facts about the shop that fill template slots (``kb/shop.json``)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str
    currency: str = "USD"
    # the last-resort reply when no template, list or question fits (a greeting with no chitchat
    # template, a handoff with none): what this assistant helps with, in the shop's own words
    help: str = GENERIC_HELP
    # whether replies put "the" before an item's title: "the Pixel 8 case", but a film site
    # names "It (2017)" and "Moana (2016)" bare (the film importers write false)
    title_article: bool = True

    def slot_values(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.model_dump().items()}


class Item(_Row):
    id: str = Field(min_length=1, pattern=r"^\S+$")
    title: str = Field(min_length=1)
    description: str = ""
    category: str = Field(min_length=1)
    brand: str = ""
    price: float | None = Field(default=None, gt=0)  # None: not sold at a list price (e.g. a film catalogue)
    stock: int = Field(ge=0)
    attributes: dict[str, AttrValue] = Field(default_factory=dict)
    aliases: list[str] = Field(default_factory=list)

    @property
    def in_stock(self) -> bool:
        return self.stock > 0

    @property
    def price_text(self) -> str:
        return "" if self.price is None else f"${self.price:.2f}"

    def document(self) -> str:
        """The text embedded for dense retrieval."""
        attrs = ", ".join(f"{k}: {_fmt_attr(v)}" for k, v in self.attributes.items())
        kind = f"{self.brand} {self.category.replace('-', ' ')}".strip()
        return f"{self.title}. {kind}. {self.description} {attrs}".strip()


def _fmt_attr(value: AttrValue) -> str:
    return ", ".join(value) if isinstance(value, list) else str(value)


class Template(_Row):
    id: str = Field(min_length=1, pattern=r"^\S+$")
    intent: str = Field(min_length=1)
    text: str = Field(min_length=1)
    slots: dict[str, str] = Field(default_factory=dict)

    @property
    def slot_names(self) -> list[str]:
        return _SLOT_RE.findall(self.text)

    def render(self, values: dict[str, str]) -> str:
        """Fill every slot: from ``values`` first, then the template's defaults."""

        def fill(m: re.Match[str]) -> str:
            name = m.group(1)
            if values.get(name):
                return values[name]
            if name in self.slots:
                return self.slots[name]
            raise KeyError(f"template {self.id!r}: no value for slot {name!r}")

        return _SLOT_RE.sub(fill, self.text)


class Triple(_Row):
    subject: str = Field(min_length=1)
    predicate: str = Field(min_length=1)
    object: str = Field(min_length=1)


class UserPreferences(_Row):
    brands_liked: list[str] = Field(default_factory=list)
    brands_disliked: list[str] = Field(default_factory=list)
    budget: float | None = Field(default=None, gt=0)
    interests: list[str] = Field(default_factory=list)


class User(_Row):
    id: str = Field(min_length=1, pattern=r"^\S+$")
    name: str = ""
    segment: str = ""
    location: str = ""
    preferences: UserPreferences = Field(default_factory=UserPreferences)


class Event(_Row):
    user_id: str
    item_id: str
    type: Literal["view", "purchase", "rating", "return"]
    ts: datetime
    rating: int | None = Field(default=None, ge=1, le=5)

    @model_validator(mode="after")
    def _rating_only_for_ratings(self) -> Event:
        if (self.type == "rating") != (self.rating is not None):
            raise ValueError("'rating' is required for type 'rating' and only for it")
        return self


class LoggedTurn(_Row):
    role: Literal["user", "agent"]
    text: str
    intent: str | None = None
    template_id: str | None = None
    recommended: list[str] = Field(default_factory=list)
    accepted: list[str] = Field(default_factory=list)
    # Optional entity annotations (e.g. ReDial's ``@movieId``): items the text refers to, and items
    # the customer says in this turn they liked or disliked. Replay feeds them to the dialogue state.
    mentions: list[str] = Field(default_factory=list)
    liked: list[str] = Field(default_factory=list)
    disliked: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _accepted_subset(self) -> LoggedTurn:
        if not set(self.accepted) <= set(self.recommended):
            raise ValueError("'accepted' must be a subset of 'recommended'")
        if self.role == "user" and (self.recommended or self.template_id or self.intent):
            raise ValueError("user turns carry no intent, template_id, recommended or accepted")
        if self.role == "agent" and (self.liked or self.disliked):
            raise ValueError("'liked' and 'disliked' belong to user turns")
        return self


class Conversation(_Row):
    conversation_id: str = Field(min_length=1)
    user_id: str | None = None
    started_at: datetime | None = None
    turns: list[LoggedTurn] = Field(min_length=1)


# ---------------------------------------------------------------- responses


class Evidence(BaseModel):
    """Why an item was recommended: KG paths, item fields and history items."""

    kg_paths: list[str] = Field(default_factory=list)
    fields: dict[str, AttrValue | float | int] = Field(default_factory=dict)
    history_items: list[str] = Field(default_factory=list)


class Recommendation(BaseModel):
    item_id: str
    title: str
    price: float | None
    brand: str
    category: str
    score: float
    reason: str
    evidence: Evidence


class TurnResult(BaseModel):
    """What one turn returns to every edge (CLI, Gradio, HTTP)."""

    conversation_id: str
    turn_id: int | None = None
    text: str
    route: Literal["service", "recommend", "both", "handoff", "chitchat", "out_of_scope"]
    recommendations: list[Recommendation] = Field(default_factory=list)
    template_id: str | None = None
    sources: list[str] = Field(default_factory=list)
    trace: dict = Field(default_factory=dict)

    @field_validator("text")
    @classmethod
    def _strip(cls, v: str) -> str:
        return v.strip()
