"""Amplified demonstrations through LangChain's own hook: ``example_selector=``."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.chat_history import InMemoryChatMessageHistory
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.prompts import (
    ChatPromptTemplate,
    FewShotChatMessagePromptTemplate,
    FewShotPromptTemplate,
    MessagesPlaceholder,
    PromptTemplate,
)
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory
from pydantic import ValidationError

from langchain_selfamplify import MCQExample, RationaleGenerator, SelfAmplifySelector
from langchain_selfamplify.prompting.messages import answer_turn


@pytest.fixture()
def braced_pool(demo_pool):
    first = demo_pool[0].model_copy(update={"question": "Which set {a, b} holds a gas?"})
    return [first, *demo_pool[1:10]]


def _selector(tiny_slm, pool, **kwargs):
    generator = RationaleGenerator(backend=tiny_slm, method="deeplift", k=2)
    return SelfAmplifySelector(backend=tiny_slm, examples=pool, strategy="random", n=3,
                               rationales=generator, **kwargs), generator


def test_chat_few_shot_template_gets_rationales_computed_once(tiny_slm, braced_pool):
    selector, generator = _selector(tiny_slm, braced_pool)
    calls = []
    original = generator.explainer.explain_each
    generator.explainer.explain_each = (  # type: ignore[method-assign]
        lambda exs, **kwargs: calls.append(len(exs)) or original(exs, **kwargs))
    template = FewShotChatMessagePromptTemplate(
        example_selector=selector,
        example_prompt=ChatPromptTemplate.from_messages([("human", "{question}"),
                                                         ("ai", "{answer}")]))
    messages = template.format_messages(question="anything")
    again = asyncio.run(template.aformat_messages(question="anything"))
    explained, _ = generator.explain_selection(selector)
    assert [m.content for m in messages[1::2]] == [answer_turn(ex) for ex in explained]
    assert all("keywords" in m.content for m in messages[1::2])
    assert [m.content for m in again] == [m.content for m in messages]
    assert calls == [3]  # three rationales, computed once for every call
    braced = [m.content for m in messages[::2] if "{a, b}" in m.content]
    assert braced or all(ex.id != braced_pool[0].id for ex in explained)


def test_string_few_shot_template_with_braces_escaped(tiny_slm, braced_pool):
    selector, generator = _selector(tiny_slm, braced_pool, escape_braces=True, seed=3)
    selector.n = 10  # every pool example, the braced one included
    template = FewShotPromptTemplate(
        example_selector=selector,
        example_prompt=PromptTemplate.from_template("Question: {question}\nAnswer: {answer}"),
        suffix="Question: {question}\nAnswer:", input_variables=["question"])
    text = template.format(question="What now?")
    assert "Which set {a, b} holds a gas?" in text and "{{" not in text
    assert asyncio.run(template.aformat(question="What now?")) == text
    for ex in generator.explain_selection(selector)[0]:
        assert answer_turn(ex) in text


def test_add_example_takes_back_what_select_examples_returns(tiny_slm, demo_pool):
    source, _ = _selector(tiny_slm, demo_pool[:6])
    rows = source.select_examples({})
    chosen = {row["id"] for row in rows}
    target, _ = _selector(tiny_slm, [ex for ex in demo_pool[:12] if ex.id not in chosen])
    before = target.select_examples({})
    for row in rows:
        target.add_example(row)
    pool = {ex.id: ex for ex in target.examples}
    for row in rows:
        assert pool[row["id"]] == MCQExample.model_validate(row["example"]).with_rationale(None)
    assert target.select_examples({}) != before or len(target.examples) > 12  # recomputed


def test_amplified_few_shot_prompt_inside_runnable_with_message_history(tiny_slm, demo_pool):
    selector, generator = _selector(tiny_slm, demo_pool[:8])
    prompt = ChatPromptTemplate.from_messages([
        ("system", "Answer the question."),
        FewShotChatMessagePromptTemplate(
            example_selector=selector,
            example_prompt=ChatPromptTemplate.from_messages([("human", "{question}"),
                                                             ("ai", "{answer}")])),
        MessagesPlaceholder("history"), ("human", "{question}")])
    seen = []
    model = FakeListChatModel(responses=["The answer is (A).", "The answer is (B)."])
    chain = prompt | RunnableLambda(lambda value: seen.append(value) or value) | model
    histories: dict[str, InMemoryChatMessageHistory] = {}
    chat = RunnableWithMessageHistory(
        chain, lambda session: histories.setdefault(session, InMemoryChatMessageHistory()),
        input_messages_key="question", history_messages_key="history")
    config = {"configurable": {"session_id": "s"}}
    chat.invoke({"question": "First?"}, config=config)
    chat.invoke({"question": "Second?"}, config=config)
    explained, _ = generator.explain_selection(selector)
    second = [m.content for m in seen[1].to_messages()]
    assert [answer_turn(ex) for ex in explained] == second[2:8:2]
    assert second[-3:] == ["First?", "The answer is (A).", "Second?"]


def test_runnables_are_typed_and_report_selection_and_each_rationale(tiny_slm, demo_pool):
    from langchain_selfamplify import AmplifiedPrompt

    generator = RationaleGenerator(backend=tiny_slm, method="deeplift", k=2)
    selector = SelfAmplifySelector(backend=tiny_slm, examples=demo_pool[:8], strategy="random", n=2,
                                   rationales=generator)
    chain = selector | AmplifiedPrompt()
    assert "question" in chain.input_schema.model_json_schema()["properties"]
    assert "examples" in selector.output_schema.model_json_schema()["properties"]
    validated = generator.input_schema.model_validate([demo_pool[0]])
    assert validated.root == [demo_pool[0]]
    with pytest.raises(ValidationError):
        generator.input_schema.model_validate([{"id": "x"}])  # not an MCQExample
    output = AmplifiedPrompt().output_schema.model_json_schema()
    assert output.get("title") and output != {}

    async def events():
        return [e async for e in chain.astream_events({"question": "Why? (A) a (B) b"},
                                                      version="v2")]

    names = [(e["event"], e["name"]) for e in asyncio.run(events())]
    assert ("on_chain_start", "selection") in names and ("on_chain_end", "selection") in names
    explained = selector.amplified_examples()
    for example in explained:
        assert ("on_chain_end", f"rationale:{example.id}") in names


def test_changing_the_method_after_construction_takes_effect(tiny_slm, demo_pool):
    generator = RationaleGenerator(backend=tiny_slm, method="deeplift", k=2)
    assert generator.explainer.name == "deeplift"
    generator.method = "kernelshap"
    generator.method_kwargs = {"n_samples": 8}
    assert generator.explainer.name == "kernelshap"
    (explained,) = generator.explain(demo_pool[:1])
    assert explained.metadata["rationale_method"] == "kernelshap"


def test_concurrent_batches_interleave_without_explaining_twice(tiny_slm, demo_pool):
    import threading

    generator = RationaleGenerator(backend=tiny_slm, method="deeplift", k=2)
    started, release = threading.Event(), threading.Event()
    calls: list[list[str]] = []
    original = generator.explainer.explain

    def slow(examples):
        calls.append([ex.id for ex in examples])
        if len(calls) == 1:  # the first batch waits until a second call has run
            started.set()
            release.wait(timeout=30)
        return original(examples)

    generator.explainer.explain = slow  # type: ignore[method-assign]
    first = threading.Thread(target=generator.explain, args=(demo_pool[:2],))
    first.start()
    started.wait(timeout=30)
    generator.explain(demo_pool[4:5])  # not blocked by the first call's batch
    release.set()
    first.join(timeout=60)
    assert calls == [[ex.id for ex in demo_pool[:2]], [demo_pool[4].id]]
    generator.explain(demo_pool[:2])  # cached: no third call
    assert len(calls) == 2
