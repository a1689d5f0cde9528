#!/usr/bin/env bash
# Regenerate the nbval references: execute every stage notebook at the smoke profile from a clean
# run folder (this machine's default CPU kernels) and store the executed notebooks in tests/nbval/;
# then measure how far the key numbers move under other CPU kernels and write the tolerances
# (tests/nbval/tolerances.json, scripts/measure_tolerances.py). Commit both after checking the
# diff of the key numbers (`git diff tests/nbval`). About 4 smoke runs: 10-15 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || bash scripts/setup.sh
export PATH="$(cd "$VENV" && pwd)/bin:$PATH"
export CONNECTOME_RUNS_DIR="$PWD/.cache/references/runs" CONNECTOME_RESULTS_DIR="$PWD/.cache/references/results"
export CONNECTOME_CACHE_DIR="$PWD/.cache/references/cache"
rm -rf .cache/references
connectome pipeline --profile smoke --out-dir tests/nbval --force
python scripts/measure_tolerances.py
