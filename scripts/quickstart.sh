#!/usr/bin/env bash
# The main job on an embedded default: set up .venv, train a small IQN agent on CartPole,
# evaluate it on a perturbed suite (pole mass x cart mass), print the result table and where
# the TensorBoard logs and checkpoints are. Extra arguments are Hydra overrides.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_venv.sh"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
cd "$ROOT"
exec "$ROOT/.venv/bin/python" scripts/train.py experiment=quickstart "$@"
