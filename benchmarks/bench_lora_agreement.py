"""Greedy-token agreement of each serving path with the training-time model (issue 14 items 2 and 6).

    python benchmarks/bench_lora_agreement.py --adapter .chatrec/adapters/default \
        [--tokens 32] [--out benchmarks/results/lora_agreement.json]
    python benchmarks/bench_lora_agreement.py --random        # a random rank-16 LoRA instead

The training-time model is what ``chatrec train`` trains: the embedded SmolLM2 loaded in 4-bit
NF4 with the peft LoRA on top (unmerged). For 20 fixed shop prompts (chat template, a system
line and one user message) it generates the first ``--tokens`` greedy tokens (repetition
penalty 1.15 over the whole context, as both backends serve), then counts, per serving path,
the leading tokens that agree with it:

- ``nf4+peft (serving)``: ``chatrec.llm.transformers_backend.load_model`` with the adapter, as
  the transformers backend now serves (NF4 base, adapter applied at run time);
- ``merge->nf4 (old serving)``: the adapter merged into the float32 base
  (``export_merged``) and that model loaded in NF4, as serving did before;
- ``llama.cpp <base> + GGUF LoRA``: the xllamacpp backend on the packaged Q4_1 file, and on
  the same weights dequantised to F32 and F16 and re-encoded as Q8_0, with the adapter's
  ``adapter_model.gguf`` (``chatrec.train.gguf_lora.convert``) applied at run time;
- ``llama.cpp NF4-dequantised F32 + GGUF LoRA``: the F32 GGUF with every linear weight
  replaced by the NF4 weights the training-time model computes with (dequantised by
  bitsandbytes), i.e. the training-time model's own weights in llama.cpp;
- reference rows: ``fp32+peft`` (transformers, float32 base + the adapter) and
  ``nf4 base`` (no adapter: how far the adapter moves the output).

The issue's target: >= 28 of 32 tokens agree on >= 18 of 20 prompts. Writes ``--out`` (JSON)
and a Markdown table beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SYSTEM = "You are the customer-service assistant of an electronics shop. Answer briefly and helpfully."
PROMPTS = [
    "Do you sell cases for the Pixel 8?",
    "What is your return policy?",
    "I need a laptop under $800 for school.",
    "Recommend headphones for running.",
    "Can I change my delivery address?",
    "Which phone has the best camera for under $500?",
    "My order arrived damaged, what should I do?",
    "Is the Galaxy S23 compatible with wireless chargers?",
    "Show me something like the last thing I bought.",
    "Do you ship to Canada, and how long does it take?",
    "How do I cancel my order?",
    "I was charged twice for one purchase.",
    "What's the difference between the two cheapest tablets?",
    "Can I pay with PayPal?",
    "I forgot my password and can't log in.",
    "Are there any discounts on smartwatches this week?",
    "Which charger do I need for a MacBook Air?",
    "How long is the warranty on a TV?",
    "I want to speak to a human agent.",
    "Suggest a gift for a teenager who likes gaming, around $50.",
]
TARGET_TOKENS, TARGET_PROMPTS = 28, 18
REPEAT_PENALTY = 1.15


def agreement(a: list[int], b: list[int], n: int) -> int:
    """Leading tokens of the first ``n`` on which two greedy runs agree (all ``n`` when both are
    equal, e.g. both stopped at the same end-of-turn token)."""
    if a[:n] == b[:n]:
        return n
    k = 0
    while k < min(len(a), len(b)) and a[k] == b[k]:
        k += 1
    return k


def hf_tokens(model, tok, ids: list[int], n: int) -> list[int]:
    import torch

    with torch.inference_mode():
        out = model.generate(
            input_ids=torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=n,
            do_sample=False,
            repetition_penalty=REPEAT_PENALTY,
            pad_token_id=tok.pad_token_id,
        )
    return out[0, len(ids) :].tolist()


def llamacpp_tokens(llm, ids: list[int], n: int) -> list[int]:
    r = llm._server.handle_completions(
        {
            "prompt": ids,
            "n_predict": n,
            "temperature": 0,
            "top_k": 1,
            "repeat_penalty": REPEAT_PENALTY,
            "repeat_last_n": len(ids) + n,  # the whole context, as transformers' repetition_penalty
            "n_probs": 1,
            "cache_prompt": False,
        }
    )
    if "choices" not in r:
        raise RuntimeError(str(r)[:300])
    return [int(t["id"]) for t in r["choices"][0]["logprobs"]["content"]]


def random_adapter(base_path: str, settings, out: Path, std: float = 0.02) -> Path:
    """A rank-16 LoRA of the training defaults with random non-zero weights, saved like chatrec train's."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from chatrec.llm.transformers_backend import quantization_config
    from chatrec.train.gguf_lora import convert

    cfg = settings.train
    model = AutoModelForCausalLM.from_pretrained(
        base_path, device_map="cpu", quantization_config=quantization_config(settings.llm)
    )
    peft_model = get_peft_model(
        model,
        LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, target_modules=cfg.target_modules, task_type="CAUSAL_LM"),
    )
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * std)
    peft_model.save_pretrained(out)
    (out / "chatrec_card.json").write_text(json.dumps({"base_model": settings.llm.model, "random_std": std}))
    convert(out, base_config=model.config.to_dict())
    return out


def requantised(src: Path, out: Path, kind: str) -> Path:
    """The F32 GGUF ``src`` with every 2-D tensor re-encoded as ``kind`` (``q8_0``)."""
    import gguf
    import numpy as np

    from chatrec.train.gguf_lora import copy_gguf_metadata

    qtype = {"q8_0": gguf.GGMLQuantizationType.Q8_0}[kind]
    reader = gguf.GGUFReader(str(src))
    writer = gguf.GGUFWriter(str(out), str(reader.fields["general.architecture"].contents()))
    copy_gguf_metadata(reader, writer)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    for t in reader.tensors:
        data = np.asarray(t.data, dtype=np.float32).reshape(tuple(int(n) for n in reversed(t.shape)))
        if data.ndim == 2:
            writer.add_tensor(t.name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
        else:
            writer.add_tensor(t.name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def nf4_weights_gguf(src: Path, nf4_model, out: Path) -> Path:
    """The F32 GGUF ``src`` with each linear weight replaced by the NF4 model's weight, dequantised
    (q/k rows permuted to llama.cpp's order, as its converter does): the training-time base."""
    import bitsandbytes.functional as bnbf
    import gguf
    import numpy as np

    from chatrec.train.gguf_lora import permute_rows

    cfg = nf4_model.config
    names = gguf.TensorNameMap(gguf.MODEL_ARCH.LLAMA, int(cfg.num_hidden_layers))
    weights: dict[str, Any] = {}
    for mod_name, mod in nf4_model.named_modules():
        w = getattr(mod, "weight", None)
        if w is None or not hasattr(w, "quant_state"):
            continue
        dense = bnbf.dequantize_4bit(w.data, w.quant_state).float().numpy()
        if mod_name.endswith("self_attn.q_proj"):
            dense = permute_rows(dense, int(cfg.num_attention_heads))
        elif mod_name.endswith("self_attn.k_proj"):
            dense = permute_rows(dense, int(cfg.num_key_value_heads or cfg.num_attention_heads))
        name = names.get_name(mod_name + ".weight", try_suffixes=(".weight",))
        if name is None:
            raise RuntimeError(f"no GGUF name for {mod_name}")
        weights[name] = dense
    reader = gguf.GGUFReader(str(src))
    writer = gguf.GGUFWriter(str(out), str(reader.fields["general.architecture"].contents()))
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub)
    replaced = 0
    for t in reader.tensors:
        data = np.asarray(t.data, dtype=np.float32).reshape(tuple(int(n) for n in reversed(t.shape)))
        if t.name in weights:
            assert weights[t.name].shape == data.shape, (t.name, weights[t.name].shape, data.shape)
            data, replaced = weights[t.name].astype(np.float32), replaced + 1
        writer.add_tensor(t.name, data)
    if replaced != len(weights):
        raise RuntimeError(f"replaced {replaced} of {len(weights)} NF4 weights")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--adapter", help="a chatrec train adapter folder (peft + adapter_model.gguf)")
    ap.add_argument("--random", action="store_true", help="a random rank-16 LoRA (std 0.02) instead")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads")
    ap.add_argument(
        "--no-reference-rows", action="store_true", help="skip the nf4-base and fp32+peft rows (time on a busy machine)"
    )
    ap.add_argument("--work", help="folder for the converted bases [a temporary folder]")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "lora_agreement.json"))
    args = ap.parse_args()
    if not args.adapter and not args.random:
        ap.error("pass --adapter FOLDER or --random")

    sys.path.insert(0, str(ROOT))
    from chatrec.config import EMBEDDED_LLM, Settings, apply_offline_env, load_settings
    from chatrec.llm.threads import configure_threads

    apply_offline_env()
    settings = load_settings()
    configure_threads("bench", settings)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from chatrec.llm import make_llm
    from chatrec.llm.llamacpp_backend import gguf_model
    from chatrec.llm.transformers_backend import export_merged, load_model
    from chatrec.models import llm_path
    from chatrec.train.gguf_lora import GGUF_FILE, convert, dequantised_base

    t_start = time.perf_counter()
    n = args.tokens
    work = Path(args.work or tempfile.mkdtemp(prefix="lora-agreement-"))
    work.mkdir(parents=True, exist_ok=True)
    base_path = llm_path(EMBEDDED_LLM, settings.cache_dir)
    tok = AutoTokenizer.from_pretrained(base_path)
    prompts = [
        list(
            tok.apply_chat_template(
                [{"role": "system", "content": SYSTEM}, {"role": "user", "content": p}],
                add_generation_prompt=True,
                tokenize=True,
                return_dict=True,
            )["input_ids"]
        )
        for p in PROMPTS
    ]
    if args.random:
        adapter = random_adapter(base_path, settings, work / "random-adapter")
    else:
        adapter = Path(args.adapter)
        if not (adapter / GGUF_FILE).exists():
            convert(adapter)
    adapter_card = adapter / "chatrec_card.json"
    card = json.loads(adapter_card.read_text()) if adapter_card.exists() else {}

    timings: dict[str, float] = {}
    outputs: dict[str, list[list[int]]] = {}

    def run_hf(name: str, model) -> None:
        t0 = time.perf_counter()
        outputs[name] = [hf_tokens(model, tok, ids, n) for ids in prompts]
        timings[name] = round(time.perf_counter() - t0, 1)
        print(f"{name}: {timings[name]} s", flush=True)
        if name != "training-time (nf4+peft)":
            report()

    def report() -> dict[str, Any]:
        """Rows so far, written to --out (a run stopped early keeps them)."""
        ref = outputs["training-time (nf4+peft)"]
        rows = []
        for name, outs in outputs.items():
            if name == "training-time (nf4+peft)":
                continue
            per = [agreement(o, r, n) for o, r in zip(outs, ref)]
            rows.append(
                {
                    "path": name,
                    "per_prompt": per,
                    "prompts_at_target": sum(a >= TARGET_TOKENS for a in per),
                    "prompts_all_equal": sum(a == n for a in per),
                    "mean_agreeing": round(sum(per) / len(per), 1),
                    "meets_target": sum(a >= TARGET_TOKENS for a in per) >= TARGET_PROMPTS,
                    "seconds": timings[name],
                }
            )
            print(f"{name:45s} {rows[-1]['prompts_at_target']:2d}/20 at >= {TARGET_TOKENS}: {per}", flush=True)
        result = {
            "command": "python benchmarks/bench_lora_agreement.py " + " ".join(sys.argv[1:]),
            "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "wall_s": round(time.perf_counter() - t_start, 1),
            "adapter": {
                "path": str(adapter),
                "random": args.random,
                "card": {k: v for k, v in card.items() if k not in ("metrics",)}
                | (
                    {"metrics": {k: v for k, v in card["metrics"].items() if k != "log_history"}}
                    if "metrics" in card
                    else {}
                ),
            },
            "reference": "training-time model: SmolLM2 in NF4 (bitsandbytes) + the peft LoRA, unmerged",
            "tokens": n,
            "target": f">= {TARGET_TOKENS} of {n} tokens on >= {TARGET_PROMPTS} of {len(PROMPTS)} prompts",
            "prompts": PROMPTS,
            "rows": rows,
            "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "loadavg_end": os.getloadavg()},
        }
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        out.with_suffix(".md").write_text(markdown(result))
        return result

    # the training-time model: the NF4 base + the peft LoRA, built as training builds it
    from peft import PeftModel

    from chatrec.llm.transformers_backend import quantization_config

    nf4 = AutoModelForCausalLM.from_pretrained(
        base_path, device_map="cpu", quantization_config=quantization_config(settings.llm)
    )
    f32 = dequantised_base(gguf_model(EMBEDDED_LLM), work / "f32.gguf")
    f32_nf4 = nf4_weights_gguf(f32, nf4, work / "nf4-f32.gguf")  # before peft wraps the layers
    trained = PeftModel.from_pretrained(nf4, str(adapter)).eval()
    run_hf("training-time (nf4+peft)", trained)
    if not args.no_reference_rows:
        with trained.disable_adapter():
            run_hf("nf4 base (no adapter)", trained)
    del trained, nf4

    served, _ = load_model(settings.llm.model_copy(update={"adapter": str(adapter)}), settings.cache_dir)
    run_hf("nf4+peft (serving)", served)
    del served
    if not args.no_reference_rows:
        fp32 = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32), str(adapter)
        ).eval()
        run_hf("fp32+peft (transformers)", fp32)
        del fp32

    bases = {
        "Q4_1 (packaged)": gguf_model(EMBEDDED_LLM),
        "F32": f32,
        "F16": dequantised_base(gguf_model(EMBEDDED_LLM), work / "f16.gguf", dtype="f16"),
        "Q8_0": requantised(f32, work / "q8_0.gguf", "q8_0"),
        "NF4-dequantised F32": f32_nf4,
    }
    for label, path in bases.items():
        s = Settings(
            kb_dir=settings.kb_dir,
            data_dir=work / f"state-{label.split()[0]}",
            llm={"backend": "llamacpp", "threads": args.threads, "temperature": 0, "adapter": str(adapter)}
            | ({} if label.startswith("Q4_1") else {"model": str(path)}),
        )
        llm = make_llm(s)
        name = f"llama.cpp {label} + GGUF LoRA"
        t0 = time.perf_counter()
        outputs[name] = [llamacpp_tokens(llm, ids, n) for ids in prompts]
        timings[name] = round(time.perf_counter() - t0, 1)
        print(f"{name}: {timings[name]} s", flush=True)
        report()
        del llm

    merged_dir = export_merged(base_path, adapter, work / "merged", overwrite=True)
    merged, _ = load_model(settings.llm.model_copy(update={"model": str(merged_dir)}), settings.cache_dir)
    run_hf("merge->nf4 (old serving)", merged)
    del merged

    print(markdown(report()))


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"# LoRA agreement with the training-time model ({r['when']})",
        "",
        f"`{r['command']}`; adapter {r['adapter']['path']} ({'random' if r['adapter']['random'] else 'trained'}); "
        f"reference: {r['reference']}; first {r['tokens']} greedy tokens, 20 prompts; target {r['target']}.",
        "",
        "| serving path | prompts >= 28/32 | prompts 32/32 | mean tokens agreeing | meets target | per prompt |",
        "|---|---|---|---|---|---|",
    ]
    for x in r["rows"]:
        lines.append(
            f"| {x['path']} | {x['prompts_at_target']} | {x['prompts_all_equal']} | {x['mean_agreeing']} | "
            f"{'yes' if x['meets_target'] else 'no'} | {' '.join(map(str, x['per_prompt']))} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
