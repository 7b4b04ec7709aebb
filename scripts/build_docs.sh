#!/usr/bin/env bash
# Build the documentation site offline: regenerate the CLI reference from the code,
# then `mkdocs build --strict` (API reference from the docstrings via mkdocstrings).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/typer langchain_selfamplify.cli utils docs --name selfamplify --output docs/cli.md
.venv/bin/mkdocs build --strict --quiet
echo "documentation built in site/"
