#!/usr/bin/env bash
# Set up the environment and run every test:
#   0. the linter (ruff, configured in pyproject.toml) over the library, tests, scripts and notebooks;
#   1. the library's unit and end-to-end tests (pytest);
#   2. the stage notebooks at the smoke profile under nbval, comparing their key numbers with the
#      committed references in tests/nbval/ within the tolerances measured across CPU kernels,
#      twice from fresh run folders: default kernels and ATEN_CPU_CAPABILITY=avx2
#      (scripts/check_portability.sh; regenerate references with scripts/update_references.sh);
#   3. the smoke pipeline through papermill and a book build from its results (warnings = errors),
#      in a scratch copy of the book so that the committed pages stay untouched;
#   4. every page of that book opened in headless Chromium (scripts/check_book.sh: raw LaTeX,
#      broken images or links, pages wider than the window, JavaScript errors), then the HTML passes
#      (pandas artefacts in tables, untraced numbers in prose, launch buttons that open the wrong file).
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

echo "== 0/4 lint (ruff)"
ruff check .

echo "== 1/4 library tests"
python -m pytest tests -q -ra -p no:cacheprovider --ignore=tests/nbval "$@"

echo "== 2/4 stage notebooks under nbval (smoke profile), with the default CPU kernels and with AVX2"
bash scripts/check_portability.sh

echo "== 3/4 smoke pipeline and book build"
cp -r _config.yml _toc.yml book "$SCRATCH/book/"
rm -rf "$SCRATCH/book/book/stages"
# re-use the runs nbval trained with the default kernels: the stages find their steps done
export CONNECTOME_RUNS_DIR="$PWD/.cache/portability/default/runs" CONNECTOME_CACHE_DIR="$PWD/.cache/portability/default/cache"
connectome pipeline --profile smoke --out-dir "$SCRATCH/book/book/stages"
# a placeholder GitHub address, so that the launch buttons and the repository button are built and
# checked (step 4) even in a clone with no public remote; the committed book takes the real one
CONNECTOME_REPOSITORY_URL=https://github.com/example/model-connectomes \
  CONNECTOME_BOOK_PROFILE=smoke jupyter-book build "$SCRATCH/book" --warningiserror --keep-going
echo "book build: ok ($SCRATCH/book/_build/html/index.html)"

echo "== 4/4 the built book in a real browser"
bash scripts/check_book.sh "$SCRATCH/book/_build/html"
