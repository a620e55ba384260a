"""An adapter's card (``chatrec_card.json``, written by ``chatrec train``) checked against what is served.

The card names the base model (and the sha256 of its weights file), the hash of the KB the adapter
was trained on (:func:`kb_hash`: the bytes of the KB files training reads, never the adapter folder
or other files in the KB folder), the training config, its metrics and the command that rebuilds it.
:func:`card_warnings` lists what differs from the model and KB being served; the backends log them
as warnings (a changed KB makes the adapter stale, not unusable).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from chatrec.kb.load import FILES

CARD = "chatrec_card.json"
WEIGHTS = "model.safetensors"  # the base model's weights file whose sha256 the card records


def read_card(folder: str | Path) -> dict[str, Any]:
    """The card of an adapter folder; ``{}`` when it has none or it cannot be read."""
    path = Path(folder) / CARD
    try:
        card = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}
    return card if isinstance(card, dict) else {}


def kb_hash(root: str | Path) -> str | None:
    """The hash :meth:`chatrec.kb.KnowledgeBase.fingerprint` gives the KB at ``root`` (the KB files
    only, so an adapter kept in the KB folder or any other file there does not change it); ``None``
    when ``root`` holds no KB file."""
    h, seen = hashlib.sha256(), False
    for name in sorted(FILES.values()):
        p = Path(root) / name
        if p.exists():
            h.update(name.encode())
            h.update(p.read_bytes())
            seen = True
    return h.hexdigest()[:16] if seen else None


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def base_weights_sha256(base_path: str | Path) -> str | None:
    """sha256 of the base model folder's ``model.safetensors``; ``None`` when it has no such file."""
    weights = Path(base_path) / WEIGHTS
    return file_sha256(weights) if weights.is_file() else None


def rebuild_hint(card: dict[str, Any]) -> str:
    return f"rebuild it with: {card['rebuild']}" if card.get("rebuild") else "retrain it with `chatrec train`"


def card_warnings(
    folder: str | Path, card: dict[str, Any], kb_dir: str | Path | None, base_path: str | Path | None = None
) -> list[str]:
    """What differs between the adapter's card and what is served: the KB at ``kb_dir`` (its hash)
    and the base weights at ``base_path`` (their sha256). The base model's *name* is checked by the
    backend (:func:`chatrec.llm.transformers_backend.check_adapter`)."""
    out: list[str] = []
    trained_kb = (card.get("data") or {}).get("kb_hash")
    served = kb_hash(kb_dir) if kb_dir is not None else None
    if trained_kb and served and trained_kb != served:
        out.append(
            f"the adapter in {folder} was trained on a KB with hash {trained_kb}, but the KB served "
            f"({kb_dir}) has hash {served} (its files changed since): its replies may be stale; {rebuild_hint(card)}"
        )
    want = card.get("base_sha256")
    if want and base_path is not None:
        got = base_weights_sha256(base_path)
        if got and got != want:
            out.append(
                f"the adapter in {folder} was trained on base weights with sha256 {want[:12]}..., but "
                f"{Path(base_path) / WEIGHTS} has {got[:12]}...: {rebuild_hint(card)}"
            )
    return out
