#!/usr/bin/env bash
# Install the development requirements, lint, type-check, then run the whole test suite.
# Extra arguments go to pytest (for example: scripts/test.sh -k consent).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh requirements-dev.txt
mkdir -p var
.venv/bin/ruff check .
.venv/bin/lint-imports
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
