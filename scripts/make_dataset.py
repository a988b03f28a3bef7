"""Record a Minari dataset from a policy: ``python scripts/make_dataset.py policy=<ckpt|sb3.zip> env=hopper episodes=100 dataset_id=rlrobust/hopper/medium-v0``.

Wiring only: the work happens in :func:`rlrobust.data.record_dataset`.
"""

from __future__ import annotations

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from rlrobust.cli import readable_errors
from rlrobust.core.runner import make_env_factory
from rlrobust.data import normalized_score, record_dataset


@hydra.main(version_base="1.3", config_path="../conf", config_name="make_dataset")
def main(cfg: DictConfig) -> None:
    torch.set_num_threads(1)
    with readable_errors(cfg.get("debug", False)):
        _record(cfg)


def _record(cfg: DictConfig) -> None:
    perturbation = OmegaConf.to_container(cfg.perturbation, resolve=True)
    perturbed = perturbation.get("kind", "none") != "none"
    env = make_env_factory(cfg.env, cfg.perturbation)()
    dataset = record_dataset(
        cfg.policy,
        env,
        dataset_id=cfg.dataset_id,
        episodes=cfg.episodes,
        seed=cfg.seed,
        deterministic=cfg.deterministic,
        perturbation=perturbation if perturbed else None,
        ref_min_score=cfg.ref_min_score,
        ref_max_score=cfg.ref_max_score,
        algorithm_name=cfg.algorithm_name,
        description=cfg.description,
        overwrite=cfg.overwrite,
    )
    score = normalized_score(dataset.episode_returns(), dataset)
    print(
        f"wrote {cfg.dataset_id}: {len(dataset)} transitions, {cfg.episodes} episodes, "
        f"mean return {score.raw_return:.2f}"
        + (f", normalized {score.score:.1f} ({score.convention})" if score.normalized else "")
    )
    print(f"  at {dataset.metadata['path']}")


if __name__ == "__main__":
    main()
