"""Simulated customers give feedback to the live chatbot; does the ranking policy learn from it?

Customers are the demo KB's users (kb/users.jsonl, kb/events.jsonl). Each has a hidden taste
built from their own history and stated preferences: brands they bought, rated 4+ or viewed,
brands they say they like (+), brands they dislike (-), items over their budget (-). Each
round, every customer opens a conversation and asks for a category they have shown interest in
(from their history), through ``Chatbot.ask`` on the fake LLM (the ranking is what is learned;
the reply text is the grounded template). They accept each shown item with probability
sigmoid(3 (utility - 1)) / (1 + 0.3 position) and give a thumbs up when they accept anything.
Acceptance draws are common random numbers (hashed on seed, round, user, item), so both arms
meet the same customers.

Arms: ``fusion`` (no learning: the fused order, no exploration) and ``bandit`` (Vowpal
Wabbit cb_adf, epsilon-greedy exploration ``--epsilon``, updated from the store's ranking log
and votes after each round, saved as a new version). Round 1 is before any learning; round k
follows k-1 updates. Reported: accept rate (accepted / shown) per round and arm, mean and 95%
t-interval over seeds, and the paired difference bandit - fusion. Checked on every simulated
turn: each shown item passes the hard filters (``Ranker.allowed`` on the stored state) and the
reply passed the grounding gate (no reply problems).

    .venv/bin/python benchmarks/simulate_feedback.py --seeds 5 --rounds 6

Writes benchmarks/results/simulate_feedback.{json,md}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from chatrec.chatbot import Chatbot  # noqa: E402
from chatrec.config import load_settings  # noqa: E402
from chatrec.kb import KnowledgeBase, load_kb  # noqa: E402
from chatrec.llm.fake import FakeLLM  # noqa: E402
from chatrec.retrieval.chroma import ChromaIndex  # noqa: E402
from chatrec.store.sqlite import SQLiteStore  # noqa: E402
from chatrec.store.stats import service_metrics  # noqa: E402
from chatrec.turn.policy import PolicyStore, update  # noqa: E402
from chatrec.turn.profile import history_of  # noqa: E402
from chatrec.turn.state import DialogueState  # noqa: E402

ARMS = ("fusion", "bandit")


def cache_embeddings() -> None:
    """Memoise sentence embeddings by text (the simulated requests and templated replies repeat):
    the same vectors, computed once, so the CPU goes to the turns themselves."""
    from chatrec.retrieval.embeddings import Embedder

    original = Embedder.embed
    cache: dict[tuple[str, str], np.ndarray] = {}

    def embed(self: Embedder, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if (self.model_name, t) not in cache]
        if missing:
            for t, v in zip(missing, original(self, missing, batch_size, progress)):
                cache[(self.model_name, t)] = v
        if not texts:
            return original(self, texts)
        return np.stack([cache[(self.model_name, t)] for t in texts])

    Embedder.embed = embed  # type: ignore[method-assign]


class Customer:
    """A demo user with a hidden taste from their history and stated preferences."""

    def __init__(self, kb: KnowledgeBase, user_id: str):
        self.id = user_id
        user = kb.users[user_id]
        prefs = user.preferences
        self.budget = prefs.budget
        self.brand: Counter[str] = Counter()
        cats: Counter[str] = Counter()
        for ev in kb.events_of(user_id):
            item = kb.items.get(ev.item_id)
            if item is None:
                continue
            w = {"purchase": 1.0, "view": 0.4}.get(ev.type, 0.0)
            if ev.type == "rating" and ev.rating is not None:
                w = 0.8 if ev.rating >= 4 else -1.0 if ev.rating <= 2 else 0.0
            if ev.type == "return":
                w = -1.0
            self.brand[item.brand or ""] += w  # type: ignore[assignment]
            if ev.type in ("purchase", "view"):
                cats[item.category] += 1
        for b in prefs.brands_liked:
            self.brand[b] += 1.0  # type: ignore[assignment]
        for b in prefs.brands_disliked:
            self.brand[b] -= 2.0  # type: ignore[assignment]
        self.categories = [c for c, _ in cats.most_common(4)]

    def utility(self, kb: KnowledgeBase, item_id: str) -> float:
        item = kb.items[item_id]
        u = min(2.0, self.brand.get(item.brand or "", 0.0))
        if self.budget is not None and item.price is not None and item.price > self.budget:
            u -= 1.0
        return u

    def accepts(self, kb: KnowledgeBase, item_id: str, position: int, draw: float) -> bool:
        p = 1.0 / (1.0 + math.exp(-3.0 * (self.utility(kb, item_id) - 1.0))) / (1.0 + 0.3 * position)
        return draw < p


def draw(*key: object) -> float:
    """A uniform number fixed by ``key`` (common random numbers across arms)."""
    h = hashlib.sha256("|".join(map(str, key)).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def request(category: str, rng: random.Random) -> str:
    words = category.replace("-", " ")
    return rng.choice(
        [f"Can you recommend some {words}?", f"I'm looking for {words}, any suggestions?", f"Show me good {words}"]
    )


def run_arm(
    arm: str, seed: int, rounds: int, epsilon: float, kb: KnowledgeBase, index: ChromaIndex, data_dir: Path, work: Path
) -> dict:
    ranking = {"policy": arm, "explore": epsilon if arm == "bandit" else 0.0}
    settings = load_settings(kb_dir=str(kb.root), data_dir=str(data_dir), llm={"backend": "fake"}, ranking=ranking)
    store = SQLiteStore(work / f"{arm}-{seed}.sqlite3")  # a fresh store: every bandit run starts untrained
    bot = Chatbot(settings, llm=FakeLLM(), kb=kb, index=index, store=store)
    bot.ranker.rng = random.Random(seed)
    versions = PolicyStore(store)  # the versions live in the store, as in production
    customers = [Customer(kb, u) for u in sorted(kb.users)]
    customers = [c for c in customers if c.categories]
    out: dict = {"rounds": [], "violations": 0, "ungrounded": 0, "turns": 0, "update_s": 0.0}
    for rnd in range(1, rounds + 1):
        rng = random.Random(f"{seed}-{rnd}")
        shown = accepted = explored = 0
        first = store.turn_log()[-1]["id"] if store.count("turns") else 0
        for cust in customers:
            msg = request(rng.choice(cust.categories), rng)
            r = bot.ask(msg, user_id=cust.id)
            out["turns"] += 1
            state = DialogueState.model_validate(store.load_state(r.conversation_id))
            history = history_of(kb, cust.id)
            problems = r.trace.get("grounding", {}).get("reply_problems") or []
            out["ungrounded"] += bool(problems)
            any_accept = False
            for pos, rec in enumerate(r.recommendations):
                if bot.ranker.allowed(kb.items[rec.item_id], state, history) is not None:
                    out["violations"] += 1
                shown += 1
                if cust.accepts(kb, rec.item_id, pos, draw(seed, rnd, cust.id, rec.item_id)):
                    bot.feedback(r.turn_id, "accept", rec.item_id)
                    accepted += 1
                    any_accept = True
            if r.recommendations:
                bot.feedback(r.turn_id, "thumbs_up" if any_accept else "thumbs_down")
            logged = store.ranking_log(r.turn_id - 1)
            explored += sum(s["explored"] for rec in logged[:1] for s in rec["shown"])
        m = service_metrics(store.turn_log(first), store.feedback())
        out["rounds"].append(
            {
                "round": rnd,
                "shown": shown,
                "accepted": accepted,
                "accept_rate": accepted / shown if shown else 0.0,
                "explored": explored,
                "thumbs_up_rate": m.thumbs_up_rate,
                "version": bot.ranker.policy.version if bot.ranker.policy else None,
            }
        )
        if arm == "bandit" and rnd < rounds:  # learn from this round's slates, in one small batch
            t0 = time.perf_counter()
            policy = versions.load()
            n = update(policy, store.ranking_log(policy.learned_turn), store.feedback())
            versions.save(policy, {"examples": n, "round": rnd, "seed": seed})
            out["update_s"] += time.perf_counter() - t0
    return out


def t_interval(xs: list[float]) -> tuple[float, float, float]:
    from scipy import stats

    mean = statistics.fmean(xs)
    if len(xs) < 2:
        return mean, mean, mean
    half = stats.t.ppf(0.975, len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs))
    return mean, float(mean - half), float(mean + half)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--epsilon", type=float, default=0.1)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "simulate_feedback"))
    ap.add_argument("--keep", help="keep the stores and the last bandit run's policy versions in this folder")
    args = ap.parse_args()
    t_start = time.perf_counter()
    cache_embeddings()
    kb = load_kb(REPO / "kb")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="simfb-"))
    work.mkdir(parents=True, exist_ok=True)
    data_dir = work / "state"
    settings = load_settings(kb_dir=str(kb.root), data_dir=str(data_dir), llm={"backend": "fake"})
    index = ChromaIndex(settings)
    if not index.is_built(kb):
        index.build(kb)
    runs: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    try:
        for seed in range(args.seeds):
            for arm in ARMS:
                t0 = time.perf_counter()
                res = run_arm(arm, seed, args.rounds, args.epsilon, kb, index, data_dir, work)
                res["wall_s"] = round(time.perf_counter() - t0, 1)
                runs[arm].append(res)
                rates = " ".join(f"{r['accept_rate']:.3f}" for r in res["rounds"])
                checks = f"violations {res['violations']}, ungrounded {res['ungrounded']}, turns {res['turns']}"
                print(f"seed {seed} {arm:>6}: {rates}  ({res['wall_s']} s; {checks})", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    table = []
    for rnd in range(args.rounds):
        row: dict = {"round": rnd + 1}
        for arm in ARMS:
            row[arm] = t_interval([r["rounds"][rnd]["accept_rate"] for r in runs[arm]])
        diffs = [
            b["rounds"][rnd]["accept_rate"] - f["rounds"][rnd]["accept_rate"]
            for b, f in zip(runs["bandit"], runs["fusion"])
        ]
        row["diff"] = t_interval(diffs)
        table.append(row)
    checks = {
        arm: {
            "turns": sum(r["turns"] for r in runs[arm]),
            "hard_filter_violations": sum(r["violations"] for r in runs[arm]),
            "ungrounded_replies": sum(r["ungrounded"] for r in runs[arm]),
        }
        for arm in ARMS
    }
    last = table[-1]["diff"]
    result = {
        "command": " ".join(["python", "benchmarks/simulate_feedback.py", *sys.argv[1:]]),
        "seeds": args.seeds,
        "rounds": args.rounds,
        "epsilon": args.epsilon,
        "customers_per_round": runs["fusion"][0]["turns"] // args.rounds,
        "wall_s": round(time.perf_counter() - t_start, 1),
        "table": table,
        "checks": checks,
        "target_met": bool(last[1] > 0),
        "runs": runs,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    fmt = lambda t: f"{t[0]:.3f} [{t[1]:.3f}, {t[2]:.3f}]"  # noqa: E731
    lines = [
        "# Simulated feedback: accept rate per round",
        "",
        f"`{result['command']}`: {args.seeds} seeds, {result['customers_per_round']} customers per round, "
        f"bandit epsilon {args.epsilon}, wall time {result['wall_s']} s (shared 2-core machine, under load).",
        "",
        "Accept rate = accepted / shown, mean over seeds [95% t-interval]; round 1 is before any learning,",
        "round k follows k-1 policy updates; diff = bandit - fusion, paired by seed.",
        "",
        "| round | fusion (no learning) | bandit (learning) | diff |",
        "|---|---|---|---|",
        *(f"| {r['round']} | {fmt(r['fusion'])} | {fmt(r['bandit'])} | {fmt(r['diff'])} |" for r in table),
        "",
        "Checks over every simulated turn: "
        + "; ".join(
            f"{arm}: {c['turns']} turns, {c['hard_filter_violations']} shown items failing a hard filter, "
            f"{c['ungrounded_replies']} replies with grounding problems"
            for arm, c in checks.items()
        )
        + ".",
        "",
        f"Target (round {args.rounds}, after {args.rounds - 1} updates: the diff's 95% interval excludes 0): "
        f"{'met' if result['target_met'] else 'NOT met'}.",
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
