"""How many rows a local model decodes or scores at once, from the device it runs on.

On a CPU a decoding step costs a fixed part (reading the weights) plus each row's
arithmetic: on two cores, 0.78 s plus 28 ms per row for Qwen2.5-Coder-1.5B
(``benchmarks/decode_rows.py``). More slots spread the fixed part over more rows, at the
cost of each row's cache in memory; 64 slots (16 rows per scoring pass) were measured
best on SmolLM2's grid (the 1.5B model's peak at 64 slots is measured by
``benchmarks/qwen_memory.py``). On a GPU the rows' KV cache is what fills memory: the
number of rows is what a share of the free memory holds, at the KV bytes per token of
this model, for rows of a typical length. On an H200, 256 decoding slots ran a 7B model
1.7x faster than 64 (issue "Speed where users run"); more rows than that gain little, as
a step's per-row work stops being hidden behind the weight reads. Prompts that fill free
slots are encoded in passes of at most :func:`prefill_tokens` tokens, as a pass's
activations grow with its tokens (``benchmarks/prefill_memory.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

CPU_DECODE_SLOTS = 64
"""Decoding slots on a CPU (measured: ``benchmarks/grid.py``)."""
CPU_BATCH_SIZE = 16
"""Prompts per scoring pass on a CPU."""
MAX_DECODE_SLOTS = 256
"""Most decoding slots on an accelerator (the H200 measurement's best)."""
MAX_BATCH_SIZE = 64
"""Most prompts per scoring pass on an accelerator."""
MEMORY_SHARE = 0.5
"""Share of the free accelerator memory the rows' KV cache may take (the rest is left
to activations, the shared prefix and the allocator)."""
DECODE_TOKENS_PER_ROW = 1024
"""Tokens a decoding slot holds at most, for sizing: a question's own tokens and its
reply (the shared few-shot prefix is kept once for all rows)."""
SCORE_TOKENS_PER_ROW = 512
"""Tokens a scoring row runs, for sizing: a question and a rationale."""
CPU_PREFILL_ACTIVATION_BYTES = 256 * 2**20
"""Most bytes the activations of one prompt-encoding pass may take on a CPU. A pass's
activations grow with its tokens (rows x padded width): encoding 200 ARC questions'
own tokens in one pass took about 5 GB on Qwen2.5-Coder-1.5B, more than their keys and
values. A decoding queue refills its slots while the other rows hold their caches, so
the pass's activations sit on top of them. Passes of two thousand tokens still keep two
cores' matrix products busy."""
ACTIVATION_SHARE = 0.1
"""Share of the free accelerator memory one prompt-encoding pass's activations may take."""


def kv_bytes_per_token(model: Any) -> int:
    """Bytes of keys and values one token adds to the cache, summed over the layers."""
    config = getattr(model.config, "get_text_config", lambda: model.config)()
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    element = next(model.parameters()).element_size()
    return 2 * config.num_hidden_layers * kv_heads * head_dim * element


def rows_that_fit(model: Any, free_bytes: int, tokens_per_row: int, most: int,
                  least: int) -> int:
    """Rows whose KV cache of ``tokens_per_row`` tokens fits in :data:`MEMORY_SHARE` of
    ``free_bytes``, between ``least`` and ``most``."""
    per_row = kv_bytes_per_token(model) * tokens_per_row
    return max(least, min(most, int(free_bytes * MEMORY_SHARE) // per_row))


def activation_bytes_per_token(model: Any) -> int:
    """Bytes of the activations one token holds at once in a forward pass: the MLP's
    intermediate tensors (gate, up and their product, ``3 x intermediate``) beside a few
    hidden-sized ones. On Qwen2.5-1.5B's sizes in float32 this counts 132,096 bytes a
    token; ``benchmarks/prefill_memory.py`` measured about 142,000 in one unbounded pass
    of 200 prompts, 135,000 without the attention's own bounded share
    (``FUSED_ATTENTION_BYTES``)."""
    config = getattr(model.config, "get_text_config", lambda: model.config)()
    intermediate = getattr(config, "intermediate_size", None) or 4 * config.hidden_size
    element = next(model.parameters()).element_size()
    return (3 * intermediate + 4 * config.hidden_size) * element


def prefill_tokens(model: Any, device: torch.device) -> int:
    """Most tokens (rows x padded width) one prompt-encoding pass runs: what
    :data:`CPU_PREFILL_ACTIVATION_BYTES` holds on a CPU, or :data:`ACTIVATION_SHARE` of
    the free memory on an accelerator, at :func:`activation_bytes_per_token`."""
    free = free_memory(device)
    budget = CPU_PREFILL_ACTIVATION_BYTES if free is None else int(free * ACTIVATION_SHARE)
    return max(1, budget // activation_bytes_per_token(model))


def token_bounded_runs(widths: Sequence[int], budget: int,
                       most_rows: int | None = None,
                       rows_each: Sequence[int] | None = None) -> list[range]:
    """Split items, in the order given, into consecutive runs whose rows x widest row
    stays within ``budget`` tokens (and ``most_rows`` rows, when given). An item over
    either bound runs alone.

    Args:
        widths: Tokens each item's rows run in a forward pass (their own tokens, past a
            shared prefix).
        budget: Most tokens (rows x padded width) one pass may run, e.g.
            :func:`prefill_tokens`.
        most_rows: Most rows a run may hold; no limit when ``None``.
        rows_each: Rows each item runs, kept in one pass (e.g. a question's choices);
            one each when ``None``.

    Returns:
        Index ranges into ``widths``, covering it in order.
    """
    counts = [1] * len(widths) if rows_each is None else list(rows_each)
    runs: list[range] = []
    start = 0
    while start < len(widths):
        end, width, rows = start + 1, widths[start], counts[start]
        while end < len(widths):
            width, rows = max(width, widths[end]), rows + counts[end]
            if rows * width > budget or (most_rows is not None and rows > most_rows):
                break
            end += 1
        runs.append(range(start, end))
        start = end
    return runs


def free_memory(device: torch.device) -> int | None:
    """Free bytes on an accelerator; ``None`` on a CPU (sized by measurement instead)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return None


def default_decode_slots(model: Any, device: torch.device) -> int:
    """Decoding slots for ``model`` on ``device`` when the user set none."""
    free = free_memory(device)
    if free is None:
        return CPU_DECODE_SLOTS
    return rows_that_fit(model, free, DECODE_TOKENS_PER_ROW, MAX_DECODE_SLOTS,
                         CPU_DECODE_SLOTS)


def default_batch_size(model: Any, device: torch.device) -> int:
    """Prompts per scoring pass for ``model`` on ``device`` when the user set none."""
    free = free_memory(device)
    if free is None:
        return CPU_BATCH_SIZE
    return rows_that_fit(model, free, SCORE_TOKENS_PER_ROW, MAX_BATCH_SIZE, CPU_BATCH_SIZE)
