"""The plain routes a user would take without this library, kept to check and time ours.

The library's fast paths (prefix-cached, batched) must give the same results as these
straightforward routes, and the benchmarks in ``benchmarks/`` time them side by side:

* :func:`captum_word_attributions`: Captum's ``LLMAttribution`` with its defaults (one
  perturbation per forward pass, every position projected to the vocabulary) over the
  same word features and mask token as :class:`~langchain_selfamplify.rationales.
  perturbation.PerturbationMethod`.
* :func:`pipeline_answers`: ``AmplifiedPrompt | ChatHuggingFace(HuggingFacePipeline)``
  invoked one question at a time, its replies parsed as ``answer_questions(...,
  mode="generate")`` parses ours.
* :func:`generate_predictions`: one-token ``generate`` per pool example, as the
  paper's reference implementation scores the pool.

None of them is used by the pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from langchain_selfamplify.data.example import MCQExample
from langchain_selfamplify.evaluation.predict import Prediction
from langchain_selfamplify.models.slm import SLM
from langchain_selfamplify.prompting.amplified import AmplifiedPrompt
from langchain_selfamplify.prompting.messages import question_text, zero_shot_prompt
from langchain_selfamplify.prompting.parsing import parse_answer
from langchain_selfamplify.rationales.absence import mask_token_id
from langchain_selfamplify.rationales.attribution import build_question_prompt
from langchain_selfamplify.wording import ANSWER_PREFIX

CAPTUM_METHODS = ("feature_ablation", "kernelshap", "lime", "shapley_sampling")
"""Registered perturbation methods that :func:`captum_word_attributions` reproduces."""


def _word_feature_input_class() -> type:
    from captum.attr import TextTokenInput

    # LLMAttribution accepts only its own input classes, hence the subclass.
    class WordFeatureInput(TextTokenInput):  # type: ignore[misc]
        """Captum text input whose features are words: each groups its tokens, which
        are all replaced by ``mask_id`` when the word is absent."""

        def __init__(self, input_ids: list[int], token_feature: list[int],
                     values: list[str], mask_id: int) -> None:
            self.input_ids = torch.tensor([input_ids])
            self.token_feature = torch.tensor(token_feature)
            self.values = values
            self.n_itp_features = len(values)
            self.mask_id = mask_id

        def to_tensor(self) -> torch.Tensor:
            return torch.ones(1, self.n_itp_features)

        def to_model_input(self, perturbed_tensor: torch.Tensor | None = None) -> torch.Tensor:
            if perturbed_tensor is None:
                return self.input_ids
            ids = self.input_ids.clone().to(perturbed_tensor.device)
            removable = self.token_feature >= 0
            absent = perturbed_tensor[0, self.token_feature[removable]] != 1
            ids[0, removable.nonzero()[absent].flatten()] = self.mask_id
            return ids

        def format_attr(self, itp_attr: torch.Tensor) -> torch.Tensor:
            return itp_attr

    return WordFeatureInput


def captum_word_attributions(backend: SLM, example: MCQExample, method: str, *,
                             seed: int = 0, **attribute_kwargs: Any) -> list[float]:
    """Scores of ``example``'s content words by Captum's ``LLMAttribution``.

    Args:
        backend: The model.
        example: The example; the target is its gold label after ``"The answer is ("``.
        method: One of :data:`CAPTUM_METHODS`.
        seed: Seed set before sampling. Defaults to 0.
        **attribute_kwargs: Passed to ``LLMAttribution.attribute`` (``n_samples``...).

    Returns:
        One score per content word (the features of our perturbation methods), in
        text order.
    """
    from captum._utils.models.linear_model import SkLearnRidge
    from captum.attr import (
        FeatureAblation,
        KernelShap,
        Lime,
        LLMAttribution,
        ShapleyValueSampling,
    )

    prompt = build_question_prompt(backend, example)
    features = [i for i, word in enumerate(prompt.words) if word.is_candidate]
    feature_of_word = {word: f for f, word in enumerate(features)}
    token_feature = [feature_of_word.get(w, -1) if w is not None else -1
                     for w in prompt.word_of_token]
    inp = _word_feature_input_class()(prompt.input_ids, token_feature,
                                      [prompt.words[i].text for i in features],
                                      mask_token_id(backend.tokenizer))
    algorithms: dict[str, Any] = {
        "feature_ablation": lambda: FeatureAblation(backend.model),
        "kernelshap": lambda: KernelShap(backend.model),
        # Same surrogate as our Lime (Captum's default lasso zeroes small effects).
        "lime": lambda: Lime(backend.model, interpretable_model=SkLearnRidge(alpha=1e-3)),
        "shapley_sampling": lambda: ShapleyValueSampling(backend.model),
    }
    if method not in algorithms:
        raise ValueError(f"no Captum reference for {method!r}; known: {CAPTUM_METHODS}")
    attribution = LLMAttribution(algorithms[method](), backend.tokenizer)
    gold = torch.tensor([backend.label_token_id(example.answer)])
    torch.manual_seed(seed)
    result = attribution.attribute(inp, target=gold, **attribute_kwargs)
    return [float(v) for v in result.seq_attr.flatten().tolist()]


def pipeline_answers(backend: SLM, prompt: AmplifiedPrompt, questions: Sequence[MCQExample],
                     *, max_new_tokens: int) -> list[Prediction]:
    """Answer each question with ``prompt | ChatHuggingFace(HuggingFacePipeline)``, one
    at a time, greedy, and parse the reply (unparsable replies count as wrong).

    The chat wrapper renders the conversation with the model's chat template, as
    :class:`SLM` does; a bare ``HuggingFacePipeline`` would see LangChain's
    ``"Human: ..."`` text instead. Use a prompt with rationales (its answer turn
    starts empty) so both routes read exactly the same tokens.
    """
    if prompt.assistant_prefix():
        raise ValueError("pipeline_answers needs a prompt with rationales; an IO prompt's "
                         f"answer turn starts with {ANSWER_PREFIX!r}, which a chat model "
                         "cannot be given")
    chain = prompt | backend.as_chat_model(max_new_tokens=max_new_tokens)
    predictions = []
    for question in questions:
        reply = str(chain.invoke({"question": question_text(question)}).content)
        label = parse_answer(reply, question.labels, list(question.choices.values()))
        predictions.append(Prediction(id=question.id, gold=question.answer, predicted=label,
                                      correct=label == question.answer, rationale=reply))
    return predictions


@torch.no_grad()
def generate_predictions(backend: SLM, examples: Sequence[MCQExample]) -> list[str]:
    """Each example's predicted label from one-token ``generate``, one example at a time:
    the label whose token scores highest at the first generated position."""
    predictions = []
    for example in examples:
        (ids,) = backend.tokenize([zero_shot_prompt(backend, example)])
        input_ids = torch.tensor([ids], device=backend.device)
        output = backend.model.generate(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
            max_new_tokens=1, do_sample=False, output_scores=True,
            return_dict_in_generate=True, pad_token_id=backend.tokenizer.pad_token_id,
        )
        label_scores = output.scores[0][0, backend.label_token_ids(example.labels)]
        predictions.append(example.labels[int(label_scores.argmax())])
    return predictions
