"""Rows decoded and scored at once follow the device: measured defaults on a CPU, the
KV cache that a share of the free memory holds on a GPU."""

from __future__ import annotations

import torch

from langchain_selfamplify.models import sizing


def test_a_cpu_keeps_the_measured_defaults(tiny_slm):
    cpu = torch.device("cpu")
    assert sizing.default_decode_slots(tiny_slm.model, cpu) == sizing.CPU_DECODE_SLOTS == 64
    assert sizing.default_batch_size(tiny_slm.model, cpu) == sizing.CPU_BATCH_SIZE == 16


def test_kv_bytes_per_token_follow_the_model_shape(tiny_slm):
    config = tiny_slm.model.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    expected = 2 * config.num_hidden_layers * kv_heads * head_dim * 4  # float32
    assert sizing.kv_bytes_per_token(tiny_slm.model) == expected


def test_gpu_rows_are_what_half_the_free_memory_holds_within_bounds(tiny_slm):
    per_row = sizing.kv_bytes_per_token(tiny_slm.model) * sizing.DECODE_TOKENS_PER_ROW
    fits = sizing.rows_that_fit
    assert fits(tiny_slm.model, 2 * 100 * per_row, sizing.DECODE_TOKENS_PER_ROW, 256, 64) == 100
    assert fits(tiny_slm.model, 2 * 10 * per_row, sizing.DECODE_TOKENS_PER_ROW, 256, 64) == 64
    assert fits(tiny_slm.model, 10**15, sizing.DECODE_TOKENS_PER_ROW, 256, 64) == 256


def test_sizes_not_given_are_the_devices_and_given_ones_are_kept(tiny_model_dir):
    from langchain_selfamplify import SLM

    default = SLM.from_pretrained(tiny_model_dir, device="cpu", show_progress=False)
    assert (default.batch_size, default.decode_slots) == (16, 64)
    slm = SLM.from_pretrained(tiny_model_dir, batch_size=3, decode_slots=5, show_progress=False)
    assert (slm.batch_size, slm.decode_slots) == (3, 5)


def test_activation_bytes_per_token_follow_the_model_shape(tiny_slm):
    config = tiny_slm.model.config
    expected = (3 * config.intermediate_size + 4 * config.hidden_size) * 4  # float32
    assert sizing.activation_bytes_per_token(tiny_slm.model) == expected
    per_token = sizing.activation_bytes_per_token(tiny_slm.model)
    assert (sizing.prefill_tokens(tiny_slm.model, torch.device("cpu"))
            == sizing.CPU_PREFILL_ACTIVATION_BYTES // per_token)


def test_prompts_are_encoded_in_passes_the_token_budget_holds(tiny_model_dir, demo_pool,
                                                              monkeypatch):
    """A queue's prompts are encoded in passes of at most ``prefill_tokens`` tokens (rows
    x padded width), and the replies are those of one pass for all."""
    from langchain_selfamplify import SLM, AmplifiedPrompt
    from langchain_selfamplify.models import continuous_batching

    slm = SLM.from_pretrained(tiny_model_dir, device="cpu", show_progress=False,
                              decode_slots=16)
    prompt = AmplifiedPrompt(examples=[ex.with_rationale("Step 1: look.") for ex in demo_pool[:3]])
    texts = [slm.format_prompt(prompt.to_messages(q)) for q in demo_pool[10:26]]
    slm.decode_stats.reset()
    together = slm.generate(texts, max_new_tokens=8)
    assert slm.decode_stats.prefills == 1
    shared = slm.shared_prefix_length(slm.tokenize(texts))
    own = sorted(len(tokens) - shared for tokens in slm.tokenize(texts))
    budget = 3 * own[-1]  # three of the longest prompts' own tokens per pass at most
    passes: list[int] = []
    encode = continuous_batching._prefill_pass

    def counted(core, slots, prompts, token_lists):
        width = max(len(token_lists[i]) - slots.prefix for i in prompts)
        passes.append(len(prompts) * width)
        encode(core, slots, prompts, token_lists)

    monkeypatch.setattr(continuous_batching, "prefill_tokens", lambda model, device: budget)
    monkeypatch.setattr(continuous_batching, "_prefill_pass", counted)
    slm.decode_stats.reset()
    assert slm.generate(texts, max_new_tokens=8) == together
    assert len(passes) == slm.decode_stats.prefills >= len(texts) // 3
    assert max(passes) <= budget


def test_token_bounded_runs_keep_rows_times_width_within_the_budget():
    widths = [2, 3, 3, 10, 1]
    assert sizing.token_bounded_runs(widths, 9) == [range(0, 3), range(3, 4), range(4, 5)]
    assert sizing.token_bounded_runs(widths, 9, most_rows=2) == [
        range(0, 2), range(2, 3), range(3, 4), range(4, 5)]
    assert sizing.token_bounded_runs(widths, 100) == [range(0, 5)]
    assert sizing.token_bounded_runs([], 9) == []


def test_token_bounded_runs_keep_each_items_rows_in_one_run():
    # items of 2, 2, 3 and 1 rows: rows x widest row within 12, at most 4 rows
    widths, rows = [2, 3, 2, 4], [2, 2, 3, 1]
    assert sizing.token_bounded_runs(widths, 12, rows_each=rows) == [
        range(0, 2), range(2, 3), range(3, 4)]
    assert sizing.token_bounded_runs(widths, 100, most_rows=4, rows_each=rows) == [
        range(0, 2), range(2, 4)]
    assert sizing.token_bounded_runs(widths, 5, rows_each=rows) == [
        range(0, 1), range(1, 2), range(2, 3), range(3, 4)]  # an item over it runs alone


def test_scoring_passes_keep_within_the_token_budget(tiny_model_dir, demo_pool, monkeypatch):
    """Label scoring runs at most ``batch_size`` prompts a pass, fewer when their own
    tokens pass ``prefill_tokens``, with the scores of full batches; with and without a
    shared few-shot prefix."""
    from langchain_selfamplify import SLM, AmplifiedPrompt
    from langchain_selfamplify.models import core as model_core
    from langchain_selfamplify.models import label_scoring

    slm = SLM.from_pretrained(tiny_model_dir, device="cpu", show_progress=False)
    prompt = AmplifiedPrompt(examples=[ex.with_rationale("Step 1: look.") for ex in demo_pool[:3]])
    few_shot = [slm.format_prompt(prompt.to_messages(q)) + "The answer is ("
                for q in demo_pool[10:26]]
    zero_shot = [slm.format_prompt(AmplifiedPrompt(examples=[]).to_messages(q))
                 + "The answer is (" for q in demo_pool[10:26]]
    labels = [q.labels for q in demo_pool[10:26]]
    for texts in (few_shot, zero_shot):
        full = slm.score_choices(texts, labels)
        token_lists = slm.tokenize(texts)
        shared = slm.shared_prefix_length(token_lists)
        budget = 3 * max(len(tokens) - shared for tokens in token_lists)
        passes: list[int] = []
        run = label_scoring.last_logits

        def counted(core, rows, shared, run=run, passes=passes):
            passes.append(len(rows) * max(len(tokens) - shared for tokens in rows))
            return run(core, rows, shared)

        with monkeypatch.context() as patch:
            patch.setattr(model_core, "prefill_tokens", lambda model, device, b=budget: b)
            patch.setattr(label_scoring, "last_logits", counted)
            bounded = slm.score_choices(texts, labels)
        assert len(passes) >= len(texts) // 3 and max(passes) <= budget
        for one, other in zip(full, bounded, strict=True):
            assert one.labels == other.labels
            assert torch.allclose(torch.tensor(one.probs), torch.tensor(other.probs), atol=1e-5)
