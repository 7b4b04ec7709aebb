"""Greedy decoding of many prompts that share a prefix, with continuous batching.

``model.generate`` runs a batch until its longest reply ends, so rows that finished
early keep costing a decoding step each. Here a batch is a set of slots: when a row
ends (end-of-sequence token, a stop string, or the token cap), the next prompt takes
its slot at once. The shared prefix is kept once (see :mod:`.shared_prefix`); each
slot's own tokens sit right-aligned in the batch's cache, left-padded and masked, so
every step is one forward pass over all slots. Freed slots are refilled in groups of a
quarter of the slots. Greedy choices are the argmax of the logits, as
``generate(do_sample=False)`` makes them.

A finished reply can be followed up in its slot (``follow_up``): the prompt, the reply
as it will be read, then more text, e.g. ``"The answer is ("`` after a rationale. The
slot keeps the tokens that follow-up shares with what it has cached, masks the rest
(a reply cut at a stop string, or re-tokenised differently at its end), and is fed the
follow-up's remaining tokens one per step; the logits after the last one are handed
back. The answer is then read from the pass that wrote the rationale, not from a second
pass over the whole prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from langchain_selfamplify.models.shared_prefix import (
    common_prefix_length,
    shared_prefix_attention_for,
    shared_prefix_cache,
)

if TYPE_CHECKING:
    from langchain_selfamplify.models.core import ModelCore


class _Slots:
    """The batch being decoded: its cache, masks and per-slot bookkeeping."""

    def __init__(self, base: Any, prefix: int, device: torch.device) -> None:
        self.base = base
        self.cache = shared_prefix_cache(base, prefix)
        self.prefix = prefix
        self.device = device
        self.mask = torch.zeros(0, 0, dtype=torch.long, device=device)  # own part
        self.lengths = torch.zeros(0, dtype=torch.long, device=device)  # own tokens
        self.prompt_of: list[int] = []
        self.generated: list[list[int]] = []
        self.forced: list[list[int] | None] = []  # follow-up tokens still to feed

    @property
    def rows(self) -> int:
        return len(self.prompt_of)

    def _layers(self) -> list[Any]:
        return list(self.cache.layers)

    def keep(self, rows: list[int]) -> None:
        """Drop every row not in ``rows``."""
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        for layer in self._layers():
            if layer.is_initialized:
                layer.keys, layer.values = layer.keys[index], layer.values[index]
        self.mask, self.lengths = self.mask[index], self.lengths[index]
        self.prompt_of = [self.prompt_of[i] for i in rows]
        self.generated = [self.generated[i] for i in rows]
        self.forced = [self.forced[i] for i in rows]
        self._crop_padding()

    def start_follow_up(self, row: int, cached: Sequence[int], target: Sequence[int]) -> None:
        """Turn ``row`` from decoding to feeding the rest of ``target``.

        Args:
            row: The slot.
            cached: Every token id in the row's cache (prompt, then reply but the token
                not yet fed).
            target: The follow-up's token ids; they start with the shared prefix.
        """
        # at least the target's last token is fed, for the logits after it
        common = min(common_prefix_length(cached, target), len(target) - 1)
        if common < self.prefix:
            raise ValueError("a follow-up prompt must start with the shared prefix")
        drop = len(cached) - common
        if drop:
            # The row's own tokens are the last columns: mask the ones not in target.
            self.mask[row, self.mask.shape[1] - drop:] = 0
            self.lengths[row] -= drop
        self.forced[row] = list(target[common:])

    def next_inputs(self) -> list[int]:
        """Each row's input of the next step (its last greedy token, or the next
        follow-up token), popping follow-up tokens."""
        return [forced.pop(0) if forced is not None else generated[-1]
                for forced, generated in zip(self.forced, self.generated, strict=True)]

    def add(self, keys: list[torch.Tensor], values: list[torch.Tensor], mask: torch.Tensor,
            lengths: torch.Tensor, prompts: list[int], first_tokens: list[int]) -> None:
        """Append rows whose own keys/values (right-aligned, ``mask``) were just computed."""
        width, own = mask.shape[1], self.mask.shape[1]
        if self.rows and width != own:
            # Left-pad the narrower side so own tokens stay right-aligned.
            pad = abs(width - own)
            if width < own:
                keys = [_pad_left(k, pad) for k in keys]
                values = [_pad_left(v, pad) for v in values]
                mask = torch.nn.functional.pad(mask, (pad, 0))
            else:
                for layer in self._layers():
                    layer.keys, layer.values = _pad_left(layer.keys, pad), _pad_left(layer.values,
                                                                                     pad)
                self.mask = torch.nn.functional.pad(self.mask, (pad, 0))
        for layer, k, v in zip(self._layers(), keys, values, strict=True):
            if self.rows:
                layer.keys, layer.values = torch.cat([layer.keys, k]), torch.cat([layer.values, v])
            else:
                layer.keys, layer.values, layer.is_initialized = k, v, True
        self.mask = torch.cat([self.mask, mask]) if self.rows else mask
        self.lengths = torch.cat([self.lengths, lengths])
        self.prompt_of += prompts
        self.generated += [[token] for token in first_tokens]
        self.forced += [None] * len(prompts)

    def _crop_padding(self) -> None:
        """Drop own-cache columns that are padding in every row."""
        if not self.rows:
            return
        used = self.mask.any(dim=0).nonzero()
        start = int(used[0]) if len(used) else self.mask.shape[1]
        if start:
            for layer in self._layers():
                layer.keys = layer.keys[..., start:, :]
                layer.values = layer.values[..., start:, :]
            self.mask = self.mask[:, start:]


def _pad_left(tensor: torch.Tensor, pad: int) -> torch.Tensor:
    """Zeros before the sequence dimension (-2) of a ``(rows, heads, seq, dim)`` tensor."""
    return torch.nn.functional.pad(tensor, (0, 0, pad, 0))


@torch.no_grad()
def greedy_decode_shared_prefix(
    core: ModelCore,
    token_lists: Sequence[Sequence[int]],
    shared: int,
    *,
    max_new_tokens: int,
    eos_token_ids: set[int],
    finished: Callable[[list[int]], bool],
    on_done: Callable[[int], None] | None = None,
    follow_up: Callable[[int, list[int]], list[int]] | None = None,
    on_follow_up: Callable[[int, torch.Tensor], None] | None = None,
) -> list[list[int]]:
    """New token ids of each prompt, greedy, ``core.decode_slots`` replies at a time.

    Args:
        core: The model (its shared-prefix attention must be supported).
        token_lists: Prompts' token ids; the first ``shared`` are the same in all.
        shared: Length of the shared prefix (at least 1).
        max_new_tokens: Token cap per reply.
        eos_token_ids: Tokens that end a reply (not included in it).
        finished: Whether a reply's tokens so far end it (e.g. a stop string).
        on_done: Called with a prompt's index when its reply (and follow-up) is complete.
        follow_up: ``(prompt index, reply tokens) -> follow-up token ids``: a prompt
            to run in the reply's slot once the reply ends (see the module docstring).
            Defaults to none.
        on_follow_up: Called with a prompt's index and the logits ``(vocab,)`` after
            its follow-up's last token. Required with ``follow_up``.

    Returns:
        Generated token ids per prompt, in the order of ``token_lists``.
    """
    if follow_up is not None and on_follow_up is None:
        raise ValueError("follow_up needs on_follow_up to hand its logits to")
    model, device = core.model, core.device
    prefix = list(token_lists[0][:shared])
    slots = _Slots(core.kv_cache_of(prefix), shared, device)
    pending = sorted(range(len(token_lists)), key=lambda i: len(token_lists[i]))
    pending.reverse()  # pop() takes the shortest prompts first, which pad least together
    results: dict[int, list[int]] = {}
    refill_group = max(1, core.decode_slots // 4)

    def complete(tokens: list[int]) -> bool:
        return (tokens[-1] in eos_token_ids or len(tokens) >= max_new_tokens
                or finished(tokens))

    with shared_prefix_attention_for(model, slots.cache):
        while pending or slots.rows:
            free = core.decode_slots - slots.rows
            # Refill in groups: a step costs about the same with a few slots idle, and
            # prompts encoded together run far better than one at a time.
            if pending and (free >= refill_group or not slots.rows):
                _prefill(core, slots, [pending.pop() for _ in range(min(free, len(pending)))],
                         token_lists)
            done = []
            for row in range(slots.rows):
                tokens = slots.generated[row]
                if slots.forced[row] is not None or not complete(tokens):
                    continue
                index = slots.prompt_of[row]
                results[index] = tokens[:-1] if tokens[-1] in eos_token_ids else tokens
                if follow_up is None:
                    done.append(row)
                else:
                    slots.start_follow_up(row, [*token_lists[index], *tokens[:-1]],
                                          follow_up(index, results[index]))
            if done:
                _finish(slots, done, on_done)
                continue  # refill the freed slots before the next step
            logits = _step(core, slots)
            read = [row for row, forced in enumerate(slots.forced) if forced == []]
            if read:
                assert on_follow_up is not None
                for row in read:
                    on_follow_up(slots.prompt_of[row], logits[row])
                _finish(slots, read, on_done)
    return [results[i] for i in range(len(token_lists))]


def _finish(slots: _Slots, rows: list[int], on_done: Callable[[int], None] | None) -> None:
    """Free the slots of ``rows``, whose prompts are complete."""
    if on_done is not None:
        for row in rows:
            on_done(slots.prompt_of[row])
    slots.keep([row for row in range(slots.rows) if row not in rows])


def _prefill(core: ModelCore, slots: _Slots, prompts: list[int],
             token_lists: Sequence[Sequence[int]]) -> None:
    """Run the new prompts' own tokens together and add them as slots."""
    batch = core.pad_left([token_lists[i][slots.prefix:] for i in prompts])
    ids, mask = batch.input_ids, batch.attention_mask
    lengths = mask.sum(dim=1)
    positions = slots.prefix + batch.position_ids
    # A cache of its own over the same prefix tensors, read back after the pass.
    cache = shared_prefix_cache(slots.base, slots.prefix)
    attention = torch.cat([torch.ones(len(prompts), slots.prefix, dtype=torch.long,
                                      device=slots.device), mask], dim=1)
    logits = core.forward(1, input_ids=ids, position_ids=positions, cache=cache,
                          attention_mask=attention).logits[:, -1]
    slots.add([layer.keys for layer in cache.layers], [layer.values for layer in cache.layers],
              mask, lengths, prompts, logits.argmax(dim=-1).tolist())


def _step(core: ModelCore, slots: _Slots) -> torch.Tensor:
    """One decoding step for every slot; returns the step's logits ``(rows, vocab)``."""
    last = torch.tensor([[token] for token in slots.next_inputs()], device=slots.device)
    ones = torch.ones(slots.rows, 1, dtype=torch.long, device=slots.device)
    attention = torch.cat([torch.ones(slots.rows, slots.prefix, dtype=torch.long,
                                      device=slots.device), slots.mask, ones], dim=1)
    positions = (slots.prefix + slots.lengths).unsqueeze(1)
    logits = core.forward(1, input_ids=last, position_ids=positions, attention_mask=attention,
                          cache=slots.cache).logits[:, -1]
    slots.mask = torch.cat([slots.mask, ones], dim=1)
    slots.lengths = slots.lengths + 1
    for row, token in enumerate(logits.argmax(dim=-1).tolist()):
        if slots.forced[row] is None:
            slots.generated[row].append(token)
    return logits
