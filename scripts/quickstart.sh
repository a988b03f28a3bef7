#!/usr/bin/env bash
# The main job on an embedded default: set up .venv, train IQN on CartPole-v1 (50k env steps with
# the iqn_cartpole preset, about 3 minutes on 2 cores), evaluate the final policy on the
# cartpole-2d suite (a 5 x 5 grid of pole mass x pole half-length), print the suite table and a
# short report (nominal return next to worst case and CVaR, the heatmap's path), and where the
# TensorBoard logs and checkpoints are. Extra arguments are Hydra overrides.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_venv.sh"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
cd "$ROOT"
exec "$ROOT/.venv/bin/python" scripts/train.py experiment=quickstart "$@"
