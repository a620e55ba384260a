"""What one evaluation run is: its options, the systems it scores and the headline metrics."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from chatrec.config import EvalSettings

BASELINES = ("popularity", "repeat_last", "copy_mention", "embedding_only")
DESCRIPTIONS = {
    "full": "the full pipeline as configured (with --train: the ranker fitted on the training conversations)",
    "full@configured": "the full system with the configured ranking.w_* fusion weights",
    "popularity": "most popular allowed items",
    "repeat_last": "the items mentioned so far, most recent first",
    "copy_mention": "the items the customer mentioned so far (the triggering message included), most recent first",
    "embedding_only": "dense retrieval only (MiniLM + Chroma), in-stock filter",
    "-kg": "full system without KG candidates, paths and facts",
    "-profile": "full system without the user-as-text profile",
    "-llm_rank": "full system without the LLM relevance score",
    "-history": "full system without the user's purchase history",
    "-adapter": "full system generating with the base model (no LoRA)",
}
HEADLINE = (
    "rec.recall@1",
    "rec.recall@10",
    "rec.recall@50",
    "rec_new.recall@1",
    "rec_new.recall@10",
    "rec_new.recall@50",
    "rec.ndcg@10",
    "rec.mrr@10",
    "service.template_acc",
    "service.rouge_l",
)


class EvalError(ValueError):
    """The evaluation cannot run (bad options, or a resumed run with different options)."""


_DEFAULTS = EvalSettings()


@dataclass
class EvalOptions:
    """One evaluation run: what to replay and where to write, then the run-level options whose
    defaults (and descriptions) are the ``[eval]`` settings section's (:class:`chatrec.config.EvalSettings`):
    ``EvalOptions(transcripts, out, **settings.eval.model_dump())`` builds one from the settings."""

    transcripts: str
    out: str
    ablations: list[str] = field(default_factory=lambda: list(_DEFAULTS.ablations))
    baselines: bool = _DEFAULTS.baselines
    limit: int | None = None  # first N conversations
    sample: int | None = None  # a seeded random sample of N conversations
    seed: int = _DEFAULTS.seed
    workers: int = _DEFAULTS.workers
    generate: bool = _DEFAULTS.generate
    split: str = _DEFAULTS.split  # all | heldout | train
    bootstrap: int = _DEFAULTS.bootstrap
    max_new_tokens: int = _DEFAULTS.max_new_tokens
    fusion: str = _DEFAULTS.fusion  # learned (cross-fitted from the logs) | configured (ranking.w_* as set)
    train: str | None = None  # learn everything from these transcripts (a fitted ranker), never from the scored ones
    fit_sample: int | None = None  # fit the weights on a seeded sample of N training conversations (statistics: all)
    ray: str | None = None  # run the replay on Ray actors: "local" (a CPU-only local instance) or a cluster address

    def fingerprint(self) -> str:
        keep = {k: v for k, v in asdict(self).items() if k not in ("workers", "out", "ray")}
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]
