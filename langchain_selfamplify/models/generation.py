"""Greedy generation on the local backend: continuous batching over a shared prefix
when the model allows it (``continuous_batching.py``), else ``model.generate`` in batches from a
repeated prefix cache. :func:`generate_then_score` writes a rationale, then scores the
answer labels after it, in the same decoding pass where the model allows it.
:class:`~langchain_selfamplify.models.core.SLM` binds both as its methods."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from langchain_selfamplify.models.backend import cut_at_stop
from langchain_selfamplify.models.chat_format import Prompt
from langchain_selfamplify.models.choice_scores import ChoiceScores
from langchain_selfamplify.models.continuous_batching import greedy_decode_shared_prefix
from langchain_selfamplify.models.label_scoring import label_scores, score_token_lists

if TYPE_CHECKING:
    from langchain_selfamplify.models.core import ModelCore


@torch.no_grad()
def generate(
    core: ModelCore,
    prompts: Sequence[Prompt],
    *,
    max_new_tokens: int = 64,
    stop: Sequence[str] | None = None,
    desc: str | None = None,
    on_reply: Callable[[int, str], None] | None = None,
) -> list[str]:
    """Greedy continuation of each prompt, capped at ``max_new_tokens`` tokens.

    A prefix shared by all prompts is encoded once and its KV cache reused, as in
    :meth:`score_choices`. When the model allows shared-prefix attention the prefix
    is kept once for the whole batch and decoding is continuously batched: a
    finished reply's slot goes to the next prompt at once. Otherwise each batch of
    :attr:`batch_size` prompts runs through ``model.generate``.

    Args:
        core: The local model.
        prompts: Prompt texts from :meth:`format_prompt`.
        max_new_tokens: Token cap per continuation. Defaults to 64.
        stop: Strings that end a continuation; the text is cut before the first one.
        desc: Progress-bar label; no bar when ``None``.
        on_reply: Called with ``(prompt index, continuation)`` as soon as each one is
            complete (as its slot frees, or as its batch ends), e.g. to checkpoint it.
            Defaults to none.

    Returns:
        The continuations, special tokens removed, in the order of ``prompts``.
    """
    config = _greedy_config(core, max_new_tokens, stop)
    token_lists = core.tokenize(prompts, reserve=max_new_tokens)
    outputs: list[str] = [""] * len(prompts)
    with core.lock:
        shared = core.shared_prefix_length(token_lists)
        if shared and core.shares_prefix:
            return _generate_with_slots(core, token_lists, shared, config, stop, desc,
                                        on_reply)
        for batch_ids in core.batches(token_lists, shared, desc):
            torch.manual_seed(core.seed)
            batch = [token_lists[i] for i in batch_ids]
            kwargs = _generation_inputs(core, batch, shared)
            generated = core.model.generate(**kwargs, generation_config=config,
                                            tokenizer=core.tokenizer)
            new_tokens = generated[:, kwargs["input_ids"].shape[1] :]
            for row, index in enumerate(batch_ids):
                text = core.tokenizer.decode(new_tokens[row], skip_special_tokens=True)
                outputs[index] = cut_at_stop(text, stop)
                if on_reply is not None:
                    on_reply(index, outputs[index])
    return outputs


@torch.no_grad()
def generate_then_score(
    core: ModelCore,
    prompts: Sequence[Prompt],
    follow_up: Callable[[int, str], Prompt],
    labels: Sequence[Sequence[str]],
    *,
    max_new_tokens: int = 64,
    stop: Sequence[str] | None = None,
    desc: str | None = None,
    on_result: Callable[[int, str, ChoiceScores], None] | None = None,
) -> list[tuple[str, ChoiceScores]]:
    """Each prompt's greedy reply, then its answer labels scored after a follow-up.

    What :meth:`generate` then :meth:`score_choices` on ``follow_up(i, reply)``
    compute, but where the model allows shared-prefix attention the follow-up runs
    on the reply's own cache: only its tokens past what is cached (``"\\nThe answer
    is ("`` after a rationale) are fed, a group of finished replies per pass, instead
    of a second pass over the whole prompt.

    Args:
        core: The local model.
        prompts: Prompt texts from :meth:`format_prompt`.
        follow_up: ``(prompt index, reply cut at the stop strings) -> prompt text``
            ending where the labels are scored; it must extend the prompt.
        labels: Labels to score for each prompt.
        max_new_tokens: Token cap per reply. Defaults to 64.
        stop: Strings that end a reply; it is cut before the first one.
        desc: Progress-bar label; no bar when ``None``.
        on_result: Called with ``(prompt index, reply, label scores)`` as soon as a
            prompt's are known: as each reply's follow-up is read where the prefix is
            shared, else once all are. Defaults to none.

    Returns:
        ``(reply, label scores)`` per prompt, in the order of ``prompts``.
    """
    token_lists = core.tokenize(prompts, reserve=max_new_tokens)
    with core.lock:
        shared = core.shared_prefix_length(token_lists)
        if not (shared and core.shares_prefix):
            replies = generate(core, prompts, max_new_tokens=max_new_tokens, stop=stop,
                               desc=desc)
            follow_ups = core.tokenize([follow_up(i, reply) for i, reply in enumerate(replies)])
            scores = score_token_lists(core, follow_ups, labels, desc=desc)
            if on_result is not None:
                for index, (reply, score) in enumerate(zip(replies, scores, strict=True)):
                    on_result(index, reply, score)
            return list(zip(replies, scores, strict=True))
        texts: dict[int, str] = {}
        scored: dict[int, ChoiceScores] = {}

        def follow_up_ids(index: int, reply: list[int]) -> list[int]:
            texts[index] = cut_at_stop(core.tokenizer.decode(reply, skip_special_tokens=True),
                                       stop)
            return core.tokenize([follow_up(index, texts[index])])[0]

        def read(index: int, logits: torch.Tensor) -> None:
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            scored[index] = label_scores(core, log_probs, labels[index])
            if on_result is not None:
                on_result(index, texts[index], scored[index])

        _decode_with_slots(core, token_lists, shared, _greedy_config(core, max_new_tokens, stop),
                           stop, desc, follow_up=follow_up_ids, on_follow_up=read)
    return [(texts[i], scored[i]) for i in range(len(prompts))]


def _greedy_config(core: ModelCore, max_new_tokens: int, stop: Sequence[str] | None) -> Any:
    from transformers import GenerationConfig

    eos = core.model.generation_config.eos_token_id
    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=core.tokenizer.pad_token_id,
        eos_token_id=eos if eos is not None else core.tokenizer.eos_token_id,
        stop_strings=list(stop) if stop else None,
    )


def _generate_with_slots(core: ModelCore, token_lists: Sequence[Sequence[int]], shared: int,
                         config: Any, stop: Sequence[str] | None, desc: str | None,
                         on_reply: Callable[[int, str], None] | None) -> list[str]:
    """:meth:`generate` for prompts sharing a prefix: continuous batching over the
    prefix kept once (see ``continuous_batching.py``)."""
    texts: dict[int, str] = {}

    def done(index: int, tokens: list[int]) -> None:
        texts[index] = cut_at_stop(core.tokenizer.decode(tokens, skip_special_tokens=True),
                                   stop)
        if on_reply is not None:
            on_reply(index, texts[index])

    _decode_with_slots(core, token_lists, shared, config, stop, desc, on_done=done)
    return [texts[i] for i in range(len(token_lists))]


def _decode_with_slots(core: ModelCore, token_lists: Sequence[Sequence[int]], shared: int,
                       config: Any, stop: Sequence[str] | None, desc: str | None,
                       on_done: Callable[[int, list[int]], None] | None = None,
                       **follow: Any) -> list[list[int]]:
    """:func:`greedy_decode_shared_prefix` with the config's end-of-sequence tokens,
    the stop strings and a progress bar (``on_done`` is called with each complete
    reply's index and tokens; ``follow`` passes a follow-up through)."""
    eos = config.eos_token_id
    eos_ids = {int(t) for t in (eos if isinstance(eos, list) else [eos]) if t is not None}

    def finished(tokens: list[int]) -> bool:
        if not stop:
            return False
        text = core.tokenizer.decode(tokens, skip_special_tokens=True)
        return any(s in text for s in stop)

    show = bool(desc) and core.show_progress and len(token_lists) > 1
    with tqdm(total=len(token_lists), desc=desc, disable=not show, leave=False) as bar:
        # The bar counts finished replies; with many slots the first can take an hour
        # on a CPU, so each step also shows the tokens written so far.
        written = {"steps": 0, "tokens": 0}
        shown = [time.monotonic()]

        def stepped(rows: int) -> None:
            written["steps"] += 1
            written["tokens"] += rows
            now = time.monotonic()  # a small model's steps take milliseconds: redraw at 1 Hz
            refresh = now - shown[0] >= 1.0 or written["steps"] == 1
            bar.set_postfix(written, refresh=refresh)
            if refresh:
                shown[0] = now

        def reply_done(index: int, tokens: list[int]) -> None:
            bar.update(1)
            if on_done is not None:
                on_done(index, tokens)

        return greedy_decode_shared_prefix(
            core, token_lists, shared, max_new_tokens=config.max_new_tokens,
            eos_token_ids=eos_ids, finished=finished, on_done=reply_done,
            on_step=stepped if show else None, **follow)


def _generation_inputs(core: ModelCore, token_lists: Sequence[Sequence[int]], shared: int
                       ) -> dict[str, Any]:
    if not shared:
        batch = core.pad_left(token_lists)
        return {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
    # [shared prefix][padding][own tokens]: generate() continues every row from its
    # last token and derives positions from the mask, so padding in the middle is
    # skipped exactly as left padding is.
    own = core.pad_left([tokens[shared:] for tokens in token_lists])
    prefix = torch.tensor([list(token_lists[0][:shared])], device=core.device)
    rows = len(token_lists)
    return {
        "input_ids": torch.cat([prefix.expand(rows, -1), own.input_ids], dim=1),
        "attention_mask": torch.cat(
            [torch.ones(rows, shared, dtype=torch.long, device=core.device),
             own.attention_mask], dim=1),
        core.cache_kwarg: core.repeated_kv_cache(token_lists[0][:shared], rows),
    }
