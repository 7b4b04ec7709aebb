"""No path projects to the vocabulary at positions it does not read.

With a 150k-word vocabulary (Qwen2.5), projecting every position that *some* row reads
for *every* row cost 29.9 GB in one scoring pass. Here a model with that vocabulary
counts the rows its ``lm_head`` projects in each scoring, generation and fused pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from langchain_selfamplify import SLM
from langchain_selfamplify.models.answer_formats import continuation_log_probs

QWEN_VOCABULARY = 151_936


@pytest.fixture(scope="module")
def large_vocabulary_slm(tiny_model_dir: Path) -> SLM:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = LlamaConfig(vocab_size=QWEN_VOCABULARY, hidden_size=16, intermediate_size=32,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # replies of a few tokens, then an end: the tokenizer's ids only
        model.lm_head.weight[len(tokenizer):] = 0
    return SLM(model, tokenizer, show_progress=False, batch_size=8, decode_slots=4)


class ProjectionCounter:
    """Counts the vectors ``lm_head`` projects, per call."""

    def __init__(self, slm: SLM) -> None:
        self.calls: list[int] = []
        self.handle = slm.model.lm_head.register_forward_hook(self._record)

    def _record(self, module, inputs, output) -> None:
        self.calls.append(int(inputs[0].shape[:-1].numel()))

    def __enter__(self) -> ProjectionCounter:
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()


def _prompts(slm: SLM, count: int) -> list[str]:
    """Prompts sharing a long prefix, then questions of very different lengths."""
    prefix = "Question: which of these is alive? (A) a rock (B) a tree. " * 6
    return [slm.format_prompt([{"role": "user", "content": prefix + "word " * (3 + 7 * i)}],
                              "The answer is (") for i in range(count)]


def test_label_scoring_projects_one_position_per_prompt(large_vocabulary_slm):
    slm = large_vocabulary_slm
    prompts = _prompts(slm, 6)
    tokens = slm.tokenize(prompts)
    assert len({len(t) for t in tokens}) == 6  # every prompt ends at its own position
    with ProjectionCounter(slm) as counter:
        scores = slm.score_choices(prompts, [["A", "B"]] * 6)
    # the shared prefix's cache is encoded once (one position), then one per prompt
    assert counter.calls[-1] == 6 and sum(counter.calls[:-1]) <= 1
    # the same scores as each prompt alone (no shared prefix, no padding)
    for prompt, batched in zip(prompts, scores):
        alone = slm.score_choices([prompt], [["A", "B"]])[0]
        assert batched.log_probs == pytest.approx(alone.log_probs, abs=1e-4)


def test_cloze_scoring_projects_only_the_target_positions(large_vocabulary_slm):
    slm = large_vocabulary_slm
    tokens = slm.tokenize(_prompts(slm, 4))
    targets = [[5, 6], [7], [8, 9, 10], [11]]
    shared = min(len(t) for t in tokens) - 1
    with ProjectionCounter(slm) as counter:
        sums = continuation_log_probs(slm, tokens, targets, shared=shared)
    assert counter.calls[-1] == sum(len(t) for t in targets) == 7
    assert sum(counter.calls[:-1]) <= 1  # the shared prefix's cache
    for prompt, target, batched in zip(tokens, targets, sums):
        with torch.no_grad():
            logits = slm.model(torch.tensor([prompt + target])).logits[0].float()
        log_probs = torch.log_softmax(logits, dim=-1)
        expected = sum(float(log_probs[len(prompt) - 1 + j, token])
                       for j, token in enumerate(target))
        assert batched == pytest.approx(expected, abs=2e-3)


def test_generation_and_fused_passes_project_one_position_per_row(large_vocabulary_slm):
    slm = large_vocabulary_slm
    prompts = _prompts(slm, 6)
    rows_per_call: list[int] = []
    with ProjectionCounter(slm) as counter:
        replies = slm.generate(prompts, max_new_tokens=5)
        rows_per_call += counter.calls
    # one vector per active slot per step (and per prompt at its prefill), never more
    assert max(rows_per_call) <= slm.decode_slots
    assert sum(rows_per_call) <= sum(len(slm.tokenize([r])[0]) + 1 for r in replies) + 6
    with ProjectionCounter(slm) as counter:
        slm.generate_then_score(prompts, lambda i, reply: prompts[i] + reply + " (",
                                [["A", "B"]] * 6, max_new_tokens=5)
    assert max(counter.calls) <= slm.decode_slots


def test_prompt_encoding_in_row_groups_bounded_by_memory_gives_the_same_results(
        large_vocabulary_slm, monkeypatch):
    from langchain_selfamplify.models import shared_prefix

    slm = large_vocabulary_slm
    prompts = _prompts(slm, 6)
    labels = [["A", "B"]] * 6
    whole = slm.score_choices(prompts, labels)
    replies = slm.generate(prompts, max_new_tokens=4)
    calls: list[int] = []
    original = shared_prefix._fused_attention_rows

    def counted(query, *args):
        calls.append(query.shape[0])
        return original(query, *args)

    monkeypatch.setattr(shared_prefix, "FUSED_ATTENTION_BYTES", 1)  # one row per group
    monkeypatch.setattr(shared_prefix, "_fused_attention_rows", counted)
    grouped = slm.score_choices(prompts, labels)
    assert calls and max(calls) == 1
    for a, b in zip(whole, grouped):
        assert a.log_probs == pytest.approx(b.log_probs, abs=1e-5)
    assert slm.generate(prompts, max_new_tokens=4) == replies


def test_the_vocabulary_projection_takes_contiguous_rows_and_the_same_logits(
        large_vocabulary_slm):
    """The last positions ``logits_to_keep`` keeps reach ``lm_head`` as a strided view,
    which on CPU runs as a batched product with the weight broadcast per row (several
    times slower, ``head_input.py``): the projection is handed contiguous rows, with the
    logits of the strided route."""
    from langchain_selfamplify.models.head_input import (
        contiguous_head_inputs,
        remove_contiguous_head_inputs,
    )

    slm = large_vocabulary_slm
    seen: list[bool] = []
    handle = slm.model.lm_head.register_forward_pre_hook(  # runs after the package's hook
        lambda module, args: seen.append(args[0].is_contiguous()))
    ids = torch.tensor(slm.tokenize(_prompts(slm, 1)) * 3)
    try:
        with torch.no_grad():
            kept = slm.forward(2, input_ids=ids).logits
            slm.generate(_prompts(slm, 4), max_new_tokens=3)  # prefill passes of 4 rows
            assert len(seen) >= 2 and all(seen)
            assert remove_contiguous_head_inputs(slm.model)
            seen.clear()
            strided = slm.forward(2, input_ids=ids).logits
            assert seen == [False]  # the route the hook mends
    finally:
        contiguous_head_inputs(slm.model)
        handle.remove()
    assert torch.allclose(kept, strided, atol=1e-5)
    assert not remove_contiguous_head_inputs(object())
