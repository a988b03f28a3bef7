#!/usr/bin/env bash
# Set up .venv, run the static checks and the default test suite (<= 15 min on 2 cores).
#   bash scripts/test.sh            the checks (ruff check, ruff format --check, mypy), then the default tier
#   bash scripts/test.sh --checks   the checks only
#   bash scripts/test.sh --slow     the slow tier only (learning budgets, kill/resume, wheel build)
#   bash scripts/test.sh --warp     the MuJoCo Warp tier: installs the warp extra; the first run
#                                   compiles Warp's kernels (minutes on CPU), later runs use the cache
# Any other arguments go to pytest, without the checks (e.g. bash scripts/test.sh tests/unit -x).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_venv.sh"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
cd "$ROOT"
run_checks() {
  echo "[checks] ruff check, ruff format --check, mypy (settings in pyproject.toml)"
  "$ROOT/.venv/bin/ruff" check --quiet .
  "$ROOT/.venv/bin/ruff" format --check --quiet .
  "$ROOT/.venv/bin/mypy"
}
if [ "$#" -eq 0 ]; then
  run_checks
elif [ "$1" = "--checks" ]; then
  run_checks
  exit 0
fi
if [ "${1:-}" = "--slow" ]; then
  shift
  exec "$ROOT/.venv/bin/pytest" -q -m slow "$@"
fi
if [ "${1:-}" = "--warp" ]; then
  shift
  "$ROOT/.venv/bin/python" -c "import mujoco_warp" 2>/dev/null || "$ROOT/.venv/bin/pip" install -q -e "$ROOT[dev,warp]"
  exec "$ROOT/.venv/bin/pytest" -q -m warp "$@"
fi
exec "$ROOT/.venv/bin/pytest" -q "$@"
