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
