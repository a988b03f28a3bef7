"""Tiny deterministic environments and helpers for the dataset tests (no downloads, ever)."""

from __future__ import annotations

import sys
import types

import gymnasium as gym
import numpy as np
import pytest


class CountingEnv(gym.Env):
    """``obs = [episode seed, t]``; reward ``= a + t``; odd seeds terminate at ``t = terminate_at``.

    Every observation names its own episode and step, so a test can check transitions exactly.
    ``info["params"]`` mimics the perturbation wrappers: ``{"mass": 1 + seed}``.
    """

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, terminate_at: int = 2, odd_only: bool = True) -> None:
        self.terminate_at, self.odd_only = terminate_at, odd_only
        self.ep, self.t = 0, 0

    def _obs(self) -> np.ndarray:
        return np.array([self.ep, self.t], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.ep, self.t = int(seed or 0), 0
        return self._obs(), {"params": {"mass": 1.0 + self.ep}, "t": 0}

    def step(self, action):
        self.t += 1
        terminated = (self.ep % 2 == 1 or not self.odd_only) and self.t >= self.terminate_at
        info = {"params": {"mass": 1.0 + self.ep}, "t": self.t}
        return self._obs(), float(np.asarray(action).reshape(-1)[0]) + self.t, terminated, False, info


@pytest.fixture
def counting_env():
    """Factory ``counting_env(max_steps=4, terminate_at=2, odd_only=True)`` of time-limited CountingEnvs."""

    def make(max_steps: int = 4, **kwargs) -> gym.Env:
        return gym.wrappers.TimeLimit(CountingEnv(**kwargs), max_episode_steps=max_steps)

    return make


@pytest.fixture
def jax_tree_util(monkeypatch):
    """Minari 0.5.4's DataCollector needs ``jax.tree_util.tree_map`` only. Use jax when it is
    installed; otherwise stand in a pure-Python ``tree_map`` with jax's semantics for the dicts,
    tuples and array leaves a step holds (test-only; the library never imports jax)."""
    try:
        import jax.tree_util  # noqa: F401

        return
    except ImportError:
        pass

    def tree_map(f, tree, *rest):
        if tree is None:
            return None
        if isinstance(tree, dict):
            return {k: tree_map(f, tree[k], *(r[k] for r in rest)) for k in tree}
        if isinstance(tree, (tuple, list)):
            return type(tree)(tree_map(f, x, *(r[i] for r in rest)) for i, x in enumerate(tree))
        return f(tree, *rest)

    jax = types.ModuleType("jax")
    jtu = types.ModuleType("jax.tree_util")
    jtu.tree_map = tree_map
    jax.tree_util = jtu
    monkeypatch.setitem(sys.modules, "jax", jax)
    monkeypatch.setitem(sys.modules, "jax.tree_util", jtu)
