# Sourced by reproduce.sh and build_book.sh: set up the environment (scripts/setup.sh), put its
# bin/ on PATH and choose the profile whose results the book shows (PROFILE, default cpu).
PROFILE=${PROFILE:-cpu}
bash scripts/setup.sh
VENV=${VENV:-.venv}
export PATH="$(cd "$VENV" && pwd)/bin:$PATH"
export CONNECTOME_BOOK_PROFILE="$PROFILE"
