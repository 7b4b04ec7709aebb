"""Greedy decoding of many prompts that share a prefix, with continuous batching.

``model.generate`` runs a batch until its longest reply ends, so rows that finished
early keep costing a decoding step each. Here a batch is a set of slots: when a row
ends (end-of-sequence token, a stop string, or the token cap), the next prompt takes
its slot at once. The shared prefix is kept once (see :mod:`.shared_prefix`); each
slot's own tokens sit right-aligned in the batch's cache, left-padded and masked, so
every step is one forward pass over all slots. Freed slots are refilled in groups of a
quarter of the slots (:data:`REFILL_SHARE`). Greedy choices are the argmax of the logits, as
``generate(do_sample=False)`` makes them.

A finished reply can be followed up from its cache (``follow_up``): the prompt, the
reply as it will be read, then more text, e.g. ``"The answer is ("`` after a rationale.
The row keeps the tokens that follow-up shares with what it has cached and masks the
rest (a reply cut at a stop string, or re-tokenised differently at its end). It then
leaves its slot, free for the next prompt, and waits with other finished rows; a group
of them (:data:`FOLLOW_UP_SHARE` of the slots) is fed its follow-ups' remaining tokens in
one multi-token pass, like a prompt encoding, and the logits after each row's last token
are handed back. The answer is read from the cache that wrote the rationale, not from a
second pass over the whole prompt, and a follow-up costs no decoding steps however many
tokens it re-feeds.

:class:`DecodeStats` counts the passes and the tokens the follow-ups fed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from langchain_selfamplify.models import heap
from langchain_selfamplify.models.shared_prefix import (
    common_prefix_length,
    outside_shared_prefix,
    shared_prefix_attention_for,
    shared_prefix_cache,
)
from langchain_selfamplify.models.sizing import prefill_tokens, token_bounded_runs

if TYPE_CHECKING:
    from langchain_selfamplify.models.core import ModelCore

REFILL_SHARE = 4
"""Freed slots are refilled once a ``1 / REFILL_SHARE`` of them are free: a step costs
about the same with a few slots idle, and prompts encoded together run far better than
one at a time."""
FOLLOW_UP_SHARE = 16
"""Finished rows are fed their follow-ups once ``1 / FOLLOW_UP_SHARE`` of the slots wait.
A waiting row holds a copy of its cache (the slot's buffer keeps the row's space until it
regrows), so the group is small; a pass costs about one decoding step's weight reads. On
Qwen2.5-Coder-1.5B in float32, 16 waiting rows of 640 tokens (a question and a long
rationale) hold 0.59 GB of copies; going from a quarter of 64 slots to a sixteenth took
a chunk of the table's Ph-CoT answers from 2.05 to 1.71 GiB of the process's own memory
(``benchmarks/qwen_memory.py``)."""


@dataclass
class _Rows:
    """Rows taken out of (or about to join) a :class:`_Slots` batch."""

    keys: list[torch.Tensor]  # per layer, (rows, kv_heads, own, dim), right-aligned
    values: list[torch.Tensor]
    mask: torch.Tensor  # (rows, own)
    lengths: torch.Tensor  # own tokens per row
    prompts: list[int]
    generated: list[list[int]]
    forced: list[list[int] | None]


class _Slots:
    """A batch of rows over the shared prefix: its cache, masks and per-row bookkeeping."""

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
        """Drop every row not in ``rows`` (ascending)."""
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        for layer in self._layers():
            if layer.is_initialized:
                layer.keep_rows(rows)
        self.mask, self.lengths = self.mask[index], self.lengths[index]
        self.prompt_of = [self.prompt_of[i] for i in rows]
        self.generated = [self.generated[i] for i in rows]
        self.forced = [self.forced[i] for i in rows]
        self._crop_padding()

    def take(self, rows: list[int]) -> _Rows:
        """Remove ``rows`` from the batch and return them."""
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        taken = _Rows([layer.keys[index] for layer in self._layers()],
                      [layer.values[index] for layer in self._layers()],
                      self.mask[index], self.lengths[index],
                      [self.prompt_of[i] for i in rows], [self.generated[i] for i in rows],
                      [self.forced[i] for i in rows])
        self.keep([row for row in range(self.rows) if row not in rows])
        return taken

    def start_follow_up(self, row: int, cached: Sequence[int], target: Sequence[int]) -> int:
        """Roll ``row``'s cache back to what it shares with ``target`` and set the rest
        of ``target`` as the tokens to feed it.

        Args:
            row: The slot.
            cached: Every token id in the row's cache (prompt, then reply but the token
                not yet fed).
            target: The follow-up's token ids; they start with the shared prefix.

        Returns:
            How many tokens are left to feed.
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
        return len(target) - common

    def add(self, new: _Rows) -> None:
        """Append rows whose own keys/values are right-aligned under ``new.mask``."""
        keys, values, mask = new.keys, new.values, new.mask
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
                    layer.set_rows(_pad_left(layer.keys, pad), _pad_left(layer.values, pad))
                self.mask = torch.nn.functional.pad(self.mask, (pad, 0))
        for layer, k, v in zip(self._layers(), keys, values, strict=True):
            if self.rows:
                layer.set_rows(torch.cat([layer.keys, k]), torch.cat([layer.values, v]))
            else:
                layer.set_rows(k, v)
        self.mask = torch.cat([self.mask, mask]) if self.rows else mask
        self.lengths = torch.cat([self.lengths, new.lengths])
        self.prompt_of += new.prompts
        self.generated += new.generated
        self.forced += new.forced

    def _crop_padding(self) -> None:
        """Drop own-cache columns that are padding in every row."""
        if not self.rows:
            return
        used = self.mask.any(dim=0).nonzero()
        start = int(used[0]) if len(used) else self.mask.shape[1]
        if start:
            for layer in self._layers():
                layer.drop_leading(start)
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
    on_done: Callable[[int, list[int]], None] | None = None,
    follow_up: Callable[[int, list[int]], list[int]] | None = None,
    on_follow_up: Callable[[int, torch.Tensor], None] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> list[list[int]]:
    """New token ids of each prompt, greedy, ``core.decode_slots`` replies at a time.

    Args:
        core: The model (its shared-prefix attention must be supported).
        token_lists: Prompts' token ids; the first ``shared`` are the same in all.
        shared: Length of the shared prefix (at least 1).
        max_new_tokens: Token cap per reply.
        eos_token_ids: Tokens that end a reply (not included in it).
        finished: Whether a reply's tokens so far end it (e.g. a stop string).
        on_done: Called with a prompt's index and its reply's new token ids (as returned)
            when the reply (and its follow-up) is complete.
        follow_up: ``(prompt index, reply tokens) -> follow-up token ids``: a prompt
            to run in the reply's slot once the reply ends (see the module docstring).
            Defaults to none.
        on_follow_up: Called with a prompt's index and the logits ``(vocab,)`` after
            its follow-up's last token. Required with ``follow_up``. Like ``on_done``,
            it runs with the model's own attention, so it may run the model.
        on_step: Called after each decoding step with the number of rows it decoded
            (the tokens it wrote), e.g. to show progress before the first reply ends.

    Returns:
        Generated token ids per prompt, in the order of ``token_lists``.
    """
    if follow_up is not None and on_follow_up is None:
        raise ValueError("follow_up needs on_follow_up to hand its logits to")
    model, device = core.model, core.device
    if device.type == "cpu":
        # the rows' buffers are rebuilt as they grow and leave: hand freed ones back
        heap.map_large_blocks()
    stats = core.decode_stats
    prefix = list(token_lists[0][:shared])
    slots = _Slots(core.kv_cache_of(prefix), shared, device)
    waiting = _Slots(slots.base, shared, device)  # finished replies, follow-ups not yet fed
    pending = sorted(range(len(token_lists)), key=lambda i: len(token_lists[i]))
    pending.reverse()  # pop() takes the shortest prompts first, which pad least together
    results: dict[int, list[int]] = {}
    refill_group = max(1, core.decode_slots // REFILL_SHARE)
    follow_up_group = max(1, core.decode_slots // FOLLOW_UP_SHARE)

    def complete(tokens: list[int]) -> bool:
        return (tokens[-1] in eos_token_ids or len(tokens) >= max_new_tokens
                or finished(tokens))

    with shared_prefix_attention_for(model, slots.cache):
        while pending or slots.rows or waiting.rows:
            free = core.decode_slots - slots.rows
            if pending and (free >= refill_group or not slots.rows):
                _prefill(core, slots, [pending.pop() for _ in range(min(free, len(pending)))],
                         token_lists)
            ended = [row for row in range(slots.rows) if complete(slots.generated[row])]
            for row in ended:
                tokens = slots.generated[row]
                index = slots.prompt_of[row]
                results[index] = tokens[:-1] if tokens[-1] in eos_token_ids else tokens
                if follow_up is not None:
                    stats.follow_up_tokens += slots.start_follow_up(
                        row, [*token_lists[index], *tokens[:-1]],
                        follow_up(index, results[index]))
            if ended and follow_up is None:
                _finish(model, slots, ended, on_done, results)
            elif ended:
                waiting.add(slots.take(ended))
            if waiting.rows and (waiting.rows >= follow_up_group or not (slots.rows or pending)):
                assert on_follow_up is not None
                logits = _feed_follow_ups(core, waiting)
                with outside_shared_prefix(model):  # as on_done, it may run the model
                    for row in range(waiting.rows):
                        on_follow_up(waiting.prompt_of[row], logits[row])
                _finish(model, waiting, list(range(waiting.rows)), on_done, results)
            if ended or not slots.rows:
                continue  # refill the freed slots before the next step
            _step(core, slots)
            if on_step is not None:
                on_step(slots.rows)
    return [results[i] for i in range(len(token_lists))]


def _finish(model: Any, slots: _Slots, rows: list[int],
            on_done: Callable[[int, list[int]], None] | None,
            results: dict[int, list[int]]) -> None:
    """Free the slots of ``rows``, whose prompts are complete (their replies in
    ``results``). ``on_done`` runs with the model's own attention, so it may run the
    model (score an answer after its reply) while the other rows wait."""
    if on_done is not None:
        with outside_shared_prefix(model):
            for row in rows:
                on_done(slots.prompt_of[row], results[slots.prompt_of[row]])
    slots.keep([row for row in range(slots.rows) if row not in rows])


def _attention_after_cache(prefix: int, own_mask: torch.Tensor, new_mask: torch.Tensor
                           ) -> torch.Tensor:
    """The attention mask of new tokens (``new_mask``, left-padded) after each row's
    cache: the shared ``prefix``, then the row's own cached tokens (``own_mask``)."""
    ones = torch.ones(new_mask.shape[0], prefix, dtype=torch.long, device=new_mask.device)
    return torch.cat([ones, own_mask, new_mask], dim=1)


def _prefill(core: ModelCore, slots: _Slots, prompts: list[int],
             token_lists: Sequence[Sequence[int]]) -> None:
    """Run the new prompts' own tokens and add them as slots, in passes of at most
    :func:`~langchain_selfamplify.models.sizing.prefill_tokens` tokens (rows x padded
    width): a pass's activations grow with its tokens, and all of a queue's prompts in
    one pass took more memory than their caches."""
    widths = [len(token_lists[i]) - slots.prefix for i in prompts]
    for run in token_bounded_runs(widths, prefill_tokens(core.model, core.device)):
        _prefill_pass(core, slots, prompts[run.start:run.stop], token_lists)


def _prefill_pass(core: ModelCore, slots: _Slots, prompts: list[int],
                  token_lists: Sequence[Sequence[int]]) -> None:
    """Run the new prompts' own tokens together and add them as slots."""
    core.decode_stats.prefills += 1
    batch = core.pad_left([token_lists[i][slots.prefix:] for i in prompts])
    # A cache of its own over the same prefix tensors, read back after the pass.
    cache = shared_prefix_cache(slots.base, slots.prefix)
    no_own = batch.attention_mask[:, :0]
    logits = core.forward(1, input_ids=batch.input_ids,
                          position_ids=slots.prefix + batch.position_ids, cache=cache,
                          attention_mask=_attention_after_cache(slots.prefix, no_own,
                                                                batch.attention_mask)
                          ).logits[:, -1]
    slots.add(_Rows([layer.keys for layer in cache.layers],
                    [layer.values for layer in cache.layers], batch.attention_mask,
                    batch.attention_mask.sum(dim=1), prompts,
                    [[token] for token in logits.argmax(dim=-1).tolist()],
                    [None] * len(prompts)))


def _feed_follow_ups(core: ModelCore, waiting: _Slots) -> torch.Tensor:
    """Feed every waiting row its follow-up's remaining tokens in one pass; returns the
    logits after each row's last token, ``(rows, vocab)``."""
    core.decode_stats.follow_up_passes += 1
    batch = core.pad_left([forced or [] for forced in waiting.forced])
    positions = waiting.prefix + waiting.lengths[:, None] + batch.position_ids
    return core.forward(1, input_ids=batch.input_ids, position_ids=positions,
                        attention_mask=_attention_after_cache(waiting.prefix, waiting.mask,
                                                              batch.attention_mask),
                        cache=waiting.cache).logits[:, -1]


def _step(core: ModelCore, slots: _Slots) -> None:
    """One decoding step for every slot: each row's last greedy token in, the next out."""
    started = time.perf_counter()
    last = torch.tensor([[tokens[-1]] for tokens in slots.generated], device=slots.device)
    ones = torch.ones(slots.rows, 1, dtype=torch.long, device=slots.device)
    positions = (slots.prefix + slots.lengths).unsqueeze(1)
    logits = core.forward(1, input_ids=last, position_ids=positions,
                          attention_mask=_attention_after_cache(slots.prefix, slots.mask, ones),
                          cache=slots.cache).logits[:, -1]
    slots.mask = torch.cat([slots.mask, ones], dim=1)
    slots.lengths = slots.lengths + 1
    # .tolist() waits for the device, so the time is the step's on a GPU too
    for row, token in enumerate(logits.argmax(dim=-1).tolist()):
        slots.generated[row].append(token)
    core.decode_stats.record_step(slots.rows, time.perf_counter() - started)
