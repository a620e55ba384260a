"""Fine-tuning benchmark: does a LoRA trained on past QA logs beat the base model on unseen questions?

    python benchmarks/bench_finetune.py --data ../shared/data/bitext/bitext_cs_training_v1.csv \
        [--quick] [--out benchmarks/results/finetune.json] [--work DIR] [--seed 7]

1. Import the Bitext CSV with the ``bitext`` preset (PII-masked, ``{{Placeholders}}`` as
   template slots) into a KB inside the work folder (never into the repository).
2. Split by question: questions are normalised (lower case, punctuation and whitespace
   removed) and exact duplicates grouped; questions whose MiniLM cosine is >= 0.9 join
   the same group (union-find, so near-duplicate chains stay together); whole groups go
   to train or test with a seeded shuffle. Rows whose answer seeded a template stay in
   train (the template text is in every prompt). The largest train-test cosine is
   measured and must be < 0.9. Only train conversations go into the KB the pipeline
   retrieves templates from.
3. Evaluate the base model (SmolLM2-135M, NF4) on test rows, train a LoRA with
   ``chatrec.train.sft.train`` on train rows (the default ``TrainConfig``; see BENCH_TRAIN
   below for the two monitoring/budget settings the benchmark adds), and evaluate it as
   it is served: the NF4 base with the adapter applied at run time by peft
   (``load_model`` with the adapter), on the same rows with the same prompts.
4. Metrics, each with a seeded percentile bootstrap 95% CI and a paired CI for LoRA - base:
   ROUGE-L F1 and MiniLM cosine of the greedy reply vs the reference answer; reference
   perplexity (loss on the reply tokens only, given the inference prompt); intent
   accuracy of the template the pipeline retrieves (``Planner.plan().decision``; it does
   not depend on the LLM, so it is the same for both and reported once).

Prompts are built by ``Planner.plan`` exactly as a live turn builds them (system prompt,
retrieved template with its slots filled, the question). Generation is greedy with the
serving backend's repetition penalty (1.15), batched with left padding.

The default run sizes itself to finish in 30 minutes on a 2-core CPU: the base model
is evaluated first, and training gets the time that is left after reserving the same
time again for the LoRA evaluation (``time_budget_s``); it stops early,
and says so in the results, only if 150 steps do not fit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import random
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "bitext" / "bitext_cs_training_v1.csv"
NEAR_DUP = 0.9
REPETITION_PENALTY = 1.15  # as chatrec.llm.transformers_backend serves

# Profiles. gen_rows: generated + scored by ROUGE-L and embedding similarity; ppl_rows:
# reference perplexity (one forward pass, much cheaper than generating); intent_rows:
# template retrieval only (no LLM). The three are prefixes of one seeded order of test
# questions (one per near-duplicate group).
PROFILES: dict[str, dict[str, Any]] = {
    "default": {
        "max_rows": None,
        "test_share": 0.1,
        "gen_rows": 24,
        "ppl_rows": 48,
        "intent_rows": 200,
        "max_new_tokens": 96,
        "gen_batch": 8,
        "ppl_batch": 4,
        "budget_s": 1800.0,
        "train": {},
    },
    "quick": {
        "max_rows": 600,
        "test_share": 0.1,
        "gen_rows": 4,
        "ppl_rows": 8,
        "intent_rows": 24,
        "max_new_tokens": 24,
        "gen_batch": 4,
        "ppl_batch": 4,
        "budget_s": 170.0,
        "train": {"max_steps": 3, "eval_steps": 1000, "save_steps": 1000, "max_eval_examples": 1},
    },
}
# What the benchmark changes in TrainConfig() besides the profile's own overrides:
#  - max_eval_examples 8: the training-time eval loss is only a progress signal here (the
#    benchmark's own test rows are the evaluation), 32 examples would cost ~5 minutes;
#  - time_budget_s: whatever keeps the whole run inside the profile's budget.
BENCH_TRAIN = {"max_eval_examples": 8}
EVAL_ROWS_FOR_TRAINING = 8  # test-split rows outside the scored ones, for the eval loss only


# ------------------------------------------------------------------ split


def normalise_question(text: str) -> str:
    """Lower case, punctuation and whitespace removed: what counts as an exact duplicate."""
    return re.sub(r"[\W_]+", "", text.casefold())


class UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _blocks(n: int, size: int = 2048):
    for start in range(0, n, size):
        yield start, min(start + size, n)


def question_groups(
    questions: Sequence[str], embeddings: np.ndarray, threshold: float = NEAR_DUP
) -> tuple[list[int], dict[str, int]]:
    """Group id per row: exact duplicates (after normalisation) and pairs with cosine
    >= ``threshold`` (embeddings are L2-normalised) share a group, transitively."""
    n = len(questions)
    uf = UnionFind(n)
    first: dict[str, int] = {}
    exact = 0
    for i, q in enumerate(questions):
        key = normalise_question(q)
        if key in first:
            uf.union(first[key], i)
            exact += 1
        else:
            first[key] = i
    near = 0
    for a0, a1 in _blocks(n):
        sims = embeddings[a0:a1] @ embeddings.T
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist()):
            i = a0 + r
            if c > i:
                near += 1
                uf.union(i, c)
    roots = [uf.find(i) for i in range(n)]
    return roots, {"exact_duplicate_rows": exact, "near_duplicate_pairs": near}


def split_groups(
    groups: Sequence[int], test_share: float, seed: int, pinned_train: set[int] = frozenset()
) -> tuple[list[int], list[int], dict[str, Any]]:
    """Whole groups to train or test (seeded); groups holding a ``pinned_train`` row stay in train."""
    members: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    pinned_groups = {groups[i] for i in pinned_train}
    order = sorted(members)
    random.Random(seed).shuffle(order)
    target = round(test_share * len(groups))
    test: list[int] = []
    for g in order:
        if len(test) >= target:
            break
        if g in pinned_groups or len(test) + len(members[g]) > target + max(1, target // 20):
            continue  # keep a pinned group in train; skip a group that would overshoot a lot
        test.extend(members[g])
    test_set = set(test)
    train = [i for i in range(len(groups)) if i not in test_set]
    sizes = sorted((len(m) for m in members.values()), reverse=True)
    stats = {
        "groups": len(members),
        "largest_group": sizes[0] if sizes else 0,
        "singleton_groups": sum(1 for s in sizes if s == 1),
        "train_rows": len(train),
        "test_rows": len(test),
        "train_groups": len({groups[i] for i in train}),
        "test_groups": len({groups[i] for i in test}),
        "pinned_train_rows": len(pinned_train),
        "pinned_train_groups": len(pinned_groups),
    }
    return sorted(train), sorted(test), stats


def max_cross_similarity(embeddings: np.ndarray, a: Sequence[int], b: Sequence[int]) -> float:
    if not len(a) or not len(b):
        return float("nan")
    ea, eb = embeddings[list(a)], embeddings[list(b)]
    best = -1.0
    for s0, s1 in _blocks(len(ea)):
        best = max(best, float((ea[s0:s1] @ eb.T).max()))
    return best


def representatives(groups: Sequence[int], rows: Sequence[int], seed: int) -> list[int]:
    """One row per group among ``rows`` (the first in file order), in a seeded order."""
    seen: dict[int, int] = {}
    for i in sorted(rows):
        seen.setdefault(groups[i], i)
    reps = sorted(seen.values())
    random.Random(seed + 1).shuffle(reps)
    return reps


# ------------------------------------------------------------------ statistics


def bootstrap(
    base: Sequence[float],
    lora: Sequence[float],
    stat: Callable[[np.ndarray], float] | None = None,
    n: int = 2000,
    seed: int = 7,
    weights: tuple[Sequence[float], Sequence[float]] | None = None,
) -> dict[str, Any]:
    """Point estimates and percentile 95% CIs for base, LoRA and the paired LoRA - base.

    Rows are resampled together (paired). ``weights`` (per-row token counts) turns the
    statistic into a ratio of sums: ``exp(sum(nll) / sum(tokens))`` for perplexity."""
    b, lo = np.asarray(base, dtype=float), np.asarray(lora, dtype=float)
    assert len(b) == len(lo) and len(b) > 0
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(b), size=(n, len(b)))
    if weights is None:
        f = stat or (lambda x: float(np.mean(x)))
        point_b, point_l = f(b), f(lo)
        sb = np.array([f(b[i]) for i in idx])
        sl = np.array([f(lo[i]) for i in idx])
    else:
        wb, wl = np.asarray(weights[0], dtype=float), np.asarray(weights[1], dtype=float)
        point_b, point_l = math.exp(b.sum() / wb.sum()), math.exp(lo.sum() / wl.sum())
        sb = np.exp(b[idx].sum(1) / wb[idx].sum(1))
        sl = np.exp(lo[idx].sum(1) / wl[idx].sum(1))
    d = sl - sb

    def ci(x: np.ndarray) -> list[float]:
        return [float(np.percentile(x, 2.5)), float(np.percentile(x, 97.5))]

    return {
        "n": int(len(b)),
        "base": float(point_b),
        "base_ci": ci(sb),
        "lora": float(point_l),
        "lora_ci": ci(sl),
        "diff": float(point_l - point_b),
        "diff_ci": ci(d),
        "resamples": n,
    }


def markdown_table(metrics: dict[str, dict[str, Any]]) -> str:
    def fmt(x: float) -> str:
        return f"{x:.3f}" if abs(x) < 100 else f"{x:.1f}"

    lines = ["| metric | n | base [95% CI] | LoRA [95% CI] | LoRA - base [95% CI] |", "|---|---|---|---|---|"]
    for name, m in metrics.items():
        lines.append(
            f"| {name} | {m['n']} | {fmt(m['base'])} [{fmt(m['base_ci'][0])}, {fmt(m['base_ci'][1])}] | "
            f"{fmt(m['lora'])} [{fmt(m['lora_ci'][0])}, {fmt(m['lora_ci'][1])}] | "
            f"{fmt(m['diff'])} [{fmt(m['diff_ci'][0])}, {fmt(m['diff_ci'][1])}] |"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------ model evaluation


def generate(
    model: Any, tok: Any, prompts: list[list[dict]], max_new_tokens: int, batch_size: int, desc: str = "generate"
) -> list[str]:
    """Greedy replies, batched with left padding (prompts sorted by length to pad little)."""
    import torch
    from tqdm import tqdm

    texts = [tok.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts]
    order = sorted(range(len(texts)), key=lambda i: len(tok(texts[i], add_special_tokens=False)["input_ids"]))
    out: list[str] = [""] * len(texts)
    side = tok.padding_side
    tok.padding_side = "left"
    try:
        for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch"):
            chunk = order[start : start + batch_size]
            enc = tok([texts[i] for i in chunk], return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.inference_mode():
                ids = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    repetition_penalty=REPETITION_PENALTY,
                    pad_token_id=tok.pad_token_id,
                )
            for i, row in zip(chunk, ids[:, enc["input_ids"].shape[1] :]):
                out[i] = tok.decode(row, skip_special_tokens=True).strip()
    finally:
        tok.padding_side = side
    return out


def reply_nll(
    model: Any, tok: Any, prompts: list[list[dict]], replies: list[str], batch_size: int, desc: str = "perplexity"
) -> list[tuple[float, int]]:
    """``(sum of negative log-likelihood, tokens)`` of each reply given its prompt: the loss
    on the reply tokens only (the reply and its end-of-turn marker), as in training."""
    import torch
    from tqdm import tqdm

    seqs: list[tuple[list[int], int]] = []
    for p, r in zip(prompts, replies):
        head = list(
            tok.apply_chat_template(p, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
        )
        full = list(
            tok.apply_chat_template(p + [{"role": "assistant", "content": r}], tokenize=True, return_dict=True)[
                "input_ids"
            ]
        )
        if full[: len(head)] != head:
            raise ValueError("the chat template does not extend the prompt with the reply")
        seqs.append((full, len(head)))
    out: list[tuple[float, int]] = [(0.0, 0)] * len(seqs)
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i][0]))
    for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch"):
        chunk = order[start : start + batch_size]
        width = max(len(seqs[i][0]) for i in chunk)
        ids = torch.full((len(chunk), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for j, i in enumerate(chunk):
            s = seqs[i][0]
            ids[j, : len(s)] = torch.tensor(s)
            mask[j, : len(s)] = 1
        with torch.inference_mode():
            logits = model(input_ids=ids, attention_mask=mask).logits
        for j, i in enumerate(chunk):
            full, head = seqs[i]
            target = torch.tensor(full[head:])
            pred = logits[j, head - 1 : len(full) - 1].float()
            nll = torch.nn.functional.cross_entropy(pred, target, reduction="sum")
            out[i] = (float(nll), len(target))
    return out


def evaluate_model(
    name: str,
    model_path: str,
    cache_dir: Path,
    prompts: list[list[dict]],
    refs: list[str],
    n_gen: int,
    n_ppl: int,
    profile: dict[str, Any],
    adapter: str | None = None,
) -> dict[str, Any]:
    from chatrec.config import LLMSettings
    from chatrec.llm.transformers_backend import load_model

    t0 = time.perf_counter()
    model, tok = load_model(LLMSettings(model=model_path, quantization="nf4", adapter=adapter), cache_dir)
    t_load = time.perf_counter() - t0
    t1 = time.perf_counter()
    replies = generate(
        model, tok, prompts[:n_gen], profile["max_new_tokens"], profile["gen_batch"], desc=f"{name}: generate"
    )
    t_gen = time.perf_counter() - t1
    t2 = time.perf_counter()
    nll = reply_nll(model, tok, prompts[:n_ppl], refs[:n_ppl], profile["ppl_batch"], desc=f"{name}: perplexity")
    t_ppl = time.perf_counter() - t2
    new_tokens = sum(len(tok(r, add_special_tokens=False)["input_ids"]) for r in replies)
    del model
    return {
        "replies": replies,
        "nll": nll,
        "seconds": {"load": round(t_load, 1), "generate": round(t_gen, 1), "perplexity": round(t_ppl, 1)},
        "generated_tokens": new_tokens,
        "generate_tokens_per_s": round(new_tokens / max(t_gen, 1e-9), 2),
    }


def text_scores(replies: list[str], refs: list[str], embedder: Any) -> dict[str, list[float]]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rouge = [scorer.score(ref, hyp)["rougeL"].fmeasure for hyp, ref in zip(replies, refs)]
    eh, er = embedder.embed(replies), embedder.embed(refs)
    cos = [float(x) for x in (eh * er).sum(axis=1)]
    return {"rougeL_f1": rouge, "embedding_cosine": cos}


# ------------------------------------------------------------------ the run


def machine_info() -> dict[str, Any]:
    import peft
    import torch
    import transformers
    import trl

    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "trl": trl.__version__,
        "gpu": bool(torch.cuda.is_available()),
        "load_average_at_start": list(os.getloadavg()),
    }


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="Bitext CSV (read in place, never copied)")
    ap.add_argument("--quick", action="store_true", help="a smoke run in under 3 minutes (tiny training, few rows)")
    ap.add_argument("--out", default=None, help="results JSON [benchmarks/results/finetune(_quick).json]")
    ap.add_argument("--work", default=None, help="work folder (kept: KB, adapter) [a temp folder]")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--budget", type=float, default=None, help="wall-clock budget in seconds [1800; quick 170]")
    ap.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (>= 1000)")
    args = ap.parse_args(argv)
    if args.resamples < 1000:
        ap.error("--resamples must be at least 1000")
    profile_name = "quick" if args.quick else "default"
    profile = dict(PROFILES[profile_name])
    budget = args.budget or profile["budget_s"]
    out_path = Path(args.out or ROOT / "benchmarks" / "results" / f"finetune{'_quick' if args.quick else ''}.json")
    data = Path(args.data).resolve()
    if not data.is_file():
        ap.error(f"--data {data}: no such file")

    t_start = time.perf_counter()
    phases: dict[str, float] = {}

    def phase(name: str, since: float) -> float:
        now = time.perf_counter()
        phases[name] = round(now - since, 1)
        print(f"[{now - t_start:7.1f}s] {name}: {now - since:.1f}s", flush=True)
        return now

    sys.path.insert(0, str(ROOT))
    from chatrec.config import apply_offline_env, load_settings

    apply_offline_env()
    from chatrec.chatbot import build_planner
    from chatrec.importers.qa_logs import import_file, write_kb
    from chatrec.kb import load_kb
    from chatrec.llm.threads import configure_threads
    from chatrec.models import llm_path
    from chatrec.retrieval.embeddings import Embedder
    from chatrec.train.examples import build_examples
    from chatrec.train.sft import TrainConfig, train
    from chatrec.turn.pii import mask_pii
    from chatrec.turn.plan import TurnInput
    from chatrec.turn.state import DialogueState

    keep_work = args.work is not None
    work = Path(args.work).resolve() if keep_work else Path(tempfile.mkdtemp(prefix="chatrec-bench-ft-"))
    work.mkdir(parents=True, exist_ok=True)
    configure_threads("bench")  # torch's threads by the rule (chatrec/llm/threads.py), before any torch work
    info = machine_info()
    t = phase("startup", t_start)

    try:
        # 1. import
        kb_all = work / "kb_all"
        rep = import_file(data, kb_all, preset="bitext", on_existing="overwrite", progress=True)
        full = load_kb(kb_all)
        convs = [
            c
            for c in full.transcripts
            if len(c.turns) >= 2 and c.turns[0].role == "user" and c.turns[1].role == "agent"
        ]
        if profile["max_rows"] and len(convs) > profile["max_rows"]:
            convs = random.Random(args.seed).sample(convs, profile["max_rows"])
            convs.sort(key=lambda c: c.conversation_id)
        t = phase("import", t)

        # 2. split by question
        settings = load_settings(kb_dir=str(kb_all), data_dir=str(work / "state"), llm={"backend": "fake"})
        embedder = Embedder(settings.retrieval.embedder)
        questions = [c.turns[0].text for c in convs]
        emb = embedder.embed(questions, batch_size=128, progress=True)
        groups, dup_stats = question_groups(questions, emb, NEAR_DUP)
        pinned = {i for i, c in enumerate(convs) if c.turns[1].template_id}
        train_rows, test_rows, split_stats = split_groups(groups, profile["test_share"], args.seed, pinned)
        cross = max_cross_similarity(emb, train_rows, test_rows)
        if not cross < NEAR_DUP:
            raise RuntimeError(f"split leak: a train and a test question have cosine {cross:.3f}")
        reps = representatives(groups, test_rows, args.seed)
        n_intent = min(profile["intent_rows"], len(reps))
        n_ppl = min(profile["ppl_rows"], n_intent)
        n_gen = min(profile["gen_rows"], n_ppl)
        scored = reps[:n_intent]
        loss_rows = reps[n_intent : n_intent + EVAL_ROWS_FOR_TRAINING]
        split = {
            "rows": len(convs),
            "rows_in_csv_imported": rep.rows_imported,
            "rows_skipped_by_import": len(rep.skipped),
            "near_duplicate_threshold": NEAR_DUP,
            **dup_stats,
            **split_stats,
            "test_rows_merged_into_their_group": len(test_rows) - split_stats["test_groups"],
            "test_rows_dropped": 0,
            "test_rows_dropped_note": "none: no test row is scored twice (one per group), and rows whose "
            "answer seeded a template were kept in train before the split",
            "max_cross_split_cosine": round(cross, 4),
            "scored_rows": {"intent": n_intent, "perplexity": n_ppl, "generation": n_gen},
            "eval_loss_rows_during_training": len(loss_rows),
        }
        t = phase("split", t)

        # 3. the KB the pipeline retrieves from: templates + train conversations only
        kb_train = work / "kb_train"
        if kb_train.exists():
            shutil.rmtree(kb_train)
        by_id = {c.conversation_id: c for c in convs}
        train_ids = [convs[i].conversation_id for i in train_rows]
        write_kb(
            kb_train,
            [by_id[cid].model_dump(mode="json", exclude_none=True) for cid in train_ids],
            [tp.model_dump(mode="json", exclude_none=True) for tp in full.templates.values()],
            "overwrite",
        )
        settings = load_settings(kb_dir=str(kb_train), data_dir=str(work / "state"), llm={"backend": "fake"})
        bot = build_planner(settings, progress=True)
        cfg = TrainConfig(**{**BENCH_TRAIN, **profile["train"], "seed": args.seed})
        n_train = max(8, cfg.max_steps * cfg.batch_size * cfg.grad_accum)  # each example seen once
        train_sample = random.Random(args.seed + 2).sample(train_ids, min(n_train, len(train_ids)))
        train_ex = build_examples(bot, conversation_ids=train_sample)
        from tqdm import tqdm

        plans = []
        for i in tqdm(scored + loss_rows, desc="test prompts", unit="row"):
            plans.append(bot.plan(TurnInput(mask_pii(convs[i].turns[0].text), DialogueState())))
        test_plans, loss_plans = plans[: len(scored)], plans[len(scored) :]
        loss_ex = [
            {"prompt": p.messages, "completion": [{"role": "assistant", "content": convs[i].turns[1].text}]}
            for p, i in zip(loss_plans, loss_rows)
        ]
        prompts = [p.messages for p in test_plans]
        refs = [convs[i].turns[1].text for i in scored]
        t = phase("prompts", t)

        # intent accuracy of the retrieved template (no LLM involved)
        intent_hits = []
        for p, i in zip(test_plans, scored):
            tpl = bot.kb.templates.get(p.decision.template_id or "")
            intent_hits.append(float(bool(tpl) and tpl.intent == convs[i].turns[1].intent))
        routes: dict[str, int] = {}
        for p in test_plans:
            routes[p.decision.route] = routes.get(p.decision.route, 0) + 1

        # 4. base model
        cache_dir = settings.cache_dir
        base_path = llm_path(settings.llm.model, cache_dir)
        base = evaluate_model("base", base_path, cache_dir, prompts, refs, n_gen, n_ppl, profile)
        t = phase("base_eval", t)

        # 5. train, within what is left of the budget after an equal LoRA evaluation
        # reserve: the LoRA eval (~ the base eval; peft on top costs a little more), the final
        # eval loss and adapter save after the budget stops training, scoring, a margin
        reserve = sum(base["seconds"].values()) * 1.15 + 4 * cfg.max_eval_examples + 15 + 20 + 5 + 30
        left = budget - (time.perf_counter() - t_start) - reserve
        cfg.time_budget_s = max(left, 30.0)
        adapter = work / "adapter"
        card = train(bot, adapter, cfg, resume=True, examples=(train_ex, loss_ex))
        t = phase("train", t)

        # 6. evaluate as served: the NF4 base + the adapter at run time (no merge)
        lora = evaluate_model(
            "lora", settings.llm.model, cache_dir, prompts, refs, n_gen, n_ppl, profile, adapter=str(adapter)
        )
        t = phase("lora_eval", t)

        # 7. scores and bootstrap
        sb = text_scores(base["replies"], refs[:n_gen], embedder)
        sl = text_scores(lora["replies"], refs[:n_gen], embedder)
        metrics = {
            "ROUGE-L F1 (reply vs reference)": bootstrap(
                sb["rougeL_f1"], sl["rougeL_f1"], n=args.resamples, seed=args.seed
            ),
            "MiniLM cosine (reply vs reference)": bootstrap(
                sb["embedding_cosine"], sl["embedding_cosine"], n=args.resamples, seed=args.seed
            ),
            "reference perplexity (lower is better)": bootstrap(
                [x for x, _ in base["nll"]],
                [x for x, _ in lora["nll"]],
                n=args.resamples,
                seed=args.seed,
                weights=([k for _, k in base["nll"]], [k for _, k in lora["nll"]]),
            ),
            "intent accuracy of the retrieved template": bootstrap(
                intent_hits, intent_hits, n=args.resamples, seed=args.seed
            ),
        }
        t = phase("scoring", t)
        wall = time.perf_counter() - t_start
        train_metrics = dict(card["metrics"])
        result = {
            "benchmark": "finetune",
            "profile": profile_name,
            "wall_s": round(wall, 1),
            "budget_s": budget,
            "within_budget": wall <= budget,
            "phases_s": phases,
            "machine": {**info, "load_average_at_end": list(os.getloadavg())},
            "data": {
                "csv": str(data),
                "csv_sha256": sha256_file(data),
                "import": {
                    "rows_read": rep.rows_read,
                    "rows_imported": rep.rows_imported,
                    "skipped": len(rep.skipped),
                    "templates": rep.templates,
                    "seconds": round(rep.seconds, 1),
                },
            },
            "config": {
                "seed": args.seed,
                "profile": profile,
                "bootstrap_resamples": args.resamples,
                "train_config": asdict(cfg),
                "bench_train_overrides": {**BENCH_TRAIN, **profile["train"]},
                "train_examples_built": len(train_ex),
                "generation": {
                    "decoding": "greedy",
                    "max_new_tokens": profile["max_new_tokens"],
                    "repetition_penalty": REPETITION_PENALTY,
                    "batch_size": profile["gen_batch"],
                    "padding": "left",
                    "quantization": "nf4 base; the LoRA applied at run time by peft (unmerged), as served",
                },
                "base_model": settings.llm.model,
                "base_path": base_path,
            },
            "split": split,
            "training": {
                "steps": train_metrics.get("steps"),
                "max_steps": cfg.max_steps,
                "stopped_by_time_budget": train_metrics.get("steps", 0) < cfg.max_steps,
                **{k: v for k, v in train_metrics.items() if k != "steps"},
            },
            "metrics": metrics,
            "notes": [
                "intent accuracy comes from template retrieval (Planner.plan), which does not use the LLM: "
                "it is identical for base and LoRA by construction and is reported once (difference 0).",
                f"routes of the scored test questions: {routes}",
                "perplexity is exp(total reply NLL / total reply tokens) over the rows, reply tokens only, "
                "given the same inference prompt; its CI resamples rows.",
                f"replies are capped at {profile['max_new_tokens']} new tokens for both models while references "
                "run longer (median ~150 tokens), so ROUGE-L recall is bounded the same way for both.",
                "CIs: percentile bootstrap over test rows, paired for the difference.",
            ],
            "timing": {
                "base": base["seconds"],
                "lora": lora["seconds"],
                "base_generate_tokens_per_s": base["generate_tokens_per_s"],
                "lora_generate_tokens_per_s": lora["generate_tokens_per_s"],
            },
            # the question and reference stay in the CSV (read it by path): bitext-NNNNNN is its N-th data row
            "examples": [
                {
                    "conversation_id": convs[i].conversation_id,
                    "intent": convs[i].turns[1].intent,
                    "base_reply": base["replies"][k],
                    "lora_reply": lora["replies"][k],
                }
                for k, i in enumerate(scored[: min(3, n_gen)])
            ],
            "per_row": {
                "conversation_ids": [convs[i].conversation_id for i in scored[:n_ppl]],
                "base": {**sb, "reply_nll": base["nll"]},
                "lora": {**sl, "reply_nll": lora["nll"]},
            },
            "work_dir": str(work) if keep_work else None,
        }
    finally:
        if not keep_work:
            shutil.rmtree(work, ignore_errors=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(markdown_table(metrics))
    print(
        f"\nprofile {profile_name}: wall {wall:.0f}s (budget {budget:.0f}s), training steps "
        f"{result['training']['steps']}/{cfg.max_steps}, split: {split['train_rows']} train / "
        f"{split['test_rows']} test rows, max cross-split cosine {split['max_cross_split_cosine']}"
    )
    print(f"results: {out_path}")
    return result


if __name__ == "__main__":
    main()
