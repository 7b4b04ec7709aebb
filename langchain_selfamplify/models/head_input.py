"""Contiguous hidden states into the vocabulary projection.

``logits_to_keep`` (see :meth:`~langchain_selfamplify.models.core.ModelCore.forward`)
makes a causal LM slice its last positions out of the ``(rows, tokens, hidden)`` hidden
states before ``lm_head``: a view that is not contiguous when there are several rows
and tokens. ``F.linear`` on such a view runs as a batched product with the
``(vocab, hidden)`` weight broadcast to every row, which on CPU is several times slower
than the plain matrix product on a copy of the rows (Qwen2.5's 151,936-word vocabulary
on two cores: ``docs/results/head_input.md``). The continuous-batching prefill and
follow-ups and every perturbation coalition pass go through it. The copy is only rows x
kept positions x hidden floats.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.hooks import RemovableHandle

_MARK = "_selfamplify_contiguous_inputs"


def _contiguous(module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    if args and isinstance(args[0], torch.Tensor) and not args[0].is_contiguous():
        return (args[0].contiguous(), *args[1:])
    return None


def _head(model: Any) -> Any:
    """The model's output embeddings (``lm_head``), or ``None``."""
    return model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None


def contiguous_head_inputs(model: Any) -> RemovableHandle | None:
    """Make ``model``'s output embeddings (``lm_head``) take contiguous inputs, once per
    model; returns the hook's handle (``handle.remove()`` undoes it), or ``None`` when the
    model has no output embeddings or already has the hook."""
    head = _head(model)
    if not isinstance(head, torch.nn.Module) or getattr(head, _MARK, None) is not None:
        return None
    handle = head.register_forward_pre_hook(_contiguous)
    setattr(head, _MARK, handle)
    return handle


def remove_contiguous_head_inputs(model: Any) -> bool:
    """Undo :func:`contiguous_head_inputs` (for measurements that compare both routes);
    returns whether there was a hook to remove."""
    head = _head(model)
    handle = getattr(head, _MARK, None)
    if handle is None:
        return False
    handle.remove()
    delattr(head, _MARK)
    return True
