"""Attention over a prefix that every row of a batch shares, stored once.

A few-shot prompt is the same long prefix for every test question. Repeating its KV
cache for each row of a batch (what ``transformers`` does) makes every decoding step
copy and read ``rows x prefix`` keys and values, so on a CPU a batch decodes little
faster than one question at a time. Here the prefix's keys and values are kept once
(batch 1) in :class:`SharedPrefixLayer`; each row's own tokens are cached as usual; and
:func:`shared_prefix_attention` scores every row's queries against the prefix in one
matrix product and against the row's own keys separately, then takes one softmax over
both, which is exactly attention over the concatenation.

It is used only for models whose attention is plain softmax attention over all
positions (no sliding window, no logit soft-capping, no attention sinks) running the
``sdpa`` or ``eager`` implementation; other models keep the repeated cache.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import Any

import torch

NAME = "selfamplify_shared_prefix"
"""Name under which the attention function is registered with ``transformers``."""

_ACTIVE: contextvars.ContextVar[Any] = contextvars.ContextVar("shared_prefix_cache",
                                                              default=None)
_OUTSIDE: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "attention_outside_shared_prefix", default=None)
"""The attention implementation :func:`shared_prefix_attention_for` replaced, which
:func:`outside_shared_prefix` puts back for its block."""
_REGISTERED = False


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading token ids ``a`` and ``b`` have in common."""
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length


def supports_shared_prefix(model: Any) -> bool:
    """Whether ``model`` can use the shared-prefix attention."""
    try:
        from transformers.cache_utils import DynamicLayer  # noqa: F401
        from transformers.masking_utils import AttentionMaskInterface  # noqa: F401
        from transformers.modeling_utils import AttentionInterface  # noqa: F401
    except ImportError:
        return False
    config = model.config
    if getattr(config, "_attn_implementation", None) not in ("sdpa", "eager"):
        return False
    if any(getattr(config, name, None) for name in (
            "sliding_window", "attn_logit_softcapping", "attention_chunk_size")):
        return False
    layer_types = getattr(config, "layer_types", None)
    if layer_types and any(kind != "full_attention" for kind in layer_types):
        return False
    # Attention sinks (gpt-oss) add a term the function does not know.
    return not any(hasattr(module, "sinks") for module in model.modules())


def _register() -> None:
    global _REGISTERED
    if _REGISTERED:
        return
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
    from transformers.modeling_utils import AttentionInterface

    AttentionInterface.register(NAME, shared_prefix_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    _REGISTERED = True


def shared_prefix_cache(prefix_cache: Any, length: int) -> Any:
    """A cache holding the first ``length`` positions of ``prefix_cache`` once, for
    any batch size.

    Args:
        prefix_cache: A ``DynamicCache`` of batch 1 (not modified).
        length: How many of its positions are the shared prefix.
    """
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    class SharedPrefixLayer(DynamicLayer):  # type: ignore[misc]
        """Prefix keys and values (batch 1), then each row's own, appended in place.

        ``DynamicLayer`` concatenates at every update, copying every row's whole cache
        at every decoding step. Here the rows' own keys and values sit in buffers with
        room for :data:`OWN_COLUMNS_AHEAD` more positions, and ``keys``/``values`` are
        views of them: a step writes its one new column and copies nothing. Rows that
        leave are compacted within the buffers (:meth:`keep_rows`) and padding columns
        every row has are dropped from the view (:meth:`drop_leading`), so neither
        allocates; a buffer is replaced only when it runs out of room, by one sized to
        the rows left. Rows set from outside (:meth:`set_rows`) are copied into new
        buffers at the next update.
        """

        def __init__(self, keys: torch.Tensor, values: torch.Tensor) -> None:
            super().__init__()
            self.prefix_keys, self.prefix_values = keys, values
            self._views: tuple[torch.Tensor, torch.Tensor] | None = None
            self._buffers: tuple[torch.Tensor, torch.Tensor] | None = None
            self._start = 0  # the views' first column in the buffers

        def set_rows(self, keys: torch.Tensor, values: torch.Tensor) -> None:
            """Hold ``keys``/``values`` as the rows' own cache, letting the buffers go
            (kept, they would hold the old rows' cache beside the new one until the next
            update)."""
            self.keys, self.values, self.is_initialized = keys, values, True
            self._views = self._buffers = None

        def _in_buffers(self) -> bool:
            """Whether ``keys``/``values`` are still the views of the buffers."""
            return (self._buffers is not None and self._views is not None
                    and self._views[0] is self.keys and self._views[1] is self.values)

        def _view(self, rows: int, start: int, end: int) -> None:
            assert self._buffers is not None
            keys, values = self._buffers
            self.keys, self.values = keys[:rows, :, start:end], values[:rows, :, start:end]
            self._views, self._start = (self.keys, self.values), start

        def keep_rows(self, rows: Sequence[int]) -> None:
            """Keep only ``rows`` (ascending), in that order: moved up within the
            buffers, one row at a time, so nothing is allocated."""
            assert self.keys is not None and self.values is not None
            if not self._in_buffers():
                index = torch.tensor(list(rows), dtype=torch.long, device=self.keys.device)
                self.set_rows(self.keys[index], self.values[index])
                return
            assert self._buffers is not None
            start, end = self._start, self._start + self.keys.shape[-2]
            for new, old in enumerate(rows):  # new <= old: no row is overwritten unread
                if new != old:
                    for buffer in self._buffers:
                        buffer[new, :, start:end].copy_(buffer[old, :, start:end])
            self._view(len(rows), start, end)

        def drop_leading(self, columns: int) -> None:
            """Drop the first ``columns`` own positions of every row (padding in all)."""
            assert self.keys is not None and self.values is not None
            if not self._in_buffers():
                self.set_rows(self.keys[..., columns:, :], self.values[..., columns:, :])
                return
            self._view(self.keys.shape[0], self._start + columns,
                       self._start + self.keys.shape[-2])

        def held_bytes(self) -> int:
            """Bytes the rows' own cache holds: its buffers, room included."""
            if self._in_buffers():
                assert self._buffers is not None
                return int(sum(buffer.nbytes for buffer in self._buffers))
            if self.keys is None or self.values is None:
                return 0
            return int(self.keys.nbytes + self.values.nbytes)

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor,
                   *args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            assert self.keys is not None and self.values is not None
            width = self.keys.shape[-2] if self.keys.dim() == 4 else 0
            start = self._start if self._in_buffers() else 0
            end = start + width + key_states.shape[-2]
            if self._buffers is None or not self._in_buffers() \
                    or end > self._buffers[0].shape[-2]:
                start, end = 0, width + key_states.shape[-2]
                self._buffers = (_with_room(self.keys, key_states, width),
                                 _with_room(self.values, value_states, width))
            keys, values = self._buffers
            keys[:key_states.shape[0], :, start + width:end] = key_states
            values[:key_states.shape[0], :, start + width:end] = value_states
            self._view(key_states.shape[0], start, end)
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return int(self.prefix_keys.shape[-2]) + super().get_seq_length()

    cache = DynamicCache()
    cache.layers = [SharedPrefixLayer(layer.keys[..., :length, :], layer.values[..., :length, :])
                    for layer in prefix_cache.layers]
    cache.layer_class_to_replicate = None
    return cache


OWN_COLUMNS_AHEAD = 32
"""Positions a row's own cache buffer holds beyond what it has: a new buffer (one copy)
every this many decoding steps at most, for this many extra positions of memory."""


def _with_room(cached: torch.Tensor, new: torch.Tensor, width: int) -> torch.Tensor:
    """A buffer for the rows of ``new``: the ``width`` positions of ``cached``, then
    ``new``'s and :data:`OWN_COLUMNS_AHEAD` more."""
    rows, heads, added, dim = new.shape
    buffer = new.new_empty(rows, heads, width + added + OWN_COLUMNS_AHEAD, dim)
    if width:
        buffer[..., :width, :] = cached
    return buffer


def cache_head(cache: Any, length: int) -> Any:
    """A ``DynamicCache`` of the first ``length`` positions of ``cache``: views of its
    tensors, not copies (a forward pass appends new tensors to the new cache and leaves
    ``cache`` as it was).

    Args:
        cache: A ``DynamicCache`` of plain layers (not modified).
        length: Positions kept.
    """
    from transformers import DynamicCache

    head = DynamicCache()
    for index, layer in enumerate(cache.layers):
        head.update(layer.keys[..., :length, :], layer.values[..., :length, :], index)
    return head


@contextlib.contextmanager
def shared_prefix_attention_for(model: Any, cache: Any) -> Iterator[None]:
    """Run ``model`` with :func:`shared_prefix_attention` reading ``cache``'s prefix."""
    _register()
    config = model.config
    previous = config._attn_implementation
    token = _ACTIVE.set(cache)
    outside = _OUTSIDE.set(previous if previous != NAME else _OUTSIDE.get())
    config._attn_implementation = NAME
    try:
        yield
    finally:
        config._attn_implementation = previous
        _OUTSIDE.reset(outside)
        _ACTIVE.reset(token)


@contextlib.contextmanager
def outside_shared_prefix(model: Any) -> Iterator[None]:
    """Inside :func:`shared_prefix_attention_for`, run ``model`` with its own attention
    for the block: for a callback that runs the model itself (scores the answer after a
    reply) while the other replies are still being decoded."""
    outside = _OUTSIDE.get()
    if outside is None:  # not inside: nothing to suspend
        yield
        return
    config = model.config
    inside = config._attn_implementation
    token = _ACTIVE.set(None)
    config._attn_implementation = outside
    try:
        yield
    finally:
        config._attn_implementation = inside
        _ACTIVE.reset(token)


MANY_QUERIES = 8
"""From this many queries per row (prompt encoding, not decoding) the prefix is
repeated per row and PyTorch's fused attention used: its cost is then in the queries,
not in reading the keys, and the fused kernel beats the explicit softmax."""


FUSED_ATTENTION_BYTES = 256 * 2**20
"""Most bytes the prefix repeated per row, and the rows' attention scores, may take in
one fused-attention call; more rows than fit are run in groups. Without a bound, 32
long rows after a 2,200-token prefix took 19 GiB on a 24 GiB machine."""


def _fused_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     prefix_keys: torch.Tensor, prefix_values: torch.Tensor,
                     attention_mask: torch.Tensor | None, scale: float
                     ) -> tuple[torch.Tensor, None]:
    """Attention of many queries per row, the prefix repeated per row, in row groups
    bounded by :data:`FUSED_ATTENTION_BYTES`."""
    rows, heads, queries = query.shape[0], query.shape[1], query.shape[2]
    span = prefix_keys.shape[-2] + key.shape[2]
    per_row = (heads * queries * span + 2 * heads * span * query.shape[-1]) * 4
    group = max(1, FUSED_ATTENTION_BYTES // per_row)
    if rows <= group:
        return _fused_attention_rows(query, key, value, prefix_keys, prefix_values,
                                     attention_mask, scale)
    outputs = []
    for start in range(0, rows, group):
        part = slice(start, start + group)
        mask = (attention_mask[part] if attention_mask is not None
                and attention_mask.shape[0] == rows else attention_mask)
        outputs.append(_fused_attention_rows(query[part], key[part], value[part], prefix_keys,
                                             prefix_values, mask, scale)[0])
    return torch.cat(outputs), None


def _fused_attention_rows(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                          prefix_keys: torch.Tensor, prefix_values: torch.Tensor,
                          attention_mask: torch.Tensor | None, scale: float
                          ) -> tuple[torch.Tensor, None]:
    rows, queries, prefix, own = query.shape[0], query.shape[2], prefix_keys.shape[-2], key.shape[2]
    keys = torch.cat([prefix_keys.expand(rows, -1, -1, -1), key], dim=2)
    values = torch.cat([prefix_values.expand(rows, -1, -1, -1), value], dim=2)
    if attention_mask is None:
        last = own - queries + torch.arange(queries, device=query.device)
        attention_mask = torch.cat(
            [torch.ones(queries, prefix, dtype=torch.bool, device=query.device),
             torch.arange(own, device=query.device)[None, :] <= last[:, None]], dim=-1)
    else:
        attention_mask = attention_mask[..., -(prefix + own):]
    output = torch.nn.functional.scaled_dot_product_attention(
        query, keys, values, attn_mask=attention_mask, scale=scale,
        enable_gqa=query.shape[1] != keys.shape[1])
    return output.transpose(1, 2).contiguous(), None


def shared_prefix_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Softmax attention over [shared prefix, the row's own tokens].

    Args:
        module: The attention module (its ``layer_idx`` names the cache layer).
        query: ``(rows, heads, queries, dim)``.
        key: The rows' own keys, ``(rows, kv_heads, own, dim)``.
        value: The rows' own values, same shape.
        attention_mask: ``(rows, 1, queries, prefix + own)``, boolean (True attends) or
            additive; ``None`` means causal over the rows' own tokens.
        scaling: Score scale. Defaults to ``dim ** -0.5``.
        dropout: Ignored (inference only).
        **kwargs: Ignored.

    Returns:
        ``(rows, queries, heads, dim)`` and no attention weights.
    """
    layer = _ACTIVE.get().layers[module.layer_idx]
    prefix_keys, prefix_values = layer.prefix_keys[0], layer.prefix_values[0]
    rows, heads, queries, dim = query.shape
    kv_heads, own = key.shape[1], key.shape[2]
    groups, prefix = heads // kv_heads, prefix_keys.shape[-2]
    scale = scaling if scaling is not None else dim ** -0.5
    if queries >= MANY_QUERIES:
        return _fused_attention(query, key, value, prefix_keys, prefix_values,
                                attention_mask, scale)

    grouped = query.view(rows, kv_heads, groups, queries, dim)
    # Scores are laid out head group first, (kv_heads, rows x groups x queries, keys):
    # every row's queries against the one copy of the prefix are then a single product
    # per head whose result is already in place, and the prefix's probabilities are read
    # back where they lie; only the rows' own (short) part is ever permuted.
    stacked = grouped.permute(1, 0, 2, 3, 4).reshape(kv_heads, rows * groups * queries, dim)
    prefix_scores = torch.matmul(stacked, prefix_keys.transpose(-1, -2)).mul_(scale)
    # The rows' own keys: a head group's queries stacked, so no key is copied per query
    # head (a broadcast matmul materialised the keys once per head: a quarter of a
    # decoding step on Qwen2.5-1.5B with 32 rows).
    own_scores = torch.matmul(grouped.reshape(rows, kv_heads, groups * queries, dim),
                              key.transpose(-1, -2)).view(rows, kv_heads, groups, queries,
                                                          own) * scale
    # Masks touch the rows' own keys only: the prefix is shared, so every row attends to
    # all of it (its part of any mask is all ones), and masking it would only cost time.
    if attention_mask is None:
        # Causal over the own tokens: query i sits at own position own - queries + i.
        positions = torch.arange(own, device=query.device)
        last = own - queries + torch.arange(queries, device=query.device)
        own_scores = own_scores.masked_fill(positions[None, :] > last[:, None], float("-inf"))
    elif attention_mask.dtype == torch.bool:
        own_scores = own_scores.masked_fill(~attention_mask[:, :, None, :, -own:],
                                            float("-inf"))
    else:
        own_scores = own_scores + attention_mask[:, :, None, :, -own:]
    own_scores = own_scores.permute(1, 0, 2, 3, 4).reshape(kv_heads, rows * groups * queries,
                                                           own)
    scores = torch.cat([prefix_scores, own_scores], dim=-1)
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)

    output = torch.matmul(probs[..., :prefix], prefix_values).view(
        kv_heads, rows, groups, queries, dim).permute(1, 0, 2, 3, 4)
    own_probs = probs[..., prefix:].view(kv_heads, rows, groups * queries, own).permute(
        1, 0, 2, 3)
    output = output + torch.matmul(own_probs, value).view(rows, kv_heads, groups, queries, dim)
    return output.reshape(rows, heads, queries, dim).transpose(1, 2).contiguous(), None
