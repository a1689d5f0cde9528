#!/usr/bin/env bash
# Build the book and open every page in headless Chromium, as a reader would (scripts/check_book.py):
# fails on visible raw LaTeX, broken images or links, pages wider than a 1280-px or a 420-px window
# (except inside scrolling tables and the theme's off-canvas drawers), JavaScript errors and network
# requests, then on raw pandas artefacts in tables and numbers in static prose that trace to no
# source (connectome_lib.book_audit); saves a screenshot of each page and width in
# _build/screenshots/<width>px/.
#
#   bash scripts/check_book.sh                 # build the book afresh (jupyter-book build . --all), then check it
#   bash scripts/check_book.sh _build/html     # check an already built book
#
# Installs what it needs when missing: Debian's chromium and chromium-driver (apt-get, as root)
# and selenium into the environment (VENV, default .venv). CONNECTOME_BOOK_PROFILE selects the
# results the build shows, as for any book build.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
[ -x "$PY" ] || PY=python3

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  start=$(date +%s)
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  echo "check_book: installed chromium and chromium-driver in $(( $(date +%s) - start )) s"
fi
if ! "$PY" -c "import selenium" 2>/dev/null; then
  "$PY" -m pip install -q selenium
fi

if [ $# -ge 1 ]; then
  HTML=$1
else
  start=$(date +%s)
  JB=jupyter-book
  [ -x "$VENV/bin/jupyter-book" ] && JB="$VENV/bin/jupyter-book"
  "$JB" build . --all --warningiserror --keep-going   # --all: no stale pages from an earlier build
  echo "check_book: book built in $(( $(date +%s) - start )) s"
  HTML=_build/html
fi
exec "$PY" scripts/check_book.py "$HTML" --screenshots "$(dirname "$HTML")/screenshots"
