#!/usr/bin/env bash
# Build the book from the committed results and executed stage notebooks, without running
# anything (for readers who want the pages, not a re-run; `bash scripts/reproduce.sh` recomputes
# the experiment on this machine and builds the book from that run).
#   bash scripts/build_book.sh            # the cpu profile's committed results
#   PROFILE=smoke bash scripts/build_book.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/book_env.sh
jupyter-book build . --warningiserror --keep-going
echo "book (committed results of profile $PROFILE): $PWD/_build/html/index.html"
