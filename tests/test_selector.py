"""SelfAmplifySelector on the tiny model."""

from __future__ import annotations

import pytest

from langchain_selfamplify import SelectionError, SelfAmplifySelector, UnknownNameError
from langchain_selfamplify.models.label_scoring import ANSWER_PREFIX


def independent_prediction(slm, example):
    prompt = slm.format_prompt([{"role": "user", "content": example.render()}], ANSWER_PREFIX)
    return slm.score_choices([prompt], [example.labels])[0]


def test_unknown_strategy_is_rejected(tiny_slm, demo_pool):
    with pytest.raises(UnknownNameError, match="Known strategy names: error, random, success"):
        SelfAmplifySelector(backend=tiny_slm, examples=demo_pool, strategy="best")


@pytest.mark.parametrize("strategy", ["success", "error"])
def test_strategies_select_by_the_models_own_predictions(tiny_slm, demo_pool, strategy):
    selector = SelfAmplifySelector(backend=tiny_slm, examples=demo_pool[:32], strategy=strategy,
                                   n=3)
    chosen = selector.select()
    assert len(chosen) == 3
    scores = [independent_prediction(tiny_slm, ex) for ex in chosen]
    if strategy == "success":
        assert all(s.predicted == ex.answer for s, ex in zip(scores, chosen))
        golds = [s.prob(ex.answer) for s, ex in zip(scores, chosen)]
        assert golds == sorted(golds, reverse=True)
    else:
        assert all(s.predicted != ex.answer for s, ex in zip(scores, chosen))
        margins = [s.prob(s.predicted) - s.prob(ex.answer) for s, ex in zip(scores, chosen)]
        assert margins == sorted(margins, reverse=True)


def test_pool_is_scored_once(tiny_slm, demo_pool, monkeypatch):
    selector = SelfAmplifySelector(backend=tiny_slm, examples=demo_pool[:12], n=1, strategy="error")
    calls = []
    original = tiny_slm.score_choices

    def counting(prompts, labels, **kwargs):
        calls.append(len(prompts))
        return original(prompts, labels, **kwargs)

    monkeypatch.setattr(tiny_slm, "score_choices", counting)
    selector.select()
    selector.select()
    selector.invoke({"question": "Q (A) a (B) b"})
    assert calls == [12]


def test_not_enough_qualifying_examples_keeps_the_scores(tiny_slm, demo_pool):
    selector = SelfAmplifySelector(backend=tiny_slm, examples=demo_pool[:8], strategy="success",
                                   n=8)
    with pytest.raises(SelectionError, match="pool of 8 has only"):
        selector.select()
    assert len(selector.scored_pool) == 8


def test_random_strategy_is_seeded_and_needs_no_model(demo_pool):
    first = SelfAmplifySelector(backend=None, examples=demo_pool, strategy="random", n=4, seed=7)
    second = SelfAmplifySelector(backend=None, examples=demo_pool, strategy="random", n=4, seed=7)
    other = SelfAmplifySelector(backend=None, examples=demo_pool, strategy="random", n=4, seed=8)
    assert first.select() == second.select() != other.select()


def test_langchain_example_selector_interface(demo_pool):
    selector = SelfAmplifySelector(backend=None, examples=demo_pool[:6], strategy="random", n=2)
    selected = selector.select_examples({"question": "anything"})
    assert [set(d) for d in selected] == [{"id", "question", "answer", "label", "example"}] * 2
    assert selected[0]["answer"].startswith("The answer is (")
    selector.add_example({"id": "new", "question": "Q?", "choices": {"A": "a", "B": "b"},
                          "answer": "A"})
    assert len(selector.examples) == 7
    output = selector.invoke({"question": "Q (A) a (B) b", "extra": 1})
    assert output["extra"] == 1 and len(output["examples"]) == 2


def test_the_selector_reports_examples_skipped_for_an_unusable_rationale(tiny_slm, demo_pool,
                                                                         monkeypatch):
    from langchain_selfamplify import RationaleGenerator, SelfAmplifySelector

    generator = RationaleGenerator(backend=tiny_slm, method="self_topk", k=2)
    selector = SelfAmplifySelector(backend=tiny_slm, examples=demo_pool[:8], strategy="random",
                                   n=2, rationales=generator)
    first = selector.select()[0]

    def replies(prompts, **kwargs):  # stop words only for the first pick: nothing usable
        return [" the of" if first.question in p else " gas, plants" for p in prompts]

    monkeypatch.setattr(tiny_slm, "generate", replies)
    chosen = selector.amplified_examples()
    assert selector.skipped == [first.id]
    assert first.id not in [ex.id for ex in chosen] and len(chosen) == 2
    assert all(ex.rationale.startswith("The 2 keywords 'gas' and 'plants'") for ex in chosen)
