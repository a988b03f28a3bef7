"""IWOCS vs DSAC (nominal) vs DSAC (domain randomisation): worst-case and mean return over a suite.

The issue's benchmark: on ``hopper-2d`` and ``invertedpendulum-2d``, the same total env steps for
the three methods, 3 seeds, worst case over the suite's grid (RRLS/M2TD3 protocol; algorithms.md
§5 and §9.1). The budget is a parameter: the paper's is 4M steps per run for 2-D sets.

    python scripts/bench_iwocs.py --suite invertedpendulum-2d --steps 6000 --seeds 0

``bench_iwocs(...)`` returns one row per (method, seed) and is ``scripts/benchmark.py``-compatible.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch


def _train(agent_name: str, suite: str, perturbation: dict, steps: int, seed: int, agent_kwargs: dict,
           run_dir: Path) -> Any:
    import rlrobust
    from rlrobust.core.trainer import Trainer, TrainerSettings
    from rlrobust.envs import get_suite, make_env

    env_id = get_suite(suite).env_id
    probe = make_env(env_id, perturbation=perturbation)
    agent = rlrobust.make_agent(agent_name, probe.observation_space, probe.action_space, seed=seed, **agent_kwargs)
    probe.close()
    settings = TrainerSettings(total_steps=steps, seed=seed, progress=False, final_eval_episodes=0,
                               checkpoint_interval=0, log_interval=max(steps // 10, 1), resume="never")
    return Trainer(agent, lambda: make_env(env_id, perturbation=perturbation), settings, run_dir, suite=suite).run()


def bench_iwocs(
    suite: str = "invertedpendulum-2d", steps: int = 4_000_000, seeds: tuple[int, ...] = (0, 1, 2), *,
    points_per_dim: int = 10, episodes: int = 5, learning_starts: int = 10_000, net_arch: tuple[int, ...] = (256, 256),
    iwocs_kwargs: dict | None = None, workers: int | None = 1,
) -> list[dict[str, Any]]:
    """Train the three methods with ``steps`` env steps each and evaluate them on ``suite``'s grid.

    IWOCS's schedule defaults to the paper's split of the budget (40% domain randomisation, then
    three iterations of 20%); ``iwocs_kwargs`` overrides any IWOCS hyperparameter (e.g. the search).
    """
    import rlrobust

    torch.set_num_threads(1)
    common = {"learning_starts": learning_starts, "net_arch": list(net_arch)}
    dr_steps = int(0.4 * steps) - learning_starts
    schedule = {"dr_steps": max(dr_steps, 1), "steps_per_iteration": int(0.2 * steps), "n_iterations": 3}
    dsac = {**common, "critic_learning_rate": 1e-3, "actor_learning_rate": 3e-4, "activation": "relu"}
    methods = {
        "iwocs": ("iwocs", {"kind": "static", "suite": suite}, {**common, **schedule, **(iwocs_kwargs or {})}),
        "dsac_nominal": ("dsac", {"kind": "static", "suite": suite}, dsac),
        "dsac_dr": ("dsac", {"kind": "random", "suite": suite}, dsac),
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for method, (agent_name, perturbation, kwargs) in methods.items():
                start = time.perf_counter()
                result = _train(agent_name, suite, perturbation, steps, seed, kwargs, Path(tmp) / f"{method}-{seed}")
                train_s = time.perf_counter() - start
                ev = rlrobust.evaluate(result.agent, suite, episodes=episodes, seed=1000 + seed,
                                       points_per_dim=points_per_dim, workers=workers)
                row = {"suite": suite, "method": method, "seed": seed, "steps": steps, "worst": float(ev.worst),
                       "mean": float(ev.mean), "train_seconds": round(train_s, 1),
                       "grid": f"{points_per_dim}^{len(ev.names)} x {episodes} episodes"}
                if agent_name == "iwocs":
                    row["iwocs_points"] = result.agent.points
                    row["iwocs_history"] = [{k: h[k] for k in ("iteration", "point", "value", "std", "repeated")}
                                            for h in result.agent.history]
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="invertedpendulum-2d")
    parser.add_argument("--steps", type=int, default=4_000_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--points-per-dim", type=int, default=10)
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--learning-starts", type=int, default=10_000)
    parser.add_argument("--iwocs", type=json.loads, default={}, help='IWOCS overrides as JSON, e.g. \'{"search": "grid"}\'')
    args = parser.parse_args()
    bench_iwocs(args.suite, args.steps, tuple(args.seeds), points_per_dim=args.points_per_dim,
                episodes=args.episodes, learning_starts=args.learning_starts, iwocs_kwargs=args.iwocs)


if __name__ == "__main__":
    main()
