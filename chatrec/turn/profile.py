"""The user as text: profile fields and behaviour summarised for the prompt."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from chatrec.kb import KnowledgeBase


@dataclass
class UserHistory:
    user_id: str | None = None
    owned: list[str] = field(default_factory=list)  # purchased and not returned, newest first
    viewed: list[str] = field(default_factory=list)
    returned: list[str] = field(default_factory=list)
    ratings: dict[str, int] = field(default_factory=dict)

    @property
    def disliked(self) -> list[str]:
        return [i for i, r in self.ratings.items() if r <= 2] + self.returned


def history_of(kb: KnowledgeBase, user_id: str | None, before: datetime | None = None) -> UserHistory:
    """The user's behaviour, newest first; ``before`` keeps only events earlier than that time
    (replaying a logged conversation must not see what the user did after it)."""
    h = UserHistory(user_id=user_id)
    if not user_id:
        return h
    events = [e for e in kb.events_of(user_id) if before is None or e.ts < before]
    for ev in sorted(events, key=lambda e: e.ts, reverse=True):
        if ev.type == "purchase" and ev.item_id not in h.owned:
            h.owned.append(ev.item_id)
        elif ev.type == "view" and ev.item_id not in h.viewed:
            h.viewed.append(ev.item_id)
        elif ev.type == "return":
            h.returned.append(ev.item_id)
        elif ev.type == "rating" and ev.rating is not None:
            h.ratings.setdefault(ev.item_id, ev.rating)
    h.owned = [i for i in h.owned if i not in h.returned]
    return h


def profile_text(kb: KnowledgeBase, user_id: str | None, max_items: int = 4, before: datetime | None = None) -> str:
    """E.g. 'Maya R., a photographer in Lisbon. Owns: Canon EOS R50. Viewed: ... Likes brands: Canon.'"""
    user = kb.users.get(user_id or "")
    if user is None:
        return "A new customer with no purchase history."
    h = history_of(kb, user.id, before)
    title = lambda i: kb.items[i].title if i in kb.items else i  # noqa: E731
    parts = [
        f"{user.name or user.id}"
        + (f", a {user.segment}" if user.segment else "")
        + (f" in {user.location}" if user.location else "")
        + "."
    ]
    if h.owned:
        parts.append("Owns: " + "; ".join(title(i) for i in h.owned[:max_items]) + ".")
    viewed = [i for i in h.viewed if i not in h.owned][:max_items]
    if viewed:
        parts.append("Recently viewed: " + "; ".join(title(i) for i in viewed) + ".")
    if h.ratings:
        parts.append("Rated: " + "; ".join(f"{title(i)} {r}/5" for i, r in list(h.ratings.items())[:max_items]) + ".")
    if h.returned:
        parts.append("Returned: " + "; ".join(title(i) for i in h.returned[:max_items]) + ".")
    p = user.preferences
    if p.brands_liked:
        parts.append("Likes brands: " + ", ".join(p.brands_liked) + ".")
    if p.brands_disliked:
        parts.append("Avoids brands: " + ", ".join(p.brands_disliked) + ".")
    if p.budget:
        parts.append(f"Usual budget about ${p.budget:.0f}.")
    if p.interests:
        parts.append("Interests: " + ", ".join(i.replace("-", " ") for i in p.interests) + ".")
    return " ".join(parts)
