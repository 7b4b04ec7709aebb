"""Label scoring on the local backend: the probability of each answer label's token
right after ``"The answer is ("``, batched, from a cached shared prefix when the prompts
have one. :class:`~langchain_selfamplify.models.core.SLM` binds these as its methods."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from langchain_selfamplify.models.chat_format import Prompt
from langchain_selfamplify.models.choice_scores import ChoiceScores
from langchain_selfamplify.wording import ANSWER_PREFIX as ANSWER_PREFIX  # its first home

if TYPE_CHECKING:
    from langchain_selfamplify.models.core import ModelCore

logger = logging.getLogger(__name__)


def label_token_id(core: ModelCore, label: str) -> int:
    """Token id the model emits for ``label`` right after ``"The answer is ("``.

    Found by tokenising the prefix with and without the label, so tokenizers that
    glue a leading space or merge ``"(A"`` are handled.
    """
    if label not in core.label_ids:
        encode = core.tokenizer.encode
        base = encode(ANSWER_PREFIX, add_special_tokens=False)
        full = encode(ANSWER_PREFIX + label, add_special_tokens=False)
        if full[: len(base)] == base and len(full) == len(base) + 1:
            token = full[-1]
        else:
            token = encode(label, add_special_tokens=False)[0]
            logger.warning("Label %r is not a single token after %r; scoring its first "
                           "token %d", label, ANSWER_PREFIX, token)
        core.label_ids[label] = int(token)
    return core.label_ids[label]


def label_token_ids(core: ModelCore, labels: Sequence[str]) -> list[int]:
    """Token ids of ``labels``; raises ``ValueError`` when two labels share a token."""
    ids = [label_token_id(core, label) for label in labels]
    if len(set(ids)) != len(ids):
        raise ValueError(f"Labels {list(labels)} do not map to distinct tokens for "
                         f"{core.name}; cannot score them apart.")
    return ids


def score_choices(
    core: ModelCore,
    prompts: Sequence[Prompt],
    labels: Sequence[Sequence[str]],
    *,
    desc: str | None = None,
) -> list[ChoiceScores]:
    """Probability of each answer label at the end of each prompt.

    Prompts should end with ``"The answer is ("`` (see ``format_prompt``). One
    forward pass per batch of at most ``batch_size`` prompts, fewer when their tokens
    pass ``sizing.prefill_tokens``. When the prompts share a
    long prefix (a few-shot prompt), its KV cache is computed once and only each
    prompt's own tokens are run; otherwise prompts are left-padded, with position
    ids counted from each prompt's first token.

    Args:
        core: The local model.
        prompts: Prompt texts.
        labels: Labels to score for each prompt.
        desc: Progress-bar label; no bar when ``None``.
    """
    return score_token_lists(core, core.tokenize(prompts), labels, desc=desc)


@torch.no_grad()
def score_token_lists(
    core: ModelCore,
    token_lists: Sequence[Sequence[int]],
    labels: Sequence[Sequence[str]],
    *,
    desc: str | None = None,
) -> list[ChoiceScores]:
    """:func:`score_choices` on prompts already tokenised (e.g. with words erased)."""
    if len(token_lists) != len(labels):
        raise ValueError("prompts and labels differ in length")
    results: list[ChoiceScores | None] = [None] * len(token_lists)
    with core.lock:
        shared = core.shared_prefix_length(token_lists)
        for batch_ids in core.batches(token_lists, shared, desc):
            logits = last_logits(core, [token_lists[i] for i in batch_ids], shared)
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            for row, index in enumerate(batch_ids):
                results[index] = label_scores(core, log_probs[row], labels[index])
    return [r for r in results if r is not None]


def label_scores(core: ModelCore, log_probs: torch.Tensor, labels: Sequence[str]) -> ChoiceScores:
    """The labels' scores from one position's log-probabilities over the vocabulary."""
    chosen = log_probs[label_token_ids(core, labels)]
    return ChoiceScores(labels=list(labels), probs=torch.softmax(chosen, dim=-1).tolist(),
                        log_probs=chosen.tolist())


def last_logits(core: ModelCore, token_lists: Sequence[Sequence[int]], shared: int) -> torch.Tensor:
    """Next-token logits after each prompt, ``(batch, vocab)``."""
    if not shared:
        batch = core.pad_left(token_lists)
        # logits_to_keep=1: the vocabulary projection is run for the last position only.
        return core.forward(1, input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                            position_ids=batch.position_ids).logits[:, -1, :]
    # Each row's logits at its own end only, not at every row's end.
    return core.logits_after_prefix(token_lists, shared,
                                    [[len(tokens) - shared - 1] for tokens in token_lists])
