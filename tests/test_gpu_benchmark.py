"""``benchmarks/gpu.py`` runs on a CPU with a tiny shape, so it cannot rot between the
sessions that have a GPU to run it on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_benchmark_runs_every_route_on_a_tiny_shape(tiny_model_dir):
    result = subprocess.run(
        [sys.executable, "benchmarks/gpu.py", "--shape", "tiny", "--dtype", "float32",
         "--questions", "8", "--slots", "2,8", "--batch", "4", "--chain-questions", "1",
         "--tokenizer", str(tiny_model_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    table = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    routes = [line.split(" | ")[0].lstrip("| ") for line in table[1:]]
    assert routes == ["ours, generate mode, 2 slots", "ours, score mode, 2 slots",
                      "ours, generate mode, 8 slots", "ours, score mode, 8 slots",
                      "ours, score mode, 8 slots, SDPA decoding",
                      "model.generate, batch 4, dynamic cache",
                      "model.generate, batch 4, static cache",
                      "AmplifiedPrompt \\| ChatHuggingFace, one at a time"]
    # every route is set against the floor, which no route beats
    shares = [float(line.rstrip(" |").rsplit("| ", 1)[1].rstrip("%")) for line in table[1:]]
    assert all(0 < share <= 100 for share in shares)
