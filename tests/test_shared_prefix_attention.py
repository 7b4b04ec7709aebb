"""Attention over a prefix stored once equals attention over the prefix repeated per row."""

from __future__ import annotations

import types

import pytest
import torch

from langchain_selfamplify.models import shared_prefix


def _reference(query, key, value, prefix_keys, prefix_values, mask, scale):
    """PyTorch's attention over [prefix repeated per row, the row's own tokens]."""
    rows = query.shape[0]
    keys = torch.cat([prefix_keys.expand(rows, -1, -1, -1), key], dim=2)
    values = torch.cat([prefix_values.expand(rows, -1, -1, -1), value], dim=2)
    out = torch.nn.functional.scaled_dot_product_attention(
        query, keys, values, attn_mask=mask, scale=scale, enable_gqa=True)
    return out.transpose(1, 2)


@pytest.mark.parametrize("mask_kind", ["bool", "additive"])
@pytest.mark.parametrize(("heads", "kv_heads", "queries"), [(4, 2, 1), (6, 1, 3), (2, 2, 7)])
def test_shared_prefix_attention_equals_attention_over_the_repeated_prefix(
        mask_kind, heads, kv_heads, queries):
    torch.manual_seed(0)
    rows, own, prefix, dim = 5, 9, 13, 8
    query = torch.randn(rows, heads, queries, dim)
    key, value = torch.randn(2, rows, kv_heads, own, dim)
    prefix_keys, prefix_values = torch.randn(2, 1, kv_heads, prefix, dim)
    # each row left-padded to its own length; a query sees the prefix and the row's
    # own tokens up to itself
    lengths = torch.tensor([own, own - 2, queries, own - 1, queries + 1])
    own_positions = torch.arange(own)
    query_positions = own - queries + torch.arange(queries)
    visible = ((own_positions[None, None, :] >= own - lengths[:, None, None])
               & (own_positions[None, None, :] <= query_positions[None, :, None]))
    allowed = torch.cat([torch.ones(rows, queries, prefix, dtype=torch.bool), visible],
                        dim=-1)[:, None]
    mask = (allowed if mask_kind == "bool" else
            torch.zeros(allowed.shape).masked_fill(~allowed, float("-inf")))
    cache = types.SimpleNamespace(layers=[types.SimpleNamespace(
        prefix_keys=prefix_keys, prefix_values=prefix_values)])
    token = shared_prefix._ACTIVE.set(cache)
    try:
        out, _ = shared_prefix.shared_prefix_attention(
            types.SimpleNamespace(layer_idx=0), query, key, value, mask, scaling=0.3)
    finally:
        shared_prefix._ACTIVE.reset(token)
    expected = _reference(query, key, value, prefix_keys, prefix_values, mask, 0.3)
    assert out.shape == (rows, queries, heads, dim)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_rows_leaving_and_padding_dropped_allocate_nothing_and_keep_each_rows_cache():
    """``keep_rows`` and ``drop_leading`` move views within the layer's buffers (no new
    buffer); every row's own keys and values stay what plain tensors would hold."""
    from transformers import DynamicCache

    prefix = DynamicCache()
    prefix.update(torch.randn(1, 2, 5, 4), torch.randn(1, 2, 5, 4), 0)
    layer = shared_prefix.shared_prefix_cache(prefix, 5).layers[0]
    keys, values = torch.randn(4, 2, 3, 4), torch.randn(4, 2, 3, 4)
    layer.update(keys, values)
    for _ in range(2):
        step_keys, step_values = torch.randn(4, 2, 1, 4), torch.randn(4, 2, 1, 4)
        layer.update(step_keys, step_values)
        keys, values = torch.cat([keys, step_keys], 2), torch.cat([values, step_values], 2)
    buffer = layer.keys.untyped_storage().data_ptr()
    held = 2 * 4 * 2 * (3 + shared_prefix.OWN_COLUMNS_AHEAD) * 4 * 4  # keys and values
    assert layer.held_bytes() == held
    layer.keep_rows([1, 3])
    layer.drop_leading(2)
    keys, values = keys[[1, 3], :, 2:], values[[1, 3], :, 2:]
    assert layer.keys.untyped_storage().data_ptr() == buffer
    assert torch.equal(layer.keys, keys) and torch.equal(layer.values, values)
    step_keys, step_values = torch.randn(2, 2, 1, 4), torch.randn(2, 2, 1, 4)
    out_keys, out_values = layer.update(step_keys, step_values)
    assert torch.equal(out_keys, torch.cat([keys, step_keys], 2))
    assert torch.equal(out_values, torch.cat([values, step_values], 2))
    assert layer.keys.untyped_storage().data_ptr() == buffer and layer.held_bytes() == held
