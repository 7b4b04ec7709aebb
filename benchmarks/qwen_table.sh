#!/usr/bin/env bash
# The capable-model comparison, most informative cells first (issue order), resumable:
# every command resumes what an earlier run finished, chunk by chunk. Float32 (bfloat16
# is slower on AVX2 CPUs: docs/results/dtype_speed.md). With COMMIT=1 each finished step's
# results are committed, so a run longer than a session keeps its checkpoints.
# Chunks of 100 questions decoded 100 at a time: a decoding step reads every weight
# whatever the rows (docs/results/qwen_table_cost.md), so more rows per step cost less per
# question; the first 96 ARC Ph-CoT seed-0 answers were written in chunks of 32.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
checkpoint() {
    if [ "${COMMIT:-0}" = 1 ]; then
        git add docs/results README.md && git commit -q -m "$1" -- docs/results README.md || true
    fi
}
COMMON=(--name paper_table_qwen --models qwen2.5-coder-1.5b --formats letter
        --strategies success --shots 8 --pool-size 100 --test-size 200
        --max-rationale-tokens 512 --chunk-size 100 --decode-slots 100)
GRID=docs/results/paper_table_qwen_run/qwen2.5-coder-1.5b__letter
$PY benchmarks/paper_table.py "${COMMON[@]}" --seeds 0,1,2 --datasets arc_challenge --methods io,ph_cot
checkpoint "Qwen table: ARC IO and Ph-CoT success, 3 seeds"
$PY benchmarks/paper_table.py "${COMMON[@]}" --seeds 0 --datasets arc_challenge --methods io,ph_cot,dspy_bootstrap
$PY benchmarks/dspy_program.py --grid "$GRID" --model qwen2.5-coder-1.5b --name dspy_program_qwen
checkpoint "Qwen table: ARC DSPy BootstrapFewShot seed 0 and the compiled program on its own"
$PY benchmarks/zero_shot.py
checkpoint "Zero-shot screen: the embedded models on the five paper datasets, both formats"
$PY benchmarks/paper_table.py "${COMMON[@]}" --seeds 0,1,2 --datasets arc_challenge,commonsense_qa --methods io,ph_cot,dspy_bootstrap
checkpoint "Qwen table: CSQA IO, Ph-CoT success and DSPy BootstrapFewShot, 3 seeds"
