"""End to end on the real embedded SmolLM2-135M-Instruct, offline."""

from __future__ import annotations

import re

import pytest
from langchain_core.messages import AIMessage

from langchain_selfamplify import (
    AmplifiedPrompt,
    RationaleGenerator,
    SelfAmplifySelector,
    load_dataset,
    load_demo_set,
)
from langchain_selfamplify.models.label_scoring import ANSWER_PREFIX
from langchain_selfamplify.rationales.words import question_words
from tests.conftest import SHARED_DATASETS

pytestmark = pytest.mark.integration

QUESTION = ("Which gas do green plants take in from the air to make food? "
            "(A) oxygen (B) carbon dioxide (C) helium (D) neon")


@pytest.fixture(scope="module")
def selector(default_slm):
    return SelfAmplifySelector(backend=default_slm, examples=load_demo_set("pool"),
                               strategy="success", n=2, seed=0)


def test_success_and_error_follow_the_models_predictions(default_slm, selector):
    scored = {s.example.id: s for s in selector.score_pool()}
    success = selector.select()
    error = SelfAmplifySelector(backend=default_slm, examples=selector.examples,
                                strategy="error", n=2)
    error._scores = dict(scored)  # same model, same pool: reuse the cached scores
    wrong = error.select()
    assert all(scored[ex.id].predicted == ex.answer for ex in success)
    assert all(scored[ex.id].predicted != ex.answer for ex in wrong)
    # the cache agrees with scoring each example on its own
    for ex in success + wrong:
        prompt = default_slm.format_prompt([{"role": "user", "content": ex.render()}],
                                           ANSWER_PREFIX)
        alone = default_slm.score_choices([prompt], [ex.labels])[0]
        assert alone.predicted == scored[ex.id].predicted
        assert alone.prob(ex.answer) == pytest.approx(scored[ex.id].p_gold, abs=1e-4)


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [("deeplift", {}), ("kernelshap", {"n_samples": 64}), ("self_topk", {}), ("ph_cot", {})],
)
def test_each_method_yields_a_rationale(default_slm, selector, method, kwargs):
    demos = selector.select()
    generator = RationaleGenerator(backend=default_slm, method=method, k=5, n_steps=3,
                                   method_kwargs=kwargs)
    for ex in generator.invoke(demos):
        text = ex.rationale
        assert text and text.strip()
        if method in ("deeplift", "kernelshap"):
            keywords = re.findall(r"'([^']+)'", text)
            assert 1 <= len(keywords) <= 5
            words = {w.text for w in question_words(ex)}
            assert set(keywords) <= words
            assert text.endswith(f"suggest that the answer is ({ex.answer}).")
        if method == "ph_cot":
            assert text.startswith("Step 1:")
            assert len(re.findall(r"Step \d:", text)) <= 3
            assert f"({ex.answer})" in text or ex.answer_text.lower() in text.lower()


def test_lcel_chain_with_chat_huggingface(default_slm, selector, tmp_path):
    rationales = RationaleGenerator(backend=default_slm, method="ph_cot")
    llm = default_slm.as_chat_model(max_new_tokens=24)
    chain = selector | rationales | AmplifiedPrompt() | llm
    reply = chain.invoke({"question": QUESTION})
    assert isinstance(reply, AIMessage) and reply.content.strip()
    # The chat model answered exactly the amplified prompt: its reply is the model's
    # greedy continuation of that conversation, as SLM.generate computes it.
    messages = (selector | rationales | AmplifiedPrompt()).invoke(
        {"question": QUESTION}).to_messages()
    conversation = [{"role": {"human": "user", "ai": "assistant", "system": "system"}[m.type],
                     "content": m.content} for m in messages]
    (expected,) = default_slm.generate([default_slm.format_prompt(conversation)],
                                       max_new_tokens=24)
    assert reply.content.strip() == expected.strip()

    prompt = AmplifiedPrompt(examples=rationales.invoke(selector.select()))
    path = prompt.save(tmp_path / "prompt.json")
    loaded = AmplifiedPrompt.load(path)
    assert loaded.examples == prompt.examples
    assert loaded.invoke(QUESTION).to_messages() == prompt.invoke(QUESTION).to_messages()


def test_text_prompt_with_huggingface_pipeline(default_slm, selector):
    demos = RationaleGenerator(backend=default_slm, method="deeplift").invoke(selector.select())
    chain = AmplifiedPrompt(examples=demos, style="text") | default_slm.as_langchain_llm(
        max_new_tokens=12)
    assert isinstance(chain.invoke({"question": QUESTION}), str)


@pytest.mark.skipif(not SHARED_DATASETS.is_dir(), reason="../shared/datasets not present")
def test_arc_challenge_example_is_explained(default_slm):
    (example,) = load_dataset("arc_challenge", split="train", data_dir=SHARED_DATASETS,
                              limit=1)
    (explained,) = RationaleGenerator(backend=default_slm, method="deeplift").invoke([example])
    keywords = re.findall(r"'([^']+)'", explained.rationale)
    assert set(keywords) <= {w.text for w in question_words(example)}
