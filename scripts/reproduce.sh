#!/usr/bin/env bash
# Set up the environment, run the whole pipeline at a profile (default: cpu) and build the book.
#   bash scripts/reproduce.sh            # cpu profile (ablations included; the Reproduce page gives the measured time), then the book
#   PROFILE=gpu bash scripts/reproduce.sh
# Running it again resumes: finished generations, models and evaluations are kept, and a stage is
# skipped only when its notebook is current and this machine's run folders hold its steps (a
# committed page never stands in for a run). The book is written to _build/html/index.html.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/book_env.sh
connectome pipeline --profile "$PROFILE" "$@"
# the run's own wall times (this script's, set-up included; every stage it executed; every training
# step's) beside the exported results, where the book reads them
connectome timings --profile "$PROFILE" --total-seconds "$SECONDS" \
  --command-line "bash scripts/reproduce.sh (PROFILE=$PROFILE)" ${TIMINGS_NOTE:+--note "$TIMINGS_NOTE"}
# this run's key numbers beside the committed ones (identical / reproduced / differs), saved in the
# run folder and shown on the book's Reproduce page
connectome report --profile "$PROFILE"
jupyter-book build . --warningiserror --keep-going
echo "book: $PWD/_build/html/index.html"
