#!/usr/bin/env bash
# The capable-model comparison, most informative cells first (issue order), resumable:
# every command resumes what an earlier run finished, chunk by chunk. Float32: bfloat16
# is slower on AVX2 CPUs, and where AMX makes it faster its predictions differ from
# float32's too often (docs/results/dtype_speed.md, dtype_agreement.md). With COMMIT=1
# each finished step's results are committed, so a run longer than a session keeps its checkpoints.
# A cell's 200 questions decoded 200 at a time, in one chunk: a decoding step costs about
# 0.8 s plus 28 ms per row here (docs/results/decode_rows.md), and a chunk decodes until
# its longest rationale ends, so one chunk per cell pays that tail once and the fixed
# part is spread over the most rows (the process's peak memory, measured per cell, is in
# docs/results/qwen_table_cost.md).
# The first 96 ARC Ph-CoT seed-0 answers were written in chunks of 32, the answers up to
# ARC IO seed 2's first 100 in chunks of 100 decoded 100 at a time.
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
        --max-rationale-tokens 512 --chunk-size 200 --decode-slots 200
        --planned-datasets arc_challenge,commonsense_qa,social_iqa
        --planned-methods io,ph_cot,dspy_bootstrap,self_topk,deeplift,amplify,auto_cot,kernelshap
        --planned-strategies success,error)
# The --planned-* options name the whole table, every dataset the zero-shot screen keeps,
# so its Holm families have their final size from the first cell on.
GRID=docs/results/paper_table_qwen_run/qwen2.5-coder-1.5b__letter
$PY benchmarks/paper_table.py "${COMMON[@]}" --seeds 0,1,2 --datasets arc_challenge --methods io,ph_cot
checkpoint "Qwen table: ARC IO and Ph-CoT success, 3 seeds"
# The rows whose rationales are a sentence of keywords (short to write at test time, so
# a cell costs about an IO cell's time): Self_topk, DeepLift and AMPLIFY, seed 0 first.
$PY benchmarks/paper_table.py "${COMMON[@]}" --seeds 0 --datasets arc_challenge --methods io,ph_cot,self_topk,deeplift,amplify
checkpoint "Qwen table: ARC Self_topk, DeepLift and AMPLIFY, seed 0"
$PY benchmarks/paper_table.py "${COMMON[@]}" --seeds 0 --datasets arc_challenge --methods io,ph_cot,dspy_bootstrap
$PY benchmarks/dspy_program.py --grid "$GRID" --model qwen2.5-coder-1.5b --name dspy_program_qwen --chunk-size 200 --decode-slots 200
checkpoint "Qwen table: ARC DSPy BootstrapFewShot seed 0 and the compiled program on its own"
# The screen's decisive cells first: Snarks and Causal Judgment are at chance in the
# letter format, and only the cloze format can keep them in the comparison.
$PY benchmarks/zero_shot.py --models qwen2.5-coder-1.5b --datasets snarks,causal_judgment --formats cloze
checkpoint "Zero-shot screen: Qwen's cloze format on Snarks and Causal Judgment"
$PY benchmarks/qwen_rationale_lengths.py --datasets commonsense_qa
checkpoint "Rationale lengths: CommonsenseQA's Ph-CoT demonstrations uncapped, before its cells"
$PY benchmarks/paper_table.py "${COMMON[@]}" --seeds 0,1,2 --datasets commonsense_qa --methods io,ph_cot
checkpoint "Qwen table: CSQA IO and Ph-CoT success, 3 seeds"
$PY benchmarks/paper_table.py "${COMMON[@]}" --seeds 0,1,2 --datasets arc_challenge,commonsense_qa --methods io,ph_cot,dspy_bootstrap
$PY benchmarks/dspy_program.py --grid "$GRID" --model qwen2.5-coder-1.5b --name dspy_program_qwen --chunk-size 200 --decode-slots 200
checkpoint "Qwen table: DSPy BootstrapFewShot, 3 seeds on both datasets, and the compiled program on its own"
# Two measurements that need the machine alone, run here when their results are missing
# (a rerun measures again only after their JSON is deleted): the grid's memory at the
# CPU default of 64 slots, on a chunk of the table's own Ph-CoT answers (the table
# itself runs 200 slots: faster, more memory; about 40 minutes), and a decoding step's
# cost by its rows (it sizes the table's slots; about 25 minutes).
[ -f docs/results/qwen_memory.json ] || $PY benchmarks/qwen_memory.py --slots 64
checkpoint "Memory: a chunk of Ph-CoT answers at the CPU default of 64 slots, measured"
[ -f docs/results/decode_rows.json ] || $PY benchmarks/decode_rows.py --rows 200,100,50,25
checkpoint "Decoding step by rows, measured"
# The rest of the zero-shot screen (Gemma's cloze format; Qwen's is complete): about
# half an hour. After the DSPy rows, which finish the side-by-side comparison's cells.
$PY benchmarks/zero_shot.py
checkpoint "Zero-shot screen: the embedded models on the five paper datasets, both formats"
# Social IQa: the third dataset the screen keeps for this model (Snarks and Causal
# Judgment are at chance in both formats, docs/results/zero_shot.md).
$PY benchmarks/qwen_rationale_lengths.py --datasets social_iqa
checkpoint "Rationale lengths: Social IQa's Ph-CoT demonstrations uncapped, before its cells"
$PY benchmarks/paper_table.py "${COMMON[@]}" --seeds 0,1,2 --datasets social_iqa --methods io,ph_cot
checkpoint "Qwen table: Social IQa IO and Ph-CoT success, 3 seeds"
# Gemma-3-270M: the screen keeps CommonsenseQA for it in the cloze format only (28.0%
# against 20%, docs/results/zero_shot.md), so its comparison runs there, at this table's
# 8 shots, 3 seeds and 200 questions (about 2 hours: a model a sixth of Qwen's size).
$PY benchmarks/paper_table.py --name paper_table_gemma_csqa --models gemma3-270m --formats cloze \
    --datasets commonsense_qa --methods io,ph_cot,deeplift --strategies success --seeds 0,1,2 \
    --shots 8 --pool-size 100 --test-size 200 --max-rationale-tokens 256 --chunk-size 200 \
    --decode-slots 200
checkpoint "Gemma table: CommonsenseQA in the cloze format, IO, Ph-CoT and DeepLift, 3 seeds"
# The rest of the paper's rows, cheapest first: the keyword rows at every seed, Auto-CoT
# (a chain of thought per demonstration, like Ph-CoT's), the error strategy, and
# KernelShap last: 200 model passes per demonstration make its prompt the dearest to
# build (about 11 minutes per prompt on an AVX512 CPU, 41 on an AVX2 one:
# docs/results/kernelshap_cost.md; its cells' share: docs/results/qwen_table_cost.md).
ROWS=io,ph_cot,dspy_bootstrap,self_topk,deeplift,amplify
$PY benchmarks/paper_table.py "${COMMON[@]}" --seeds 0,1,2 --datasets arc_challenge,commonsense_qa,social_iqa --methods $ROWS
checkpoint "Qwen table: Self_topk, DeepLift and AMPLIFY, 3 seeds on the three datasets"
$PY benchmarks/paper_table.py "${COMMON[@]}" --seeds 0,1,2 --datasets arc_challenge,commonsense_qa,social_iqa --methods $ROWS,auto_cot
checkpoint "Qwen table: Auto-CoT, 3 seeds on the three datasets"
$PY benchmarks/paper_table.py "${COMMON[@]}" --strategies success,error --seeds 0,1,2 --datasets arc_challenge,commonsense_qa,social_iqa --methods $ROWS,auto_cot
checkpoint "Qwen table: the error strategy, 3 seeds on the three datasets"
$PY benchmarks/paper_table.py "${COMMON[@]}" --strategies success,error --seeds 0,1,2 --datasets arc_challenge,commonsense_qa,social_iqa --methods $ROWS,auto_cot,kernelshap
checkpoint "Qwen table: KernelShap, 3 seeds on the three datasets"
