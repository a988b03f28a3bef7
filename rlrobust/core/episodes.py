"""Whole evaluation episodes on one (unbatched) env. Kept free of torch so that importing
:mod:`rlrobust.evaluation` stays light (suites build nothing and import neither torch nor MuJoCo)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym


def run_episodes(env: gym.Env, policy: Callable[[Any], Any], seeds: list[int]) -> tuple[list[float], list[int]]:
    """Undiscounted return and length of one episode per reset seed, acting with ``policy(obs)``
    on single (unbatched) observations. The env is left open."""
    returns, lengths = [], []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        total, steps, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total += float(reward)
            steps += 1
            done = terminated or truncated
        returns.append(total)
        lengths.append(steps)
    return returns, lengths
