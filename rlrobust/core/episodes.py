"""Whole evaluation episodes on one (unbatched) env. Kept free of torch so that importing
:mod:`rlrobust.evaluation` stays light (suites build nothing and import neither torch nor MuJoCo).

Every episode has a step cap, so an evaluation always ends: the env's own time limit when it
has one (a ``TimeLimit`` wrapper, as ``gym.make`` adds for registered tasks), else
:data:`DEFAULT_MAX_EPISODE_STEPS`, applied with a warning that says so (a continuing env such
as a bare :class:`~rlrobust.envs.tabular.TabularMDP` neither terminates nor truncates).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym

#: Step cap of an evaluation episode in an env without a time limit of its own.
DEFAULT_MAX_EPISODE_STEPS = 1000


def has_time_limit(env: gym.Env) -> bool:
    """Whether ``env`` truncates its episodes itself (a ``TimeLimit`` in its wrapper chain)."""
    layer: Any = env
    while isinstance(layer, gym.Wrapper):
        if isinstance(layer, gym.wrappers.TimeLimit):
            return True
        layer = layer.env
    return False


def episode_step_cap(env: gym.Env, max_steps: int | None = None) -> int | None:
    """The cap :func:`run_episodes` applies: ``max_steps`` if given, None when the env has a time
    limit, else :data:`DEFAULT_MAX_EPISODE_STEPS` (with a warning naming the env)."""
    if max_steps is not None:
        return int(max_steps)
    if has_time_limit(env):
        return None
    warnings.warn(
        f"{env} has no time limit; evaluation episodes are capped at {DEFAULT_MAX_EPISODE_STEPS} steps "
        "(rlrobust.core.episodes.DEFAULT_MAX_EPISODE_STEPS). Give the env a limit, e.g. "
        "gymnasium.wrappers.TimeLimit or env.max_episode_steps, to choose another",
        stacklevel=2,
    )
    return DEFAULT_MAX_EPISODE_STEPS


def run_episodes(
    env: gym.Env, policy: Callable[[Any], Any], seeds: list[int], max_steps: int | None = None
) -> tuple[list[float], list[int]]:
    """Undiscounted return and length of one episode per reset seed, acting with ``policy(obs)``
    on single (unbatched) observations; an episode stops at :func:`episode_step_cap` steps at
    the latest. The env is left open."""
    cap = episode_step_cap(env, max_steps)
    returns, lengths = [], []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        total, steps, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total += float(reward)
            steps += 1
            done = terminated or truncated or (cap is not None and steps >= cap)
        returns.append(total)
        lengths.append(steps)
    return returns, lengths
