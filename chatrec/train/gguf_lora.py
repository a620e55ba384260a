"""A peft LoRA folder as a GGUF LoRA adapter, for llama.cpp to apply at run time (no merge).

Follows llama.cpp's ``convert_lora_to_gguf.py``:

- keys ``general.architecture`` (``llama`` for SmolLM2; llama.cpp refuses an adapter whose
  architecture differs from the model's), ``general.type = "adapter"``,
  ``adapter.type = "lora"`` and ``adapter.lora.alpha`` (llama.cpp scales by alpha / rank,
  as peft does);
- one pair of tensors per wrapped linear layer, named after the base tensor:
  ``blk.N.attn_q.weight.lora_a`` / ``.lora_b``. peft's ``lora_A`` (rows = rank, columns =
  input) and ``lora_B`` (rows = output, columns = rank) are written as they are, which is
  the orientation llama.cpp checks (``a.ne[0]`` = the base's input size, ``b.ne[1]`` = its
  output size);
- llama.cpp's LLaMA converter permutes the rows of ``q_proj`` and ``k_proj`` (the rotary
  halves interleaved per head), so the GGUF base holds permuted q/k weights. The output
  side of a LoRA, ``lora_B``, gets the same row permutation (``n_head`` for q, ``n_kv_head``
  for k); ``lora_A`` acts on the unpermuted input and stays as it is.

Tensors are written in F32 (F16 with ``dtype="f16"``); an adapter of the embedded
model at rank 16 is about 20 MB in F32. rsLoRA, DoRA, wrapped embeddings or output
layers and bias-carrying adapters are refused with a clear error rather than converted
wrongly.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

GGUF_FILE = "adapter_model.gguf"  # the name the llamacpp backend looks for in an adapter folder

_PREFIX = "base_model.model."


class ConversionError(ValueError):
    """The peft adapter cannot be written as a GGUF LoRA; the message says why."""


def permute_rows(weight: Any, n_head: int) -> Any:
    """llama.cpp's q/k row order: per head, the two rotary halves interleaved (as its LLaMA converter)."""
    rows = weight.shape[0]
    return weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def _base_config(adapter_dir: Path, base_config: dict[str, Any] | None) -> dict[str, Any]:
    if base_config is not None:
        return base_config
    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    base = cfg.get("base_model_name_or_path") or ""
    path = Path(base) / "config.json"
    if not path.is_file():
        raise ConversionError(
            f"the base model's config.json is not at {path} (adapter_config.json: base_model_name_or_path); "
            "pass base_config"
        )
    return dict(json.loads(path.read_text()))


def convert(
    adapter_dir: str | Path,
    out: str | Path | None = None,
    base_config: dict[str, Any] | None = None,
    dtype: str = "f32",
) -> Path:
    """Write ``adapter_dir``'s peft LoRA as a GGUF LoRA (default ``adapter_dir/adapter_model.gguf``).

    ``base_config`` is the base model's ``config.json`` as a dict (default: read from the
    adapter's ``base_model_name_or_path``). The file is written under a temporary name and
    renamed into place. Returns its path."""
    import gguf
    import numpy as np
    from safetensors.torch import load_file

    adapter_dir = Path(adapter_dir)
    out = Path(out) if out is not None else adapter_dir / GGUF_FILE
    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    if cfg.get("peft_type", "LORA") != "LORA":
        raise ConversionError(f"not a LoRA adapter (peft_type {cfg.get('peft_type')!r})")
    for flag in ("use_rslora", "use_dora"):
        if cfg.get(flag):
            raise ConversionError(f"{flag} adapters have no GGUF LoRA form in llama.cpp")
    if cfg.get("rank_pattern") or cfg.get("alpha_pattern"):
        raise ConversionError("per-module ranks or alphas (rank_pattern/alpha_pattern) are not supported")
    if cfg.get("bias", "none") != "none":
        raise ConversionError("adapters that train biases are not supported")
    hp = _base_config(adapter_dir, base_config)
    if hp.get("model_type") != "llama":
        raise ConversionError(f"only LLaMA-architecture bases are supported (model_type {hp.get('model_type')!r})")
    n_head = int(hp["num_attention_heads"])
    n_kv_head = int(hp.get("num_key_value_heads") or n_head)
    arch = gguf.MODEL_ARCH.LLAMA
    names = gguf.TensorNameMap(arch, int(hp["num_hidden_layers"]))
    np_dtype = {"f32": np.float32, "f16": np.float16}[dtype]

    state = {k: v.float().numpy() for k, v in load_file(str(adapter_dir / "adapter_model.safetensors")).items()}
    pairs: list[tuple[str, Any, Any]] = []
    for key in sorted(state):
        if ".lora_A." not in key:
            if ".lora_B." not in key:
                raise ConversionError(f"unsupported tensor in the adapter: {key}")
            continue
        stem = key.split(".lora_A.")[0].removeprefix(_PREFIX)
        name = names.get_name(stem + ".weight", try_suffixes=(".weight",))
        if name is None or not name.startswith("blk."):
            raise ConversionError(f"no GGUF LoRA form for the wrapped module {stem}")
        a = state[key].astype(np.float32)
        b = state[key.replace(".lora_A.", ".lora_B.")].astype(np.float32)
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            raise ConversionError(f"{stem}: lora_A {a.shape} and lora_B {b.shape} do not make a LoRA pair")
        if stem.endswith("self_attn.q_proj"):
            b = permute_rows(b, n_head)
        elif stem.endswith("self_attn.k_proj"):
            b = permute_rows(b, n_kv_head)
        pairs.append((name, a, b))
    if not pairs:
        raise ConversionError(f"no LoRA tensors in {adapter_dir / 'adapter_model.safetensors'}")

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer = gguf.GGUFWriter(str(tmp), gguf.MODEL_ARCH_NAMES[arch])
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(cfg["lora_alpha"]))
        for name, a, b in pairs:
            writer.add_tensor(name + ".lora_a", np.ascontiguousarray(a.astype(np_dtype)))
            writer.add_tensor(name + ".lora_b", np.ascontiguousarray(b.astype(np_dtype)))
        _finish(writer, tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def copy_gguf_metadata(reader, writer) -> None:
    """Every metadata field of the GGUF ``reader`` into ``writer``, except the file's own
    (``general.architecture``, given to the writer; ``general.file_type``, set per file; ``GGUF.*``)."""
    import gguf

    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in ("general.architecture", "general.file_type"):
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub)


def dequantised_base(src: str | Path, out: str | Path, dtype: str = "f32") -> Path:
    """A copy of the GGUF model ``src`` with every tensor dequantised to F32 (or F16): the same
    weights transformers loads from it (``chatrec.models.convert_gguf``), so llama.cpp and the
    training-time model can be compared without the quantised kernels in between. Metadata
    (architecture, hyper-parameters, vocabulary, chat template) is copied as it is."""
    import gguf
    import numpy as np

    out = Path(out)
    reader = gguf.GGUFReader(str(src))
    arch = str(reader.fields["general.architecture"].contents())
    np_dtype = {"f32": np.float32, "f16": np.float16}[dtype]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        writer = gguf.GGUFWriter(str(tmp), arch)
        copy_gguf_metadata(reader, writer)
        writer.add_file_type(gguf.LlamaFileType.ALL_F32 if dtype == "f32" else gguf.LlamaFileType.MOSTLY_F16)
        for t in reader.tensors:
            data = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
            data = data.reshape(tuple(int(n) for n in reversed(t.shape)))
            writer.add_tensor(t.name, data if data.ndim == 1 else data.astype(np_dtype))
        _finish(writer, tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _finish(writer, tmp: Path, out: Path) -> None:
    """Write ``writer``'s file to ``tmp`` and rename it into place as ``out``."""
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, out)
