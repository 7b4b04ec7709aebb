"""The grid on a local Ray cluster writes what the local runner writes, timings aside."""

from __future__ import annotations

import functools
import json
import re

import pytest

from langchain_selfamplify import SLM
from langchain_selfamplify.evaluation.grid import GridConfig, run_grid

ray = pytest.importorskip("ray")

# A measured field (time, or the process's peak memory so far, which depends on what
# the process ran before) and its value, wherever it sits in a JSON line or file.
MEASURED = re.compile(
    r'"(?:(?:build_)?(?:cpu_)?seconds|chunk_started|peak_rss_mib)": [-+0-9.eE]+(?:, |,\s*)?'
    r'|"(?:build|answer)_stage_seconds": \{[^}]*\}(?:, |,\s*)?')


def _outputs(directory):
    """Every output file's bytes with the measured fields cut out; config.json, which names
    the output directory, is left out, and so are the local runner's own prompt-building
    checkpoints (``checkpoints/``: a Ray worker builds a prompt in one call)."""
    return {str(path.relative_to(directory)): MEASURED.sub("", path.read_text(encoding="utf-8"))
            for path in sorted(directory.rglob("*")) if path.is_file()
            and path.name not in ("config.json", "table.md", "figure.png")
            and path.relative_to(directory).parts[0] != "checkpoints"}


def test_a_grid_on_a_local_ray_cluster_equals_the_local_run(tiny_model_dir, tmp_path):
    import torch

    from langchain_selfamplify.evaluation.ray_grid import run_grid_on_ray

    def config(name):
        return GridConfig(datasets=["demo"], methods=["io", "feature_ablation", "self_topk"],
                          strategies=["random", "error"], seeds=[0, 1], shots=2, k=2,
                          pool_size=16, test_size=6, max_rationale_tokens=4,
                          output_dir=str(tmp_path / name))

    load = functools.partial(SLM.from_pretrained, tiny_model_dir, device="cpu",
                             show_progress=False, batch_size=4)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a Ray worker with num_cpus=1 runs
    try:
        local = run_grid(config("local"), load())
    finally:
        torch.set_num_threads(threads)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = run_grid_on_ray(config("ray"), load, workers=2)
    finally:
        ray.shutdown()
    local_files, ray_files = _outputs(tmp_path / "local"), _outputs(tmp_path / "ray")
    assert set(local_files) == set(ray_files) and len(local_files) > 10
    for name, content in local_files.items():
        assert ray_files[name] == content, name
    assert [{k: v for k, v in row.items() if k != "seconds"} for row in local["rows"]] == [
        {k: v for k, v in row.items() if k != "seconds"} for row in on_ray["rows"]]
    # every cell ran (10: io x 2 seeds, 2 methods x 2 strategies x 2 seeds)
    cells = (tmp_path / "ray" / "cells.jsonl").read_text().splitlines()
    assert len(cells) == 10


def test_evaluate_ray_option_runs_the_grid_on_a_local_cluster(tiny_model_dir, tmp_path):
    from typer.testing import CliRunner

    from langchain_selfamplify.cli import app

    out = tmp_path / "grid"
    result = CliRunner().invoke(app, [
        "evaluate", "--model", str(tiny_model_dir), "--methods", "io,feature_ablation",
        "--strategies", "random", "--seeds", "0", "--shots", "2", "--k", "2",
        "--pool-size", "16", "--test-size", "4", "--device", "cpu", "--ray", "local",
        "--ray-workers", "2", "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    cells = [json.loads(line) for line in (out / "cells.jsonl").read_text().splitlines()]
    assert [c["status"] for c in cells] == ["done", "done"]
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 8
