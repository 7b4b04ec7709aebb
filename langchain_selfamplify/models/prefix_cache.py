"""The prefix KV cache a local model keeps between calls.

Few-shot prompts share a long prefix (the demonstrations): its keys and values are
computed once and every prompt runs only its own tokens after them. The last prefix
cached is kept on the model (:class:`~langchain_selfamplify.models.core.ModelCore`
binds these functions as its methods), so the next call with the same prefix, or a
prefix of it, runs no model call.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Sequence
from typing import Any, Protocol

import torch

from langchain_selfamplify.models.shared_prefix import (
    cache_head,
    common_prefix_length,
    shared_prefix_attention_for,
    shared_prefix_cache,
)


class ModelCore(Protocol):
    """What these functions read of :class:`~langchain_selfamplify.models.core.ModelCore`
    (typed here, so the core that binds them is not imported back)."""

    model: Any
    prefix_cache: bool
    shares_prefix: bool
    min_prefix_tokens: int
    kept_prefix: tuple[tuple[int, ...], Any] | None

    @property
    def device(self) -> torch.device: ...

    def forward(self, keep: int | torch.Tensor, **inputs: Any) -> Any: ...

    def kv_cache_of(self, prefix: Sequence[int]) -> Any: ...

    def repeated_kv_cache(self, prefix: Sequence[int], batch: int) -> Any: ...


def shared_prefix_length(core: ModelCore, token_lists: Sequence[Sequence[int]]) -> int:
    """Tokens shared by all prompts (0 when too few to be worth caching).

    Each prompt keeps at least one token of its own, whose logits are read. A
    single prompt's "shared prefix" is all but its last token, when the model keeps
    one copy of a prefix (so :func:`kv_cache_of` can reuse what the previous call
    cached: a DSPy program's calls differ only after their demonstrations).
    """
    if not core.prefix_cache or not token_lists:
        return 0
    if len(token_lists) == 1:
        length = len(token_lists[0]) - 1
        return length if core.shares_prefix and length >= core.min_prefix_tokens else 0
    first = token_lists[0]
    length = min(len(tokens) for tokens in token_lists) - 1
    for tokens in token_lists[1:]:
        length = min(length, common_prefix_length(first, tokens))
    return length if length >= core.min_prefix_tokens else 0


def kv_cache_of(core: ModelCore, prefix: Sequence[int]) -> Any:
    """KV cache of a token sequence that starts with ``prefix`` (do not modify it).

    The last cache computed is kept: a call with the same prefix, or with any
    prefix of the kept sequence (the perturbation explainers crop the cache of
    the whole prompt to each coalition's untouched head), runs no model call. A
    prefix that shares at least ``min_prefix_tokens`` with the kept sequence (on a
    model with plain attention) runs only its tokens after the common head.
    """
    key = tuple(prefix)
    kept = core.kept_prefix
    if kept is not None and kept[0][: len(key)] == key:
        return kept[1]
    reuse = (common_prefix_length(kept[0], key)
             if kept is not None and core.shares_prefix else 0)
    if reuse >= core.min_prefix_tokens:
        # Only the common head is taken (as views), not a copy of the whole kept cache.
        cache = cache_head(kept[1], reuse)  # type: ignore[index]
        ids = torch.tensor([list(key[reuse:])], device=core.device)
        positions = torch.arange(reuse, len(key), device=core.device)[None]
        cache = output_cache(core.forward(1, input_ids=ids, position_ids=positions,
                                          cache=cache, use_cache=True))
    else:
        ids = torch.tensor([list(key)], device=core.device)
        cache = output_cache(core.forward(1, input_ids=ids, use_cache=True))
    core.kept_prefix = (key, cache)
    return cache


def repeated_kv_cache(core: ModelCore, prefix: Sequence[int], batch: int) -> Any:
    """A fresh KV cache of ``prefix`` repeated ``batch`` times, to continue from.

    The model is run on ``prefix`` only when it is not a prefix of the last
    sequence cached; the returned copy may be extended freely.
    """
    cache = copy.deepcopy(core.kv_cache_of(prefix))
    extra = cache.get_seq_length() - len(prefix)
    if extra > 0:
        cache.crop(-extra)  # a negative count removes tokens in every transformers version
    if batch > 1:
        cache.batch_repeat_interleave(batch)
    return cache


def cache_for_rows(core: ModelCore, prefix: Sequence[int], rows: int
                    ) -> tuple[Any, contextlib.AbstractContextManager[Any]]:
    """A KV cache of ``prefix`` for ``rows`` rows to continue, and the context the
    model must run in: the prefix kept once with shared-prefix attention when the
    model allows it, else repeated for every row."""
    if core.shares_prefix:
        cache = shared_prefix_cache(core.kv_cache_of(prefix), len(prefix))
        return cache, shared_prefix_attention_for(core.model, cache)
    return core.repeated_kv_cache(prefix, rows), contextlib.nullcontext()


def output_cache(output: Any) -> Any:
    """The KV cache a model call returned (``cache``, or ``past_key_values`` before
    transformers 5), read without touching the deprecated name when the new one exists."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values

