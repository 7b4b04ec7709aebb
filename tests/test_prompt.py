"""AmplifiedPrompt: layouts, LCEL composition, JSON persistence."""

from __future__ import annotations

import json

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from langchain_selfamplify import (
    AmplifiedPrompt,
    MCQExample,
    PromptFileError,
    RationaleGenerator,
    SelfAmplifySelector,
)
from langchain_selfamplify.prompting.messages import few_shot_messages, question_text

DEMOS = [
    MCQExample(id="d1", question="Q one?", choices={"A": "a", "B": "b"}, answer="B",
               rationale="The keyword 'one' suggests that the answer is (B)."),
    MCQExample(id="d2", question="Q {two}?", choices={"A": "x", "B": "y"}, answer="A",
               rationale="Step 1: because."),
]


def test_chat_prompt_has_one_pair_per_demo_then_the_question():
    prompt = AmplifiedPrompt(examples=DEMOS, system_prompt="Be brief {really}.")
    messages = prompt.invoke({"question": "New one? (A) p (B) q"}).to_messages()
    assert isinstance(messages[0], SystemMessage) and messages[0].content == "Be brief {really}."
    assert [type(m) for m in messages[1:]] == [HumanMessage, AIMessage] * 2 + [HumanMessage]
    assert messages[1].content == "Q one?\n(A) a\n(B) b"
    assert messages[2].content == ("The keyword 'one' suggests that the answer is (B).\n"
                                   "The answer is (B).")
    assert messages[3].content.startswith("Q {two}?")
    assert messages[-1].content == "New one?\n(A) p\n(B) q"


def test_text_prompt_matches_the_plain_layout():
    prompt = AmplifiedPrompt(examples=DEMOS, style="text")
    text = prompt.invoke("New one? (A) p (B) q").to_string()
    assert text.startswith("Question: Q one?\n(A) a\n(B) b\nAnswer: The keyword")
    assert text.endswith("Question: New one?\n(A) p\n(B) q\nAnswer:")


def test_demonstrations_and_test_time_share_one_layout(tiny_slm):
    """The text after a demo's question is what the model continues at test time."""
    prompt = AmplifiedPrompt(examples=DEMOS)
    rendered = tiny_slm.format_prompt(prompt.to_messages("New? (A) p (B) q"),
                                      prompt.assistant_prefix())
    demo_turn = tiny_slm.format_prompt(few_shot_messages(DEMOS[:1], "x")[:1],
                                       prompt.assistant_prefix())
    assert demo_turn in rendered
    io = AmplifiedPrompt(examples=[d.with_rationale(None) for d in DEMOS])
    assert io.assistant_prefix() == "The answer is ("


def test_json_round_trip_restores_the_same_prompt(tmp_path):
    prompt = AmplifiedPrompt(examples=DEMOS, system_prompt="sys", metadata={"method": "x"})
    path = prompt.save(tmp_path / "p.json")
    loaded = AmplifiedPrompt.load(path)
    assert loaded.examples == prompt.examples and loaded.metadata == {"method": "x"}
    question = {"question": "New? (A) p (B) q"}
    assert loaded.invoke(question).to_messages() == prompt.invoke(question).to_messages()
    assert json.loads(path.read_text())["format"] == "langchain-selfamplify/amplified-prompt"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "cannot read"),
        ('{"format": "other"}', "not a langchain-selfamplify"),
        ('{"format": "langchain-selfamplify/amplified-prompt", "version": 99}', "version 99"),
        ('{"format": "langchain-selfamplify/amplified-prompt", "version": 1, '
         '"examples": [{"id": "1", "question": "q", "choices": {"A": "a", "B": "b"}, '
         '"answer": "Z"}]}', "invalid amplified prompt"),
    ],
)
def test_corrupt_prompt_files_are_rejected(tmp_path, content, message):
    path = tmp_path / "p.json"
    path.write_text(content)
    with pytest.raises(PromptFileError, match=message):
        AmplifiedPrompt.load(path)


def test_lcel_chain_computes_rationales_once(tiny_slm, demo_pool, monkeypatch):
    selector = SelfAmplifySelector(backend=tiny_slm, examples=demo_pool[:8], strategy="random", n=2)
    rationales = RationaleGenerator(backend=tiny_slm, method="deeplift", k=2)
    calls = []
    original = rationales.explainer.explain
    monkeypatch.setattr(rationales.explainer, "explain",
                        lambda exs: calls.append(len(exs)) or original(exs))
    llm = FakeListChatModel(responses=["The answer is (B).", "The answer is (A)."])
    chain = selector | rationales | AmplifiedPrompt() | llm
    first = chain.invoke({"question": "Q? (A) a (B) b"})
    second = chain.invoke({"question": "Other? (A) a (B) b"})
    assert calls == [2]  # the demonstrations are explained once, for both questions
    # what the LLM was sent: the two explained demonstrations, then the question
    sent = AmplifiedPrompt(examples=rationales.invoke(selector.select())).invoke(
        {"question": "Other? (A) a (B) b"}).to_messages()
    assert len(sent) == 5 and sent[-1].content.startswith("Other?")
    assert [m.type for m in sent] == ["human", "ai", "human", "ai", "human"]
    assert "suggest that the answer is (" in sent[1].content
    assert (first.content, second.content) == ("The answer is (B).", "The answer is (A).")


def test_question_text_keeps_free_text_questions():
    assert question_text("  What is love?  ") == "What is love?"
