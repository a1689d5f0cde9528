#!/usr/bin/env bash
# Set up the environment, run the whole pipeline at a profile (default: cpu) and build the book.
#   bash scripts/reproduce.sh            # cpu profile (about 50 min on 2 cores, ablations included), then the book
#   PROFILE=gpu bash scripts/reproduce.sh
# Running it again resumes: finished stages (and finished generations, models and evaluations
# inside a stage) are skipped. The book is written to _build/html/index.html.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-cpu}
bash scripts/setup.sh
VENV=${VENV:-.venv}
export PATH="$(cd "$VENV" && pwd)/bin:$PATH"
export CONNECTOME_BOOK_PROFILE="$PROFILE"
connectome pipeline --profile "$PROFILE" "$@"
jupyter-book build . --warningiserror --keep-going
echo "book: $PWD/_build/html/index.html"
