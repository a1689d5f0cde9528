#!/usr/bin/env bash
# Regenerate the nbval references: execute every stage notebook at the smoke profile from a clean
# run folder and store the executed notebooks in tests/nbval/. Commit the result after checking
# the diff of the key numbers (`git diff tests/nbval`).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || bash scripts/setup.sh
export PATH="$(cd "$VENV" && pwd)/bin:$PATH"
export CONNECTOME_RUNS_DIR="$PWD/.cache/references/runs" CONNECTOME_RESULTS_DIR="$PWD/.cache/references/results"
rm -rf .cache/references
connectome pipeline --profile smoke --out-dir tests/nbval --force
