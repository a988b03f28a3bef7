"""Train an agent from the Hydra config: ``python scripts/train.py agent=iqn env=cartpole``.

Multirun: ``python scripts/train.py -m seed=0,1,2`` (``hydra/launcher=joblib_local``,
``submitit_local`` or ``slurm`` to run jobs in parallel). ``--help`` lists the agents, envs,
perturbations, experiments and suites. A library error prints one line and exits with status 1
(``HYDRA_FULL_ERROR=1`` or ``debug=true`` for the traceback). Wiring only: everything happens in :mod:`rlrobust.core.runner`.
"""

from __future__ import annotations

import json

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from rlrobust.cli import readable_errors, register_resolvers
from rlrobust.core.registry import list_agents
from rlrobust.core.runner import run_from_config

register_resolvers()


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    with readable_errors(cfg.get("debug", False)):
        return _train(cfg)


def _train(cfg: DictConfig) -> float:
    if cfg.agent.name not in list_agents():
        raise SystemExit(f"agent {cfg.agent.name!r} is not registered; registered: {list_agents()}")
    hydra_cfg = HydraConfig.get()
    run_dir = cfg.run_dir or hydra_cfg.runtime.output_dir
    # No env chosen on the command line: an offline run evaluates in the dataset's own env.
    env_chosen = any(
        o.split("=")[0].lstrip("+~") in ("env", "experiment") or o.startswith("env.")
        for o in hydra_cfg.overrides.task
    )
    result = run_from_config(cfg, run_dir=run_dir, env_from_dataset=not env_chosen)
    print(json.dumps(result.metrics, indent=2))
    print(
        f"run dir: {result.run_dir}\n  TensorBoard: tensorboard --logdir {result.run_dir / 'tb'}\n"
        f"  checkpoints: {result.run_dir / 'checkpoints'}"
    )
    return float(result.metrics.get("eval/return_mean", float("nan")))


if __name__ == "__main__":
    main()
