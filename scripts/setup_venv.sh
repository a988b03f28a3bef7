#!/usr/bin/env bash
# Create or update .venv at the repo root (idempotent; called by quickstart.sh and test.sh).
# On machines without a GPU the CPU build of torch is installed first, so pip never pulls the
# multi-GB CUDA build; pyproject.toml itself keeps a version range.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"

# pip, quiet: its output is shown (minus local-index noise) and a failure stops the setup.
pip_install() {
  local log status=0
  log="$(mktemp)"
  "$VENV/bin/pip" install -q "$@" >"$log" 2>&1 || status=$?
  grep -v "is ignored: it is neither a file nor a directory" "$log" || true
  rm -f "$log"
  return "$status"
}

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    echo "[setup] GPU found: installing torch (CUDA build)"
    pip_install "torch>=2.2,<3"
  else
    # The CPU wheel (torch==2.13.0+cpu) satisfies this pin where it lies on disk or on the
    # configured index; elsewhere set PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu.
    echo "[setup] no GPU: installing the CPU build of torch first"
    pip_install "torch==2.13.0"
  fi
fi
STAMP="$VENV/.rlrobust-install-stamp"
WANT="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ] || ! "$VENV/bin/python" -c "import rlrobust" 2>/dev/null; then
  echo "[setup] installing rlrobust (editable) with its dev extra"
  pip_install -e "$ROOT[dev]"
  "$VENV/bin/python" -c "import rlrobust" && echo "$WANT" > "$STAMP"
fi
