"""The Auto-CoT baseline: clusters, filters, no gold label, and its checkpoint."""

from __future__ import annotations

import pytest

from langchain_selfamplify.baselines import AutoCoT
from langchain_selfamplify.errors import SelectionError
from langchain_selfamplify.evaluation.grid import AUTO_COT_FILE, GridConfig, build_prompt
from langchain_selfamplify.evaluation.grid_config import Cell
from tests.conftest import real_or_demo_pool


def test_auto_cot_takes_one_question_per_cluster_and_no_gold_label(tiny_slm):
    pool = real_or_demo_pool(24)
    builder = AutoCoT(tiny_slm, n=3, max_new_tokens=8)
    clusters = builder.clusters(pool)
    prompt = builder.build(pool)
    owner = {pool[i].id: c for c, members in enumerate(clusters) for i in members}
    assert len({owner[ex.id] for ex in prompt.examples}) == 3  # distinct clusters
    assert all(ex.rationale.startswith("Let's think step by step.") for ex in prompt.examples)
    # relabel the pool's gold answers: an approach that used them would change
    relabelled = [ex.model_copy(update={"answer": ex.labels[(ex.labels.index(ex.answer) + 1)
                                                          % len(ex.labels)]}) for ex in pool]
    again = AutoCoT(tiny_slm, n=3, max_new_tokens=8).build(relabelled)
    assert [(e.id, e.rationale, e.answer) for e in again.examples] == [
        (e.id, e.rationale, e.answer) for e in prompt.examples]


def test_auto_cot_writes_no_rationale_after_its_clusters_pick(tiny_slm):
    """Each cluster takes its nearest question whose rationale passes the filters; the
    candidates behind that pick are never written (rounds over clusters)."""
    pool = real_or_demo_pool(24)
    builder = AutoCoT(tiny_slm, n=3, max_new_tokens=8, candidates_per_cluster=3)
    clusters = builder.clusters(pool)
    # The second candidate of each cluster passes; a cluster with one candidate falls back.
    passing = {pool[members[1]].id for members in clusters if len(members) > 1}
    written: list[str] = []

    class Scripted:
        def __getattr__(self, name):
            return getattr(tiny_slm, name)

        def generate(self, prompts, **kwargs):
            replies = []
            for prompt in prompts:
                question = next(ex for ex in pool if ex.question in prompt)
                written.append(question.id)
                replies.append("The answer is (A)." if question.id in passing else "Hmm.")
            return replies

    prompt = AutoCoT(Scripted(), n=3, max_new_tokens=8, candidates_per_cluster=3).build(pool)
    assert {ex.id for ex in prompt.examples} == passing | {
        pool[members[0]].id for members in clusters if len(members) == 1}
    assert sorted(written) == sorted(pool[i].id for members in clusters
                                     for i in members[:2])
    assert prompt.metadata["fallbacks"] == sum(len(m) == 1 for m in clusters)


class Counting:
    """The tiny model, counting the zero-shot rationales it writes (or refusing to)."""

    def __init__(self, slm, refuse: bool = False):
        self.slm, self.refuse, self.written = slm, refuse, 0

    def __getattr__(self, name):
        return getattr(self.slm, name)

    def generate(self, prompts, **kwargs):
        if self.refuse:
            raise AssertionError("a checkpointed rationale was written again")
        self.written += len(prompts)
        return self.slm.generate(prompts, **kwargs)


def test_a_stopped_auto_cot_build_redoes_only_the_replies_it_had_not_finished(tiny_slm):
    pool = real_or_demo_pool(24)
    handed: list[list[dict[str, str]]] = []
    counting = Counting(tiny_slm)
    builder = AutoCoT(counting, n=3, max_new_tokens=8, candidates_per_cluster=3)
    prompt = builder.build(pool, on_written=handed.append)
    assert [len(records) for records in handed] == [1] * counting.written  # one by one
    records = sum(handed, [])
    assert counting.written >= 3 and len({r["key"] for r in records}) == len(records)
    # everything checkpointed: rebuilt without writing a rationale, the same prompt
    again = AutoCoT(Counting(tiny_slm, refuse=True), n=3, max_new_tokens=8,
                    candidates_per_cluster=3).build(pool, written=records)
    assert again.examples == prompt.examples
    # stopped after its first reply: only the others are written again
    resumed = Counting(tiny_slm)
    after_stop = AutoCoT(resumed, n=3, max_new_tokens=8, candidates_per_cluster=3).build(
        pool, written=records[:1])
    assert after_stop.examples == prompt.examples
    assert resumed.written == counting.written - 1
    # another cap is another rationale: nothing is reused across settings
    other = Counting(tiny_slm)
    AutoCoT(other, n=3, max_new_tokens=6, candidates_per_cluster=3).build(
        pool, written=records)
    assert other.written >= 3


def test_the_grid_checkpoints_auto_cot_rationales_in_its_store(tiny_slm, tmp_path):
    pool = real_or_demo_pool(24)
    config = GridConfig(datasets=["demo"], methods=["auto_cot"], shots=3, seeds=[0],
                        max_rationale_tokens=8, output_dir=str(tmp_path / "grid"))
    cell = Cell(dataset="demo", method="auto_cot", strategy="clusters", seed=0)
    prompt = build_prompt(tiny_slm, cell, pool, config, store=tmp_path)
    assert (tmp_path / AUTO_COT_FILE).is_file()
    rebuilt = build_prompt(Counting(tiny_slm, refuse=True), cell, pool, config,
                           store=tmp_path)
    assert rebuilt.examples == prompt.examples


def test_auto_cot_refuses_a_pool_smaller_than_its_clusters(tiny_slm):
    with pytest.raises(SelectionError, match="n=3 clusters; the pool has 2"):
        AutoCoT(tiny_slm, n=3).build(real_or_demo_pool(2))
