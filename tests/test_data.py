"""Data: MCQExample validation, format readers, registry, demo set."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from langchain_selfamplify import (
    ColumnMap,
    DatasetError,
    MCQExample,
    UnknownNameError,
    load_dataset,
    load_demo_set,
    train_test_split,
)
from langchain_selfamplify.data import load_pool_and_test, split_inline_options


def test_example_renders_options_in_order():
    ex = MCQExample(id="1", question=" Q? ", choices={"A": "x", "B": "y"}, answer="B")
    assert ex.render() == "Q?\n(A) x\n(B) y"
    assert ex.labels == ["A", "B"] and ex.answer_text == "y"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"answer": "E"}, "not among the choice labels"),
        ({"question": "   "}, "question is empty"),
        ({"choices": {"A": "x"}, "answer": "A"}, "at least two choices"),
        ({"choices": {"A": "x", "B": " "}}, "empty text"),
    ],
)
def test_example_rejects_bad_fields(fields, message):
    base = {"id": "1", "question": "Q?", "choices": {"A": "x", "B": "y"}, "answer": "A"}
    with pytest.raises(ValueError, match=message):
        MCQExample(**{**base, **fields})


def test_split_inline_options_handles_letters_numbers_and_lowercase():
    assert split_inline_options("Pick (A) red (B) blue") == ("Pick", {"A": "red", "B": "blue"})
    assert split_inline_options("Pick (1) red (2) blue (3) x")[1] == {
        "A": "red", "B": "blue", "C": "x"}
    assert split_inline_options("Which? (a) one (b) two")[1] == {"A": "one", "B": "two"}
    assert split_inline_options("no options here (A) only one") is None


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_arc_csv_with_inline_options_and_numeric_keys(tmp_path):
    path = write(tmp_path / "arc.csv", (
        "questionID,AnswerKey,question\n"
        'q1,B,"What melts ice? (A) cold (B) heat (C) dark (D) wind"\n'
        'q2,3,"Pick one (1) a1 (2) b2 (3) c3 (4) d4"\n'
    ))
    first, second = load_dataset(path)
    assert first.choices == {"A": "cold", "B": "heat", "C": "dark", "D": "wind"}
    assert first.answer == "B" and first.question == "What melts ice?"
    assert second.answer == "C"


def test_arc_csv_unknown_answer_names_the_row(tmp_path):
    path = write(tmp_path / "arc.csv", (
        "questionID,AnswerKey,question\n"
        'q1,B,"Q (A) a (B) b"\n'
        'q2,E,"Q (A) a (B) b"\n'
    ))
    with pytest.raises(DatasetError, match=r"arc.csv, line 3: answer 'E' is not among"):
        load_dataset(path)
    assert len(load_dataset(path, on_error="skip")) == 1


def test_hf_choices_jsonl(tmp_path):
    row = {"id": "c1", "question": "Where?", "answerKey": "B",
           "choices": {"label": ["A", "B", "C"], "text": ["x", "y", "z"]}}
    path = write(tmp_path / "csqa.jsonl", json.dumps(row) + "\n")
    (example,) = load_dataset(path)
    assert example.id == "c1" and example.answer == "B" and example.choices["C"] == "z"


def test_duplicate_labels_and_bad_json_are_named(tmp_path):
    row = {"id": "c1", "question": "Where?", "answerKey": "A",
           "choices": {"label": ["A", "A"], "text": ["x", "y"]}}
    with pytest.raises(DatasetError, match=r"d.jsonl, line 1: duplicate choice labels"):
        load_dataset(write(tmp_path / "d.jsonl", json.dumps(row) + "\n"))
    good = {**row, "choices": {"label": ["A", "B"], "text": ["x", "y"]}}
    with pytest.raises(DatasetError, match="line 2: invalid JSON"):
        load_dataset(write(tmp_path / "bad.jsonl", json.dumps(good) + "\n{oops\n"))


def test_bigbench_task_json(tmp_path):
    task = {"examples": [
        {"input": "Which is sarcastic? (a) Sure, I love Mondays. (b) I like Fridays.",
         "target_scores": {"(a)": 1, "(b)": 0}},
        {"input": "Did it happen on purpose?", "target_scores": {"Yes": 0, "No": 1}},
    ]}
    path = write(tmp_path / "task.json", json.dumps(task))
    sarcastic, causal = load_dataset(path)
    assert sarcastic.question == "Which is sarcastic?"
    assert sarcastic.choices == {"A": "Sure, I love Mondays.", "B": "I like Fridays."}
    assert sarcastic.answer == "A"
    assert causal.choices == {"A": "Yes", "B": "No"} and causal.answer == "B"


def test_generic_csv_with_column_map(tmp_path):
    path = write(tmp_path / "mine.csv", "q,o1,o2,o3,gold\nBest pet?,cat,rock,cloud,cat\n")
    (example,) = load_dataset(path, columns=ColumnMap(question="q", choices=["o1", "o2", "o3"],
                                                      answer="gold", id=None))
    assert example.answer == "A" and example.id == "0"
    with pytest.raises(DatasetError, match=r"missing column\(s\) \['q'\]"):
        load_dataset(write(tmp_path / "other.csv", "x,o1,o2,o3,gold\n1,a,b,c,a\n"),
                     columns=ColumnMap(question="q", choices=["o1", "o2", "o3"],
                                       answer="gold"))


def test_non_utf8_and_missing_files(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("questionID,AnswerKey,question\nq,A,\"caf\xe9 (A) a (B) b\"\n"
                     .encode("latin-1"))
    with pytest.raises(DatasetError, match="not valid UTF-8"):
        load_dataset(path)
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(tmp_path / "nope.jsonl")


def test_unknown_dataset_name_lists_registered_ones():
    with pytest.raises(UnknownNameError, match="arc_challenge, causal_judgment"):
        load_dataset("arc_challeng")


def test_demo_set_is_balanced_and_split():
    everything = load_demo_set("all")
    pool, test = load_demo_set("pool"), load_demo_set("test")
    assert len(everything) >= 120 and len(pool) + len(test) == len(everything)
    assert not {e.id for e in pool} & {e.id for e in test}
    for part in (everything, pool, test):
        counts = Counter(e.answer for e in part)
        assert set(counts) == set("ABCD") and max(counts.values()) - min(counts.values()) <= 1
    assert all(len(e.choices) == 4 for e in everything)


def test_train_test_split_is_seeded_and_disjoint():
    examples = load_demo_set("all")
    pool, test = train_test_split(examples, 20, seed=3)
    again, _ = train_test_split(examples, 20, seed=3)
    assert len(test) == 20 and pool == again
    assert not {e.id for e in pool} & {e.id for e in test}


def test_local_registered_dataset_without_split_explains(tmp_path):
    with pytest.raises(DatasetError, match="has no split 'train'"):
        load_dataset("snarks", split="train", data_dir=tmp_path)


def test_pool_and_test_from_a_single_file_never_overlap(tmp_path):
    rows = [{"id": f"r{i}", "question": f"Q{i}?", "answerKey": "A",
             "choices": {"label": ["A", "B"], "text": ["yes", "no"]}} for i in range(30)]
    path = write(tmp_path / "one.jsonl", "\n".join(json.dumps(r) for r in rows))
    pool, test = load_pool_and_test(str(path), test_size=10, seed=1)
    assert len(test) == 10 and len(pool) == 20
    assert not {e.id for e in pool} & {e.id for e in test}


def test_registered_names_load_from_the_hub_schema(monkeypatch):
    """Without a local directory, names resolve to Hub ids and Hub rows are converted."""
    import datasets

    calls = []
    hub_rows = {
        ("allenai/ai2_arc", "ARC-Challenge"): [{"id": "a1", "question": "Q?", "answerKey": "B",
            "choices": {"label": ["A", "B"], "text": ["x", "y"]}}],
        ("allenai/social_i_qa", None): [{"context": "Ann smiled.", "question": "Why?",
            "answerA": "happy", "answerB": "sad", "answerC": "bored", "label": "1"}],
        ("tasksource/bigbench", "snarks"): [{"inputs": "Which? (a) one (b) two", "idx": 4,
            "multiple_choice_targets": ["(a)", "(b)"], "multiple_choice_scores": [0, 1]}],
    }

    def fake_load_dataset(path, config=None, split=None):
        calls.append((path, config, split))
        return hub_rows[(path, config)]

    monkeypatch.delenv("SELFAMPLIFY_DATA_DIR", raising=False)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    assert load_dataset("arc_challenge", split="train")[0].answer == "B"
    social = load_dataset("social_iqa", split="validation")[0]
    assert social.question == "Ann smiled. Why?" and social.answer == "A"
    snark = load_dataset("snarks", split="train")[0]
    assert snark.choices == {"A": "one", "B": "two"} and snark.answer == "B" and snark.id == "4"
    assert calls[0] == ("allenai/ai2_arc", "ARC-Challenge", "train")


def test_hub_failure_names_the_offline_fix(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.delenv("SELFAMPLIFY_DATA_DIR", raising=False)
    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DatasetError, match="SELFAMPLIFY_DATA_DIR"):
        load_dataset("commonsense_qa", split="validation")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": "e", "question": "  ", "answerKey": "A",
          "choices": {"label": ["A", "B"], "text": ["x", "y"]}}, "line 2: question: .*empty"),
        ({"id": "o", "question": "Q?", "answerKey": "A",
          "choices": {"label": ["A"], "text": ["x"]}}, "line 2: choices: .*at least two"),
        ({"id": "m", "question": "Q?", "answerKey": "",
          "choices": {"label": ["A", "B"], "text": ["x", "y"]}},
         "line 2: the answer is missing"),
    ],
)
def test_bad_rows_are_named_by_the_loader(tmp_path, row, message):
    good = {"id": "g", "question": "Fine?", "answerKey": "A",
            "choices": {"label": ["A", "B"], "text": ["x", "y"]}}
    path = write(tmp_path / "rows.jsonl", json.dumps(good) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(DatasetError, match=message):
        load_dataset(path)


def test_errors_give_lines_as_an_editor_shows_them_and_indices_for_json(tmp_path):
    csv_path = write(tmp_path / "multi.csv", (
        "questionID,AnswerKey,question\n"
        'q1,B,"Q spanning\ntwo lines (A) a (B) b"\n'
        'q2,E,"Q (A) a (B) b"\n'
    ))
    with pytest.raises(DatasetError, match=r"multi.csv, line 4: answer 'E'"):
        load_dataset(csv_path)
    good = {"id": "g", "question": "Fine?", "answerKey": "A",
            "choices": {"label": ["A", "B"], "text": ["x", "y"]}}
    jsonl = write(tmp_path / "gaps.jsonl",
                  json.dumps(good) + "\n\n" + json.dumps({**good, "answerKey": "Z"}) + "\n")
    with pytest.raises(DatasetError, match=r"gaps.jsonl, line 3: "):
        load_dataset(jsonl)
    task = {"examples": [{"input": "Fine?", "target_scores": {"yes": 1, "no": 0}},
                         {"input": "Broken?", "target_scores": {"yes": 0, "no": 0}}]}
    with pytest.raises(DatasetError,
                       match=r"task.json, example index 1 \(0-based, in 'examples'\)"):
        load_dataset(write(tmp_path / "task.json", json.dumps(task)))
