"""Benchmark: suite evaluation versus stepping the bare env (``benchmark.py evaluation``).

Target: evaluating a 10x10 grid x 5 episodes on Hopper-v5 costs <= 1.2x stepping the bare env
for the same number of steps (measured in the same run), and scales with workers up to the
core count.

Both sides run the same cheap fixed policy (zeros: ``action_space.sample()`` would cost as
much as a MuJoCo step) and the same number of steps: the bare side replays every evaluated
episode's length, resetting with the same seeds. The evaluation side includes everything
``rlrobust.evaluate`` does (env construction, ``set_params`` per point, resets, the wrapper,
collecting results; with workers > 1 also starting the worker processes).

    OMP_NUM_THREADS=1 python benchmarks/bench_evaluation.py                      # 10x10x5, workers 1 and 2
    OMP_NUM_THREADS=1 python benchmarks/bench_evaluation.py --points-per-dim 5 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
from timing import Timer  # noqa: E402

import rlrobust  # noqa: E402
from rlrobust.core.seeding import spawn_seeds  # noqa: E402
from rlrobust.envs.mujoco_params import silence_mujoco_warnings  # noqa: E402
from rlrobust.envs.suites import get_suite  # noqa: E402
from rlrobust.interop.policies import ConstantPolicy  # noqa: E402


def _bare_steps(env_id: str, policy: Any, lengths: np.ndarray, seeds: list[int]) -> tuple[float, int]:
    """Step a bare ``gym.make(env_id)`` for exactly ``lengths.sum()`` steps, episode by episode."""
    silence_mujoco_warnings()
    with Timer() as t:
        env = gym.make(env_id)
        steps = 0
        for row in lengths:
            for episode, length in enumerate(row):
                obs, _ = env.reset(seed=seeds[episode])
                for _ in range(int(length)):
                    obs, _, terminated, truncated, _ = env.step(policy(obs))
                    steps += 1
                    if terminated or truncated:  # the nominal model may end sooner: keep stepping
                        obs, _ = env.reset()
        env.close()
    return t.wall, steps


def bench_evaluation(
    suite: str = "hopper-2d",
    points_per_dim: int = 10,
    episodes: int = 5,
    workers: tuple[int, ...] = (1, 2),
    repeats: int = 1,
) -> dict[str, Any]:
    """Time ``rlrobust.evaluate`` at each worker count against bare stepping; min over repeats."""
    silence_mujoco_warnings()
    s = get_suite(suite)
    action_dim = gym.make(s.env_id).action_space.shape[0]
    policy = ConstantPolicy(np.zeros(action_dim, np.float32))
    seeds = spawn_seeds(0, episodes)
    eval_times: dict[int, float] = {}
    bare_times: list[float] = []
    total_steps = 0
    for _ in range(repeats):
        for w in workers:
            with Timer() as t:
                result = rlrobust.evaluate(
                    policy, s, episodes=episodes, points_per_dim=points_per_dim, workers=w
                )
            eval_times[w] = min(eval_times.get(w, np.inf), t.wall)
            total_steps = int(result.lengths.sum())
            if w == workers[0]:  # bare stepping right after, same steps, same process
                seconds, steps = _bare_steps(s.env_id, policy, result.lengths, seeds)
                assert steps == total_steps
                bare_times.append(seconds)
    bare = min(bare_times)
    return {
        "suite": suite,
        "env_id": s.env_id,
        "points": points_per_dim**s.dims,
        "episodes": episodes,
        "total_steps": total_steps,
        "policy": "zeros",
        "cpu_count": os.cpu_count(),
        "repeats": repeats,
        "bare_seconds": round(bare, 3),
        "bare_us_per_step": round(1e6 * bare / total_steps, 1),
        "eval_seconds": {w: round(t, 3) for w, t in eval_times.items()},
        "ratio_vs_bare": {w: round(t / bare, 3) for w, t in eval_times.items()},
        "speedup_vs_1_worker": {w: round(eval_times[workers[0]] / t, 2) for w, t in eval_times.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="hopper-2d")
    parser.add_argument("--points-per-dim", type=int, default=10)
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    out = bench_evaluation(
        args.suite, args.points_per_dim, args.episodes, tuple(dict.fromkeys(args.workers)), args.repeats
    )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
