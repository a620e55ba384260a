import json
from pathlib import Path

import pytest

from chatrec.chatbot import Chatbot
from chatrec.kb import is_heldout
from chatrec.llm.fake import FakeLLM
from chatrec.train.sft import TrainConfig, TrainingError, build_examples, train
from tests_support import TINY, make_tiny_model


def test_examples_use_the_inference_prompt_and_the_logged_items(fake_bot):
    train_ex = build_examples(fake_bot.planner, heldout=False)
    held = build_examples(fake_bot.planner, heldout=True)
    assert train_ex and held
    assert not {e["conversation_id"] for e in train_ex} & {e["conversation_id"] for e in held}
    assert all(is_heldout(e["conversation_id"]) for e in held)
    ex = next(e for e in train_ex if "Items to recommend:" in e["prompt"][-1]["content"])
    assert ex["prompt"][0]["role"] == "system" and ex["completion"][0]["role"] == "assistant"
    conv = next(c for c in fake_bot.kb.transcripts if c.conversation_id == ex["conversation_id"])
    shown = {i for t in conv.turns for i in t.recommended}
    listed = {line.split("]")[0][3:] for line in ex["prompt"][-1]["content"].splitlines() if line.startswith("- [")}
    assert listed and listed <= shown  # the prompt lists what the logged agent showed


def test_the_ranking_task_adds_yes_no_examples_with_the_rankers_prompt(tmp_path, fake_bot, kb, shared_index):
    from chatrec.turn.pii import mask_pii
    from chatrec.turn.plan import PlanOptions, TurnInput
    from chatrec.turn.state import DialogueState
    from tests_support import fake_settings

    some = [c.conversation_id for c in kb.transcripts if any(t.recommended for t in c.turns)][:30]
    plain = build_examples(fake_bot.planner, conversation_ids=some)
    both = build_examples(fake_bot.planner, conversation_ids=some, rank_negatives=2)
    rank = [e for e in both if e.get("task") == "rank"]
    assert [e for e in both if e.get("task") != "rank"] == plain  # the reply examples do not change
    convs = {c.conversation_id: c for c in kb.transcripts}
    per_turn: dict = {}
    for ex in rank:
        conv = convs[ex["conversation_id"]]
        turn, item = conv.turns[ex["turn"]], ex["item_id"]
        per_turn.setdefault((conv.conversation_id, ex["turn"]), []).append((item, ex["completion"][0]["content"]))
        if ex["completion"][0]["content"] == "Yes":
            assert item in turn.accepted  # the demo log records feedback: only accepted items are Yes
        elif item not in turn.recommended:  # a hard negative: never shown anywhere in the conversation
            assert all(item not in t.recommended for t in conv.turns)
    for (cid, n), labelled in per_turn.items():
        turn = convs[cid].turns[n]
        assert {i for i, label in labelled if label == "Yes"} == set(turn.accepted)
        assert {i for i, label in labelled if label == "No"} >= set(turn.recommended) - set(turn.accepted)
        assert len([i for i, _ in labelled if i not in turn.recommended]) <= 2
    assert sum(i not in convs[cid].turns[n].recommended for (cid, n), ls in per_turn.items() for i, _ in ls) > 20

    # each prompt is the one the ranker scores at inference for that item, turn and user
    class Recording(FakeLLM):
        def score_choices(self, prompts, choices):
            self.scored = getattr(self, "scored", []) + prompts
            return super().score_choices(prompts, choices)

    llm = Recording()
    live = Chatbot(
        fake_settings(tmp_path, ranking={"w_llm": 0.5, "llm_candidates": 50}), llm=llm, kb=kb, index=shared_index
    )
    cid, n = next(k for k in per_turn if k[1] == 1)  # an opening turn: no state to carry over
    conv = convs[cid]
    live.planner.plan(
        TurnInput(mask_pii(conv.turns[0].text), DialogueState(), conv.user_id, conv.started_at),
        PlanOptions(rank_always=True),
    )
    ours = [
        e["prompt"]
        for e in rank
        if (e["conversation_id"], e["turn"]) == (cid, n) and e["item_id"] not in conv.turns[n].recommended
    ]
    assert ours and all(p in llm.scored for p in ours)


def test_too_little_data_is_a_clear_error(tmp_path, shared_index):
    from chatrec.config import load_settings
    from chatrec.kb import load_kb

    settings = load_settings(kb_dir=str(TINY), data_dir=str(tmp_path / "state"), llm={"backend": "fake"})
    bot = Chatbot(settings, llm=FakeLLM(), kb=load_kb(TINY), index=shared_index).planner
    with pytest.raises(TrainingError, match="need at least 8"):
        train(bot, tmp_path / "adapter", TrainConfig(max_steps=1))
    assert not (tmp_path / "adapter").exists()


@pytest.fixture
def small_kb_bot(tmp_path, shared_index):
    """The demo KB with its first 60 conversations (the default training path on a tenth of the
    replay): a Chatbot on the scripted model."""
    from chatrec.config import load_settings
    from chatrec.kb import load_kb
    from tests_support import KB_DIR

    kb_dir = tmp_path / "kb"
    kb_dir.mkdir()
    for f in KB_DIR.iterdir():
        if f.is_file() and f.name != "transcripts.jsonl":
            (kb_dir / f.name).symlink_to(f)
    lines = (KB_DIR / "transcripts.jsonl").read_text(encoding="utf-8").splitlines()[:60]
    (kb_dir / "transcripts.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = load_settings(kb_dir=str(kb_dir), data_dir=str(tmp_path / "state"), llm={"backend": "fake"})
    return Chatbot(settings, llm=FakeLLM(), kb=load_kb(kb_dir), index=shared_index)


@pytest.mark.slow
def test_one_qlora_step_writes_an_adapter_with_its_card(tmp_path, small_kb_bot):
    out = tmp_path / "adapter"
    cfg = TrainConfig(max_steps=1, max_eval_examples=2, eval_steps=10, rank_negatives=1)
    card = train(small_kb_bot.planner, out, cfg)
    assert (out / "adapter_config.json").exists() and (out / "adapter_model.safetensors").exists()
    saved = json.loads((out / "chatrec_card.json").read_text())
    assert saved["data"]["kb_hash"] == small_kb_bot.kb.fingerprint() and saved["metrics"]["steps"] == 1
    assert card["metrics"]["eval_loss"] > 0
    assert saved["config"]["rank_negatives"] == 1  # with the ranker's Yes/No examples
    assert 0 < card["metrics"]["rank_examples"] < card["metrics"]["train_examples"]
    assert 1 <= card["metrics"]["eval_examples"] <= 2  # max_eval_examples, less any too long for max_length
    assert not out.with_name(out.name + ".tmp").exists() and not out.with_name(out.name + ".work").exists()


# ------------------------------------------------------------------ bad input and interrupted runs


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-llm"))


def tiny_bot(tmp_path, tiny_model, kb_dir=None):
    """What :func:`train` needs of a Chatbot (settings and kb) with the tiny model in full precision;
    no index, since these tests pass their examples in."""
    from types import SimpleNamespace

    from chatrec.config import load_settings
    from chatrec.kb import load_kb
    from tests_support import KB_DIR

    kb_dir = kb_dir or KB_DIR
    settings = load_settings(
        kb_dir=str(kb_dir),
        data_dir=str(tmp_path / "state"),
        llm={"backend": "fake", "model": str(tiny_model), "quantization": "none"},
    )
    return SimpleNamespace(settings=settings, kb=load_kb(kb_dir))


def synthetic_examples(n: int, tag: str = "") -> list[dict]:
    system = {"role": "system", "content": "You are the shop's assistant. Answer briefly."}
    return [
        {
            "prompt": [system, {"role": "user", "content": f"{tag}Where is my order number {i}?"}],
            "completion": [{"role": "assistant", "content": f"Order {i} ships tomorrow; you will get an e-mail."}],
        }
        for i in range(n)
    ]


def test_empty_transcripts_are_a_clear_error(tmp_path, tiny_model):
    kb_dir = tmp_path / "kb"
    kb_dir.mkdir()
    (kb_dir / "shop.json").write_text(json.dumps({"name": "Empty shop", "currency": "USD"}))
    for name in ("catalogue.jsonl", "transcripts.jsonl", "templates.jsonl"):
        (kb_dir / name).write_text("")
    bot = tiny_bot(tmp_path, tiny_model, kb_dir)
    with pytest.raises(TrainingError, match=r"only 0 training example\(s\).*need at least 8"):
        train(bot, tmp_path / "adapter", TrainConfig(max_steps=1))
    assert not (tmp_path / "adapter").exists() and not (tmp_path / "adapter.work").exists()


def test_examples_that_cannot_fit_the_context_are_a_clear_error(tmp_path, tiny_model):
    bot = tiny_bot(tmp_path, tiny_model)
    with pytest.raises(TrainingError, match="fit in 16 tokens"):  # the system prompt alone is longer
        train(bot, tmp_path / "adapter", TrainConfig(max_steps=1, max_length=16), examples=(synthetic_examples(10), []))
    assert not (tmp_path / "adapter").exists()


def test_long_conversations_lose_their_oldest_turns_with_a_warning(tiny_model, caplog):
    from transformers import AutoTokenizer

    from chatrec.train.sft import fit_to_context

    tok = AutoTokenizer.from_pretrained(tiny_model)
    system = {"role": "system", "content": "You are the shop's assistant."}
    history = []
    for i in range(4):
        history += [
            {"role": "user", "content": f"old question {i} " + "about cables " * 20},
            {"role": "assistant", "content": f"old answer {i} " + "with details " * 20},
        ]
    current = {"role": "user", "content": "and the latest question?"}
    reply = [{"role": "assistant", "content": "The latest answer."}]
    long = {"prompt": [system, *history, current], "completion": reply}
    keep_last_pair = [system, *history[-2:], current]
    limit = len(tok.apply_chat_template(keep_last_pair + reply, tokenize=True, return_dict=True)["input_ids"])
    short = {"prompt": [system, current], "completion": reply}
    hopeless = {"prompt": [system, {"role": "user", "content": "word " * 400}], "completion": reply}
    examples = [long, short, hopeless]
    with caplog.at_level("WARNING", logger="chatrec.train.sft"):
        cut = fit_to_context(examples, tok, limit)
    assert cut == 1  # `long` lost turns; `hopeless` has no history to lose
    assert examples == [long, short]  # `hopeless` has no room for a reply even without history: left out
    assert long["prompt"] == keep_last_pair  # oldest turns went first, as whole user+assistant pairs
    assert short["prompt"] == [system, current]
    messages = [r.getMessage() for r in caplog.records]
    assert any("longer than" in m and "oldest turns dropped" in m for m in messages)
    assert any("left out" in m for m in messages)


class _Killed(RuntimeError):
    pass


def _kill_after(step: int):
    from transformers import TrainerCallback

    class Kill(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= step:
                raise _Killed(f"killed at step {state.global_step}")

    return Kill()


def _record_steps(seen: list[int]):
    from transformers import TrainerCallback

    class Record(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            seen.append(state.global_step)

    return Record()


def test_an_interrupted_run_leaves_no_partial_adapter_and_resumes(tmp_path, tiny_model):
    bot = tiny_bot(tmp_path, tiny_model)
    examples = (synthetic_examples(12), synthetic_examples(2, "Eval: "))
    out = tmp_path / "adapters" / "shop"
    out.mkdir(parents=True)
    (out / "previous.txt").write_text("the adapter of an earlier run")
    cfg = TrainConfig(max_steps=4, save_steps=2, eval_steps=100, max_eval_examples=1, max_length=256, lora_r=4)
    with pytest.raises(_Killed):
        train(bot, out, cfg, examples=examples, callbacks=[_kill_after(3)])
    work = out.with_name("shop.work")
    assert (out / "previous.txt").exists() and sorted(p.name for p in out.iterdir()) == ["previous.txt"]
    assert not out.with_name("shop.tmp").exists()
    assert (work / "checkpoint-2" / "trainer_state.json").exists()
    # a checkpoint cut off while being written (no trainer_state.json) is discarded, not resumed from
    (work / "checkpoint-3").mkdir()
    (work / "checkpoint-3" / "adapter_model.safetensors").write_bytes(b"truncated")

    seen: list[int] = []
    card = train(bot, out, cfg, examples=examples, callbacks=[_record_steps(seen)])
    assert seen == [3, 4]  # the global step continues from checkpoint-2
    assert card["metrics"]["steps"] == 4 and card["metrics"]["resumed"] is True
    assert (out / "adapter_model.safetensors").exists() and (out / "chatrec_card.json").exists()
    assert not (out / "previous.txt").exists()
    assert not work.exists() and not out.with_name("shop.tmp").exists() and not out.with_name("shop.old").exists()


def test_checkpoints_of_other_data_are_not_resumed(tmp_path, tiny_model, caplog):
    bot = tiny_bot(tmp_path, tiny_model)
    out = tmp_path / "adapter"
    cfg = TrainConfig(max_steps=3, save_steps=1, eval_steps=100, max_eval_examples=1, max_length=256, lora_r=4)
    train_ex, eval_ex = synthetic_examples(12), synthetic_examples(2, "Eval: ")
    with pytest.raises(_Killed):
        train(bot, out, cfg, examples=(train_ex, eval_ex), callbacks=[_kill_after(2)])
    seen: list[int] = []
    with caplog.at_level("WARNING", logger="chatrec.train.sft"):
        card = train(bot, out, cfg, examples=(train_ex[1:], eval_ex), callbacks=[_record_steps(seen)])
    assert seen == [1, 2, 3] and card["metrics"]["resumed"] is False
    assert any("starting afresh" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------ chatrec export


def _random_adapter(tiny_model: Path, folder: Path, base_model: str):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], task_type="CAUSAL_LM"),
    )
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.5)  # a fresh LoRA is a no-op (B = 0); make it change the model
    model.save_pretrained(folder)
    (folder / "chatrec_card.json").write_text(json.dumps({"base_model": base_model, "metrics": {"steps": 1}}))
    return model.eval()


def test_export_merges_an_adapter_by_name_in_full_precision_and_the_result_loads_in_4bit(tmp_path, tiny_model):
    import torch
    from click.testing import CliRunner
    from transformers import AutoModelForCausalLM

    from chatrec.cli.main import main
    from chatrec.config import LLMSettings, load_settings
    from chatrec.llm.transformers_backend import load_model

    data_dir = tmp_path / "state"
    peft_model = _random_adapter(tiny_model, data_dir / "adapters" / "shop", str(tiny_model))
    out = tmp_path / "merged"
    args = ["--data-dir", str(data_dir), "--model", str(tiny_model), "export", "--adapter", "shop", "--out", str(out)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "merged model written to" in res.output
    assert (out / "model.safetensors").exists() and (out / "tokenizer_config.json").exists()
    info = json.loads((out / "chatrec_export.json").read_text())
    assert info["merged_dtype"] == "float32" and info["adapter"].endswith("adapters/shop")

    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    assert not any("lora" in k for k in merged.state_dict())
    ids = torch.tensor([[1, 500, 900, 1200, 42]])
    with torch.inference_mode():
        want, got = peft_model(input_ids=ids).logits, merged(input_ids=ids).logits
        plain = AutoModelForCausalLM.from_pretrained(tiny_model)(input_ids=ids).logits
    assert torch.allclose(want, got, atol=1e-4)  # the LoRA is in the merged weights...
    assert not torch.allclose(plain, got, atol=1e-2)  # ...and it changed the model

    # `llm.model` can name the folder; it loads quantised like any model
    model, _ = load_model(LLMSettings(model=str(out), quantization="nf4"), load_settings().cache_dir)
    assert getattr(model, "is_loaded_in_4bit", False)

    again = CliRunner().invoke(main, args)
    assert again.exit_code != 0 and "--overwrite" in again.output
    assert CliRunner().invoke(main, args + ["--overwrite"]).exit_code == 0


def test_export_refuses_an_adapter_of_another_base_model_or_a_missing_one(tmp_path, tiny_model):
    from click.testing import CliRunner

    from chatrec.cli.main import main

    data_dir = tmp_path / "state"
    _random_adapter(tiny_model, data_dir / "adapters" / "shop", "some/other-model")
    base = ["--data-dir", str(data_dir), "--model", str(tiny_model), "export", "--out", str(tmp_path / "m")]
    res = CliRunner().invoke(main, base + ["--adapter", "shop"])
    assert res.exit_code != 0 and "was trained on 'some/other-model'" in res.output
    res = CliRunner().invoke(main, base + ["--adapter", "nope"])
    assert res.exit_code != 0 and "neither a folder nor a trained adapter" in res.output
    assert not (tmp_path / "m").exists()
