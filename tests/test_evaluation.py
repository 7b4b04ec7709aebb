"""Answer parsing, accuracy intervals, IO baseline and evaluation on the tiny model."""

from __future__ import annotations

import pytest

from langchain_selfamplify import accuracy, evaluate_prompt, io_prompt, parse_answer
from langchain_selfamplify.wording import RATIONALE_STOPS

LABELS = ["A", "B", "C", "D"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is (C).", "C"),
        ("Step 1: (A) is wrong. So the answer is (D)", "D"),
        ("answer: b", "B"),
        ("B", "B"),
        ("(a) because", "A"),
        ("I pick (B) then (C)", "C"),
        ("It must be oxygen", "B"),
        ("The answer is (Z).", None),
        ("", None),
        ("no idea", None),
    ],
)
def test_parse_answer(text, expected):
    assert parse_answer(text, LABELS, ["carbon", "oxygen", "helium", "neon"]) == expected


def test_parse_answer_never_raises_on_junk():
    for junk in [None, 3, b"bytes", "(((", "answer is (", "\x00"]:
        assert parse_answer(junk, LABELS) in {None, *LABELS}


def test_wilson_interval():
    acc = accuracy(8, 10)
    assert acc.value == 0.8
    assert acc.ci_low == pytest.approx(0.4902, abs=1e-3)
    assert acc.ci_high == pytest.approx(0.9433, abs=1e-3)
    assert accuracy(0, 5).ci_low == 0.0 and accuracy(5, 5).ci_high == 1.0
    with pytest.raises(ValueError):
        accuracy(1, 0)


def test_io_prompt_is_seeded_and_has_no_rationales(demo_pool):
    prompt = io_prompt(demo_pool, 3, seed=1)
    assert prompt.examples == io_prompt(demo_pool, 3, seed=1).examples
    assert all(ex.rationale is None for ex in prompt.examples)
    assert prompt.assistant_prefix() == "The answer is ("


def test_evaluate_prompt_answers_every_question(tiny_slm, demo_pool):
    from langchain_selfamplify import load_demo_set

    test = load_demo_set("test")[:5]
    io = evaluate_prompt(tiny_slm, io_prompt(demo_pool, 2), test, "IO")
    assert io.accuracy.n == 5 and io.n_unparsed == 0
    assert [p.id for p in io.predictions] == [q.id for q in test]
    demos = [ex.with_rationale("Step 1: think.") for ex in demo_pool[:2]]
    from langchain_selfamplify import AmplifiedPrompt

    prompt = AmplifiedPrompt(examples=demos)
    amplified = evaluate_prompt(tiny_slm, prompt, test, "SA", max_rationale_tokens=4)
    # Batched, prefix-cached answers equal each question answered alone, step by step.
    cap = max(4, len(tiny_slm.tokenizer.encode(
        "Step 1: think.", add_special_tokens=False)) + 16)
    for question, prediction in zip(test, amplified.predictions):
        messages = prompt.to_messages(question)
        (written,) = tiny_slm.generate([tiny_slm.format_prompt(messages)], max_new_tokens=cap,
                                       stop=[*RATIONALE_STOPS, "Step 2:"])
        assert prediction.rationale == written.strip()
        (score,) = tiny_slm.score_choices(
            [tiny_slm.format_prompt(messages, f"{written.strip()}\nThe answer is (")],
            [question.labels])
        assert prediction.predicted == score.predicted
        assert list(prediction.probs.values()) == pytest.approx(score.probs, abs=1e-5)


def test_over_long_prompt_fails_before_any_model_call(tiny_slm, demo_pool, monkeypatch):
    from langchain_selfamplify import AmplifiedPrompt, ContextLengthError, MCQExample

    long_question = MCQExample(id="long-one", question="word " * 1500,
                               choices={"A": "a", "B": "b"}, answer="A")
    monkeypatch.setattr(tiny_slm, "generate", lambda *a, **k: pytest.fail("model was called"))
    prompt = AmplifiedPrompt(examples=[demo_pool[0].with_rationale("Step 1: x.")])
    with pytest.raises(ContextLengthError, match="'long-one'"):
        evaluate_prompt(tiny_slm, prompt, [demo_pool[1], long_question], "SA")


def test_over_long_prompts_drop_demonstrations_with_a_warning(tiny_slm, demo_pool, caplog):
    from langchain_selfamplify import AmplifiedPrompt, ContextLengthError, MCQExample
    from langchain_selfamplify.evaluation.predict import answer_questions, check_context

    long_demo = demo_pool[0].with_rationale("Step 1: " + "word " * 700)
    prompt = AmplifiedPrompt(examples=[demo_pool[1].with_rationale("Step 1: x."), long_demo])
    question = demo_pool[2]
    with pytest.raises(ContextLengthError, match="1 demonstration\\(s\\) would fit"):
        check_context(tiny_slm, prompt, [question], reserve=8)
    with caplog.at_level("WARNING"):
        assert check_context(tiny_slm, prompt, [question], 8, "drop") == {question.id: 1}
    assert f"{question.id} (1 kept)" in caplog.text
    (prediction,) = answer_questions(tiny_slm, prompt, [question], max_rationale_tokens=4,
                                     on_overflow="drop")
    assert prediction.predicted in question.labels
    alone = MCQExample(id="huge", question="word " * 1500, choices={"A": "a", "B": "b"},
                       answer="A")
    with pytest.raises(ContextLengthError, match="'huge' does not fit"):
        answer_questions(tiny_slm, prompt, [alone], on_overflow="drop")


@pytest.mark.parametrize("answer_format", ["letter", "cloze"])
def test_test_time_prompts_never_contain_the_gold_answer(tiny_slm, demo_pool, monkeypatch,
                                                         answer_format):
    """Every text sent to the model for a test question is the same whatever its gold
    label: the gold answer cannot leak into what is scored."""
    from langchain_selfamplify import AmplifiedPrompt
    from langchain_selfamplify.evaluation.predict import answer_questions

    prompt = AmplifiedPrompt(examples=[ex.with_rationale("Step 1: think.")
                                       for ex in demo_pool[:2]], answer_format=answer_format)
    questions = demo_pool[2:5]
    seen: list[list[str]] = []
    generate, tokenize = tiny_slm.generate, tiny_slm.tokenize

    def recording_generate(prompts, **kwargs):
        seen[-1].extend(prompts)
        return generate(prompts, **kwargs)

    def recording_tokenize(prompts, reserve=0):
        seen[-1].extend(prompts)
        return tokenize(prompts, reserve)

    monkeypatch.setattr(tiny_slm, "generate", recording_generate)
    monkeypatch.setattr(tiny_slm, "tokenize", recording_tokenize)
    results = []
    for flip in (False, True):
        seen.append([])
        golds = [q if not flip else q.model_copy(update={"answer": next(
            label for label in q.labels if label != q.answer)}) for q in questions]
        results.append(answer_questions(tiny_slm, prompt, golds, max_rationale_tokens=4))
    assert seen[0] == seen[1] and seen[0]
    assert [p.predicted for p in results[0]] == [p.predicted for p in results[1]]


def test_the_scored_prefix_equals_the_demonstrations_answer_prefix_token_for_token(
        tiny_slm, demo_pool):
    from langchain_selfamplify import AmplifiedPrompt

    demo = demo_pool[0].with_rationale("Step 1: plants need it.")
    prompt = AmplifiedPrompt(examples=[demo])
    question = demo_pool[1]
    text = tiny_slm.format_prompt(prompt.to_messages(question))
    answer_line = f"\nThe answer is ({demo.answer})."
    end_of_prefix = text.index(answer_line) + len(answer_line) - len(f"{demo.answer}).")
    demo_tokens = tiny_slm.tokenize([text])[0]
    before_label = tiny_slm.tokenize([text[:end_of_prefix]])[0]
    assert demo_tokens[: len(before_label)] == before_label  # the label starts a token
    scored = tiny_slm.tokenize([tiny_slm.format_prompt(prompt.to_messages(question),
                                                       "Some rationale.\nThe answer is (")])[0]
    prefix_tokens = len(tiny_slm.tokenizer.encode("\nThe answer is (", add_special_tokens=False))
    assert scored[-prefix_tokens:] == before_label[-prefix_tokens:]


def test_test_time_rationales_stop_one_step_past_the_demonstrations():
    from langchain_selfamplify import AmplifiedPrompt, MCQExample
    from langchain_selfamplify.evaluation.predict import rationale_stops

    example = MCQExample(id="q", question="Which?", choices={"A": "a", "B": "b"}, answer="A")
    steps = AmplifiedPrompt(examples=[
        example.with_rationale("Step 1: x. Step 2: y."),
        example.with_rationale("Step 1: x. Step 2: y. Step 3: z.")])
    assert rationale_stops(steps) == [*RATIONALE_STOPS, "Step 4:"]
    keywords = AmplifiedPrompt(examples=[example.with_rationale(
        "The 2 keywords 'a' and 'b' suggest that the answer is (A).")])
    assert rationale_stops(keywords) == list(RATIONALE_STOPS)
