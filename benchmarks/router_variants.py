"""Two ways to change what the learned router reads, measured against it side by side (issue 17,
fifth round; both were dropped, docs/routing.md "Fifth round").

    pip install vaderSentiment   # only for the `vader` variant
    python benchmarks/router_variants.py [--variants base,finetuned,vader] [--epochs 5]
                                         [--blind tests/fixtures/routing/route_heldout5.jsonl]
                                         [--out benchmarks/results/router_variants.json]

- ``base``: the router as it ships (``train_router`` on the demo KB, MiniLM embeddings).
- ``finetuned``: the SetFit idea with sentence-transformers: MiniLM is first fine-tuned on the
  router's own training texts (the logged messages and written examples exactly as
  ``train_router`` labels them, plus the written escalation positives as one more class),
  with ``BatchAllTripletLoss`` over the intent groups and the group-by-label batch sampler,
  then the router is trained and run on the fine-tuned embeddings. (It is passed as
  ``retrieval.embedder``; the route decision reads nothing else the retriever does.)
- ``vader``: the escalation model's keyword/typography features also get VADER's sentiment
  (``neg``, ``pos``, and the negative part of ``compound``): a 7,500-word lexicon with rules for
  capitals, "!" and negation, written for social-media text, instead of only our word lists.

Each variant is scored on the development sets of the fifth round (``route_mix.jsonl`` to
``route_heldout4.jsonl``) and ``escalation_test.jsonl``, and with ``--blind`` on a blind set
(aggregates only: its messages are never printed or stored; ``route_heldout5.jsonl`` in the fifth
round).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from router import DEV_SETS, FIX, REPO, blind_part, read_jsonl, score_set  # noqa: E402

# The development sets when these variants were measured (route_heldout5.jsonl was the blind set)
SETS = tuple(s for s in DEV_SETS if s != "route_heldout5.jsonl")


def training_texts(kb, settings, embedder) -> tuple[list[str], list[str]]:
    """The router's training texts and their intent groups, as ``train_router`` labels them,
    plus the written escalation positives (class ``__escalate__``)."""
    from chatrec.turn import classify as C
    from chatrec.turn import route_examples

    rs = settings.router
    logs, rates = C.log_examples(kb)
    ex = logs + C.written_examples(kb, rs, with_items=any(e.label == C.RECOMMEND_LABEL for e in logs), rates=rates)
    x = embedder.embed([e.text for e in ex])
    ex = C.to_nearest_chitchat_template(ex, x, kb, rs)
    ex = C.to_nearest_template(ex, x, C.STOCK_FIT_LABEL, C.both_templates(kb, rs, rates))
    service = sorted(t for t in kb.templates if C._class_route(t, kb, rs, rates) == "service")
    ex = C.to_nearest_template(ex, x, C.PRODUCT_SERVICE_LABEL, service)
    ex = [e for e in ex if e.label not in (C.STOCK_FIT_LABEL, C.PRODUCT_SERVICE_LABEL)]
    texts, groups = [e.text for e in ex], [C.group_key(e.label, kb) for e in ex]
    esc = [t for t, e, _ in route_examples.ESCALATION if int(e)]
    return texts + esc, groups + ["__escalate__"] * len(esc)


def finetune(base: str, texts: list[str], groups: list[str], out: Path, epochs: float, seed: int) -> dict:
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.losses import BatchAllTripletLoss
    from sentence_transformers.training_args import BatchSamplers

    from chatrec.models import embedder_path

    names = sorted(set(groups))
    model = SentenceTransformer(embedder_path(base), device="cpu")
    model.max_seq_length = 64
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=epochs,
        per_device_train_batch_size=64,
        learning_rate=2e-5,
        warmup_steps=0.1,
        seed=seed,
        data_seed=seed,
        batch_sampler=BatchSamplers.GROUP_BY_LABEL,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
    )
    data = Dataset.from_dict({"sentence": texts, "label": [names.index(g) for g in groups]})
    t0 = time.perf_counter()
    result = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=data, loss=BatchAllTripletLoss(model)
    ).train()
    model.save_pretrained(str(out / "model"))
    return {
        "texts": len(texts),
        "groups": len(names),
        "epochs": epochs,
        "steps": int(result.global_step),
        "train_loss": round(float(result.training_loss), 4),
        "train_s": round(time.perf_counter() - t0, 1),
    }


def with_vader():
    """Append VADER's sentiment to the escalation model's lexical features (this process only)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from chatrec.turn import classify as C

    analyzer, plain = SentimentIntensityAnalyzer(), C.lexical_features

    def lexical(text: str) -> np.ndarray:
        s = analyzer.polarity_scores(text)
        extra = np.asarray([s["neg"], s["pos"], max(0.0, -s["compound"])], dtype=np.float32)
        return np.concatenate([plain(text), extra])

    C.lexical_features = lexical
    return plain


def score(kb, embedder_name: str, blind: list[dict] | None, seed: int) -> dict:
    from chatrec.chatbot import build_planner
    from chatrec.config import load_settings
    from chatrec.turn import classify
    from chatrec.turn.plan import PlanOptions
    from chatrec.turn.state import DialogueState

    classify._memory.clear()  # a router trained in this process for another variant is not reused
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            kb_dir=str(REPO / "kb"), data_dir=tmp, llm={"backend": "fake"}, retrieval={"embedder": embedder_name}
        )
        planner = build_planner(settings, kb=kb)
        router = planner.router
        out["escalation_threshold"] = router.escalation_threshold
        for name in SETS:
            res = score_set(planner, read_jsonl(FIX / name), seed)
            out[name] = {k: res[k] for k in ("accuracy", "by_route", "handoff", "misrouted")}
        tp = fp = fn = 0
        for row in read_jsonl(FIX / "escalation_test.jsonl"):
            decision, _ = planner._route(row["text"], DialogueState(), False, PlanOptions(), {})
            said, truth = decision.route == "handoff", bool(row.get("escalate"))
            tp, fp, fn = tp + (said and truth), fp + (said and not truth), fn + (truth and not said)
        out["escalation_test"] = {"tp": tp, "fp": fp, "fn": fn}
        if blind is not None:
            out["blind"] = blind_part(planner, blind, seed)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", default="base,finetuned,vader")
    ap.add_argument("--epochs", type=float, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--blind", metavar="PATH", help="a blind labelled set, scored with aggregates only")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "router_variants.json"))
    args = ap.parse_args()

    import torch

    from chatrec.config import load_settings
    from chatrec.kb import load_kb
    from chatrec.retrieval.embeddings import Embedder

    torch.set_num_threads(2)
    kb = load_kb(REPO / "kb")
    settings = load_settings(kb_dir=str(REPO / "kb"), llm={"backend": "fake"})
    blind = read_jsonl(Path(args.blind)) if args.blind else None
    res: dict = {
        "machine": f"{platform.processor() or platform.machine()}, torch threads 2, {time.strftime('%Y-%m-%d %H:%M')}",
        "blind_path": Path(args.blind).name if args.blind else None,
        "variants": {},
    }
    for variant in args.variants.split(","):
        t0 = time.perf_counter()
        row: dict = {}
        if variant == "base":
            row |= score(kb, settings.retrieval.embedder, blind, args.seed)
        elif variant == "finetuned":
            texts, groups = training_texts(kb, settings, Embedder(settings.retrieval.embedder))
            with tempfile.TemporaryDirectory() as tmp:
                row["finetune"] = finetune(
                    settings.retrieval.embedder, texts, groups, Path(tmp), args.epochs, args.seed
                )
                row |= score(kb, str(Path(tmp) / "model"), blind, args.seed)
        elif variant == "vader":
            plain = with_vader()
            try:
                row |= score(kb, settings.retrieval.embedder, blind, args.seed)
            finally:
                from chatrec.turn import classify

                classify.lexical_features = plain
        else:
            ap.error(f"unknown variant {variant}")
        row["wall_s"] = round(time.perf_counter() - t0, 1)
        res["variants"][variant] = row
        print(
            variant,
            {n: row[n]["accuracy"]["value"] for n in SETS},
            row["escalation_test"],
            row.get("blind", {}).get("accuracy"),
            flush=True,
        )
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
