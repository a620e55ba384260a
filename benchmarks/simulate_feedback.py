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

Arms: ``fusion`` (no learning: the fused order, no exploration), ``bandit`` (Vowpal
Wabbit cb_adf, epsilon-greedy exploration ``--epsilon``, updated from the store's ranking log
and votes after each round, saved as a new version) and, with ``--arms ...,adapter``,
``adapter``: the bandit arm on the real default engine (SmolLM2 NF4 with ``kb/adapter``) whose
LoRA is also refreshed after each round by ``chatrec learn --adapter``'s code (KTO on the
round's votes, behind the reward-margin gate; a promoted version is served from the next round).
The adapter changes the words, not the items: its slates are the bandit arm's (checked), so its
accept rate is the bandit's by construction and its own measure is the reply: the share of the
model's drafts that pass the grounding check, per round. Round 1 is before any learning; round k
follows k-1 updates. Reported: accept rate (accepted / shown) per round and arm, mean and 95%
t-interval over seeds, and the paired difference bandit - fusion. Checked on every simulated
turn: each shown item passes the hard filters (``Ranker.allowed`` on the stored state) and the
reply passed the grounding gate (no reply problems).

    .venv/bin/python benchmarks/simulate_feedback.py --seeds 10 --rounds 6
    .venv/bin/python benchmarks/simulate_feedback.py --arms fusion,bandit,adapter --seeds 3 --rounds 4 \
        --customers 24 --out benchmarks/results/simulate_feedback_adapter

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

from chatrec.chatbot import Chatbot, build_planner  # noqa: E402
from chatrec.config import load_settings  # noqa: E402
from chatrec.eval.offpolicy import _order, _scores, learn_and_gate  # noqa: E402
from chatrec.kb import KnowledgeBase, load_kb  # noqa: E402
from chatrec.llm.fake import FakeLLM  # noqa: E402
from chatrec.retrieval.chroma import ChromaIndex  # noqa: E402
from chatrec.store.sqlite import SQLiteStore  # noqa: E402
from chatrec.store.stats import service_metrics  # noqa: E402
from chatrec.train.kto import AdapterVersions, KTOParams, refresh_adapter  # noqa: E402
from chatrec.turn.policy import BanditPolicy, PolicyStore, update  # noqa: E402
from chatrec.turn.profile import history_of  # noqa: E402
from chatrec.turn.state import DialogueState  # noqa: E402

ARMS = ("fusion", "bandit", "gated", "adapter")
MIN_TURNS = 12  # labelled turns an adapter refresh needs (a round of --customers 24 gives about 20)


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


def true_value(kb: KnowledgeBase, customer: Customer, policy: BanditPolicy, record: dict) -> float:
    """Expected accepts of ``policy``'s own slate for a logged turn, by the customer's accept model
    (what the gate's off-policy estimates try to tell without knowing it)."""
    rows = record["candidates"]
    slate = _order(_scores(policy, record["context"], rows), rows)[: len(record["shown"])]
    return sum(
        1.0 / (1.0 + math.exp(-3.0 * (customer.utility(kb, rows[i]["item_id"]) - 1.0))) / (1.0 + 0.3 * k)
        for k, i in enumerate(slate)
    )


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
    arm: str,
    seed: int,
    rounds: int,
    epsilon: float,
    kb: KnowledgeBase,
    index: ChromaIndex,
    data_dir: Path,
    work: Path,
    customers_n: int | None = None,
    kto_steps: int = 8,
    fusion_explore: float = 0.0,
) -> dict:
    learning = arm in ("bandit", "gated", "adapter")
    ranking = {"policy": "bandit" if learning else "fusion", "explore": epsilon if learning else fusion_explore}
    llm: dict = {"backend": "fake"} if arm != "adapter" else {}  # adapter: the default engine and kb/adapter
    settings = load_settings(kb_dir=str(kb.root), data_dir=str(data_dir), llm=llm, ranking=ranking)
    work.mkdir(parents=True, exist_ok=True)
    store = SQLiteStore(work / f"{arm}-{seed}.sqlite3")  # a fresh store: every learning run starts untrained
    bot = Chatbot(settings, llm=FakeLLM() if arm != "adapter" else None, kb=kb, index=index, store=store)
    bot.ranker.rng = random.Random(seed)
    versions = PolicyStore(store)  # the versions live in the store, as in production
    adapters = AdapterVersions(store, folder=work / f"adapter-{seed}") if arm == "adapter" else None
    customers = [Customer(kb, u) for u in sorted(kb.users)]
    customers = [c for c in customers if c.categories][:customers_n]
    out: dict = {"rounds": [], "violations": 0, "ungrounded": 0, "turns": 0, "update_s": 0.0, "slates": []}
    for rnd in range(1, rounds + 1):
        rng = random.Random(f"{seed}-{rnd}")
        shown = accepted = explored = drafted = passed = 0
        first = store.turn_log()[-1]["id"] if store.count("turns") else 0
        for cust in customers:
            msg = request(rng.choice(cust.categories), rng)
            r = bot.ask(msg, user_id=cust.id)
            out["turns"] += 1
            out["slates"].append([rec.item_id for rec in r.recommendations])
            state = DialogueState.model_validate(store.load_state(r.conversation_id))
            history = history_of(kb, cust.id)
            grounding = r.trace.get("grounding", {})
            out["ungrounded"] += bool(grounding.get("reply_problems"))
            if not grounding.get("planned"):  # the model drafted this reply
                drafted += 1
                passed += bool(grounding.get("ok"))
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
        row = {
            "round": rnd,
            "shown": shown,
            "accepted": accepted,
            "accept_rate": accepted / shown if shown else 0.0,
            "explored": explored,
            "thumbs_up_rate": m.thumbs_up_rate,
            "version": bot.ranker.policy.version if bot.ranker.policy else None,
        }
        if arm == "adapter":
            row["drafted"], row["draft_pass_rate"] = drafted, passed / drafted if drafted else None
            row["adapter"] = adapters.current() or "kb/adapter"
        out["rounds"].append(row)
        if arm == "gated" and rnd < rounds:  # `chatrec learn` after each round: promoted only through the gate
            t0 = time.perf_counter()
            before = versions.load()
            gate = learn_and_gate(versions, store.ranking_log(0), store.feedback())
            row["gate"] = gate.report["decision"]
            if gate.version is not None:  # what the customers' own accept model says of the same choice
                held = store.ranking_log(before.learned_turn)  # the new turns it was cross-fitted on
                by_id = {c.id: c for c in customers}
                row["gate_truth"] = {
                    name: sum(true_value(kb, by_id[r["context"]["user"]], pol, r) for r in held) / len(held)
                    for name, pol in (("current", before), ("candidate", versions.load(gate.version)))
                }
            out["update_s"] += time.perf_counter() - t0
        elif learning and rnd < rounds:  # learn from this round's slates, in one small batch
            t0 = time.perf_counter()
            policy = versions.load()
            n = update(policy, store.ranking_log(policy.learned_turn), store.feedback())
            versions.save(policy, {"examples": n, "round": rnd, "seed": seed})
            out["update_s"] += time.perf_counter() - t0
        if arm == "adapter" and rnd < rounds:  # and refresh the LoRA from this round's votes
            t0 = time.perf_counter()
            gate = refresh_adapter(  # its own planner, as `chatrec learn` has: replaying draws no live randomness
                adapters,
                settings,
                lambda s=settings, b=bot: build_planner(s, kb=kb, retriever=index, llm=b.llm, store=store),
                store,
                min_turns=MIN_TURNS,
                params=KTOParams(steps=kto_steps, seed=seed),
            )
            row["refresh"] = {
                "decision": gate.report["decision"],
                "reward_margin": gate.report.get("estimates", {}).get("reward_margin", {}).get("difference"),
                "train_turns": gate.report.get("train_turns"),
                "held_out_turns": gate.report.get("held_out_turns"),
                "seconds": round(time.perf_counter() - t0, 1),
            }
            print(f"  seed {seed} round {rnd}: {gate.report['decision']}", flush=True)
            if gate.promoted:  # the engine loads its adapter at start: a new one serves the next round
                rng_state = bot.ranker.rng
                settings = load_settings(
                    kb_dir=str(kb.root), data_dir=str(data_dir), llm={"adapter": str(adapters.folder)}, ranking=ranking
                )
                bot = Chatbot(settings, kb=kb, index=index, store=store)
                bot.ranker.rng = rng_state
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
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed ... first-seed + seeds - 1")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--epsilon", type=float, default=0.1)
    ap.add_argument("--arms", default="fusion,bandit", help=f"comma-separated, of {', '.join(ARMS)}")
    ap.add_argument("--customers", type=int, help="only the first N customers (sorted by id) [all 64]")
    ap.add_argument("--kto-steps", type=int, default=8, help="adapter arm: KTO steps per refresh")
    ap.add_argument(
        "--fusion-explore",
        type=float,
        default=0.0,
        help="the fusion arm explores with this epsilon (it never learns): with --keep, its store is a log "
        "a first `chatrec learn` can learn from",
    )
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "simulate_feedback"))
    ap.add_argument("--keep", help="keep the stores and the last bandit run's policy versions in this folder")
    args = ap.parse_args()
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if not set(arms) <= set(ARMS) or "fusion" not in arms or "bandit" not in arms:
        ap.error(f"--arms: fusion and bandit, and optionally gated and adapter (got {args.arms!r})")
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
    runs: dict[str, list[dict]] = {arm: [] for arm in arms}
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    try:
        for seed in seeds:
            for arm in arms:
                t0 = time.perf_counter()
                res = run_arm(
                    arm,
                    seed,
                    args.rounds,
                    args.epsilon,
                    kb,
                    index,
                    data_dir,
                    work,
                    args.customers,
                    args.kto_steps,
                    args.fusion_explore,
                )
                res["wall_s"] = round(time.perf_counter() - t0, 1)
                runs[arm].append(res)
                rates = " ".join(f"{r['accept_rate']:.3f}" for r in res["rounds"])
                checks = f"violations {res['violations']}, ungrounded {res['ungrounded']}, turns {res['turns']}"
                print(f"seed {seed} {arm:>7}: {rates}  ({res['wall_s']} s; {checks})", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    table = []
    for rnd in range(args.rounds):
        row: dict = {"round": rnd + 1}
        for arm in arms:
            row[arm] = t_interval([r["rounds"][rnd]["accept_rate"] for r in runs[arm]])
        diffs = [
            b["rounds"][rnd]["accept_rate"] - f["rounds"][rnd]["accept_rate"]
            for b, f in zip(runs["bandit"], runs["fusion"])
        ]
        row["diff"] = t_interval(diffs)
        if "gated" in runs:
            row["diff_gated"] = t_interval(
                [
                    g["rounds"][rnd]["accept_rate"] - f["rounds"][rnd]["accept_rate"]
                    for g, f in zip(runs["gated"], runs["fusion"])
                ]
            )
            row["gate"] = [r["rounds"][rnd].get("gate") for r in runs["gated"]]
        if "adapter" in runs:
            row["draft_pass"] = t_interval([r["rounds"][rnd]["draft_pass_rate"] or 0.0 for r in runs["adapter"]])
            row["refresh"] = [r["rounds"][rnd].get("refresh") for r in runs["adapter"]]
        table.append(row)
    checks = {
        arm: {
            "turns": sum(r["turns"] for r in runs[arm]),
            "hard_filter_violations": sum(r["violations"] for r in runs[arm]),
            "ungrounded_replies": sum(r["ungrounded"] for r in runs[arm]),
        }
        for arm in arms
    }
    if "adapter" in runs:  # the adapter changes the words, not the items: the same slates as the bandit arm
        pairs = [(a, b) for ra, rb in zip(runs["adapter"], runs["bandit"]) for a, b in zip(ra["slates"], rb["slates"])]
        checks["adapter"]["slates_equal_to_bandit"] = sum(a == b for a, b in pairs)
    for arm_runs in runs.values():  # the slates were for the check above; the file keeps the figures
        for r in arm_runs:
            r.pop("slates")
    last = table[-1]["diff"]
    result = {
        "command": " ".join(["python", "benchmarks/simulate_feedback.py", *sys.argv[1:]]),
        "seeds": list(seeds),
        "rounds": args.rounds,
        "epsilon": args.epsilon,
        "arms": arms,
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
    names = {
        "fusion": "fusion (no learning)",
        "bandit": "bandit (ranking policy)",
        "gated": "bandit through the gate",
        "adapter": "bandit + adapter refresh",
    }
    head = [names[a] for a in arms] + ["diff bandit - fusion"] + (["diff gated - fusion"] if "gated" in runs else [])
    head += ["adapter arm: drafts passing"] if "adapter" in runs else []

    def cells(r: dict) -> list[str]:
        row = [fmt(r[a]) for a in arms] + [fmt(r["diff"])] + ([fmt(r["diff_gated"])] if "gated" in runs else [])
        return row + ([fmt(r["draft_pass"])] if "adapter" in runs else [])

    lines = [
        "# Simulated feedback: accept rate per round",
        "",
        f"`{result['command']}`: seeds {seeds.start}-{seeds.stop - 1}, {result['customers_per_round']} customers "
        f"per round, bandit epsilon {args.epsilon}, wall time {result['wall_s']} s (2-core machine).",
        "",
        "Accept rate = accepted / shown, mean over seeds [95% t-interval]; round 1 is before any learning,",
        "round k follows k-1 updates; diff = bandit - fusion, paired by seed.",
        "",
        "| round | " + " | ".join(head) + " |",
        "|---" * (len(head) + 1) + "|",
        *(f"| {r['round']} | " + " | ".join(cells(r)) + " |" for r in table),
        "",
        "Checks over every simulated turn: "
        + "; ".join(
            f"{arm}: {c['turns']} turns, {c['hard_filter_violations']} shown items failing a hard filter, "
            f"{c['ungrounded_replies']} replies with grounding problems"
            for arm, c in checks.items()
        )
        + ".",
    ]
    if "gated" in runs:
        decisions = [x["gate"] for r in runs["gated"] for x in r["rounds"] if x.get("gate")]
        promoted = sum(d.startswith("promoted") for d in decisions)
        truths = [x["gate_truth"] for r in runs["gated"] for x in r["rounds"] if x.get("gate_truth")]
        better = sum(t["candidate"] > t["current"] for t in truths)
        pairs = [(x["gate_truth"], x["gate"]) for r in runs["gated"] for x in r["rounds"] if x.get("gate_truth")]
        lines += [
            "",
            f"Gated arm: {promoted} of {len(decisions)} `chatrec learn` runs promoted their candidate. By the "
            f"customers' own accept model, {better} of {len(truths)} candidates were better than the current policy "
            "on the new logged slates the gate scored, by "
            + (
                f"{statistics.fmean(t['candidate'] - t['current'] for t in truths):+.3f} expected accepts per slate "
                "on average."
                if truths
                else "-."
            )
            + (
                " The worst promoted candidate's true difference: "
                f"{min(t['candidate'] - t['current'] for t, d in pairs if d.startswith('promoted')):+.4f}."
                if any(d.startswith("promoted") for _, d in pairs)
                else ""
            ),
        ]
    if "adapter" in runs:
        n = checks["adapter"]["turns"]
        lines += [
            "",
            f"Adapter arm: {checks['adapter']['slates_equal_to_bandit']} of {n} slates equal the bandit arm's "
            "(the adapter writes the words; the ranking policy picks the items).",
            "",
            "Adapter refreshes (KTO on the round's votes, reward-margin gate):",
            "",
            *(
                f"- seed {seed}, after round {i + 1}: {ref['decision']} ({ref['seconds']} s)"
                for seed, r in zip(seeds, runs["adapter"])
                for i, x in enumerate(r["rounds"])
                if (ref := x.get("refresh"))
            ),
        ]
    lines += [
        "",
        f"Target (round {args.rounds}, after {args.rounds - 1} updates: the diff's 95% interval excludes 0): "
        f"{'met' if result['target_met'] else 'NOT met'}.",
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
