"""Adapter refresh from feedback: KTO on the store's voted turns, behind a gate (docs/feedback.md).

* **Examples** (:func:`feedback_examples`): every stored conversation with a vote is replayed
  through the live planner (:func:`chatrec.turn.replay.replay`, the same rule as live chat,
  training and evaluation: PII masked, history cut, the logged reply continuing the
  conversation), each turn planned with the items and template it really showed and the
  thumbs-down count before it, so a labelled turn's prompt is the one the live turn had.
  Labels (KTO learns from unpaired good / bad completions): thumbs up -> desirable, thumbs down ->
  undesirable (thumbs decide when a turn has one); otherwise an accepted item -> desirable, a
  rejected one or an *ignored* recommendation (a turn that showed items, got no vote, and the
  customer wrote again after it) -> undesirable.
* **Training** (:func:`train_kto`): TRL's ``KTOTrainer`` on the base model as served (NF4 unless
  ``llm.quantization = "none"``) with a peft LoRA that starts from the current adapter (the
  reference model is a frozen copy of it), or a fresh LoRA (reference = the base).
* **Gate** (:func:`refresh_adapter`): the newest ``holdout`` share of the labelled turns is held
  out; on them the *reward margin* of a model is mean log-probability per reply token of the
  desirable replies minus that of the undesirable ones. Candidate - current has a paired,
  label-stratified bootstrap 95% interval over held-out turns; the candidate is promoted only if
  its lower end is at least ``-margin`` (non-inferiority) and its point estimate is not below 0.
  Every candidate is kept as a version in the store (kind ``adapter``; the peft folder as a
  tar.gz blob, the ranking policy's numbered versions), and the current one is written to
  ``<data_dir>/adapters/feedback`` (``llm.adapter = "feedback"``);
  :meth:`AdapterVersions.rollback` makes the current one's parent current again.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import random
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from chatrec.store.base import Store
from chatrec.turn.pii import mask_pii
from chatrec.turn.plan import Planner, PlanOptions
from chatrec.turn.policy import PolicyStore
from chatrec.turn.replay import replay
from chatrec.types import Conversation, LoggedTurn

log = logging.getLogger(__name__)

FEEDBACK_ADAPTER = "feedback"  # the promoted adapter's folder name under <data_dir>/adapters


def adapter_kind(tenant: str | None = None) -> str:
    """The store's name for a shop's adapter versions: ``adapter``, ``adapter:<tenant>``."""
    return "adapter" if not tenant or tenant == "default" else f"adapter:{tenant}"


def adapter_folder(data_dir: Path, tenant: str | None = None) -> Path:
    """Where the current feedback adapter of a shop is written (``llm.adapter`` = its name)."""
    name = FEEDBACK_ADAPTER if not tenant or tenant == "default" else f"{FEEDBACK_ADAPTER}-{tenant}"
    return Path(data_dir) / "adapters" / name


# ---------------------------------------------------------------- labels and examples


def turn_labels(store: Store, votes: Sequence[dict[str, Any]]) -> dict[int, bool]:
    """turn id -> desirable (True) / undesirable (False), from the votes and the turn log (see the
    module docstring); turns with no label, or with both thumbs, are left out."""
    kinds: dict[int, set[str]] = {}
    for f in votes:
        kinds.setdefault(int(f["turn_id"]), set()).add(f["kind"])
    labels: dict[int, bool] = {}
    for tid, k in kinds.items():
        if "thumbs_up" in k or "thumbs_down" in k:
            if not ("thumbs_up" in k and "thumbs_down" in k):
                labels[tid] = "thumbs_up" in k
        elif "accept" in k:
            labels[tid] = True
        elif "reject" in k:
            labels[tid] = False
    # ignored recommendations: in a conversation with votes, a turn that showed items, got no vote,
    # and was followed by another message of the customer
    for cid in _conversations(store, kinds):
        rows = [r for r in store.turns(cid) if r["status"] == "ok"]
        for row, nxt in zip(rows, rows[1:]):
            if int(row["id"]) not in kinds and json.loads(row["recommended_json"] or "[]") and nxt["user_text"]:
                labels[int(row["id"])] = False
    return labels


def _conversations(store: Store, turn_ids: Iterable[int]) -> list[str]:
    out: dict[str, None] = {}
    for tid in sorted(turn_ids):
        row = store.turn(tid)
        if row is not None:
            out.setdefault(row["conversation_id"], None)
    return list(out)


def feedback_examples(
    store: Store,
    planner: Planner | Callable[[], Planner],
    votes: Sequence[dict[str, Any]] | None = None,
    *,
    after_turn: int = 0,
    tenants: set[int | None] | None = None,
) -> list[dict[str, Any]]:
    """KTO examples ``{"prompt", "completion", "label", "turn_id", "conversation_id"}`` of the
    labelled turns with id > ``after_turn``, oldest first, each prompt rebuilt by the live planner
    (``planner``, or a function that builds it, called only when there is something to replay).
    ``tenants``: only conversations of these tenant ids (site key ids; ``None`` in it: conversations
    without a key; ``tenants=None``: all)."""
    votes = store.feedback() if votes is None else votes
    labels = turn_labels(store, votes)
    wanted = _conversations(store, (t for t in labels if t > after_turn))
    if not wanted:
        return []
    if not isinstance(planner, Planner):
        planner = planner()  # built only when there is something to replay (a cron run often has nothing)
    downs: dict[int, int] = {}
    for f in votes:
        if f["kind"] == "thumbs_down":
            downs[int(f["turn_id"])] = downs.get(int(f["turn_id"]), 0) + 1
    pii = planner.settings.pii
    out: list[dict[str, Any]] = []
    for cid in wanted:
        meta = store.conversation(cid) or {}
        if tenants is not None and meta.get("tenant_id") not in tenants:
            continue
        rows = [r for r in store.turns(cid) if r["status"] == "ok"]  # a cancelled turn left the state as it was
        turns: list[LoggedTurn] = []
        for r in rows:
            turns.append(LoggedTurn(role="user", text=r["user_text"] or ""))
            turns.append(
                LoggedTurn(
                    role="agent",
                    text=r["reply_text"] or "",
                    template_id=r["template_id"],
                    recommended=json.loads(r["recommended_json"] or "[]"),
                )
            )
        started = meta.get("created_at")
        conv = Conversation(
            conversation_id=cid,
            user_id=meta.get("user_id"),
            started_at=started,
            turns=turns,
        )
        down_before = 0
        for step in replay(conv, planner):
            row = rows[step.index // 2]
            tid = int(row["id"])
            turn_input = dataclasses.replace(step.input, negative_feedback=down_before)
            a = step.agent
            plan = planner.plan(
                turn_input
            )  # the live plan; when it shows what the turn showed, its prompt is the live one
            if [r.item_id for r in plan.recs] != a.recommended or (
                a.template_id and plan.decision.template_id != a.template_id
            ):
                # another policy version or exploration chose differently: the logged items and template, explained
                forced = PlanOptions(forced_items=tuple(a.recommended) or None, forced_template=a.template_id)
                plan = planner.plan(turn_input, forced)
            step.continue_with(plan.state)
            down_before += downs.get(tid, 0)
            if tid in labels and tid > after_turn and step.input.text:
                out.append(
                    {
                        "prompt": plan.messages,
                        "completion": [
                            {"role": "assistant", "content": mask_pii(step.reply, keep=pii.keep, ner=pii.ner)}
                        ],
                        "label": labels[tid],
                        "turn_id": tid,
                        "conversation_id": cid,
                    }
                )
    out.sort(key=lambda e: e["turn_id"])
    return out


def relabelled(examples: Sequence[dict[str, Any]], how: str = "logged", seed: int = 0) -> list[dict[str, Any]]:
    """The examples with their logged labels (``logged``), the labels permuted at random over the
    examples (``shuffled``: no signal), or every label inverted (``flipped``); the last two make a
    deliberately worse candidate, to check that the gate blocks it."""
    labels = [bool(e["label"]) for e in examples]
    if how == "shuffled":
        random.Random(seed).shuffle(labels)
    elif how == "flipped":
        labels = [not y for y in labels]
    elif how != "logged":
        raise ValueError(f"labels must be logged, shuffled or flipped, not {how!r}")
    return [{**e, "label": y} for e, y in zip(examples, labels)]


# ---------------------------------------------------------------- versions in the store


class AdapterVersions(PolicyStore):
    """Numbered adapter versions in the shared store (the ranking policy's versioning, kind
    ``adapter``): the peft folder as a tar.gz, its meta, which one is current."""

    def __init__(self, store: Any, kind: str = "adapter", folder: Path | None = None):
        super().__init__(store, kind)
        self.folder = folder  # where the current version is written for the engine (None: nowhere)

    def extract(self, version: str, dest: Path) -> Path:
        """Write ``version``'s peft folder to ``dest`` (replaced as a whole)."""
        dest = Path(dest)
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(self.store.policy_blob(self.kind, version)), mode="r:gz") as tar:
            tar.extractall(tmp, filter="data")
        (tmp / "chatrec_version.json").write_text(json.dumps({"kind": self.kind, "version": version}) + "\n")
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
        return dest

    def save_folder(self, folder: Path, meta: dict[str, Any], promote: bool) -> str:
        """Keep the peft ``folder`` as the next version (current only if ``promote``)."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for p in sorted(Path(folder).iterdir()):
                if p.is_file():
                    tar.add(p, arcname=p.name)
        version = str(self.store.save_policy_version(self.kind, meta, buf.getvalue()))
        if promote:
            self.promote(version)
        return version

    def promote(self, version: str) -> None:
        super().promote(version)
        self.sync()

    def rollback(self) -> str | None:
        """Make the current version's parent (the one current when it was promoted) current again;
        ``None`` when it started from no version (then ``llm.adapter`` as configured serves)."""
        cur = self.current()
        if cur is None:
            raise ValueError("no current adapter version to roll back")
        parent = self.meta(cur).get("parent")
        now = parent if parent in self.versions() else None  # never a blocked version in between
        self.store.set_current_policy(self.kind, now)
        self.sync()
        return now

    def sync(self) -> None:
        """Write the current version to :attr:`folder` (removed when there is none)."""
        if self.folder is None:
            return
        cur = self.current()
        if cur is None:
            shutil.rmtree(self.folder, ignore_errors=True)
        else:
            self.extract(cur, self.folder)


# ---------------------------------------------------------------- model, training, scoring


@dataclass
class KTOParams:
    """One adapter refresh; a fresh adapter's LoRA shape comes from ``[train]``."""

    steps: int = 8
    learning_rate: float = 1e-4
    batch_size: int = 2  # KTO's KL estimate needs 2 or more per batch
    beta: float = 0.1
    seed: int = 7
    max_length: int = 1024  # tokens per example (a prompt listing items is ~750); the oldest history goes first


def load_base(settings: Any) -> tuple[Any, Any]:
    """The base model as served (NF4 unless ``llm.quantization = "none"``) and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from chatrec.llm.transformers_backend import quantization_config
    from chatrec.models import llm_path

    base = llm_path(settings.llm.model, settings.cache_dir)
    tok = AutoTokenizer.from_pretrained(base)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    qc = quantization_config(settings.llm)
    model = AutoModelForCausalLM.from_pretrained(
        base, device_map="cpu", **({"quantization_config": qc} if qc else {"dtype": torch.float32})
    )
    return model, tok


def with_adapter(model: Any, adapter: Path | None, train_settings: Any) -> Any:
    """``model`` with a trainable LoRA: ``adapter``'s weights, or a fresh one (= the base model)."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if adapter is not None:
        return PeftModel.from_pretrained(model, str(adapter), is_trainable=True)
    cfg = LoraConfig(
        r=train_settings.lora_r,
        lora_alpha=train_settings.lora_alpha,
        lora_dropout=0.0,
        target_modules=train_settings.target_modules,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, cfg)


def reply_logprobs(model: Any, tok: Any, examples: Sequence[dict[str, Any]]) -> np.ndarray:
    """Mean log-probability per token of each example's reply given its prompt (the chat template's
    generation prompt, then the reply and its end-of-turn tokens)."""
    import torch

    out = []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for ex in examples:
            prompt = tok.apply_chat_template(ex["prompt"], tokenize=True, add_generation_prompt=True, return_dict=True)
            full = tok.apply_chat_template(ex["prompt"] + ex["completion"], tokenize=True, return_dict=True)
            p, ids = list(prompt["input_ids"]), list(full["input_ids"])
            n = len(p) if ids[: len(p)] == p else len(p) - 1  # a template that merges tokens at the seam
            x = torch.tensor([ids])
            logits = model(input_ids=x).logits[0, :-1].float()
            lp = torch.log_softmax(logits, dim=-1).gather(1, x[0, 1:, None])[:, 0]
            out.append(float(lp[n - 1 :].mean()))
    model.train(was_training)
    return np.array(out)


def train_kto(model: Any, tok: Any, examples: Sequence[dict[str, Any]], params: KTOParams) -> dict:
    """Train ``model`` (a peft model) with TRL's KTOTrainer on ``examples``; returns the figures."""
    from datasets import Dataset
    from trl import KTOConfig, KTOTrainer

    n_des = sum(1 for e in examples if e["label"])
    n_und = len(examples) - n_des
    # KTO's advice: (desirable_weight n_desirable) / (undesirable_weight n_undesirable) in [1, 4/3]
    ratio = n_und / n_des if n_des and n_und else 1.0
    des_w, und_w = (1.15 * ratio, 1.0) if ratio >= 1 else (1.0, 1 / (1.15 * ratio))
    with tempfile.TemporaryDirectory(prefix="chatrec-kto-") as work:
        args = KTOConfig(
            output_dir=work,
            max_steps=params.steps,
            learning_rate=params.learning_rate,
            per_device_train_batch_size=params.batch_size,
            max_length=params.max_length,
            beta=params.beta,
            desirable_weight=des_w,
            undesirable_weight=und_w,
            save_strategy="no",
            logging_steps=1,
            bf16=False,
            fp16=False,
            use_cpu=True,
            report_to="none",
            seed=params.seed,
            dataloader_num_workers=0,
            gradient_checkpointing=False,
            disable_tqdm=True,
        )
        data = Dataset.from_list([{k: e[k] for k in ("prompt", "completion", "label")} for e in examples])
        trainer = KTOTrainer(model=model, args=args, train_dataset=data, processing_class=tok)
        t0 = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - t0
    if "ref" in getattr(model, "peft_config", {}):
        model.delete_adapter("ref")  # the frozen reference copy the trainer added
    model.set_adapter("default")
    return {
        "steps": result.global_step,
        "train_loss": round(float(result.training_loss), 4),
        "train_seconds": round(seconds, 1),
        "desirable_weight": round(des_w, 3),
        "undesirable_weight": round(und_w, 3),
    }


# ---------------------------------------------------------------- the gate


def margin(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean score of the desirable replies minus that of the undesirable ones."""
    return float(scores[labels].mean() - scores[~labels].mean())


def margin_intervals(
    current: np.ndarray, candidate: np.ndarray, labels: np.ndarray, seed: int = 0, n: int = 2000
) -> dict[str, tuple[float, float, float]]:
    """(value, 2.5%, 97.5%) of the current and candidate reward margins and of their difference,
    by a paired bootstrap over held-out turns stratified by label (both sides resampled with the
    same turns)."""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(labels), np.flatnonzero(~labels)
    draws: dict[str, list[float]] = {"current": [], "candidate": [], "difference": []}
    for _ in range(n):
        i = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        a, b = margin(current[i], labels[i]), margin(candidate[i], labels[i])
        draws["current"].append(a)
        draws["candidate"].append(b)
        draws["difference"].append(b - a)
    point = {
        "current": margin(current, labels),
        "candidate": margin(candidate, labels),
        "difference": margin(candidate - current, labels),
    }
    return {
        k: (round(point[k], 4), round(float(np.percentile(v, 2.5)), 4), round(float(np.percentile(v, 97.5)), 4))
        for k, v in draws.items()
    }


@dataclass
class AdapterGateResult:
    version: str | None  # the candidate's saved version (None when nothing was trained)
    promoted: bool
    report: dict[str, Any]


def start_adapter(versions: AdapterVersions, configured: str | None, tmp: Path) -> tuple[Path | None, str, int]:
    """(folder to start from, its name, the last turn it learned): the current version, else the
    configured ``llm.adapter`` (the shipped SFT one), else none (a fresh LoRA)."""
    cur = versions.current()
    if cur is not None:
        return versions.extract(cur, tmp / cur), cur, int(versions.meta(cur).get("learned_turn", 0))
    if configured and Path(configured).exists() and Path(configured).is_dir():
        return Path(configured), str(configured), 0
    return None, "base (no adapter)", 0


def refresh_adapter(
    versions: AdapterVersions,
    settings: Any,
    planner: Planner | Callable[[], Planner],
    store: Store,
    *,
    tenants: set[int | None] | None = None,
    min_turns: int = 20,
    **kwargs: Any,
) -> AdapterGateResult:
    """Build a candidate adapter by KTO from the labelled turns in ``store`` newer than what the
    current one learned and gate it (:func:`gate_adapter`, which takes the other arguments)."""
    with tempfile.TemporaryDirectory(prefix="chatrec-adapter-") as tmpd:
        start = start_adapter(versions, settings.llm.adapter, Path(tmpd))
        votes = store.feedback()
        n = sum(1 for t in turn_labels(store, votes) if t > start[2])
        if n < min_turns:  # too few even before the replay (which builds the planner): say so at once
            report = {"current": start[1], "labelled_turns": n, "desirable": None, "labels": kwargs.get("labels")}
            report["decision"] = f"not enough new labelled turns ({n} < {min_turns})"
            return AdapterGateResult(None, False, report)
        examples = feedback_examples(store, planner, votes, after_turn=start[2], tenants=tenants)
        return gate_adapter(versions, settings, examples, start=start, min_turns=min_turns, **kwargs)


def gate_adapter(
    versions: AdapterVersions,
    settings: Any,
    examples: Sequence[dict[str, Any]],
    *,
    start: tuple[Path | None, str, int] | None = None,
    params: KTOParams | None = None,
    holdout: float = 0.3,
    margin_: float = 0.02,
    min_turns: int = 20,
    labels: str = "logged",
    seed: int = 0,
    model: tuple[Any, Any] | None = None,
) -> AdapterGateResult:
    """Train a candidate on the oldest ``1 - holdout`` of ``examples`` (labelled turns, oldest
    first) from ``start`` (:func:`start_adapter`), compare it with the start on the rest, and
    promote it only if its reward margin is not worse. ``labels``: ``logged``, or ``shuffled`` /
    ``flipped`` for a deliberately worse candidate. ``model``: ``(base model, tokenizer)`` if loaded."""
    params = params or KTOParams()
    with tempfile.TemporaryDirectory(prefix="chatrec-adapter-") as tmpd:
        tmp = Path(tmpd)
        start_dir, start_name, _ = start or start_adapter(versions, settings.llm.adapter, tmp)
        examples = [dict(e) for e in examples]
        report: dict[str, Any] = {
            "current": start_name,
            "labelled_turns": len(examples),
            "desirable": sum(1 for e in examples if e["label"]),
            "holdout": holdout,
            "margin": margin_,
            "labels": labels,
        }
        if len(examples) < min_turns:
            report["decision"] = f"not enough new labelled turns ({len(examples)} < {min_turns})"
            return AdapterGateResult(None, False, report)
        from chatrec.llm.threads import configure_threads
        from chatrec.train.sft import fit_to_context

        configure_threads("train", settings)
        base, tok = model or load_base(settings)
        cut = max(1, int(len(examples) * (1 - holdout)))
        train_ex, held = examples[:cut], examples[cut:]
        fit_to_context(train_ex, tok, params.max_length)  # the oldest history first; a hopeless one is left out
        fit_to_context(held, tok, params.max_length)
        if any(len({e["label"] for e in part}) < 2 for part in (train_ex, held)):
            report["decision"] = "not enough new labelled turns (both labels needed in train and held-out turns)"
            return AdapterGateResult(None, False, report)
        peft_model = with_adapter(base, start_dir, settings.train)
        y = np.array([bool(e["label"]) for e in held])
        t0 = time.perf_counter()
        current_lp = reply_logprobs(peft_model, tok, held)
        report["training"] = train_kto(peft_model, tok, relabelled(train_ex, labels, seed), params)
        candidate_lp = reply_logprobs(peft_model, tok, held)
        report["train_turns"], report["held_out_turns"] = len(train_ex), len(held)
        report["estimates"] = {"reward_margin": margin_intervals(current_lp, candidate_lp, y, seed)}
        report["seconds"] = round(time.perf_counter() - t0, 1)
        point, low, _ = report["estimates"]["reward_margin"]["difference"]
        # not worse with 95% confidence (lower bound >= -margin), and not estimated worse: a candidate
        # whose margin is estimated below the current one is no reason to swap the served adapter
        promoted = low >= -margin_ and point >= 0
        out = tmp / "candidate"
        peft_model.save_pretrained(out, selected_adapters=["default"])
        tok.save_pretrained(out)
        meta = {
            "parent": start_name,
            "learned_turn": max(int(e.get("turn_id", 0)) for e in examples),
            "base_model": settings.llm.model,
            "quantization": settings.llm.quantization,
            "kto": dataclasses.asdict(params),
            "gate": _brief(report),
        }
        version = versions.save_folder(out, meta, promote=promoted)
    report["candidate"] = version
    why = f"candidate - current reward margin {point:.4f}, 95% lower bound {low:.4f}"
    report["decision"] = (
        f"promoted {version}: {why} (>= 0 and >= -{margin_})"
        if promoted
        else f"blocked {version}: {why} ({'< 0' if point < 0 else ''}{' and ' if point < 0 and low < -margin_ else ''}"
        f"{f'< -{margin_}' if low < -margin_ else ''}); {report['current']} stays current"
    )
    return AdapterGateResult(version, promoted, report)


def _brief(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "current": report["current"],
        "train_turns": report.get("train_turns"),
        "held_out_turns": report.get("held_out_turns"),
        "labels": report["labels"],
        "reward_margin": report.get("estimates", {}).get("reward_margin", {}).get("difference"),
    }


def report_text(report: dict[str, Any]) -> str:
    """The adapter gate's report as text."""
    lines = [
        f"current adapter: {report['current']}; new labelled turns: {report['labelled_turns']}"
        + (f" ({report['desirable']} desirable)" if report.get("desirable") is not None else "")
        + (f" (train {report['train_turns']}, held out {report['held_out_turns']})" if "train_turns" in report else "")
    ]
    if report.get("labels", "logged") != "logged":
        lines.append(f"candidate trained on {report['labels'].upper()} labels (a deliberately worse candidate)")
    if "training" in report:
        t = report["training"]
        lines.append(f"KTO: {t['steps']} steps, loss {t['train_loss']}, {t['train_seconds']} s")
    est = report.get("estimates")
    if est:
        lines.append("reward margin = mean log-prob per reply token, desirable - undesirable replies (held-out turns)")
        lines.append(f"{'':<14}{'current':>28}{'candidate':>28}{'difference':>28}")
        m = est["reward_margin"]
        cells = [f"{v[0]:.4f} [{v[1]:.4f}, {v[2]:.4f}]" for v in (m["current"], m["candidate"], m["difference"])]
        lines.append(f"{'reward margin':<14}" + "".join(c.rjust(28) for c in cells))
    lines.append(f"decision: {report['decision']}")
    return "\n".join(lines)
