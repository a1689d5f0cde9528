#!/usr/bin/env bash
# Set up the environment and run every test: the library's unit and end-to-end tests (pytest),
# then the stage notebooks at the smoke profile under nbval against the committed references,
# then a book build from the smoke results. Extra arguments go to the pytest call.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV=${VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"
python -m pytest tests -q "$@"
