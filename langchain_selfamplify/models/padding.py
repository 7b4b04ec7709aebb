"""Token lists as model batches: left-padded when prompts run whole, right-padded after a
cached shared prefix. Each comes with the attention mask and position ids that make a
padded row's logits those of the row alone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class EncodedBatch:
    """A padded batch ready for the model."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor


def pad_left(token_lists: Sequence[Sequence[int]], pad_id: int,
             device: torch.device) -> EncodedBatch:
    """Token lists as a left-padded batch, with position ids counted from each list's
    first real token.

    Args:
        token_lists: One token list per row.
        pad_id: The tokenizer's padding id.
        device: Where the tensors go (the model's input device).
    """
    width = max(len(tokens) for tokens in token_lists)
    ids = torch.full((len(token_lists), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, tokens in enumerate(token_lists):
        ids[row, width - len(tokens):] = torch.tensor(tokens, dtype=torch.long)
        mask[row, width - len(tokens):] = 1
    # Left padding shifts positions; count them from each prompt's first real token
    # so a padded prompt scores exactly as it would alone.
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    return EncodedBatch(ids.to(device), mask.to(device), positions.to(device))


def pad_right_after_prefix(suffixes: Sequence[Sequence[int]], shared: int, pad_id: int,
                           device: torch.device) -> EncodedBatch:
    """Rows' own tokens right-padded after a cached prefix of ``shared`` tokens.

    The attention mask covers the prefix and each row's real tokens; positions
    continue from the prefix. A row's last real token never sees the padding that
    follows it, so its logits equal those of the row alone.

    Args:
        suffixes: Each row's own tokens, after the prefix.
        shared: Length of the cached prefix.
        pad_id: The tokenizer's padding id.
        device: Where the tensors go (the model's input device).
    """
    width = max(len(suffix) for suffix in suffixes)
    ids = torch.full((len(suffixes), width), pad_id, dtype=torch.long)
    mask = torch.zeros(len(suffixes), shared + width, dtype=torch.long)
    mask[:, :shared] = 1
    for row, suffix in enumerate(suffixes):
        ids[row, : len(suffix)] = torch.tensor(list(suffix), dtype=torch.long)
        mask[row, shared : shared + len(suffix)] = 1
    positions = (shared + torch.arange(width)).expand(len(suffixes), width)
    return EncodedBatch(ids.to(device), mask.to(device), positions.to(device))
