"""QLoRA supervised fine-tuning on the shop's past conversations (TRL SFTTrainer, CPU-safe).

Each logged agent reply becomes one example whose prompt is built by
:meth:`chatrec.pipeline.Chatbot.plan` exactly as at inference (system prompt,
profile, KG facts, retrieved items, filled template, history), with the items
and template the logged agent actually used, so the target only cites what the
prompt shows. Loss is on the reply only. Conversations are split by id
(:func:`chatrec.kb.is_heldout`) so no conversation is in both train and eval.
The adapter is written to a temporary folder and renamed into place, with a
``chatrec_card.json`` beside it (base model, data hash, config, metrics).

Cost on the 2-core CPU (NF4 base, batch 1, 512 tokens): about 7 s per step and
about 2.5 s per evaluated example, so the defaults are small (see TrainConfig).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chatrec.kb import is_heldout
from chatrec.privacy import mask_pii
from chatrec.state import DialogueState

log = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """Training cannot start (e.g. too little data)."""


@dataclass
class TrainConfig:
    max_steps: int = 150
    time_budget_s: float | None = None
    learning_rate: float = 3e-4
    batch_size: int = 1
    grad_accum: int = 1
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    max_length: int = 512
    eval_steps: int = 50
    save_steps: int = 50
    max_eval_examples: int = 32  # evaluation is a full forward pass per example: keep it small on CPU
    seed: int = 7
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj",
                                                               "gate_proj", "up_proj", "down_proj"])


def build_examples(bot: Any, heldout: bool | None = None) -> list[dict[str, Any]]:
    """Prompt-completion examples from the KB transcripts (``heldout`` None = all)."""
    out = []
    for conv in bot.kb.transcripts:
        if heldout is not None and is_heldout(conv.conversation_id) != heldout:
            continue
        state = DialogueState()
        turns = conv.turns
        for q, a in zip(turns, turns[1:]):
            if q.role != "user" or a.role != "agent":
                continue
            text, reply = mask_pii(q.text), mask_pii(a.text)
            plan = bot.plan(text, state, conv.user_id, forced_items=list(a.recommended) if a.recommended else None,
                            forced_template=a.template_id)
            out.append({"prompt": plan.messages, "completion": [{"role": "assistant", "content": reply}],
                        "conversation_id": conv.conversation_id})
            state = plan.state
            state.history = (state.history + [{"role": "user", "content": text},
                                              {"role": "assistant", "content": reply}])[-2 * bot.settings.history_turns:]
            if a.recommended:
                state.last_recommended = list(a.recommended)
    return out


def fit_to_context(examples: list[dict[str, Any]], tokenizer: Any, max_length: int) -> int:
    """Drop the oldest history messages of prompts that do not fit; return how many were cut."""
    cut = 0
    for ex in examples:
        def length() -> int:
            ids = tokenizer.apply_chat_template(ex["prompt"] + ex["completion"], tokenize=True, return_dict=True)
            return len(ids["input_ids"])
        trimmed = False
        while length() > max_length and len(ex["prompt"]) > 2:
            del ex["prompt"][1]  # the oldest turn after the system prompt
            trimmed = True
        cut += trimmed
    if cut:
        log.warning("%d example(s) were longer than %d tokens: oldest turns dropped", cut, max_length)
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


def train(bot: Any, out_dir: str | Path, config: TrainConfig | None = None, resume: bool = True) -> dict[str, Any]:
    """Train a LoRA adapter on ``bot.kb``'s transcripts; return the card."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from chatrec.llm.transformers_backend import quantization_config
    from chatrec.models import llm_path

    cfg = config or TrainConfig()
    out = Path(out_dir)
    work = out.with_name(out.name + ".work")  # checkpoints live here until the adapter is final
    work.mkdir(parents=True, exist_ok=True)

    train_ex, eval_ex = build_examples(bot, heldout=False), build_examples(bot, heldout=True)
    eval_ex = eval_ex[: cfg.max_eval_examples]
    if len(train_ex) < 8:
        raise TrainingError(f"only {len(train_ex)} training example(s) in {bot.kb.root}; need at least 8 "
                            "user->agent exchanges in transcripts.jsonl")
    base = llm_path(bot.settings.llm.model, bot.settings.cache_dir)
    tok = AutoTokenizer.from_pretrained(base)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    truncated = fit_to_context(train_ex, tok, cfg.max_length) + fit_to_context(eval_ex, tok, cfg.max_length)
    qc = quantization_config(bot.settings.llm)
    model = AutoModelForCausalLM.from_pretrained(base, device_map="cpu",
                                                 **({"quantization_config": qc} if qc else {"dtype": torch.float32}))
    cols = ["prompt", "completion"]
    train_ds = Dataset.from_list([{k: e[k] for k in cols} for e in train_ex])
    eval_ds = Dataset.from_list([{k: e[k] for k in cols} for e in eval_ex]) if eval_ex else None
    args = SFTConfig(
        output_dir=str(work), max_steps=cfg.max_steps, learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, max_length=cfg.max_length, completion_only_loss=True,
        eval_strategy="steps" if eval_ds is not None else "no", eval_steps=cfg.eval_steps,
        save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=2, logging_steps=5,
        bf16=False, fp16=False, use_cpu=True, optim="adamw_torch", report_to="none", seed=cfg.seed,
        dataloader_num_workers=0, disable_tqdm=False, gradient_checkpointing=False,
    )
    peft_config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                             target_modules=cfg.target_modules, task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                         processing_class=tok, peft_config=peft_config,
                         callbacks=[_TimeBudget(cfg.time_budget_s).callback])
    has_ckpt = any(p.name.startswith("checkpoint-") for p in work.iterdir())
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=True if (resume and has_ckpt) else None)
    metrics: dict[str, Any] = {"train_loss": round(float(result.training_loss), 4), "steps": result.global_step,
                               "train_seconds": round(time.perf_counter() - t0, 1),
                               "train_examples": len(train_ex), "eval_examples": len(eval_ex),
                               "examples_truncated": truncated}
    if eval_ds is not None:
        metrics["eval_loss"] = round(float(trainer.evaluate()["eval_loss"]), 4)
    metrics["log_history"] = [h for h in trainer.state.log_history if "loss" in h or "eval_loss" in h]

    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    trainer.model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    card = {"base_model": bot.settings.llm.model, "base_path": base, "quantization": bot.settings.llm.quantization,
            "data": {"kb": str(bot.kb.root), "kb_hash": bot.kb.fingerprint()}, "config": asdict(cfg),
            "metrics": metrics}
    (tmp / "chatrec_card.json").write_text(json.dumps(card, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    shutil.rmtree(work, ignore_errors=True)
    return card
