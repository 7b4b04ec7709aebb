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
