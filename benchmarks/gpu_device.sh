#!/usr/bin/env bash
# The GPU benchmark (benchmarks/gpu.py) on a lent GPU machine that reaches no registry,
# in two steps:
#
#   bash benchmarks/gpu_device.sh prepare   # here: the wheels and the tokenizer it lacks
#   bash benchmarks/gpu_device.sh run       # there, carrying .whl and .gpu-tokenizer
#
# `prepare` downloads, for that machine's Python (3.12, x86-64), the wheels of the
# packages the benchmark imports that its image does not hold, at the versions this
# .venv runs (so the two cannot drift), into .whl/; and writes the embedded SmolLM2's
# tokenizer to .gpu-tokenizer/ (gpu.py --save-tokenizer). Both are git-ignored through
# .git/info/exclude. `run` installs the wheels into /tmp/site, runs gpu.py with its
# defaults (the 7B shape, bfloat16, 256 questions) and copies docs/results/gpu.{json,md}
# to $OUT. The whole run fits one device call (about 5 minutes on an H200).
set -euo pipefail
cd "$(dirname "$0")/.."

# Imported by the package, its LangChain chain route and their dependencies, and not in
# the device image (its package list: /work/.library/device/KINDS.md).
MISSING=(langchain-core langchain-protocol langsmith langchain-huggingface pydantic
         pydantic_core annotated-types typing-inspection jsonpatch jsonpointer orjson
         requests-toolbelt uuid_utils zstandard distro httpx2 sniffio tenacity websockets)

prepare() {
    for ignored in /.whl/ /.gpu-tokenizer/; do
        grep -qxF "$ignored" .git/info/exclude 2>/dev/null || echo "$ignored" >> .git/info/exclude
    done
    rm -rf .whl && mkdir -p .whl
    local specs=()
    for name in "${MISSING[@]}"; do
        specs+=("$name==$(.venv/bin/python -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name")")
    done
    local platforms=()
    for n in 28 27 24 17; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
    .venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp "${platforms[@]}" --platform manylinux2014_x86_64 -d .whl "${specs[@]}"
    .venv/bin/python benchmarks/gpu.py --shape tiny --save-tokenizer .gpu-tokenizer
    du -sh .whl .gpu-tokenizer
}

run() {
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 benchmarks/gpu.py --tokenizer .gpu-tokenizer
    cp docs/results/gpu.json docs/results/gpu.md "${OUT:?run this on the device machine}/"
}

case "${1:-}" in
    prepare) prepare ;;
    run) run ;;
    *) echo "usage: bash benchmarks/gpu_device.sh prepare|run" >&2; exit 2 ;;
esac
