"""Local causal LM through transformers: 4-bit NF4 via bitsandbytes, optional peft LoRA.

Generation runs in a worker thread that takes the model lock itself, so a
consumer that abandons the stream never holds the lock: the stream's
``finally`` sets the cancel flag, the stopping criterion ends generation at the
next token, and the thread releases the lock.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
from pathlib import Path
from typing import Iterator

from chatrec.config import EMBEDDED_LLM, KB_ADAPTER, LLMSettings, apply_offline_env
from chatrec.llm.base import AdapterView, Message, UnknownAdapter
from chatrec.models import llm_path
from chatrec.types import Unavailable

log = logging.getLogger(__name__)


def quantization_config(settings: LLMSettings):
    """Map config to the bitsandbytes object (``None`` = full precision)."""
    if settings.quantization == "none":
        return None
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=torch.float32,
        bnb_4bit_use_double_quant=False,
    )


class ModelUnavailable(Unavailable):
    """The model (or its adapter) cannot be loaded; the message says what was tried and how to fix it."""


_POINT = "point llm.model (--model, CHATREC_LLM__MODEL or [llm] model) at a local model folder"


def _looks_like_path(name: str) -> bool:
    """A folder, not a Hugging Face id (``org/name``)."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or Path(name).expanduser().exists()


def model_problem(name: str, path: str, exc: BaseException) -> ModelUnavailable:
    """One line for a model that failed to load: what was tried, why, and the fix."""
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    folder = Path(path).expanduser()
    if folder.is_dir():
        if name == EMBEDDED_LLM:
            fix = f"delete {folder} and it is converted again from the packaged model on the next start"
        else:
            fix = f"the files in {folder} are damaged or incomplete: copy or export the model again, or {_POINT}"
        return ModelUnavailable(f"model {name!r} in {folder} cannot be loaded ({reason}); {fix}")
    if _looks_like_path(path):
        return ModelUnavailable(f"model folder {str(folder)!r} (llm.model) does not exist; {_POINT}")
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")
    why = (
        "HF_HUB_OFFLINE is set (chatrec never downloads) and it is not in the local Hugging Face cache"
        if offline
        else f"it could not be loaded ({reason})"
    )
    return ModelUnavailable(f"model {name!r} (llm.model) is no local folder, and {why}; {_POINT}")


def check_adapter(adapter: str | Path, model: str, kb_dir: str | Path | None = None) -> bool:
    """Whether to apply the adapter: refuse a folder without peft weights, or one whose card
    (``chatrec_card.json``, written by ``chatrec train``) names another base model than ``model``
    (its name or its folder). The KB's own adapter (``<kb_dir>/adapter``, used when ``llm.adapter``
    is unset) is never refused: on another base it is left out (False) with a warning naming both
    models and the rebuild command. A card whose KB hash differs from the KB at ``kb_dir`` is
    logged as a warning (the adapter is still applied)."""
    from chatrec.llm.adapter_card import card_warnings, read_card, rebuild_hint

    folder = Path(adapter)
    own = kb_dir is not None and folder.resolve() == (Path(kb_dir) / KB_ADAPTER).resolve()
    if not (folder / "adapter_model.safetensors").exists():
        raise ModelUnavailable(
            f"no LoRA adapter in {folder} (adapter_model.safetensors missing): train one with "
            "`chatrec train`, or set llm.adapter = 'none' (--adapter none) for the base model"
        )
    card = read_card(folder)
    trained_on = card.get("base_model")
    if trained_on and model not in (trained_on, card.get("base_path")):
        if own:
            log.warning(
                "the KB's adapter %s was trained on %r, not on llm.model = %r: serving the base model without "
                "it (llm.adapter = 'none' silences this); %s",
                folder,
                trained_on,
                model,
                rebuild_hint(card),
            )
            return False
        raise ModelUnavailable(
            f"the adapter in {folder} was trained on {trained_on!r}, not on llm.model = {model!r}: "
            f"serve it with --model {trained_on}, or train one on {model!r}"
        )
    for problem in card_warnings(folder, card, kb_dir):
        log.warning("%s", problem)
    return True


def load_model(settings: LLMSettings, cache_dir: Path, adapter: str | None = None):
    """Return ``(model, tokenizer)``: the base model (4-bit NF4 unless ``quantization = "none"``)
    with the LoRA adapter, if any, applied at run time by peft (unmerged, inference mode).

    That is the model ``chatrec train`` trained (QLoRA: the NF4 base and the peft LoRA in
    float32 on top), so serving reproduces it. There is no merge: a LoRA merged into the
    float32 base and re-quantised to NF4 agreed with the trained model on only a few of the
    first 32 greedy tokens (benchmarks/bench_lora_agreement.py). A model or adapter that
    cannot be loaded raises :class:`ModelUnavailable` with the fix."""
    adapter = adapter or settings.adapter
    if adapter and not check_adapter(adapter, settings.model, settings.served_kb):
        adapter = None
    path = settings.model
    try:
        path = llm_path(settings.model, cache_dir)
        if adapter:
            _check_base_weights(adapter, path)
        return _load(settings, path, adapter)
    except (OSError, ValueError, RuntimeError) as exc:
        raise model_problem(settings.model, path, exc) from exc
    except Exception as exc:  # safetensors' SafetensorError and other loaders' own errors
        if type(exc).__module__.split(".")[0] in ("safetensors", "safetensors_rust", "huggingface_hub"):
            raise model_problem(settings.model, path, exc) from exc
        raise


def _check_base_weights(adapter: str | Path, path: str) -> None:
    """Warn when the base weights differ from those the adapter's card says it was trained on."""
    from chatrec.llm.adapter_card import card_warnings, read_card

    card = read_card(adapter)
    if card.get("base_sha256"):
        for problem in card_warnings(adapter, card, None, base_path=path):
            log.warning("%s", problem)


def _load(settings: LLMSettings, path: str, adapter: str | None):
    apply_offline_env()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    qc = quantization_config(settings)
    kwargs = {"quantization_config": qc} if qc is not None else {"dtype": torch.float32}
    model = AutoModelForCausalLM.from_pretrained(path, device_map="cpu", **kwargs)
    if adapter:
        from peft import PeftModel

        log.info("applying LoRA adapter %s at run time on %s", adapter, path)
        model = PeftModel.from_pretrained(model, str(adapter), is_trainable=False)  # type: ignore[assignment]
    for name, folder in settings.adapters.items():  # named adapters, picked per request (peft mixed batches)
        from peft import PeftModel

        check_adapter(folder, settings.model)
        log.info("loading LoRA adapter %r from %s", name, folder)
        if isinstance(model, PeftModel):
            model.load_adapter(str(folder), adapter_name=name, is_trainable=False)
        else:
            model = PeftModel.from_pretrained(model, str(folder), adapter_name=name, is_trainable=False)  # type: ignore[assignment]
    model.eval()
    return model, tok


def export_merged(
    base: str, adapter: str | Path, out: str | Path, overwrite: bool = False, card: dict | None = None
) -> Path:
    """Export only (``chatrec export``; serving never calls it): merge the LoRA ``adapter`` into
    ``base`` in float32 and save the merged model (safetensors + tokenizer) to ``out``,
    atomically (written to a temporary folder beside ``out`` and renamed into place).

    The result is a plain float32 model folder, for tools that cannot apply a LoRA. chatrec
    quantises any model to NF4 when it loads it, and the merged LoRA does not survive that
    re-quantisation (a few of 32 greedy tokens agree with the trained model): serve the
    adapter itself (``llm.adapter``), which is applied at run time on the NF4 base.
    ``card`` (if given) is written beside the weights as ``chatrec_export.json``."""
    import json
    import os
    import shutil
    import tempfile

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    apply_offline_env()
    adapter, out = Path(adapter), Path(out)
    if not (adapter / "adapter_model.safetensors").exists():
        raise FileNotFoundError(f"no LoRA adapter in {adapter} (adapter_model.safetensors missing)")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} already exists and is not empty")
    log.info("merging adapter %s into %s in full precision", adapter, base)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".merge-", dir=out.parent))
    try:
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, device_map="cpu")
        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
        model.save_pretrained(tmp)  # safetensors
        AutoTokenizer.from_pretrained(base).save_pretrained(tmp)
        if card is not None:
            (tmp / "chatrec_export.json").write_text(json.dumps(card, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


MIN_SHARED = 16  # below this many shared tokens a prefix cache is not worth its copy
SCORE_CHUNK = 16  # rows per scoring pass over a shared prefix (bounds the cache copy)


def _common_prefix(seqs: list[list[int]]) -> int:
    """Length of the token prefix all ``seqs`` share, leaving each at least one own token."""
    n = min(len(s) for s in seqs) - 1
    first = seqs[0]
    for k in range(max(n, 0)):
        tok = first[k]
        if any(s[k] != tok for s in seqs):
            return k
    return max(n, 0)


def _shared_len(a: list[int], b: list[int]) -> int:
    """Number of leading tokens ``a`` and ``b`` have in common."""
    n = min(len(a), len(b))
    for k in range(n):
        if a[k] != b[k]:
            return k
    return n


class PrefixCache:
    """A small bounded store of ``(token ids, KV cache)`` from earlier generations (prompt + generated tokens),
    so a request whose prompt starts like one of them only reads its new tokens.

    :meth:`lookup` finds the entry sharing the longest token prefix with a prompt and returns a
    *copy* of its cache cropped to that prefix (at least one prompt token is left to read, and
    under ``MIN_SHARED`` shared tokens nothing is used); the stored caches themselves are never
    handed out, so a generation can grow its copy while another request copies the same entry.
    :meth:`store` adds a finished generation's cache and drops every entry it extends (an entry
    whose ids are a prefix of the new ids can never share more with a later prompt); past
    ``capacity`` entries the one stored longest ago goes. A hit does not renew an entry: the
    generation it served stores a newer one holding the same prefix, so a conversation keeps
    about one live entry and ``capacity`` conversations taking turns all hit their own (with
    renew-on-hit each would keep two). All methods are thread-safe.
    Memory: one entry holds ``2 x layers x kv_heads x head_dim`` floats per token (SmolLM2-135M
    in float32: 45 KiB per token, about 44 MiB for a 1,000-token turn)."""

    def __init__(self, capacity: int):
        from collections import OrderedDict

        self.capacity = capacity
        self._entries: OrderedDict[int, tuple[list[int], object]] = OrderedDict()
        self._next = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def lookup(self, ids: list[int]):
        """``(n, cache)``: a copy of the best entry's cache holding the first ``n`` tokens of
        ``ids``, or ``(0, None)``."""
        import copy

        with self._lock:
            best, key = 0, None
            for k, (entry_ids, cache) in self._entries.items():
                n = min(_shared_len(entry_ids, ids), len(ids) - 1, cache.get_seq_length())  # type: ignore[attr-defined]
                if n > best:
                    best, key = n, k
            if key is None or best < MIN_SHARED:
                self.misses += 1
                return 0, None
            self.hits += 1
            cache = copy.deepcopy(self._entries[key][1])
        cache.crop(best - cache.get_seq_length())  # type: ignore[attr-defined]  # transformers 5: negative = remove
        return best, cache

    def store(self, ids: list[int], cache) -> None:
        """Keep ``cache`` (which holds exactly ``ids``) as the newest entry."""
        if self.capacity <= 0 or cache is None or cache.get_seq_length() != len(ids) or not ids:
            return  # an inconsistent cache (or none) is never kept
        with self._lock:
            for k in [k for k, (e, _) in self._entries.items() if _shared_len(e, ids) == len(e)]:
                del self._entries[k]
            self._entries[self._next] = (list(ids), cache)
            self._next += 1
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def entries(self) -> list[tuple[list[int], int]]:
        """``(ids, cached tokens)`` per entry, oldest first (for tests and stats)."""
        with self._lock:
            return [(list(e), c.get_seq_length()) for e, c in self._entries.values()]  # type: ignore[attr-defined]

    def nbytes(self) -> int:
        """Bytes held by the stored key/value tensors."""
        import torch

        with self._lock:
            caches = [c for _, c in self._entries.values()]
        return sum(
            t.numel() * t.element_size()
            for c in caches
            for layer in getattr(c, "layers", [])
            for t in (getattr(layer, "keys", None), getattr(layer, "values", None))
            if isinstance(t, torch.Tensor)
        )


class TransformersLLM:
    def __init__(self, settings: LLMSettings, cache_dir: Path):
        from chatrec.llm.batching import DecodeBatcher

        self.settings = settings
        self.model, self.tokenizer = load_model(settings, cache_dir)
        self.name = f"transformers:{settings.model}" + (f"+{settings.adapter}" if settings.adapter else "")
        self._lock = threading.Lock()
        # transformers 5.x renamed the forward argument ``past_key_values`` to ``cache`` (peft's forward
        # takes **kwargs, so the base model's signature decides)
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        self._cache_arg = "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"
        self.prefix_cache = PrefixCache(settings.prefix_cache_entries)
        self.adapters = list(settings.adapters)  # named adapters (llm.adapters), picked per request
        peft_config = getattr(self.model, "peft_config", {})
        self._default_adapter = "default" if "default" in peft_config else "__base__"  # peft: "__base__" = none
        self._named_caches = {name: PrefixCache(settings.prefix_cache_entries) for name in self.adapters}
        self.slots = settings.engine_slots  # generations decoded together (the serve gate lets as many turns in)
        self.batcher = DecodeBatcher(self, self.slots)
        self._processors = self._logits_processors()
        self._local = threading.local()

    def with_adapter(self, name: str | None) -> TransformersLLM | AdapterView:
        """This engine with the named adapter (``llm.adapters``) instead of ``llm.adapter``; ``None``: as is."""
        if name is None:
            return self
        self._check_adapter(name)
        return AdapterView(self, name)

    def _check_adapter(self, name: str | None) -> None:
        if name is not None and name not in self.adapters:
            raise UnknownAdapter(f"unknown adapter {name!r}; loaded: {', '.join(self.adapters) or 'none'}")

    def adapter_kwargs(self, names: list[str | None]) -> dict:
        """The forward pass's ``adapter_names`` for rows using ``names`` (``None``: ``llm.adapter``,
        or the base model), so one batch can mix adapters (peft's mixed-batch LoRA); nothing when
        no named adapter is loaded."""
        if not self.adapters:
            return {}
        return {"adapter_names": [name or self._default_adapter for name in names]}

    def prefix_cache_for(self, adapter: str | None) -> PrefixCache:
        """The prefix cache of ``adapter``'s generations (one per adapter: their keys and values differ)."""
        return self.prefix_cache if adapter is None else self._named_caches[adapter]

    def last_usage(self) -> dict | None:
        """The prompt of this thread's last :meth:`stream`: tokens in it, tokens read
        (``prompt_read``) and taken from the prefix cache (``prompt_cached``)."""
        return getattr(self._local, "usage", None)

    def _encode(self, messages: list[Message]):
        return self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )

    def _logits_processors(self):
        """What ``generate`` applies to the next-token scores with these settings: the repetition
        penalty over prompt and reply, and when sampling the temperature and its default top-k."""
        from transformers import (
            LogitsProcessorList,
            RepetitionPenaltyLogitsProcessor,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
        )

        from chatrec.llm.batching import REPETITION_PENALTY

        procs = LogitsProcessorList([RepetitionPenaltyLogitsProcessor(REPETITION_PENALTY)])
        if self.settings.temperature > 0:
            procs += [TemperatureLogitsWarper(self.settings.temperature), TopKLogitsWarper(50)]
        return procs

    def stream(
        self,
        messages: list[Message],
        max_new_tokens: int,
        cancel: threading.Event | None = None,
        adapter: str | None = None,
    ) -> Iterator[str]:
        """The reply's text as it is generated. The generation runs in the backend's batcher
        (:mod:`chatrec.llm.batching`), decoded together with the other conversations'; a consumer
        that stops reading (or sets ``cancel``) ends it at the next token. ``adapter``: a named
        adapter (``llm.adapters``) for this request."""
        from transformers import TextIteratorStreamer

        from chatrec.llm.batching import Request

        self._check_adapter(adapter)
        cancel = cancel or threading.Event()
        ids = self._encode(messages)["input_ids"][0].tolist()
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        self._local.usage = None
        request = self.batcher.submit(Request(ids, max_new_tokens, cancel, streamer, adapter=adapter))
        try:
            for piece in streamer:
                if cancel.is_set():  # pieces already decoded when cancelled are dropped
                    break
                if piece:
                    yield piece
        finally:
            cancel.set()
            request.done.wait()
            if request.usage:
                self._local.usage = dict(request.usage)
        if request.error is not None:
            raise request.error

    def generate(self, messages: list[Message], max_new_tokens: int, adapter: str | None = None) -> str:
        return "".join(self.stream(messages, max_new_tokens, adapter=adapter))

    def score(self, prompts: list[list[Message]], continuation: str, adapter: str | None = None) -> list[float]:
        """Sum of log-probabilities of ``continuation`` after each chat prompt, in one padded batch."""
        import torch

        self._check_adapter(adapter)
        tok = self.tokenizer
        cont = tok(continuation, add_special_tokens=False)["input_ids"]
        seqs = [
            tok.apply_chat_template(p, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
            for p in prompts
        ]
        seqs = [list(s) + cont for s in seqs]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        with self._lock, torch.inference_mode():
            logits = self.model(
                input_ids=ids, attention_mask=mask, **self.adapter_kwargs([adapter] * len(seqs))
            ).logits.float()
        logp = torch.log_softmax(logits, dim=-1)
        out = []
        for i, s in enumerate(seqs):
            start = len(s) - len(cont)
            positions = torch.arange(start - 1, len(s) - 1)
            out.append(float(logp[i, positions, torch.tensor(cont)].sum()))
        return out

    def score_choices(
        self,
        prompts: list[list[Message]],
        choices: list[str],
        share_prefix: bool = True,
        adapter: str | None = None,
    ) -> list[list[float]]:
        """Next-token log-probabilities of each choice's first token after every prompt.

        Ranking prompts differ only in the candidate (profile and request come first), so the
        tokens all prompts share are run once and their key/value cache is reused by every
        row: the batch then only computes each prompt's own tail. On 2 CPU cores that turns
        50 prompts of ~250 tokens into one 250-token pass plus 50 short ones. Rows are scored
        in chunks of ``SCORE_CHUNK`` to bound the cache copy. ``share_prefix=False`` (or a
        shared part under ``MIN_SHARED`` tokens) runs every prompt in full, left-padded."""
        import torch

        self._check_adapter(adapter)
        tok = self.tokenizer
        firsts = [tok(c, add_special_tokens=False)["input_ids"][0] for c in choices]
        seqs = [
            list(tok.apply_chat_template(p, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"])
            for p in prompts
        ]
        shared = _common_prefix(seqs) if share_prefix and len(seqs) > 1 else 0
        with self._lock, torch.inference_mode():
            if shared < MIN_SHARED:
                logits = self._last_logits(seqs, adapter=adapter)
            else:
                out = self.model(
                    input_ids=torch.tensor([seqs[0][:shared]]), use_cache=True, **self.adapter_kwargs([adapter])
                )
                prefix = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
                logits = torch.cat(
                    [
                        self._last_logits([s[shared:] for s in seqs[i : i + SCORE_CHUNK]], prefix, shared, adapter)
                        for i in range(0, len(seqs), SCORE_CHUNK)
                    ]
                )
        logp = torch.log_softmax(logits.float(), dim=-1)
        return [[float(logp[i, t]) for t in firsts] for i in range(len(seqs))]

    def _last_logits(self, seqs: list[list[int]], prefix=None, shared: int = 0, adapter: str | None = None):
        """Logits at the last position of each (left-padded) sequence, optionally after a
        cached ``prefix`` of ``shared`` tokens common to all of them."""
        import copy

        import torch

        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, s in enumerate(seqs):  # left padding: every prompt ends at the last position
            ids[i, width - len(s) :] = torch.tensor(s)
            mask[i, width - len(s) :] = 1
        kwargs = self.adapter_kwargs([adapter] * len(seqs))
        if prefix is not None:  # padding sits between the shared prefix and each tail, masked out
            cache = copy.deepcopy(prefix)
            cache.batch_repeat_interleave(len(seqs))
            mask = torch.cat([torch.ones((len(seqs), shared), dtype=mask.dtype), mask], dim=1)
            kwargs[self._cache_arg] = cache
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -width:]
        return self.model(
            input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1, **kwargs
        ).logits[:, -1]

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
