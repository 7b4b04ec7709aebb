"""Rationale methods: word handling, each method on the tiny model, the generator."""

from __future__ import annotations

import pytest

from langchain_selfamplify import MCQExample, RationaleError, RationaleGenerator, UnknownNameError
from langchain_selfamplify.rationales.methods.deeplift import DeepLiftRationale
from langchain_selfamplify.rationales.methods.kernelshap import KernelShapRationale
from langchain_selfamplify.rationales.methods.ph_cot import render_steps, split_steps
from langchain_selfamplify.rationales.methods.self_topk import parse_keywords
from langchain_selfamplify.rationales.words import (
    Word,
    aggregate_to_words,
    keyword_rationale,
    question_words,
    token_word_index,
    top_k_words,
)

EXAMPLE = MCQExample(
    id="x", question="Which gas do green plants absorb from the air?",
    choices={"A": "carbon dioxide", "B": "oxygen", "C": "helium", "D": "neon"}, answer="A",
)


def test_question_words_skip_option_markers():
    words = [w.text for w in question_words(EXAMPLE)]
    assert words[:3] == ["Which", "gas", "do"] and "carbon" in words and "neon" in words
    assert "A" not in words and "D" not in words
    rendered = EXAMPLE.render()
    assert all(rendered[w.start:w.end] == w.text for w in question_words(EXAMPLE))


def test_sub_tokens_are_summed_into_their_word():
    text = "green plants, air"
    words = [Word("green", 0, 5), Word("plants", 6, 12), Word("air", 14, 17)]
    spans = [(0, 3), (3, 5), (5, 12), (12, 13), (13, 17)]  # gr|een| plants|,| air
    owners = token_word_index(spans, words, text)
    assert owners == [0, 0, 1, None, 2]
    assert aggregate_to_words(owners, [1.0, 2.0, 4.0, 8.0, 16.0], 3) == [3.0, 4.0, 16.0]


def test_top_k_ranks_by_importance_without_duplicates_or_stop_words():
    words = [Word(t, i, i + 1) for i, t in enumerate(["the", "Gas", "plants", "gas", "air"])]
    scores = [9.0, 1.0, 5.0, 3.0, -2.0]
    assert top_k_words(words, scores, 3) == ["plants", "gas", "air"]
    # a negative total must not flip the order (the reference's signed-sum fault)
    assert top_k_words(words, [-s for s in scores], 2) == ["air", "Gas"]


def test_keyword_sentence():
    assert keyword_rationale(["gas", "plants", "air"], "A") == (
        "The 3 keywords 'gas', 'plants' and 'air' suggest that the answer is (A).")
    assert keyword_rationale(["gas"], "B") == "The keyword 'gas' suggests that the answer is (B)."


def test_self_topk_reply_parsing():
    assert parse_keywords("\n\n1. Plants\n2. gas, the air and sunlight", 3) == [
        "Plants", "gas", "air"]
    assert parse_keywords("- Stay Safe in a Crash\n- Driver's Safety", 10) == [
        "Stay", "Safe", "Crash", "Driver's", "Safety"]
    assert parse_keywords("", 3) == []


def test_ph_cot_steps_are_trimmed_and_name_the_answer():
    reply = " Plants need CO2. Step 2: They absorb it. Step 3: It is carbon. Step 4: extra"
    steps = split_steps(reply, 2)
    assert steps == ["Plants need CO2.", "They absorb it."]
    text = render_steps(steps, EXAMPLE)
    assert text.startswith("Step 1: Plants need CO2. Step 2: They absorb it.")
    assert text.endswith("So the answer is carbon dioxide.")
    assert "The answer is" not in render_steps(split_steps("The answer is (A).", 3), EXAMPLE)


@pytest.mark.parametrize("method", [DeepLiftRationale, KernelShapRationale])
def test_attribution_methods_return_question_words(tiny_slm, method):
    explainer = method(tiny_slm, k=4) if method is DeepLiftRationale else method(
        tiny_slm, k=4, n_samples=40)
    attribution = explainer.attribute(EXAMPLE)
    assert len(attribution.scores) == len(attribution.words)
    keywords = attribution.top_k(4)
    assert len(keywords) == 4
    assert {k.lower() for k in keywords} <= {w.text.lower() for w in question_words(EXAMPLE)}
    (rationale,) = explainer.explain([EXAMPLE])
    assert rationale.startswith("The 4 keywords '") and rationale.endswith("answer is (A).")


def test_gradient_attributions_fall_on_question_tokens_only(tiny_slm):
    """Through the library's own batched path: tokens outside the question (template,
    options' markers, answer prefix) get no score, because the baseline equals the
    input there; question words do. (Which word wins is tested on a model with a known
    dependency in test_attribution_correctness.py.)"""
    explainer = DeepLiftRationale(tiny_slm)
    single = explainer.attribute(EXAMPLE)
    other = EXAMPLE.model_copy(update={"id": "y", "question": "Which metal do magnets pull?"})
    batched = explainer.attribute_batch([EXAMPLE, other])[0]
    assert batched.scores == pytest.approx(single.scores, abs=1e-5)
    assert any(abs(score) > 0 for score in single.scores)


def test_kernelshap_is_deterministic_under_a_seed(tiny_slm):
    first = KernelShapRationale(tiny_slm, n_samples=30, seed=1).attribute(EXAMPLE).scores
    second = KernelShapRationale(tiny_slm, n_samples=30, seed=1).attribute(EXAMPLE).scores
    assert first == second


@pytest.mark.parametrize(("method", "reply", "expected"), [
    ("self_topk", " gas, green plants, air\n\nMore text.",
     "The 3 keywords 'gas', 'green' and 'plants' suggest that the answer is (A)."),
    ("ph_cot", " Plants breathe in. Step 2: They take carbon dioxide. Step 3: extra",
     "Step 1: Plants breathe in. Step 2: They take carbon dioxide."),
    ("ph_cot", " Leaves open their pores. Step 2: Air flows in",
     "Step 1: Leaves open their pores. Step 2: Air flows in. So the answer is carbon "
     "dioxide."),
])
def test_generative_methods_turn_the_models_reply_into_the_promised_text(
        tiny_slm, monkeypatch, method, reply, expected):
    """The model's reply (scripted here, so the form is fixed) and the rationale made of it;
    the real model's own greedy reply runs through the same path."""
    generator = RationaleGenerator(backend=tiny_slm, method=method, k=3, n_steps=2,
                                   method_kwargs={"max_new_tokens": 12})
    asked = []

    def scripted(prompts, **kwargs):
        asked.append((prompts, kwargs))
        return [reply] * len(prompts)

    monkeypatch.setattr(tiny_slm, "generate", scripted)
    (explained,) = generator.invoke([EXAMPLE])
    assert explained.rationale == expected
    assert explained.metadata["rationale_method"] == method
    (prompts, kwargs), = asked
    assert "The correct answer is (A) carbon dioxide." in prompts[0]
    assert kwargs["max_new_tokens"] == 12
    if method == "ph_cot":  # the reply ends where a third step would start
        assert kwargs["stop"] == ["Step 3:"]


def test_an_unusable_reply_is_a_clear_error(tiny_slm, monkeypatch):
    generator = RationaleGenerator(backend=tiny_slm, method="self_topk", k=3)
    monkeypatch.setattr(tiny_slm, "generate", lambda prompts, **kw: [" the of and"] * len(prompts))
    with pytest.raises(RationaleError, match="example 'x': no self_topk rationale"):
        generator.invoke([EXAMPLE])


@pytest.mark.parametrize(
    ("method", "reply", "expected"),
    [
        ("self_topk", " plants, gas, the air", "The 3 keywords 'plants', 'gas' and 'air' suggest"),
        ("ph_cot", " Plants absorb it. Step 2: It is carbon dioxide.", "Step 1: Plants absorb it."),
    ],
)
def test_generative_methods_turn_replies_into_rationales(tiny_slm, monkeypatch, method, reply,
                                                         expected):
    prompts = []
    monkeypatch.setattr(tiny_slm, "generate",
                        lambda p, **kw: prompts.extend(p) or [reply] * len(p))
    (explained,) = RationaleGenerator(backend=tiny_slm, method=method, k=3).invoke([EXAMPLE])
    assert explained.rationale.startswith(expected)
    assert "The correct answer is (A) carbon dioxide." in prompts[0]


def test_unusable_reply_is_a_clear_error(tiny_slm, monkeypatch):
    monkeypatch.setattr(tiny_slm, "generate", lambda p, **kw: ["  "] * len(p))
    with pytest.raises(RationaleError, match="example 'x': no self_topk rationale"):
        RationaleGenerator(backend=tiny_slm, method="self_topk").invoke([EXAMPLE])


def test_generator_caches_rationales(tiny_slm, monkeypatch):
    generator = RationaleGenerator(backend=tiny_slm, method="deeplift", k=2)
    calls = []
    original = generator.explainer.explain

    def counting(examples):
        calls.append(len(examples))
        return original(examples)

    monkeypatch.setattr(generator.explainer, "explain", counting)
    first = generator.invoke({"question": "q", "examples": [EXAMPLE]})
    second = generator.invoke([EXAMPLE])
    assert calls == [1]
    assert first["examples"][0].rationale == second[0].rationale


def test_unknown_method_lists_the_registered_ones(tiny_slm):
    with pytest.raises(UnknownNameError, match="deeplift, feature_ablation, gradient_x_input"):
        RationaleGenerator(backend=tiny_slm, method="lime-ish")
