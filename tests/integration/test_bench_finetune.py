"""The fine-tuning benchmark's own logic: the split by question, the bootstrap, batched scoring.

The benchmark itself (real model, Bitext data) is run by hand: see docs/training.md."""

import importlib.util
import math

import numpy as np
import pytest

from tests_support import REPO, make_tiny_model

_spec = importlib.util.spec_from_file_location("bench_finetune", REPO / "benchmarks" / "bench_finetune.py")
assert _spec is not None and _spec.loader is not None
bf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bf)


def unit(v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_normalised_questions_ignore_case_punctuation_and_spaces():
    assert bf.normalise_question("How do I  cancel, my order?") == bf.normalise_question("how do i cancel my order")
    assert bf.normalise_question("cancel order 123") != bf.normalise_question("cancel order 124")


def test_exact_and_near_duplicates_share_a_group_transitively():
    qs = ["Cancel my order!", "cancel my order", "a", "b", "c", "unrelated"]
    e = np.stack(
        [
            unit([1, 0, 0, 0]),
            unit([1, 0, 0, 0]),
            unit([0, 1, 0, 0]),
            unit([0, 1, 0.45, 0]),
            unit([0, 1, 0.9, 0]),  # a~b, b~c, a !~ c
            unit([0, 0, 0, 1]),
        ]
    )
    assert float(e[2] @ e[4]) < 0.9 <= float(e[2] @ e[3])
    groups, stats = bf.question_groups(qs, e, 0.9)
    assert groups[0] == groups[1] and groups[2] == groups[3] == groups[4]
    assert len(set(groups)) == 3
    assert stats["exact_duplicate_rows"] == 1 and stats["near_duplicate_pairs"] == 3  # 0-1, 2-3, 3-4


def test_the_split_keeps_groups_whole_is_seeded_and_keeps_pinned_rows_in_train():
    rng = np.random.default_rng(0)
    n = 400
    base = rng.normal(size=(120, 32))
    e = np.stack([unit(base[i % 120] + 0.05 * rng.normal(size=32)) for i in range(n)])  # ~3 near-dups each
    qs = [f"question {i}" for i in range(n)]
    groups, _ = bf.question_groups(qs, e, 0.9)
    train, test, stats = bf.split_groups(groups, 0.1, seed=7, pinned_train={0, 5})
    assert set(train) | set(test) == set(range(n)) and not set(train) & set(test)
    assert not {groups[i] for i in train} & {groups[i] for i in test}
    assert 0 in train and 5 in train
    assert abs(len(test) - 40) <= 5 and stats["test_rows"] == len(test)
    assert bf.max_cross_similarity(e, train, test) < 0.9
    assert bf.split_groups(groups, 0.1, seed=7, pinned_train={0, 5})[1] == test
    assert bf.split_groups(groups, 0.1, seed=8, pinned_train={0, 5})[1] != test
    reps = bf.representatives(groups, test, seed=7)
    assert len(reps) == len({groups[i] for i in test}) == stats["test_groups"]


def test_bootstrap_gives_paired_percentile_intervals():
    base = [0.1, 0.2, 0.3, 0.4, 0.5, 0.2, 0.3]
    lora = [x + 0.1 for x in base]
    m = bf.bootstrap(base, lora, n=1000, seed=1)
    assert m["base"] == pytest.approx(np.mean(base)) and m["diff"] == pytest.approx(0.1)
    assert m["base_ci"][0] <= m["base"] <= m["base_ci"][1]
    assert m["diff_ci"] == pytest.approx([0.1, 0.1])  # paired: every resample shifts by exactly 0.1
    assert bf.bootstrap(base, lora, n=1000, seed=1) == m  # seeded
    same = bf.bootstrap(base, base, n=1000, seed=1)
    assert same["diff"] == 0 and same["diff_ci"] == [0.0, 0.0]


def test_perplexity_is_a_ratio_of_sums_over_tokens():
    nll_b, tok_b = [10.0, 30.0], [5, 10]
    m = bf.bootstrap(nll_b, [8.0, 24.0], n=1000, seed=1, weights=(tok_b, tok_b))
    assert m["base"] == pytest.approx(math.exp(40 / 15)) and m["lora"] == pytest.approx(math.exp(32 / 15))
    assert m["diff"] < 0 and m["diff_ci"][1] < 0


def test_markdown_table():
    m = bf.bootstrap([0.1, 0.3], [0.2, 0.4], n=1000, seed=1)
    table = bf.markdown_table({"ROUGE-L": m})
    assert table.splitlines()[0].startswith("| metric | n | base [95% CI]")
    assert "| ROUGE-L | 2 | 0.200 [" in table


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = make_tiny_model(tmp_path_factory.mktemp("tiny-llm"))
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    return model, AutoTokenizer.from_pretrained(folder)


PROMPTS = [
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": q}]
    for q in ("Hi", "Where is my order, the one I placed last Tuesday for two cables?", "Refund please")
]
REPLIES = ["Hello!", "It ships tomorrow.", "Your refund is on its way, it takes five days."]


def test_reply_nll_scores_only_the_reply_and_does_not_depend_on_batching(tiny):
    import torch

    model, tok = tiny
    batched = bf.reply_nll(model, tok, PROMPTS, REPLIES, batch_size=3)
    single = bf.reply_nll(model, tok, PROMPTS, REPLIES, batch_size=1)
    for (a, n), (b, m) in zip(batched, single):
        assert n == m and a == pytest.approx(b, rel=1e-4)
    # by hand for the first row: the loss over the tokens after the prompt
    head = tok.apply_chat_template(PROMPTS[0], add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    full = tok.apply_chat_template(
        PROMPTS[0] + [{"role": "assistant", "content": REPLIES[0]}], tokenize=True, return_dict=True
    )["input_ids"]
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([list(full)])).logits[0]
    expected = torch.nn.functional.cross_entropy(
        logits[len(head) - 1 : len(full) - 1], torch.tensor(full[len(head) :]), reduction="sum"
    )
    assert batched[0][1] == len(full) - len(head) and batched[0][0] == pytest.approx(float(expected), rel=1e-4)


def test_batched_left_padded_generation_matches_one_at_a_time(tiny):
    model, tok = tiny
    side = tok.padding_side
    batched = bf.generate(model, tok, PROMPTS, max_new_tokens=6, batch_size=3)
    assert tok.padding_side == side  # restored
    single = [bf.generate(model, tok, [p], max_new_tokens=6, batch_size=1)[0] for p in PROMPTS]
    assert batched == single
