#!/usr/bin/env bash
# Run the nbval suite against the committed references twice, from fresh run folders: once with
# the CPU kernels PyTorch picks on this machine (default) and once forced to AVX2
# (ATEN_CPU_CAPABILITY=avx2). Key numbers are compared within the tolerances measured by
# scripts/measure_tolerances.py (tests/nbval/tolerances.json); exact values exactly. Both must pass.
#   bash scripts/check_portability.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || bash scripts/setup.sh
export PATH="$(cd "$VENV" && pwd)/bin:$PATH"
status=0
for cap in default avx2; do
  scratch="$PWD/.cache/portability/$cap"
  rm -rf "$scratch"
  mkdir -p "$scratch"
  echo "== nbval with ATEN_CPU_CAPABILITY=$cap (fresh runs, results and caches under $scratch)"
  if [ "$cap" = default ]; then unset ATEN_CPU_CAPABILITY; else export ATEN_CPU_CAPABILITY=$cap; fi
  if CONNECTOME_RUNS_DIR="$scratch/runs" CONNECTOME_RESULTS_DIR="$scratch/results" CONNECTOME_CACHE_DIR="$scratch/cache" \
      python -m pytest --nbval-lax --nbval-current-env tests/nbval -q -p no:cacheprovider; then
    echo "-- $cap: passed"
  else
    echo "-- $cap: FAILED"
    status=1
  fi
done
unset ATEN_CPU_CAPABILITY
[ "$status" = 0 ] && echo "portability: passed with the default kernels and with AVX2" || echo "portability: FAILED"
exit "$status"
