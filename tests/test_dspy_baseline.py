"""DSPy's BootstrapFewShot and LabeledFewShot as baseline rows, on the project's backends."""

from __future__ import annotations

import pytest

from langchain_selfamplify import AmplifiedPrompt, load_demo_set

dspy = pytest.importorskip("dspy")

from langchain_selfamplify.baselines.dspy_bootstrap import (  # noqa: E402
    DSPyBaseline,
    program_from_prompt,
    program_predictions,
)
from langchain_selfamplify.baselines.dspy_lm import dspy_lm, engine_of  # noqa: E402
from langchain_selfamplify.prompting.messages import question_text  # noqa: E402


class ScriptedChat:
    """The tiny model's formatting and counting, with replies in DSPy's chat format:
    the gold label for the questions in ``right``, a wrong one for the others."""

    def __init__(self, tiny_slm, pool, right):
        self.tiny, self.pool, self.right = tiny_slm, pool, set(right)
        self.prompts: list[str] = []
        self.batches: list[int] = []

    def __getattr__(self, name):
        return getattr(self.tiny, name)

    def generate(self, prompts, **kwargs):
        self.batches.append(len(prompts))
        replies = []
        for prompt in prompts:
            self.prompts.append(prompt)
            # the question being asked is the last one in the prompt
            asked = max(self.pool, key=lambda q: prompt.rfind(q.question))
            label = asked.answer if asked.id in self.right else next(
                label for label in asked.labels if label != asked.answer)
            replies.append(f"[[ ## reasoning ## ]]\nBecause of {asked.id}.\n\n"
                           f"[[ ## answer ## ]]\n{label}\n\n")
        return replies


def test_predict_and_chain_of_thought_run_on_the_tiny_model_with_no_network(tiny_slm):
    lm = dspy_lm(tiny_slm, max_new_tokens=8)
    with dspy.context(lm=lm):
        for module in (dspy.Predict("question -> answer"),
                       dspy.ChainOfThought("question -> answer")):
            try:
                module(question="Which gas do plants absorb?")
            except Exception as exc:  # random weights write no DSPy fields
                assert "parse" in type(exc).__name__.lower() or "Adapter" in type(exc).__name__
    engine = engine_of(lm)
    assert engine.calls >= 2  # both modules reached the local model
    raw = lm("Say hi.")  # the plain call path
    assert isinstance(raw, list) and isinstance(raw[0], str)


def test_bootstrap_keeps_exactly_the_traces_the_model_got_right(tiny_slm):
    pool = load_demo_set("pool")[:12]
    right = {pool[2].id, pool[5].id, pool[7].id}
    scripted = ScriptedChat(tiny_slm, pool, right)
    prompt = DSPyBaseline(scripted, n=4, seed=0).build(pool)
    traced = [ex for ex in prompt.examples if ex.rationale is not None]
    assert {ex.id for ex in traced} == right
    assert all(ex.rationale == f"Because of {ex.id}." for ex in traced)
    assert len(prompt.examples) == 4  # one labelled example fills the last place
    assert prompt.metadata["bootstrapped"] == 3 and prompt.metadata["labeled"] == 1
    assert not prompt.metadata["fallback"]
    assert prompt.metadata["model_calls"] == len(scripted.prompts) == len(pool)
    assert prompt.metadata["replies_generated"] == len(pool)  # DSPy read every reply
    # the scripted replies are a line each: none near the 512-token cap
    assert prompt.metadata["replies_at_cap"] == 0 < prompt.metadata["longest_reply_tokens"] < 64


def demos_of(prompt):
    return [(ex.id, ex.rationale) for ex in prompt.examples]


@pytest.mark.parametrize("right_at", [[0, 1], [3, 7, 8, 10], [11], [], list(range(12))])
def test_prefetched_bootstrapping_builds_the_program_dspy_builds_one_call_at_a_time(
        tiny_slm, right_at, capsys):
    pool = load_demo_set("pool")[:12]
    right = [pool[i].id for i in right_at]
    one_by_one = ScriptedChat(tiny_slm, pool, right)
    expected = DSPyBaseline(one_by_one, n=2, seed=3, prefetch=0).build(pool)
    assert set(one_by_one.batches) == {1}  # DSPy's own pace: one request per call
    dspys_account = capsys.readouterr().out
    assert dspys_account.count("Bootstrapped ") == 1
    prefetched = ScriptedChat(tiny_slm, pool, right)
    built = DSPyBaseline(prefetched, n=2, seed=3, prefetch=5).build(pool)
    # the placeholder runs' accounts ("Bootstrapped 0 full traces") are not printed
    assert capsys.readouterr().out == dspys_account
    assert demos_of(built) == demos_of(expected)
    assert built.metadata["model_calls"] == expected.metadata["model_calls"]
    assert max(prefetched.batches) <= 5 and len(prefetched.batches) <= len(one_by_one.batches)
    # ahead of the optimiser by less than one batch
    assert (built.metadata["model_calls"] <= built.metadata["replies_generated"]
            < built.metadata["model_calls"] + 5)


def test_a_stopped_bootstrap_redoes_only_the_replies_it_had_not_finished(tiny_slm):
    """Each optimiser reply is handed over as it ends; a compile given them back writes
    only the rest and builds the same program (the grid keeps them in its store)."""
    pool = load_demo_set("pool")[:12]
    right = [pool[1].id, pool[4].id]
    records: list[dict[str, str]] = []
    whole = ScriptedChat(tiny_slm, pool, right)
    expected = DSPyBaseline(whole, n=2, seed=3, prefetch=5).build(pool, on_written=records.extend)
    assert len(records) == len(whole.prompts) == expected.metadata["replies_generated"]
    assert len({r["key"] for r in records}) == len(records)
    # stopped after its first 4 replies: only the others are written again
    resumed = ScriptedChat(tiny_slm, pool, right)
    built = DSPyBaseline(resumed, n=2, seed=3, prefetch=5).build(pool, written=records[:4])
    assert demos_of(built) == demos_of(expected)
    assert not set(resumed.prompts) & set(whole.prompts[:4])  # the scripted model keeps order
    assert 0 < len(resumed.prompts) <= len(whole.prompts) - 4  # batches may now end sooner
    assert built.metadata["replies_reused"] == 4
    # all of them: nothing is written; another cap reuses nothing
    again = ScriptedChat(tiny_slm, pool, right)
    assert demos_of(DSPyBaseline(again, n=2, seed=3).build(pool, written=records)) == \
        demos_of(expected)
    assert again.prompts == []
    other = ScriptedChat(tiny_slm, pool, right)
    capped = DSPyBaseline(other, n=2, seed=3, prefetch=5, max_new_tokens=64).build(
        pool, written=records)
    assert len(other.prompts) == len(whole.prompts) and capped.metadata["replies_reused"] == 0


def test_prefetching_follows_dspys_json_retries_of_unparsable_replies(tiny_slm):
    """Random weights write no DSPy fields: every reply fails to parse, and DSPy asks
    again through its JSON adapter; prefetching must ask the same."""
    pool = load_demo_set("pool")[:4]
    expected = DSPyBaseline(tiny_slm, n=2, max_new_tokens=6, prefetch=0).build(pool)
    built = DSPyBaseline(tiny_slm, n=2, max_new_tokens=6, prefetch=3).build(pool)
    assert demos_of(built) == demos_of(expected)
    assert built.metadata["model_calls"] == expected.metadata["model_calls"] > len(pool)
    assert built.metadata["rounds"] > 1
    # random weights never stop: replies run to the 6-token cap (re-tokenised, so counted
    # near it)
    assert built.metadata["replies_at_cap"] > 0 and built.metadata["longest_reply_tokens"] >= 6


def test_prefetch_settings_out_of_range_are_refused(tiny_slm):
    from langchain_selfamplify.baselines.dspy_lm import run_with_prefetch

    with pytest.raises(ValueError, match="prefetch"):
        DSPyBaseline(tiny_slm, n=2, prefetch=-1)
    with pytest.raises(ValueError, match="batch"):
        run_with_prefetch(tiny_slm, lambda lm: None, batch=0, placeholder="")


def test_a_pool_where_no_trace_passes_falls_back_to_labelled_examples_and_says_so(tiny_slm):
    pool = load_demo_set("pool")[:6]
    prompt = DSPyBaseline(ScriptedChat(tiny_slm, pool, right=[]), n=3, seed=1).build(pool)
    assert prompt.metadata["fallback"] and prompt.metadata["bootstrapped"] == 0
    assert len(prompt.examples) == 3 and all(ex.rationale is None for ex in prompt.examples)


def test_the_prompt_keeps_every_demonstrations_question_reasoning_and_gold(tiny_slm):
    pool = load_demo_set("pool")[:10]
    prompt = DSPyBaseline(ScriptedChat(tiny_slm, pool, [q.id for q in pool]), n=3).build(pool)
    program = program_from_prompt(prompt)
    demos = program.predictors()[0].demos
    assert len(demos) == len(prompt.examples) == 3
    for demo, example in zip(demos, prompt.examples):
        source = next(q for q in pool if q.id == example.id)
        assert example.answer == source.answer == demo["answer"]
        assert source.question in demo["question"]
        assert demo["reasoning"] == example.rationale == f"Because of {source.id}."
    again = AmplifiedPrompt.model_validate_json(prompt.model_dump_json())
    assert [e.rationale for e in again.examples] == [e.rationale for e in prompt.examples]


def test_the_programs_batched_answers_equal_dspys_own_calls(tiny_slm):
    pool = load_demo_set("pool")[:10]
    questions = load_demo_set("test")[:4]
    right = {questions[0].id, questions[2].id}
    scripted = ScriptedChat(tiny_slm, [*pool, *questions], right)
    program = program_from_prompt(DSPyBaseline(scripted, n=2).build(pool))
    batched = program_predictions(scripted, program, questions)
    with dspy.context(lm=dspy_lm(scripted)):
        one_by_one = [program(question=question_text(q)).answer for q in questions]
    assert [r["parsed"] for r in batched] == one_by_one
    assert [r["correct"] for r in batched] == [q.id in right for q in questions]


def test_a_model_that_never_writes_dspys_fields_falls_back_instead_of_stopping(tiny_slm):
    pool = load_demo_set("pool")[:4]
    prompt = DSPyBaseline(tiny_slm, n=2, max_new_tokens=6).build(pool)
    assert prompt.metadata["fallback"] and len(prompt.examples) == 2


def test_the_dspy_rows_run_in_the_grid_and_are_compared_as_baselines(tiny_slm, tmp_path):
    from langchain_selfamplify.evaluation.grid import GridConfig, run_grid
    from langchain_selfamplify.evaluation.report import comparison_table, grid_table

    config = GridConfig(datasets=["demo"], methods=["io", "dspy_bootstrap"], seeds=[0],
                        shots=2, pool_size=4, test_size=4, max_rationale_tokens=3,
                        output_dir=str(tmp_path))
    summary = run_grid(config, tiny_slm)
    assert {c["cell"]: c["status"] for c in summary["cells"]} == {
        "demo__io__random__seed0": "done", "demo__dspy_bootstrap__bootstrap__seed0": "done"}
    table = grid_table(summary)
    assert "DSPy BootstrapFewShot" in table and "no trace passed" in table
    against = comparison_table(summary, "dspy_bootstrap")
    assert "| vs DSPy BootstrapFewShot |" in against and "| IO |" in against


def test_the_grid_keeps_the_optimisers_replies_in_its_store(tiny_slm, tmp_path):
    from langchain_selfamplify.evaluation.grid import DSPY_FILE, GridConfig, build_prompt
    from langchain_selfamplify.evaluation.grid_config import Cell

    pool = load_demo_set("pool")[:12]
    scripted = ScriptedChat(tiny_slm, pool, [pool[1].id, pool[4].id])
    config = GridConfig(datasets=["demo"], methods=["dspy_bootstrap"], shots=2, seeds=[0],
                        max_rationale_tokens=8, output_dir=str(tmp_path / "grid"))
    cell = Cell(dataset="demo", method="dspy_bootstrap", strategy="bootstrap", seed=0)
    prompt = build_prompt(scripted, cell, pool, config, store=tmp_path)
    assert (tmp_path / DSPY_FILE).is_file()
    refusing = ScriptedChat(tiny_slm, pool, [])  # would fail every trace if asked
    rebuilt = build_prompt(refusing, cell, pool, config, store=tmp_path)
    assert refusing.prompts == [] and demos_of(rebuilt) == demos_of(prompt)


def test_a_dspy_row_without_dspy_is_refused_before_any_model_loads(monkeypatch, tmp_path):
    import sys

    from langchain_selfamplify.errors import MissingDependencyError
    from langchain_selfamplify.evaluation.grid import GridConfig, load_grid_splits

    monkeypatch.setitem(sys.modules, "dspy", None)  # import dspy now fails
    config = GridConfig(datasets=["demo"], methods=["io", "dspy_labeled"], seeds=[0],
                        output_dir=str(tmp_path))
    with pytest.raises(MissingDependencyError, match=r"\[dspy\]"):
        load_grid_splits(config)
