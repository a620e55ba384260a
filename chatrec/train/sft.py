"""QLoRA supervised fine-tuning on the shop's past conversations (TRL SFTTrainer, CPU-safe).

Each logged agent reply becomes one example whose prompt is built by
:func:`chatrec.train.examples.build_examples` on the same planner and replay as a live
turn and evaluation (system prompt, profile, KG facts, retrieved items, filled template,
history), with the items
and template the logged agent actually used, so the target only cites what the
prompt shows. Loss is on the reply only. Conversations are split by id
(:func:`chatrec.kb.is_heldout`) so no conversation is in both train and eval.
The adapter is written to a temporary folder and renamed into place, with a
``chatrec_card.json`` beside it (base model, data hash, config, metrics).

Interrupted runs: checkpoints live in ``<out>.work`` until the adapter is final.
A rerun resumes from the newest complete checkpoint there (one without
``trainer_state.json`` was cut off while being written and is discarded), unless
the examples or the model-shaping config changed since, in which case the stale
checkpoints are discarded with a warning. The target folder only ever holds a
complete adapter: a killed run leaves the previous one (or none) in place.

Cost on the 2-core CPU (NF4 base, batch 1, ~450 tokens, torch on 1 thread by the thread
rule of :mod:`chatrec.llm.threads`): see docs/training.md for the measured seconds per step;
the defaults are small (see TrainConfig).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from chatrec.config import TrainSettings
from chatrec.kb.load import FILES
from chatrec.llm.adapter_card import base_weights_sha256, file_sha256
from chatrec.train.examples import build_examples

log = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """Training cannot start (e.g. too little data)."""


# One training run is the ``[train]`` settings section itself: each default (and its
# description) is written once, in :class:`chatrec.config.TrainSettings`.
TrainConfig = TrainSettings


MIN_TRAIN_EXAMPLES = 8
RUN_FILE = "chatrec_run.json"  # in the work folder: what its checkpoints were trained on


def _length(tokenizer: Any, messages: list[dict[str, Any]], generation_prompt: bool = False) -> int:
    ids = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, add_generation_prompt=generation_prompt
    )
    return len(ids["input_ids"])


def fit_to_context(examples: list[dict[str, Any]], tokenizer: Any, max_length: int) -> int:
    """Make examples fit ``max_length`` tokens; return how many were cut.

    The oldest history turns go first (a user message together with the reply that
    followed it), never the system prompt or the current turn. An example whose
    prompt alone still leaves no room for a reply token is removed from
    ``examples`` (there would be nothing to learn from it); a reply that is still
    too long is cut at its end by the trainer. Each case is logged as a warning."""
    cut, kept, dropped = 0, [], 0
    for ex in examples:
        prompt = ex["prompt"]
        trimmed = False
        while len(prompt) > 2 and _length(tokenizer, prompt + ex["completion"]) > max_length:
            # prompt = [system, history..., current user turn]: drop the oldest history turn
            n = 2 if prompt[1]["role"] == "user" and len(prompt) > 3 and prompt[2]["role"] == "assistant" else 1
            del prompt[1 : 1 + n]
            trimmed = True
        cut += trimmed
        if _length(tokenizer, prompt, generation_prompt=True) >= max_length:
            dropped += 1
            continue
        kept.append(ex)
    if cut:
        log.warning("%d example(s) were longer than %d tokens: oldest turns dropped", cut, max_length)
    if dropped:
        log.warning(
            "%d example(s) have a prompt of %d tokens or more even without history: left out", dropped, max_length
        )
    examples[:] = kept
    return cut


class _TimeBudget:
    def __init__(self, seconds: float | None):
        from transformers import TrainerCallback

        budget = seconds
        start = time.monotonic()

        class CB(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if budget is not None and time.monotonic() - start > budget:
                    log.warning("time budget of %.0f s reached at step %d: stopping", budget, state.global_step)
                    control.should_training_stop = True
                    control.should_save = True
                return control

        self.callback = CB()


def _fingerprint(train_ex: list[dict[str, Any]], cfg: TrainConfig, base: str) -> str:
    """What a checkpoint depends on: the examples, the base model and the model-shaping config."""
    shape = {
        k: v
        for k, v in cfg.model_dump().items()
        if k not in ("max_steps", "time_budget_s", "eval_steps", "save_steps", "max_eval_examples")
    }
    h = hashlib.sha256(json.dumps({"base": base, "config": shape}, sort_keys=True).encode())
    for ex in train_ex:
        h.update(json.dumps([ex["prompt"], ex["completion"]], sort_keys=True).encode())
    return h.hexdigest()[:16]


def _prepare_work(work: Path, fingerprint: str, resume: bool) -> bool:
    """Keep only complete checkpoints of the same run; return whether one is left to resume."""
    work.mkdir(parents=True, exist_ok=True)
    run_file = work / RUN_FILE
    ckpts = [p for p in work.iterdir() if p.is_dir() and p.name.startswith("checkpoint-")]
    previous = json.loads(run_file.read_text()).get("fingerprint") if run_file.exists() else None
    if ckpts and (not resume or previous != fingerprint):
        if resume:
            log.warning("checkpoints in %s were trained on other examples or settings: starting afresh", work)
        for p in ckpts:
            shutil.rmtree(p)
        ckpts = []
    for p in list(ckpts):
        if not (p / "trainer_state.json").exists():
            log.warning("checkpoint %s is incomplete (the run was killed while saving it): discarded", p.name)
            shutil.rmtree(p)
            ckpts.remove(p)
    run_file.write_text(json.dumps({"fingerprint": fingerprint}) + "\n")
    return bool(ckpts)


def _replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished ``tmp`` folder to ``out``; the old ``out`` is only removed once replaced."""
    old = out.with_name(out.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def train(
    planner: Any,
    out_dir: str | Path,
    config: TrainConfig | None = None,
    resume: bool = True,
    examples: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None = None,
    callbacks: list[Any] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Train a LoRA adapter on ``planner.kb``'s transcripts; return the card.

    ``examples`` = ``(train, eval)`` prompt-completion examples (from :func:`build_examples`)
    replaces the default split by conversation; ``callbacks`` are extra transformers
    ``TrainerCallback`` objects; ``command``: the command line that rebuilds the adapter (on the card).

    Same examples, base model, config and seed give the same ``adapter_model.safetensors``, byte
    for byte, on the same machine: seeded data order and dropout, ``full_determinism``, torch on
    the thread rule's threads, and no time-based stop unless ``time_budget_s`` is set."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from chatrec.llm.threads import configure_threads
    from chatrec.llm.transformers_backend import quantization_config
    from chatrec.models import llm_path

    configure_threads("train", planner.settings)  # trains on this (main) thread: the thread rule matters most here
    cfg = config or TrainConfig()
    out = Path(out_dir)
    work = out.with_name(out.name + ".work")  # checkpoints live here until the adapter is final

    if examples is None:
        train_ex = build_examples(planner, heldout=False, rank_negatives=cfg.rank_negatives, gated=True)
        eval_ex = build_examples(
            planner, heldout=True, rank_negatives=cfg.rank_negatives, gated=True, limit=cfg.max_eval_examples
        )
    else:
        train_ex, eval_ex = list(examples[0]), list(examples[1])
    eval_ex = eval_ex[: cfg.max_eval_examples]
    if len(train_ex) < MIN_TRAIN_EXAMPLES:
        raise TrainingError(
            f"only {len(train_ex)} training example(s) in {planner.kb.root}; need at least "
            f"{MIN_TRAIN_EXAMPLES} user->agent exchanges in transcripts.jsonl"
        )
    base = llm_path(planner.settings.llm.model, planner.settings.cache_dir)
    tok = AutoTokenizer.from_pretrained(base)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    truncated = fit_to_context(train_ex, tok, cfg.max_length) + fit_to_context(eval_ex, tok, cfg.max_length)
    if len(train_ex) < MIN_TRAIN_EXAMPLES:
        raise TrainingError(
            f"only {len(train_ex)} training example(s) fit in {cfg.max_length} tokens; "
            f"need at least {MIN_TRAIN_EXAMPLES} (raise --max-length)"
        )
    has_ckpt = _prepare_work(work, _fingerprint(train_ex, cfg, base), resume)
    qc = quantization_config(planner.settings.llm)
    model = AutoModelForCausalLM.from_pretrained(
        base, device_map="cpu", **({"quantization_config": qc} if qc else {"dtype": torch.float32})
    )
    trainer = _sft_trainer(cfg, model, tok, train_ex, eval_ex, work, callbacks)
    if has_ckpt:
        log.warning("resuming from the last checkpoint in %s", work)
    t0 = time.perf_counter()
    deterministic = torch.are_deterministic_algorithms_enabled()  # full_determinism turns it on process-wide
    try:
        result = trainer.train(resume_from_checkpoint=True if has_ckpt else None)
    finally:
        torch.use_deterministic_algorithms(deterministic)
    metrics: dict[str, Any] = {
        "train_loss": round(float(result.training_loss), 4),
        "steps": result.global_step,
        "train_seconds": round(time.perf_counter() - t0, 1),
        "train_examples": len(train_ex),
        "rank_examples": sum(1 for e in train_ex if e.get("task") == "rank"),  # the LLM ranker's Yes/No task
        "eval_examples": len(eval_ex),
        "examples_truncated": truncated,
        "resumed": has_ckpt,
    }
    metrics.update(_losses(trainer, result.global_step))

    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    trainer.model.save_pretrained(tmp)
    # the tokenizer is the base model's (loaded from there), and peft's generated model card is an
    # empty template: chatrec_card.json below is the adapter's card
    (tmp / "README.md").unlink(missing_ok=True)
    gguf_file = _write_gguf(tmp, model.config.to_dict())
    card = {
        "base_model": planner.settings.llm.model,
        "base_path": base,
        "base_sha256": base_weights_sha256(base),
        "quantization": planner.settings.llm.quantization,
        "data": {
            "kb": str(planner.kb.root),
            "kb_hash": planner.kb.fingerprint(),
            "kb_files": sorted(FILES.values()),
            "examples": "given by the caller"
            if examples is not None
            else "the KB's training conversations (chatrec.kb.is_heldout false); targets gated (build_examples)",
            "logged_targets_kept": sum(1 for e in train_ex if e.get("logged_passes")),
        },
        "rebuild": command,
        "adapter_sha256": file_sha256(tmp / "adapter_model.safetensors"),
        "config": cfg.model_dump(),
        "metrics": metrics,
        "gguf_adapter": gguf_file,
    }
    (tmp / "chatrec_card.json").write_text(json.dumps(card, indent=2) + "\n")
    _replace_dir(tmp, out)
    shutil.rmtree(work, ignore_errors=True)
    return card


def _write_gguf(folder: Path, base_config: dict[str, Any]) -> str | None:
    """The adapter also as a GGUF LoRA (``adapter_model.gguf``) for the llamacpp backend, when it has one."""
    from chatrec.train.gguf_lora import ConversionError, convert

    try:
        return convert(folder, base_config=base_config).name
    except ConversionError as exc:
        log.warning("no GGUF LoRA written (%s): the llamacpp backend cannot apply this adapter", exc)
        return None


def _sft_trainer(
    cfg: TrainConfig,
    model: Any,
    tok: Any,
    train_ex: list[dict[str, Any]],
    eval_ex: list[dict[str, Any]],
    work: Path,
    callbacks: list[Any] | None,
) -> Any:
    """TRL's SFTTrainer for QLoRA on CPU: loss on the completion only, checkpoints in ``work``."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    cols = ["prompt", "completion"]
    train_ds = Dataset.from_list([{k: e[k] for k in cols} for e in train_ex])
    eval_ds = Dataset.from_list([{k: e[k] for k in cols} for e in eval_ex]) if eval_ex else None
    args = SFTConfig(
        output_dir=str(work),
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        max_length=cfg.max_length,
        completion_only_loss=True,
        eval_strategy="steps" if eval_ds is not None else "no",
        eval_steps=cfg.eval_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=2,
        logging_steps=5,
        bf16=False,
        fp16=False,
        use_cpu=True,
        optim="adamw_torch",
        report_to="none",
        seed=cfg.seed,
        data_seed=cfg.seed,
        full_determinism=True,  # same inputs and seed -> the same adapter bytes (docs/training.md)
        dataloader_num_workers=0,
        disable_tqdm=False,
        gradient_checkpointing=False,
    )
    peft_config = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=cfg.target_modules,
        task_type="CAUSAL_LM",
    )
    return SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tok,
        peft_config=peft_config,
        callbacks=[_TimeBudget(cfg.time_budget_s).callback, *(callbacks or [])],
    )


def _losses(trainer: Any, step: int) -> dict[str, Any]:
    """The final eval loss (evaluated again only if the last step did not) and the loss history."""
    out: dict[str, Any] = {}
    if trainer.eval_dataset is not None:
        last = [h for h in trainer.state.log_history if "eval_loss" in h]
        if last and last[-1].get("step") == step:
            out["eval_loss"] = round(float(last[-1]["eval_loss"]), 4)  # already evaluated at the last step
        else:
            out["eval_loss"] = round(float(trainer.evaluate()["eval_loss"]), 4)
    out["log_history"] = [h for h in trainer.state.log_history if "loss" in h or "eval_loss" in h]
    return out
