"""Greedy generation on the local backend: continuous batching over a shared prefix
when the model allows it (``decoding.py``), else ``model.generate`` in batches from a
repeated prefix cache. :meth:`SLM.generate` calls :func:`generate`, and
:meth:`SLM.generate_then_score` :func:`generate_then_score` (a rationale, then the
answer labels scored after it, in the same decoding pass where the model allows it)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from langchain_selfamplify.models.backend import cut_at_stop
from langchain_selfamplify.models.choice_scores import ChoiceScores
from langchain_selfamplify.models.decoding import greedy_decode_shared_prefix
from langchain_selfamplify.models.label_scoring import label_scores

if TYPE_CHECKING:
    from langchain_selfamplify.models.slm import SLM


@torch.no_grad()
def generate(
    slm: SLM,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 64,
    stop: Sequence[str] | None = None,
    desc: str | None = None,
) -> list[str]:
    """:meth:`SLM.generate`: greedy continuations, continuously batched over a shared
    prefix when the model allows it, else ``model.generate`` in batches."""
    config = _greedy_config(slm, max_new_tokens, stop)
    token_lists = slm.tokenize(prompts, reserve=max_new_tokens)
    outputs: list[str] = [""] * len(prompts)
    with slm.lock:
        shared = slm._shared_prefix_length(token_lists)
        if shared and slm._shares_prefix:
            return _generate_with_slots(slm, token_lists, shared, config, stop, desc)
        for batch_ids in slm._batches(token_lists, shared, desc):
            torch.manual_seed(slm.seed)
            batch = [token_lists[i] for i in batch_ids]
            kwargs = _generation_inputs(slm, batch, shared)
            generated = slm.model.generate(**kwargs, generation_config=config,
                                            tokenizer=slm.tokenizer)
            new_tokens = generated[:, kwargs["input_ids"].shape[1] :]
            for row, index in enumerate(batch_ids):
                text = slm.tokenizer.decode(new_tokens[row], skip_special_tokens=True)
                outputs[index] = cut_at_stop(text, stop)
    return outputs


@torch.no_grad()
def generate_then_score(
    slm: SLM,
    prompts: Sequence[str],
    follow_up: Callable[[int, str], str],
    labels: Sequence[Sequence[str]],
    *,
    max_new_tokens: int = 64,
    stop: Sequence[str] | None = None,
    desc: str | None = None,
) -> list[tuple[str, ChoiceScores]]:
    """:meth:`SLM.generate_then_score`: each prompt's greedy reply, then the answer
    labels scored after the follow-up prompt built from it.

    With shared-prefix decoding the follow-up runs in the reply's own slot (only the
    tokens it does not share with the slot's cache are fed, see ``decoding.py``);
    otherwise the replies are generated, then the follow-ups scored, in two passes.
    Both read the labels after the same tokens.
    """
    token_lists = slm.tokenize(prompts, reserve=max_new_tokens)
    with slm.lock:
        shared = slm._shared_prefix_length(token_lists)
        if not (shared and slm._shares_prefix):
            replies = generate(slm, prompts, max_new_tokens=max_new_tokens, stop=stop,
                               desc=desc)
            scores = slm.score_choices([follow_up(i, reply) for i, reply in enumerate(replies)],
                                       labels, desc=desc)
            return list(zip(replies, scores, strict=True))
        texts: dict[int, str] = {}
        scored: dict[int, ChoiceScores] = {}

        def follow_up_ids(index: int, reply: list[int]) -> list[int]:
            texts[index] = cut_at_stop(slm.tokenizer.decode(reply, skip_special_tokens=True),
                                       stop)
            return slm.tokenize([follow_up(index, texts[index])])[0]

        def read(index: int, logits: torch.Tensor) -> None:
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            scored[index] = label_scores(slm, log_probs, labels[index])

        _decode_with_slots(slm, token_lists, shared, _greedy_config(slm, max_new_tokens, stop),
                           stop, desc, follow_up=follow_up_ids, on_follow_up=read)
    return [(texts[i], scored[i]) for i in range(len(prompts))]


def _greedy_config(slm: SLM, max_new_tokens: int, stop: Sequence[str] | None) -> Any:
    from transformers import GenerationConfig

    eos = slm.model.generation_config.eos_token_id
    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=slm.tokenizer.pad_token_id,
        eos_token_id=eos if eos is not None else slm.tokenizer.eos_token_id,
        stop_strings=list(stop) if stop else None,
    )


def _generate_with_slots(slm: SLM, token_lists: Sequence[Sequence[int]], shared: int,
                         config: Any, stop: Sequence[str] | None, desc: str | None
                         ) -> list[str]:
    """:meth:`generate` for prompts sharing a prefix: continuous batching over the
    prefix kept once (see ``decoding.py``)."""
    generated = _decode_with_slots(slm, token_lists, shared, config, stop, desc)
    return [cut_at_stop(slm.tokenizer.decode(tokens, skip_special_tokens=True), stop)
            for tokens in generated]


def _decode_with_slots(slm: SLM, token_lists: Sequence[Sequence[int]], shared: int,
                       config: Any, stop: Sequence[str] | None, desc: str | None,
                       **follow: Any) -> list[list[int]]:
    """:func:`greedy_decode_shared_prefix` with the config's end-of-sequence tokens,
    the stop strings and a progress bar (``follow`` passes a follow-up through)."""
    eos = config.eos_token_id
    eos_ids = {int(t) for t in (eos if isinstance(eos, list) else [eos]) if t is not None}

    def finished(tokens: list[int]) -> bool:
        if not stop:
            return False
        text = slm.tokenizer.decode(tokens, skip_special_tokens=True)
        return any(s in text for s in stop)

    show = bool(desc) and slm.show_progress and len(token_lists) > 1
    with tqdm(total=len(token_lists), desc=desc, disable=not show, leave=False) as bar:
        return greedy_decode_shared_prefix(
            slm, token_lists, shared, max_new_tokens=config.max_new_tokens,
            eos_token_ids=eos_ids, finished=finished, on_done=lambda _: bar.update(1),
            **follow)


def _generation_inputs(slm: SLM, token_lists: Sequence[Sequence[int]], shared: int
                       ) -> dict[str, Any]:
    if not shared:
        batch = slm.pad_left(token_lists)
        return {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
    # [shared prefix][padding][own tokens]: generate() continues every row from its
    # last token and derives positions from the mask, so padding in the middle is
    # skipped exactly as left padding is.
    own = slm.pad_left([tokens[shared:] for tokens in token_lists])
    prefix = torch.tensor([list(token_lists[0][:shared])], device=slm.device)
    rows = len(token_lists)
    return {
        "input_ids": torch.cat([prefix.expand(rows, -1), own.input_ids], dim=1),
        "attention_mask": torch.cat(
            [torch.ones(rows, shared, dtype=torch.long, device=slm.device),
             own.attention_mask], dim=1),
        slm._cache_kwarg: slm.repeated_kv_cache(token_lists[0][:shared], rows),
    }
