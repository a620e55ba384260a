"""The embedded GGUF is converted once per cache folder, even when several processes (two
replicas of the app, parallel test workers) start on an empty cache at the same time."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from chatrec import models
from chatrec.config import EMBEDDED_LLM


def test_concurrent_first_loads_convert_once_and_all_get_the_finished_folder(tmp_path, monkeypatch):
    calls = []

    def slow_convert(src_dir: Path, gguf_file: str, target: Path) -> None:
        calls.append(target)
        time.sleep(0.5)  # long enough for the other callers to arrive while it runs
        target.mkdir(parents=True)
        (target / "model.safetensors").write_bytes(b"weights")
        (target / "config.json").write_text("{}")

    monkeypatch.setattr(models, "convert_gguf", slow_convert)
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(models.llm_path(EMBEDDED_LLM, tmp_path))) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    target = tmp_path / "smollm2-135m-instruct"
    assert calls == [target]
    assert results == [str(target)] * 3
    # a later start finds the folder and neither converts nor waits on the lock
    assert models.llm_path(EMBEDDED_LLM, tmp_path) == str(target) and len(calls) == 1


def test_a_killed_conversions_temp_folder_is_swept_before_converting(tmp_path, monkeypatch):
    left = tmp_path / ".convert-k1ll3d"  # what a SIGKILL during convert_gguf leaves
    (left / "sub").mkdir(parents=True)
    (left / "sub" / "model.safetensors").write_bytes(b"half")

    def convert(src_dir: Path, gguf_file: str, target: Path) -> None:
        assert not left.exists()
        target.mkdir()
        (target / "model.safetensors").write_bytes(b"weights")
        (target / "config.json").write_text("{}")

    monkeypatch.setattr(models, "convert_gguf", convert)
    models.llm_path(EMBEDDED_LLM, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["smollm2-135m-instruct", "smollm2-135m-instruct.lock"]


def test_a_model_id_or_path_is_passed_through_untouched(tmp_path):
    assert models.llm_path("HuggingFaceTB/SmolLM2-360M-Instruct", tmp_path) == "HuggingFaceTB/SmolLM2-360M-Instruct"
    assert not any(tmp_path.iterdir())
