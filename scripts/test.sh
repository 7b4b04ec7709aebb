#!/usr/bin/env bash
# Set up if needed, then lint, type-check and run every test (unit tests on a tiny
# model built on the fly, integration tests on the embedded SmolLM2-135M-Instruct),
# all offline. Extra arguments go to pytest (e.g. -m "not integration").
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

.venv/bin/ruff check langchain_selfamplify tests scripts
.venv/bin/mypy langchain_selfamplify

status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: treating that as a failure" >&2
    exit 1
fi
exit "$status"
