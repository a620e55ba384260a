"""Dense retrieval alone, base vs fine-tuned bi-encoder, on scored ReDial turns.

For each agent turn with recommended items of the scored conversations (optionally only those
of an eval run's sample, ``--run``), the query is the dialogue context the ranker embeds
(:func:`chatrec.retrieval.encoder_ft.context_text`: the last messages, most recent first) and
the targets are the recommended items that are new there (the same rule as the encoder's
training pairs and the eval's strict-new recall). Every catalogue item is ranked by cosine
similarity, once with the base model (``retrieval.embedder``) and once with the KB's
fine-tuned encoder. Recall is micro-averaged over gold items; the interval of the difference is
a paired bootstrap over conversations. Dialogue text is read from the given files at run time.

    python benchmarks/redial_encoder_recall.py /tmp/redial_kb /tmp/redial_valid/transcripts.jsonl \
        --run /tmp/runs/redial_encoder --out benchmarks/results/redial_encoder_recall.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from chatrec.config import load_settings
from chatrec.eval.learn import encoder_pairs
from chatrec.kb import load_kb
from chatrec.retrieval.embeddings import Embedder
from chatrec.retrieval.encoder_ft import encoder_dir, item_text, load_item_encoder
from chatrec.types import Conversation

KS = (10, 50)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("kb", type=Path, help="the training KB folder (its catalogue and artifacts/encoder)")
    ap.add_argument("scored", type=Path, help="the scored transcripts")
    ap.add_argument("--run", type=Path, help="only the conversations of this eval run (its convs.jsonl)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args()
    kb = load_kb(args.kb)
    keep = None
    if args.run:
        keep = {json.loads(x)["conversation_id"] for x in (args.run / "convs.jsonl").read_text().splitlines() if x}
    convs = [Conversation.model_validate_json(x) for x in args.scored.read_text().splitlines() if x.strip()]
    convs = [c for c in convs if keep is None or c.conversation_id in keep]
    # one (context, gold item text) per new recommended item: the encoder's own pair rule, per conversation
    per_conv = {c.conversation_id: encoder_pairs([c], kb) for c in convs}
    by_text = {item_text(it): i for i, it in kb.items.items()}
    ftenc = load_item_encoder(args.kb, kb.items)
    assert ftenc is not None, f"no fine-tuned encoder in {encoder_dir(args.kb)}"
    base = Embedder(load_settings().retrieval.embedder)
    base_matrix = base.embed([item_text(kb.items[i]) for i in ftenc.ids], batch_size=128)
    models = {"base": (base, base_matrix), "fine-tuned": (ftenc.embedder, ftenc.matrix)}
    cids = sorted(c for c, p in per_conv.items() if p)
    hits = {m: np.zeros((len(cids), len(KS) + 1)) for m in models}
    for n, cid in enumerate(cids):
        contexts: dict[str, set[str]] = {}
        for ctx, text in per_conv[cid]:
            contexts.setdefault(ctx, set()).add(by_text[text])
        ctx_list = list(contexts)
        for m, (emb, matrix) in models.items():
            q = emb.embed(ctx_list)
            for ctx, v in zip(ctx_list, q):
                order = np.argsort(-(matrix @ v), kind="stable")
                gold = contexts[ctx]
                hits[m][n, 0] += len(gold)
                for j, k in enumerate(KS):
                    hits[m][n, 1 + j] += len(gold & {ftenc.ids[x] for x in order[:k]})
    rng = np.random.default_rng(args.seed)
    boot = rng.integers(0, len(cids), size=(args.bootstrap, len(cids)))
    out: dict = {"conversations": len(cids), "gold_items": int(hits["base"][:, 0].sum()), "recall": {}}
    for j, k in enumerate(KS):
        vals = {m: float(h[:, 1 + j].sum() / h[:, 0].sum()) for m, h in hits.items()}
        b, f = hits["base"], hits["fine-tuned"]
        diff = f[boot, 1 + j].sum(1) / f[boot, 0].sum(1) - b[boot, 1 + j].sum(1) / b[boot, 0].sum(1)
        ci = [round(float(np.percentile(diff, q)), 4) for q in (2.5, 97.5)]
        out["recall"][f"rec_new.recall@{k}"] = {
            **{m: round(v, 4) for m, v in vals.items()},
            "diff": round(vals["fine-tuned"] - vals["base"], 4),
            "diff_ci": ci,
        }
        print(f"R@{k} new: base {vals['base']:.4f}  fine-tuned {vals['fine-tuned']:.4f}  diff CI {ci}")
    out["encoder"] = ftenc.card
    if args.out:
        args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
