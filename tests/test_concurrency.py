"""One model shared by LangChain batch/abatch with max_concurrency > 1."""

from __future__ import annotations

import asyncio

from langchain_selfamplify import RationaleGenerator, SelfAmplifySelector

QUESTIONS = [{"question": f"Question {i}? (A) yes (B) no"} for i in range(6)]


def test_selector_batch_and_abatch_agree_with_sequential(tiny_slm, demo_pool):
    sequential = SelfAmplifySelector(backend=tiny_slm, examples=demo_pool[:20], strategy="error",
                                     n=3).select()
    selector = SelfAmplifySelector(backend=tiny_slm, examples=demo_pool[:20], strategy="error", n=3)
    outputs = selector.batch(QUESTIONS, config={"max_concurrency": 4})
    assert all(out["examples"] == sequential for out in outputs)
    assert [out["question"] for out in outputs] == [q["question"] for q in QUESTIONS]
    assert len(selector.scored_pool) == 20  # one score per pool example, no duplicates
    again = asyncio.run(selector.abatch(QUESTIONS, config={"max_concurrency": 4}))
    assert all(out["examples"] == sequential for out in again)


def test_rationale_generator_is_safe_under_concurrency(tiny_slm, demo_pool, monkeypatch):
    expected = RationaleGenerator(backend=tiny_slm, method="gradient_x_input", k=2).explain(
        demo_pool[:4])
    generator = RationaleGenerator(backend=tiny_slm, method="gradient_x_input", k=2)
    calls = []
    original = generator.explainer.explain
    monkeypatch.setattr(generator.explainer, "explain",
                        lambda exs: calls.append(len(exs)) or original(exs))
    inputs = [demo_pool[:4]] * 6
    outputs = generator.batch(inputs, config={"max_concurrency": 4})
    assert all(out == expected for out in outputs)
    assert sum(calls) == 4  # each rationale computed once, whatever the threads
    outputs = asyncio.run(generator.abatch(inputs, config={"max_concurrency": 4}))
    assert all(out == expected for out in outputs)
