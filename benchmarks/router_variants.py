"""Changes to what the learned router reads or how it decides, measured against it side by side
(issue 17, fifth and sixth rounds; all were dropped, docs/routing.md "Fifth round", "Sixth round").

    pip install vaderSentiment   # only for the `vader` variant
    python benchmarks/router_variants.py [--variants base,finetuned,vader] [--epochs 5]
                                         [--blind tests/fixtures/routing/route_heldout5.jsonl]
                                         [--out benchmarks/results/router_variants.json]
    python benchmarks/router_variants.py --variants base,route_model --sets dev --route-min 0.5,0.7,0.8,0.9 \
                                         --out benchmarks/results/router_variants_round6.json
    python benchmarks/router_variants.py --variants route_model --sets dev --route-min 0.5,0.8 --balanced \
                                         --out benchmarks/results/router_variants_round6_balanced.json

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
- ``route_model`` (sixth round, ``--sets dev``): a second logistic regression, over the router's
  training embeddings labelled with their class's route (six classes), overrides the route when
  it is at least ``--route-min`` sure of another one; the template is then the best one of that
  route.

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

# The development sets of the fifth round (route_heldout5.jsonl was its blind set); ``--sets dev``: all of DEV_SETS
FIFTH_ROUND_SETS = tuple(s for s in DEV_SETS if s != "route_heldout5.jsonl")


def training_texts(kb, settings, embedder) -> tuple[list[str], list[str]]:
    """The router's training texts and their intent groups, as ``train_router`` labels them,
    plus the written escalation positives (class ``__escalate__``)."""
    from chatrec.turn import classify as C
    from chatrec.turn import route_examples

    rs = settings.router
    _, examples, rates = C.router_examples(kb, rs)
    examples, _ = C.resolve_labels(examples, embedder.embed([e.text for e in examples]), kb, rs, rates)
    texts, groups = [e.text for e in examples], [C.group_key(e.label, kb) for e in examples]
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


def with_route_model(router, route_min: float, balanced: bool = False) -> None:
    """Patch this router's decision (this object only): a logistic regression over its training
    embeddings labelled by route overrides the route when at least ``route_min`` sure of another."""
    import types

    from sklearn.linear_model import LogisticRegression

    from chatrec.turn import classify as C

    routes = sorted(set(router.class_route.values()))
    y = [routes.index(router.class_route[router.classes[i]]) for i in router.neighbour_labels]
    weights = "balanced" if balanced else None
    model = LogisticRegression(C=10.0, max_iter=3000, class_weight=weights).fit(router.neighbours, y)
    seen: dict = {}

    def decide(self, probs):
        pred = C.TurnClassifier.decide(self, probs)
        q = seen["q"]
        route = routes[int(np.argmax(q))]
        if route == pred.route or float(np.max(q)) < route_min:
            return pred
        if route == "out_of_scope":
            return C.Prediction("out_of_scope", pred.label, pred.confidence, None, None, pred.top)
        gp, group_route = self.grouped(probs)[0], self.group_routes()
        groups = [int(g) for g in np.argsort(-gp) if group_route[int(g)] == route]
        if not groups:
            return pred
        label = self.classes[self.best_in_group(probs, groups[0])]
        tid = None if label.startswith("__") else label
        return C.Prediction(route, label, float(gp[groups[0]]), tid, self.class_intent.get(label), pred.top)

    def predict(self, text, emb, embed=None):
        seen["q"] = model.predict_proba(np.asarray(emb).reshape(1, -1))[0]
        return C.TurnClassifier.predict(self, text, emb, embed)

    router.decide, router.predict = types.MethodType(decide, router), types.MethodType(predict, router)


def score(
    kb,
    embedder_name: str,
    blind: list[dict] | None,
    seed: int,
    sets: tuple[str, ...],
    route_min: float | None = None,
    balanced: bool = False,
) -> dict:
    from chatrec.chatbot import build_planner
    from chatrec.config import load_settings
    from chatrec.turn import classify

    classify._memory.clear()  # a router trained in this process for another variant is not reused
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            kb_dir=str(REPO / "kb"), data_dir=tmp, llm={"backend": "fake"}, retrieval={"embedder": embedder_name}
        )
        planner = build_planner(settings, kb=kb)
        router = planner.router
        out["escalation_threshold"] = router.escalation_threshold
        if route_min is not None:
            with_route_model(router, route_min, balanced)
        try:
            out |= score_sets(planner, blind, seed, sets)
        finally:
            classify._memory.clear()  # nor kept for the next: it may be patched, or built with other features
    return out


def score_sets(planner, blind: list[dict] | None, seed: int, sets: tuple[str, ...]) -> dict:
    from chatrec.turn.plan import PlanOptions
    from chatrec.turn.state import DialogueState

    out: dict = {}
    for name in sets:
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
    right = sum(int(c.split("/")[0]) for name in sets for c in out[name]["by_route"].values())
    n = sum(out[name]["accuracy"]["n"] for name in sets)
    out["all_sets"] = {"right": right, "n": n, "accuracy": round(right / n, 4)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", default="base,finetuned,vader")
    ap.add_argument("--epochs", type=float, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--blind", metavar="PATH", help="a blind labelled set, scored with aggregates only")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "router_variants.json"))
    ap.add_argument("--sets", choices=("fifth", "dev"), default="fifth", help="fifth: the fifth round's; dev: DEV_SETS")
    ap.add_argument("--route-min", default="0.7", help="route_model: comma-separated override confidences")
    ap.add_argument("--balanced", action="store_true", help="route_model: balanced class weights")
    args = ap.parse_args()
    sets = FIFTH_ROUND_SETS if args.sets == "fifth" else DEV_SETS

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
        "sets": list(sets),
        "route_model_class_weights": "balanced" if args.balanced else None,
        "variants": {},
    }
    unknown = set(args.variants.split(",")) - {"base", "finetuned", "vader", "route_model"}
    if unknown:
        ap.error(f"unknown variant(s): {', '.join(sorted(unknown))}")
    runs = [
        (f"route_model@{m}" if v == "route_model" else v, v, float(m) if v == "route_model" else None)
        for v in args.variants.split(",")
        for m in (args.route_min.split(",") if v == "route_model" else [""])
    ]
    for name, variant, route_min in runs:
        t0 = time.perf_counter()
        row: dict = {}
        if variant in ("base", "route_model"):
            row |= score(kb, settings.retrieval.embedder, blind, args.seed, sets, route_min, args.balanced)
        elif variant == "finetuned":
            texts, groups = training_texts(kb, settings, Embedder(settings.retrieval.embedder))
            with tempfile.TemporaryDirectory() as tmp:
                row["finetune"] = finetune(
                    settings.retrieval.embedder, texts, groups, Path(tmp), args.epochs, args.seed
                )
                row |= score(kb, str(Path(tmp) / "model"), blind, args.seed, sets)
        elif variant == "vader":
            plain = with_vader()
            try:
                row |= score(kb, settings.retrieval.embedder, blind, args.seed, sets)
            finally:
                from chatrec.turn import classify

                classify.lexical_features = plain
        row["wall_s"] = round(time.perf_counter() - t0, 1)
        res["variants"][name] = row
        print(
            name,
            {n: row[n]["accuracy"]["value"] for n in sets},
            row["all_sets"],
            row["escalation_test"],
            row.get("blind", {}).get("accuracy"),
            flush=True,
        )
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
