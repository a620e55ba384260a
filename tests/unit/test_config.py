import ast
import os
import re
from dataclasses import asdict
from pathlib import Path

import pytest

from chatrec.config import (
    NON_SETTINGS_ENV,
    RENAMED_ENV,
    EvalSettings,
    Settings,
    SettingsError,
    TrainSettings,
    load_settings,
    unknown_env_vars,
)
from chatrec.llm import make_llm
from tests_support import REPO


def test_env_overrides_defaults(monkeypatch):
    monkeypatch.setenv("CHATREC_LLM__MAX_NEW_TOKENS", "42")
    assert load_settings().llm.max_new_tokens == 42


def test_toml_file_then_env_then_overrides(tmp_path, monkeypatch):
    cfg = tmp_path / "c.toml"
    cfg.write_text("history_turns = 2\n[llm]\nmax_new_tokens = 10\ntemperature = 0.5\n")
    monkeypatch.setenv("CHATREC_LLM__MAX_NEW_TOKENS", "20")
    s = load_settings(cfg, llm={"temperature": 0.1})
    assert s.history_turns == 2 and s.llm.max_new_tokens == 20 and s.llm.temperature == 0.1


def test_openai_backend_needs_base_url():
    with pytest.raises(ValueError, match="base_url"):
        load_settings(llm={"backend": "openai"})


def test_unknown_backend_lists_valid_ones():
    s = Settings()
    object.__setattr__(s.llm, "backend", "nope")
    with pytest.raises(ValueError, match="fake.*openai.*transformers"):
        make_llm(s)


def test_missing_config_file_is_an_error_naming_it(tmp_path, monkeypatch):
    missing = tmp_path / "nope.toml"
    with pytest.raises(SettingsError, match=r"nope\.toml.*--config.*does not exist"):
        load_settings(missing)
    monkeypatch.setenv("CHATREC_CONFIG", str(missing))
    with pytest.raises(SettingsError, match=r"nope\.toml.*CHATREC_CONFIG"):
        load_settings()
    with pytest.raises(SettingsError, match="CHATREC_CONFIG"):
        Settings()


def test_config_file_from_env_and_no_environment_writes(tmp_path, monkeypatch):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[train]\nmax_steps = 9\n")
    before = dict(os.environ)
    assert load_settings(cfg).train.max_steps == 9
    assert dict(os.environ) == before  # the file is passed per call, not through os.environ
    assert load_settings().train.max_steps == TrainSettings().max_steps  # and is not remembered
    monkeypatch.setenv("CHATREC_CONFIG", str(cfg))
    assert load_settings().train.max_steps == 9


def test_unknown_chatrec_variables_are_listed_with_the_sections(monkeypatch):
    monkeypatch.setenv("CHATREC_LLM__MODLE", "x")
    monkeypatch.setenv("CHATREC_FOO", "1")
    monkeypatch.setenv("CHATREC_CACHE_DIR", "/tmp/cache")  # a real top-level field
    with pytest.raises(SettingsError) as err:
        load_settings()
    msg = str(err.value)
    assert "CHATREC_LLM__MODLE" in msg and "did you mean CHATREC_LLM__MODEL" in msg
    assert "CHATREC_FOO" in msg and "valid sections: clarify, eval, grounding, llm" in msg and "train" in msg
    assert "CHATREC_CACHE_DIR" not in msg and "CHATREC_CONFIG" not in msg


@pytest.mark.parametrize("name", ["CHATREC_LLM_BACKEND", "CHATREC_LLM__MODEL__X", "CHATREC_TRAIN__LR", "chatrec_foo"])
def test_unknown_variable_shapes(name):
    assert unknown_env_vars({name: "1"}) and not unknown_env_vars(
        {"CHATREC_TRAIN__MAX_STEPS": "1", "CHATREC_LLM": "{}", "CHATREC_CONFIG": "x", "OTHER_LLM__X": "1"}
    )


def _chatrec_names(root: Path) -> set[str]:
    """``CHATREC_*`` string constants in the code (the tests of the check, with deliberately bad names, left out)."""
    names = set()
    for path in root.rglob("*.py"):
        if path.resolve() in (
            Path(__file__).resolve(),
            REPO / "tests" / "unit" / "cli" / "test_cli.py",
            REPO / "tests" / "unit" / "cli" / "test_startup_errors.py",
        ):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and re.fullmatch(r"CHATREC_[A-Z0-9_]*[A-Z0-9]", node.value)
            ):
                names.add(node.value)
    return names


def test_every_chatrec_variable_the_code_reads_is_known():
    used = _chatrec_names(REPO / "chatrec") | _chatrec_names(REPO / "tests")
    assert "CHATREC_CONFIG" in used and "CHATREC_DATA_DIR" in used
    # the old names are read only to say what replaced them (chatrec.config.RENAMED_ENV)
    assert unknown_env_vars({n: "1" for n in used - set(RENAMED_ENV)}) == []
    stale = NON_SETTINGS_ENV - used
    assert not stale, f"{sorted(stale)} are read nowhere any more: remove them from chatrec.config.NON_SETTINGS_ENV"


def test_a_misspelt_key_in_a_toml_section_is_an_error(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[train]\nmax_stpes = 3\n")
    with pytest.raises(ValueError, match="max_stpes"):
        load_settings(cfg)


def test_train_and_eval_sections_layer_like_the_rest(tmp_path, monkeypatch):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[train]\nmax_steps = 5\nlora_r = 8\n[eval]\nworkers = 2\nablations = ["kg"]\n')
    monkeypatch.setenv("CHATREC_TRAIN__LORA_R", "4")
    monkeypatch.setenv("CHATREC_EVAL__FUSION", "configured")
    s = load_settings(cfg, train={"max_steps": None, "seed": 3})
    assert (s.train.max_steps, s.train.lora_r, s.train.seed) == (5, 4, 3)
    assert (s.eval.workers, s.eval.ablations, s.eval.fusion) == (2, ["kg"], "configured")


def test_run_objects_take_their_defaults_from_the_settings_sections():
    from chatrec.eval.options import EvalOptions
    from chatrec.train.sft import TrainConfig

    assert TrainConfig is TrainSettings  # a training run is configured by the [train] section itself
    run_only = {"transcripts", "out", "limit", "sample", "train", "fit_sample", "ray"}
    opts = asdict(EvalOptions(transcripts="t", out="o"))
    assert {k: v for k, v in opts.items() if k not in run_only} == EvalSettings().model_dump()
    assert asdict(EvalOptions("t", "o", **EvalSettings(seed=1).model_dump()))["seed"] == 1
