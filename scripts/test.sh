#!/usr/bin/env bash
# Set up .venv and run the default test suite (<= 15 min on 2 cores).
#   bash scripts/test.sh            default tier
#   bash scripts/test.sh --slow     the slow tier only (learning budgets, kill/resume, wheel build)
# Any other arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_venv.sh"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
cd "$ROOT"
if [ "${1:-}" = "--slow" ]; then
  shift
  exec "$ROOT/.venv/bin/pytest" -q -m slow "$@"
fi
exec "$ROOT/.venv/bin/pytest" -q "$@"
