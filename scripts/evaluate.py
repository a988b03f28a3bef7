"""Evaluate a policy on a perturbation suite (wiring only; the work is in rlrobust.evaluation).

    python scripts/evaluate.py checkpoint=runs/<run> suite=hopper-2d     # the run's newest checkpoint
    python scripts/evaluate.py checkpoint=runs/<run>/checkpoints/best suite=hopper-2d
    python scripts/evaluate.py checkpoint=model.zip suite=cartpole-2d points_per_dim=3 episodes=2
    python scripts/evaluate.py checkpoint=<ckpt> suite=hopper-2d backend=warp device=cuda   # pip install 'rlrobust[warp]'
    python scripts/evaluate.py checkpoint=model.zip suite=hopper-attack   # PGD on the policy itself
    python scripts/evaluate.py 'checkpoint=[runs/s0,runs/s1,runs/s2]' suite=hopper-2d   # over seeds

``checkpoint`` is a run dir (its newest verified checkpoint), a checkpoint folder
(``checkpoints/step_000050000``, ``checkpoints/best``) or an SB3 ``.zip``; a list of them (one per
training seed) evaluates each into ``run<i>/`` and writes their summary over runs (interquartile
mean with a 95% stratified-bootstrap interval, mean ± std, a performance profile:
:func:`rlrobust.evaluation.write_suite_summary`). ``--help`` lists the
suites, one line each. A policy that does not fit the suite's env is refused before any work; a library error
prints one line and exits with status 1 (``HYDRA_FULL_ERROR=1`` or ``debug=true`` for the
traceback); Ctrl-C stops the workers and exits with status 130.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig, ListConfig  # noqa: E402

import rlrobust  # noqa: E402
from rlrobust.cli import readable_errors, register_resolvers  # noqa: E402
from rlrobust.core.errors import ConfigError  # noqa: E402
from rlrobust.evaluation import write_suite_summary  # noqa: E402
from rlrobust.evaluation.reports import SuiteResult, write_reports  # noqa: E402

register_resolvers()


def evaluate_one(cfg: DictConfig, checkpoint: str, out_dir: str) -> SuiteResult:
    """Evaluate one checkpoint, write its reports to ``out_dir``, print the table."""
    env_kwargs = {} if cfg.max_episode_steps is None else {"max_episode_steps": int(cfg.max_episode_steps)}
    result = rlrobust.evaluate(
        checkpoint,
        cfg.suite,
        episodes=int(cfg.episodes),
        seed=int(cfg.seed),
        points_per_dim=cfg.points_per_dim,
        workers=cfg.workers,
        samples=cfg.samples,
        cvar_alpha=float(cfg.cvar_alpha),
        env_kwargs=env_kwargs,
        device=cfg.device,
        backend=cfg.backend,
        progress=bool(cfg.progress),
    )
    paths = write_reports(result, out_dir, tensorboard=bool(cfg.tensorboard))
    print(result)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return result


def run(cfg: DictConfig) -> SuiteResult | list[SuiteResult]:
    """Evaluate one checkpoint, or several (one per seed) and their summary over runs."""
    out_dir = cfg.out_dir or HydraConfig.get().runtime.output_dir
    if not isinstance(cfg.checkpoint, ListConfig):
        return evaluate_one(cfg, cfg.checkpoint, out_dir)
    checkpoints = [str(c) for c in cfg.checkpoint]
    if len(checkpoints) < 2:
        raise ConfigError(
            f"checkpoint list {checkpoints}: give at least two (one per seed), or one without brackets"
        )
    results = [evaluate_one(cfg, c, os.path.join(out_dir, f"run{i}")) for i, c in enumerate(checkpoints)]
    paths = write_suite_summary(results, out_dir, names=checkpoints)
    print(paths["markdown"].read_text())
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return results


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    import torch

    torch.set_num_threads(1)
    with readable_errors(cfg.get("debug", False)):
        run(cfg)


if __name__ == "__main__":
    main()
