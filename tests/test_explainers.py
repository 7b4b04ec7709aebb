"""Every registered attribution explainer on the tiny model, and the registry's contract."""

from __future__ import annotations

import pytest
import torch

from langchain_selfamplify import (
    METHODS,
    SLM,
    BackendCapabilityError,
    MCQExample,
    RationaleError,
    RationaleGenerator,
)
from langchain_selfamplify.rationales import AttributionMethod, GradientMethod
from langchain_selfamplify.rationales.words import question_words

EXAMPLE = MCQExample(
    id="x", question="Which gas do green plants absorb from the air?",
    choices={"A": "carbon dioxide", "B": "oxygen", "C": "helium", "D": "neon"}, answer="A",
)
ATTRIBUTION = sorted(name for name, cls in METHODS.items() if issubclass(cls, AttributionMethod))
CHEAP = {"kernelshap": {"n_samples": 24}, "lime": {"n_samples": 24},
         "shap_partition": {"max_evals": 40}, "shapley_sampling": {"n_permutations": 1},
         "integrated_gradients": {"path_steps": 4}}


def test_registry_lists_the_seed_and_the_added_explainers():
    assert set(METHODS) >= {
        "deeplift", "kernelshap", "self_topk", "ph_cot", "integrated_gradients",
        "gradient_x_input", "lime", "feature_ablation", "shapley_sampling", "shap_partition"}
    for name, cls in METHODS.items():
        assert cls.name == name and cls.description
    gradient = {"deeplift", "integrated_gradients", "gradient_x_input"}
    assert {name for name, cls in METHODS.items() if cls.needs_gradients} == gradient
    assert "k" in METHODS["deeplift"].parameters()
    assert "n_samples" in METHODS["kernelshap"].parameters()
    assert "n_steps" in METHODS["ph_cot"].parameters()


class counted_forward_passes:  # noqa: N801 - reads as a context manager
    """Counts calls of the model's inner transformer (Captum calls the LM directly)."""

    def __init__(self, slm):
        self.base = slm.model.get_decoder()
        self.calls = {"n": 0}

    def __enter__(self):
        self.handle = self.base.register_forward_pre_hook(
            lambda *args: self.calls.__setitem__("n", self.calls["n"] + 1))
        return self.calls

    def __exit__(self, *exc):
        self.handle.remove()


@pytest.mark.parametrize("name", ATTRIBUTION)
def test_attribution_explainer_scores_question_words(tiny_slm, name):
    explainer = METHODS[name](tiny_slm, k=3, **CHEAP.get(name, {}))
    first = explainer.attribute(EXAMPLE)
    assert len(first.scores) == len(first.words) == len(question_words(EXAMPLE))
    assert any(score != 0 for score in first.scores)
    assert first.scores == explainer.attribute(EXAMPLE).scores  # seeded / deterministic
    keywords = first.top_k(3)
    assert len(keywords) == 3
    assert {k.lower() for k in keywords} <= {w.text.lower() for w in first.words}
    with counted_forward_passes(tiny_slm) as calls:
        explainer.attribute(EXAMPLE)
    # the cost it reports bounds the model calls it makes (never fewer than one)
    assert 1 <= calls["n"] <= explainer.forward_passes(len(first.words))


def test_feature_ablation_equals_masking_each_word(tiny_slm):
    """Reference computation: log p(gold) with all words minus with word i masked."""
    from langchain_selfamplify.rationales.absence import mask_token_id

    explainer = METHODS["feature_ablation"](tiny_slm)
    attribution = explainer.attribute(EXAMPLE)
    prompt = explainer.question_prompt(EXAMPLE)
    gold = tiny_slm.label_token_id("A")

    def log_p(ids):
        with torch.no_grad():
            logits = tiny_slm.model(input_ids=torch.tensor([ids])).logits[0, -1]
        return torch.log_softmax(logits.float(), -1)[gold].item()

    full = log_p(prompt.input_ids)
    for index, word in enumerate(prompt.words):
        if not word.is_candidate:
            assert attribution.scores[index] == 0.0
            continue
        masked = [mask_token_id(tiny_slm.tokenizer) if owner == index else token
                  for token, owner in zip(prompt.input_ids, prompt.word_of_token)]
        assert attribution.scores[index] == pytest.approx(full - log_p(masked), abs=1e-4)


def test_k_larger_than_the_words_fails_before_work(tiny_slm, monkeypatch):
    tiny = MCQExample(id="t", question="Why?", choices={"A": "sun", "B": "rain"}, answer="A")
    explainer = METHODS["kernelshap"](tiny_slm, k=5)
    monkeypatch.setattr(explainer, "attribute", lambda ex: pytest.fail("work started"))
    with pytest.raises(RationaleError, match="k=5 keywords .* 't' has only 2"):
        explainer.explain([tiny])


def test_gradient_explainer_on_a_model_without_gradients(tiny_model_dir):
    slm = SLM.from_pretrained(tiny_model_dir, device="cpu", gradients=False)
    for name, cls in METHODS.items():
        if issubclass(cls, GradientMethod):
            with pytest.raises(BackendCapabilityError, match="gradients=False"):
                RationaleGenerator(backend=slm, method=name)
    RationaleGenerator(backend=slm, method="feature_ablation")  # perturbations still work
