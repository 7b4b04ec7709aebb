#!/usr/bin/env bash
# Set up if needed, then lint, type-check, build the docs (strict) and run every test
# (unit tests on a tiny model built on the fly; integration tests and the cookbook
# notebooks on the embedded SmolLM2-135M-Instruct), all offline. Extra arguments go to
# pytest (e.g. -m "not integration").
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
# Headless Chromium renders the attribution heatmap in a test (Debian's package).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

.venv/bin/ruff check langchain_selfamplify tests scripts benchmarks
.venv/bin/mypy langchain_selfamplify
.venv/bin/mypy benchmarks  # its own run: the benchmarks import each other by module name

bash scripts/build_docs.sh  # mkdocs build --strict, offline

# Two workers (pytest-xdist) with one torch thread each: most of the suite's minutes are
# process start-ups (CLI kill-and-resume runs, llama.cpp servers, Ray workers, notebook
# kernels) that overlap, and one thread per worker keeps the two from fighting over the
# two cores. On a quiet 2-core machine: 9:41 against about 19 minutes on one worker.
# Pass -n 0 to run on one worker.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
status=0
.venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: treating that as a failure" >&2
    exit 1
fi
exit "$status"
