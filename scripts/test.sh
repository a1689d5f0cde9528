#!/usr/bin/env bash
# Set up the environment and run every test:
#   1. the library's unit and end-to-end tests (pytest);
#   2. the stage notebooks at the smoke profile under nbval, comparing their key numbers with the
#      committed references in tests/nbval/ (regenerate them with scripts/update_references.sh);
#   3. the smoke pipeline through papermill and a book build from its results (warnings = errors),
#      in a scratch copy of the book so that the committed pages stay untouched.
# Extra arguments go to the first pytest call.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV=${VENV:-.venv}
export PATH="$(cd "$VENV" && pwd)/bin:$PATH"
SCRATCH="$PWD/.cache/test"
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH/book"
export CONNECTOME_RUNS_DIR="$SCRATCH/runs" CONNECTOME_RESULTS_DIR="$SCRATCH/results"

echo "== 1/3 library tests"
python -m pytest tests -q -p no:cacheprovider "$@"

echo "== 2/3 stage notebooks under nbval (smoke profile)"
python -m pytest --nbval-lax --nbval-current-env tests/nbval -q -p no:cacheprovider

echo "== 3/3 smoke pipeline and book build"
cp -r _config.yml _toc.yml book "$SCRATCH/book/"
rm -rf "$SCRATCH/book/book/stages"
connectome pipeline --profile smoke --out-dir "$SCRATCH/book/book/stages"
CONNECTOME_BOOK_PROFILE=smoke jupyter-book build "$SCRATCH/book" --warningiserror --keep-going
echo "book build: ok ($SCRATCH/book/_build/html/index.html)"
