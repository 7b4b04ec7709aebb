"""Property and fuzz tests (hypothesis): parser, word aggregation, dataset loaders."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_selfamplify import DatasetError, MCQExample, load_dataset, parse_answer
from langchain_selfamplify.data.formats import row_to_example
from langchain_selfamplify.rationales.attribution import build_question_prompt
from langchain_selfamplify.rationales.words import aggregate_to_words, question_words

LABELS = st.lists(st.sampled_from(list("ABCDEFGH")), min_size=2, max_size=6, unique=True)
WORDY = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                min_size=1, max_size=40)


@given(text=st.text(), labels=LABELS)
def test_parse_answer_never_raises_and_returns_a_label_or_none(text, labels):
    assert parse_answer(text, labels) in {None, *labels}


@given(label=st.sampled_from(list("ABCD")), noise=st.text(max_size=30))
def test_parse_answer_reads_the_final_answer_sentence(label, noise):
    assert parse_answer(f"{noise} The answer is ({label}).", list("ABCD")) == label


@given(question=WORDY.filter(lambda s: s.strip()),
       choices=st.lists(WORDY.filter(lambda s: s.strip()), min_size=2, max_size=4),
       scores=st.lists(st.floats(-5, 5, allow_nan=False), min_size=400, max_size=400))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
def test_token_to_word_aggregation_keeps_the_total_and_maps_every_word(
        tiny_slm, question, choices, scores):
    example = MCQExample(id="p", question=question,
                         choices={"ABCD"[i]: c for i, c in enumerate(choices)}, answer="A")
    prompt = build_question_prompt(tiny_slm, example)
    token_scores = scores[: len(prompt.input_ids)] + [0.0] * max(
        0, len(prompt.input_ids) - len(scores))
    per_word = aggregate_to_words(prompt.word_of_token, token_scores, len(prompt.words))
    inside = sum(s for s, w in zip(token_scores, prompt.word_of_token) if w is not None)
    assert abs(sum(per_word) - inside) < 1e-6
    # every word of the question is reached by at least one token
    assert set(range(len(prompt.words))) <= set(prompt.word_of_token)
    assert len(prompt.words) == len(question_words(example))


ROW_VALUES = st.one_of(st.none(), st.integers(-3, 9), st.text(max_size=12),
                       st.lists(st.text(max_size=8), max_size=5),
                       st.dictionaries(st.sampled_from(["label", "text", "A", "B"]),
                                       st.lists(st.text(max_size=5), max_size=4), max_size=3))
ROWS = st.dictionaries(
    st.sampled_from(["id", "question", "choices", "answerKey", "answer", "AnswerKey",
                     "target_scores", "input", "answerA", "answerB", "answerC", "label"]),
    ROW_VALUES, max_size=8)


@given(row=ROWS)
@settings(max_examples=300, deadline=None)
def test_a_row_either_loads_or_fails_with_a_dataset_error(row):
    from langchain_selfamplify.data.formats import detect_schema

    try:
        example = row_to_example(row, 0, detect_schema(row), "fuzz")
    except DatasetError as exc:
        assert "fuzz, row index 0" in str(exc)
    else:
        assert example.answer in example.choices and len(example.choices) >= 2


@given(rows=st.lists(ROWS, min_size=1, max_size=5))
@settings(max_examples=60, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture])
def test_jsonl_files_load_or_fail_with_a_dataset_error(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("fuzz") / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    try:
        examples = load_dataset(path)
    except DatasetError:
        return
    assert all(ex.answer in ex.choices for ex in examples)
