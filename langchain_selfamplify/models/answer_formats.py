"""Reading a model's answer to a multiple-choice question, in one of two formats.

* ``"letter"``: the prompt ends with ``"The answer is ("`` and the probability of each
  label's token is read (:meth:`SLM.score_choices`). Cheap, but a small model often
  puts the same letter on every question: it then measures its label prior.
* ``"cloze"``: the prompt ends with ``"The answer is:"`` and each choice's *text* is
  scored as a continuation, by its length-normalised log-likelihood (the sum of its
  tokens' log-probabilities divided by its length in characters, as ``acc_norm`` in
  lm-evaluation-harness). All choices of a question run as one batch over the
  question's prompt, and a prefix shared by every prompt of a call (the few-shot
  demonstrations) is encoded once.

Both return :class:`ChoiceScores`, so selection, evaluation and the label-bias
controls read either format the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from langchain_selfamplify.models.backend import ModelBackend, require, require_local
from langchain_selfamplify.models.chat_format import Prompt
from langchain_selfamplify.models.choice_scores import ChoiceScores, softmax
from langchain_selfamplify.models.sizing import prefill_tokens, token_bounded_runs

# Re-exported where they were first defined (the wording now lives in wording.py).
from langchain_selfamplify.wording import ANSWER_FORMATS as ANSWER_FORMATS
from langchain_selfamplify.wording import AnswerFormat as AnswerFormat

if TYPE_CHECKING:
    from langchain_selfamplify.models.core import ModelCore


def require_choice_texts(questions: Sequence[Any]) -> None:
    """Fail when a question's choices are bare labels (``(A) A``, ``(B) B``): the cloze
    format scores choice texts, and bare labels would make it label scoring again.

    Raises:
        ValueError: naming the first such question.
    """
    for question in questions:
        if all(text.strip("() .").upper() == label.upper()
               for label, text in question.choices.items()):
            raise ValueError(
                f"answer_format='cloze' scores the choices' texts, but question "
                f"{question.id!r} has bare labels as choices ({dict(question.choices)}); "
                "use answer_format='letter' for this dataset")


def cloze_continuation(text: str) -> str:
    """The continuation scored for a choice after ``"The answer is:"``: ``" <text>"``."""
    return f" {text}"


@torch.no_grad()
def score_continuations(
    core: ModelCore,
    prompts: Sequence[Prompt],
    continuations: Sequence[Sequence[str]],
    *,
    desc: str | None = None,
) -> list[list[float]]:
    """Sum of the token log-probabilities of each continuation after its prompt.

    The continuations of one prompt run in one batch from the prompt's cached keys
    and values; the prefix shared by all prompts of the call is encoded once.

    Args:
        core: The model.
        prompts: Prompt texts from ``core.format_prompt``.
        continuations: For each prompt, the texts to score after it (tokenised alone,
            without special tokens).
        desc: Progress-bar label; no bar when ``None``.

    Returns:
        For each prompt, one summed log-probability per continuation.
    """
    if len(prompts) != len(continuations):
        raise ValueError("prompts and continuations differ in length")
    prompt_ids = core.tokenize(prompts)
    encode = core.tokenizer.encode
    cont_ids = [[list(encode(text, add_special_tokens=False)) for text in texts]
                for texts in continuations]
    for texts, ids in zip(continuations, cont_ids, strict=True):
        for text, tokens in zip(texts, ids, strict=True):
            if not tokens:
                raise ValueError(f"continuation {text!r} has no tokens")
    results: list[list[float]] = [[] for _ in prompts]
    with core.lock:
        shared = core.shared_prefix_length(prompt_ids)
        # A question's choices stay together, in passes of at most batch_size rows and
        # rows x widest row within one pass's activation budget (long few-shot prompts
        # with no shared prefix are wide rows).
        widths = [len(prompt_ids[i]) - shared + max(map(len, cont_ids[i]))
                  for i in range(len(prompts))]
        runs = token_bounded_runs(widths, prefill_tokens(core.model, core.device),
                                  core.batch_size, [len(ids) for ids in cont_ids])
        batches = [list(run) for run in runs]
        show = bool(desc) and core.show_progress and len(batches) > 1
        for batch in tqdm(batches, desc=desc, disable=not show, leave=False):
            rows = [(i, c) for i in batch for c in cont_ids[i]]
            sums = continuation_log_probs(core, [prompt_ids[i] for i, _ in rows],
                                          [c for _, c in rows], shared)
            offset = 0
            for i in batch:
                results[i] = sums[offset : offset + len(cont_ids[i])]
                offset += len(cont_ids[i])
    return results


def continuation_log_probs(core: ModelCore, prompts: Sequence[Sequence[int]],
                           targets: Sequence[Sequence[int]], shared: int = 0) -> list[float]:
    """Summed log-probability of each target after its prompt, in one forward pass.

    Rows are ``prompt[shared:] + target``, right-padded after the cache of the
    ``shared`` tokens all prompts start with; logits are projected only at the
    positions that predict target tokens.

    Args:
        core: The model.
        prompts: Token lists, each at least ``shared + 1`` long.
        targets: One non-empty token list per prompt.
        shared: Length of the prefix common to every prompt (0 for none).
    """
    rows = [list(p) + list(t) for p, t in zip(prompts, targets, strict=True)]
    # Position t's logits predict token t + 1: a target's tokens are predicted from
    # the last prompt token up to its own second-to-last token.
    reads = [range(len(p) - shared - 1, len(p) - shared - 1 + len(t))
             for p, t in zip(prompts, targets, strict=True)]
    logits = core.logits_after_prefix(rows, shared, reads)
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    tokens = torch.tensor([token for target in targets for token in target],
                          device=log_probs.device)
    picked = log_probs[torch.arange(len(tokens), device=log_probs.device), tokens]
    sums, offset = [], 0
    for target in targets:
        sums.append(float(picked[offset : offset + len(target)].sum()))
        offset += len(target)
    return sums


def acc_norm_scores(log_likelihoods: Sequence[float], texts: Sequence[str]) -> list[float]:
    """lm-evaluation-harness's ``acc_norm`` values: each choice's summed log-likelihood
    divided by the length *in characters* of the choice text itself, without the
    space scored before it (``completion_len = np.array([float(len(i)) for i in
    choices])`` in ``lm_eval/api/task.py``, ``ConfigurableTask.process_results``)."""
    return [total / len(text) for total, text in zip(log_likelihoods, texts, strict=True)]


def score_answers(
    backend: ModelBackend,
    prompts: Sequence[Prompt],
    choices: Sequence[Mapping[str, str]],
    answer_format: AnswerFormat = "letter",
    *,
    desc: str | None = None,
) -> list[ChoiceScores]:
    """The model's belief over each question's choices, read in ``answer_format``.

    Args:
        backend: The model backend (the cloze format needs a local model).
        prompts: Prompts ending with the format's answer prefix (``"The answer is ("``
            for letters, ``"The answer is:"`` for cloze).
        choices: Each question's choices, label -> text, in display order.
        answer_format: ``"letter"`` (default) or ``"cloze"``.
        desc: Progress-bar label.

    Returns:
        One :class:`ChoiceScores` per prompt. For cloze, ``log_probs`` are the summed
        log-likelihoods of the choice texts and ``probs`` the softmax of their
        length-normalised values (so ``predicted`` is the ``acc_norm`` choice).
    """
    if answer_format == "letter":
        return list(backend.score_choices(prompts, [list(c) for c in choices], desc=desc))
    if answer_format != "cloze":
        raise ValueError(f"answer_format must be 'letter' or 'cloze', not {answer_format!r}")
    instead = "Use answer_format='letter' with this backend."
    require(backend, "continuation_log_probs", "answer_format='cloze'", instead)
    local = require_local(backend, "answer_format='cloze'", instead)
    texts = [[cloze_continuation(text) for text in c.values()] for c in choices]
    sums = score_continuations(local, prompts, texts, desc=desc)
    scores = []
    for options, totals in zip(choices, sums, strict=True):
        normalised = acc_norm_scores(totals, list(options.values()))
        scores.append(ChoiceScores(labels=list(options), probs=softmax(normalised),
                                   log_probs=totals))
    return scores
