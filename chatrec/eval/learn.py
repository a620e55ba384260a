"""Learning from training conversations only: the overlap check, the training KB, and the
one fit of the ranker that ``chatrec fit-ranker`` saves and ``chatrec eval --train`` scores.

The fitted ranker (:data:`chatrec.turn.rank.RANKER_FILE`, a JSON file) holds everything the
live ranker learned: the fusion weights (a logistic regression over the candidates'
features, :func:`chatrec.eval.fusion.fit_weights`), the behaviour statistics
(popularity and co-mention counts, :class:`chatrec.turn.rank.Behaviour`) counted on the
training conversations, and a card (the inputs' hashes, the date, the example counts and
the in-sample metrics). The features the weights are fitted on are those a live turn
would compute: the training conversations are replayed with statistics cross-fitted in
two folds (a conversation never sees counts that include itself), so the weights are
not taught to trust a co-mention signal that only looks strong because it counts the
very turn it ranks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from chatrec.eval.options import EvalError
from chatrec.kb import KnowledgeBase
from chatrec.turn.rank import FEATURES, RANKER_FORMAT, RANKER_VERSION, Behaviour
from chatrec.types import Conversation


def content_hash(conv: Conversation) -> str:
    """A hash of a conversation's messages (role and text, case and spacing folded): the same
    dialogue under another id is still the same dialogue."""
    h = hashlib.sha256()
    for t in conv.turns:
        h.update(f"{t.role}\x1f{' '.join(t.text.lower().split())}\x1e".encode())
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_training(path: Path, kb: KnowledgeBase) -> list[Conversation]:
    """The valid conversations of a training transcripts file (bad lines are left out)."""
    from chatrec.eval.runner import read_conversations

    if not Path(path).is_file():
        raise EvalError(f"no such training file: {path}")
    convs = [c for _, c, _ in read_conversations(Path(path), kb) if c is not None]
    if not convs:
        raise EvalError(f"{path}: no valid training conversation")
    return convs


def check_overlap(train: list[Conversation], scored: list[Conversation], train_path: str, scored_path: str) -> None:
    """Refuse to score a conversation the ranker learned from, by id or by content."""
    ids = {c.conversation_id for c in train}
    same_id = sorted(c.conversation_id for c in scored if c.conversation_id in ids)
    hashes = {content_hash(c): c.conversation_id for c in train}
    same_text = sorted(f"{c.conversation_id} = {hashes[h]}" for c in scored if (h := content_hash(c)) in hashes)
    if same_id or same_text:
        parts = []
        if same_id:
            parts.append(f"{len(same_id)} by id ({', '.join(same_id[:5])}{', ...' if len(same_id) > 5 else ''})")
        if same_text:
            parts.append(
                f"{len(same_text)} by content ({', '.join(same_text[:5])}{', ...' if len(same_text) > 5 else ''})"
            )
        raise EvalError(
            f"the training file {train_path} and the scored file {scored_path} share conversations: "
            + "; ".join(parts)
            + ". Evaluation must not learn from what it scores: remove them from one side."
        )


def training_kb(kb: KnowledgeBase, train: list[Conversation]) -> KnowledgeBase:
    """``kb`` whose logged conversations are the training ones: the ranker's statistics, the
    router and the index of past requests learn from these and from nothing else."""
    return dataclasses.replace(kb, transcripts=list(train))


def train_key(kb: KnowledgeBase, train_sha: str) -> str:
    """Names the data a training-side index is built from: the KB and the training file."""
    return hashlib.sha256(f"{kb.fingerprint()}:{train_sha}".encode()).hexdigest()[:12]


def fitted_ranker(
    features_path: Path, tkb: KnowledgeBase, train_path: str, train_sha: str, seed: int, kb: KnowledgeBase
) -> dict[str, Any]:
    """The fitted ranker from the training replay's ``features.jsonl``: weights, statistics, card."""
    import numpy as np

    from chatrec.eval.fusion import feature_rows, fit_weights

    encoder = check_encoder(kb, train_sha, train_path)
    # taught to find items the customer has not named yet: re-naming one is no recommendation
    fitted = fit_weights(feature_rows(features_path), seed, label="gold_new")
    if fitted is None:
        raise EvalError(f"{train_path}: no recommendation turn with a recommended candidate to learn from")
    w = np.array([fitted["weights"][f] for f in FEATURES])
    hits = {10: 0, 50: 0}
    total = 0
    for r in feature_rows(features_path):
        gold = set(r["gold_new"])
        if not gold:
            continue
        ids = list(r["features"])
        score = {i: float(np.dot(w, r["features"][i])) for i in ids}
        ranked = sorted(ids, key=lambda i: (-score[i], i))
        total += len(gold)
        for k in hits:
            hits[k] += len(gold & set(ranked[:k]))
    behaviour = Behaviour(tkb)
    return {
        "format": RANKER_FORMAT,
        "version": RANKER_VERSION,
        "features": list(FEATURES),
        "weights": fitted["weights"],
        "statistics": behaviour.counts(),
        "card": {
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "train": str(train_path),
            "train_sha256": train_sha,
            "train_conversations": len(tkb.transcripts),
            "kb": str(kb.root),
            "kb_fingerprint": kb.fingerprint(),
            "seed": seed,
            "model": "logistic regression (scikit-learn) over the candidates' features, labels: the recommended "
            "items not named before; statistics counted on the training conversations (cross-fitted in two "
            "folds while fitting)",
            "dense_encoder": (
                {k: encoder.get(k) for k in ("base", "train_sha256", "pairs", "epochs", "seed", "created_at")}
                if encoder
                else "base"
            ),
            "replayed_conversations": len({r["conversation_id"] for r in feature_rows(features_path)}),
            "examples": fitted["examples"],
            "positives": fitted["positives"],
            "metrics": {
                "train_in_sample.rec_new.recall@10": round(hits[10] / total, 4) if total else None,
                "train_in_sample.rec_new.recall@50": round(hits[50] / total, 4) if total else None,
                "gold_new_items": total,
            },
        },
    }


def save_ranker(fitted: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(fitted), encoding="utf-8")
    os.replace(tmp, path)


def encoder_pairs(convs: list[Conversation], kb: KnowledgeBase) -> list[tuple[str, str]]:
    """(dialogue context, item text) pairs to fine-tune the bi-encoder on, one per recommended item
    of each agent turn that is new there: named by neither side before, the customer's message(s)
    being answered included. The context is what the ranker's query holds at that turn (the
    customer's consecutive messages joined, as the replay joins them, then the last
    :data:`~chatrec.retrieval.encoder_ft.CONTEXT_MESSAGES` messages). Only ``convs`` (the
    training conversations) are read."""
    from chatrec.retrieval.encoder_ft import context_text, item_text

    pairs: list[tuple[str, str]] = []
    for conv in convs:
        messages: list[str] = []
        pending: list[str] = []
        seen: set[str] = set()
        for t in conv.turns:
            if t.role == "user":
                pending.append(t.text)
                seen.update(t.mentions, t.liked, t.disliked)
                continue
            if pending:
                messages.append(" ".join(pending).strip())
                pending = []
            if t.recommended and messages:
                ctx = context_text(messages)
                for item_id in dict.fromkeys(t.recommended):
                    if item_id not in seen and item_id in kb.items:
                        pairs.append((ctx, item_text(kb.items[item_id])))
            seen.update(t.mentions, t.recommended)
            messages.append(t.text)
    return pairs


def check_encoder(kb: KnowledgeBase, train_sha: str, train_path: str) -> dict[str, Any] | None:
    """The card of the KB's fine-tuned encoder, if it has one; refuses (EvalError) an encoder
    fine-tuned on another file than ``train_path``: it may have learned from the scored
    conversations."""
    from chatrec.retrieval.encoder_ft import encoder_dir, read_card

    folder = encoder_dir(kb.root)
    card = read_card(folder)
    if card is not None and card.get("train_sha256") != train_sha:
        raise EvalError(
            f"{folder} was fine-tuned on {card.get('train', '?')} (sha256 {str(card.get('train_sha256'))[:12]}), "
            f"not on the training file {train_path} (sha256 {train_sha[:12]}): it may have learned from the scored "
            f"conversations. Run `chatrec --kb {kb.root} fit-encoder --train {train_path}`, or remove {folder}."
        )
    return card
