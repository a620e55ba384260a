"""Start-up errors (issue 16): a missing or damaged model, adapter or index, a missing config file and
an unknown CHATREC_ variable end with one line saying what is wrong and the command that fixes it,
exit code 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from chatrec.cli.main import main
from tests_support import REPO, make_tiny_model


def one_line_error(result) -> str:
    """The error of a finished CliRunner run: exit code 2, no traceback, its message."""
    out = result.output
    assert result.exit_code == 2, (result.exit_code, out, result.exception)
    assert "Traceback" not in out and not isinstance(result.exception, (AttributeError, TypeError, KeyError))
    return out


def test_startup_missing_model_folder_says_which_path_and_how_to_fix(tmp_path):
    missing = tmp_path / "no-such-model"
    out = one_line_error(CliRunner().invoke(main, ["--model", str(missing), "ask", "hi"]))
    assert str(missing) in out and "does not exist" in out and "llm.model" in out
    assert "hub" not in out.lower()  # not the misleading Hugging Face Hub error


def test_startup_unknown_hub_id_offline_says_hf_hub_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = one_line_error(CliRunner().invoke(main, ["--model", "nobody-xyz/not-a-model", "ask", "hi"]))
    assert "nobody-xyz/not-a-model" in out and "HF_HUB_OFFLINE" in out and "local model folder" in out


def test_startup_truncated_weights_file_says_the_files_are_damaged(tmp_path):
    folder = make_tiny_model(tmp_path / "tiny")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
    out = one_line_error(
        CliRunner().invoke(main, ["--model", str(folder), "ask", "hi"], env={"CHATREC_LLM__QUANTIZATION": "none"})
    )
    assert str(folder) in out and "damaged" in out


def test_startup_missing_adapter_says_how_to_fix(tmp_path):
    from chatrec.config import LLMSettings
    from chatrec.llm.transformers_backend import ModelUnavailable, load_model

    with pytest.raises(ModelUnavailable, match="chatrec train"):
        load_model(LLMSettings(adapter=str(tmp_path)), tmp_path)


@pytest.mark.parametrize("command", [["index"], ["--backend", "fake", "ask", "hi"]])
def test_startup_corrupted_chroma_database_says_rebuild(tmp_path, command):
    chroma = tmp_path / "state" / "chroma"
    chroma.mkdir(parents=True)
    (chroma / "chroma.sqlite3").write_bytes(b"this is not a database " * 200)
    out = one_line_error(CliRunner().invoke(main, ["--data-dir", str(tmp_path / "state"), *command]))
    assert str(chroma) in out and "chatrec index" in out and "rm -rf" in out


def test_startup_missing_config_file_is_an_error(tmp_path):
    out = one_line_error(CliRunner().invoke(main, ["--config", str(tmp_path / "nope.toml"), "validate"]))
    assert "nope.toml" in out and "does not exist" in out


def test_startup_misspelt_chatrec_variable_is_an_error():
    out = one_line_error(CliRunner().invoke(main, ["validate"], env={"CHATREC_LLM__BAKCEND": "fake"}))
    assert "CHATREC_LLM__BAKCEND" in out and "CHATREC_LLM__BACKEND" in out


@pytest.mark.parametrize(
    "legacy, setting",
    [
        ("CHATREC_SERVE_HOST", "CHATREC_SERVE__HOST"),
        ("CHATREC_SERVE_PORT", "CHATREC_SERVE__PORT"),
        ("CHATREC_ADMIN_TOKEN", "CHATREC_SERVE__ADMIN_TOKEN"),
        ("CHATREC_DEMO_SITE_KEY", "CHATREC_SERVE__DEMO_SITE_KEY"),
    ],
)
def test_startup_legacy_serve_variables_are_settings_fields_now(legacy, setting, monkeypatch):
    from chatrec.config import load_settings

    out = one_line_error(CliRunner().invoke(main, ["validate"], env={legacy: "x"}))
    assert legacy in out and f"use {setting}" in out
    name = setting.removeprefix("CHATREC_SERVE__").lower()
    value = "8123" if name == "port" else "x"
    monkeypatch.setenv(setting, value)
    assert str(getattr(load_settings().serve, name)) == value


def test_startup_app_gradio_missing_model_is_one_line_exit_2(tmp_path):
    env = {**os.environ, "CHATREC_LLM__MODEL": str(tmp_path / "gone"), "CHATREC_DATA_DIR": str(tmp_path / "s")}
    run = subprocess.run(
        [sys.executable, str(REPO / "app_gradio.py")], env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert str(tmp_path / "gone") in run.stderr and "does not exist" in run.stderr


def test_startup_app_gradio_on_a_public_address_needs_the_admin_token(tmp_path):
    env = {**os.environ, "CHATREC_LLM__BACKEND": "fake", "CHATREC_DATA_DIR": str(tmp_path / "s")}
    env.pop("CHATREC_SERVE__ADMIN_TOKEN", None)
    run = subprocess.run(
        [sys.executable, str(REPO / "app_gradio.py"), "--host", "0.0.0.0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2 and "admin_token" in run.stderr and "Traceback" not in run.stderr
