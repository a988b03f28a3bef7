"""Rollouts over a gymnasium ``VectorEnv``: one batched policy call per vector step.

The vector env runs in ``SAME_STEP`` autoreset mode, so a finished sub-env hands back its
final observation in ``info["final_obs"]`` in the same step; that final observation (not the
reset observation) becomes the stored next observation. Every env step is counted once:
a vector step over E sub-envs advances the step counter by E.

:meth:`Collector.state_dict` holds everything the next step depends on: counters, the warm-up
RNG, pending n-step windows, the current observations and episode tallies, and each sub-env's
full state (:mod:`rlrobust.core.env_state`) when it can be captured, so a resumed run continues
its episodes exactly. For an env whose state cannot be captured the state says why, and
:meth:`Collector.load_state_dict` returns False: the caller restarts the episodes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from rlrobust.core.env_state import WithStateAccess
from rlrobust.core.errors import ConfigError, NonFiniteError
from rlrobust.core.replay import NStepAccumulator, ReplayBuffer
from rlrobust.core.seeding import numpy_generator, numpy_state, set_numpy_state

VECTORIZATION = ("sync", "async")


def make_vector_env(
    env_fn: Callable[[], gym.Env], num_envs: int, vectorization: str = "sync"
) -> gym.vector.VectorEnv:
    """A Sync or Async vector env of ``num_envs`` copies with same-step autoreset; each copy is
    wrapped in :class:`~rlrobust.core.env_state.StateAccess` (for checkpoints)."""
    if vectorization not in VECTORIZATION:
        raise ConfigError(f"unknown vectorization {vectorization!r}; valid: {VECTORIZATION}")
    if num_envs < 1:
        raise ConfigError(f"num_envs must be >= 1, got {num_envs}")
    cls = gym.vector.SyncVectorEnv if vectorization == "sync" else gym.vector.AsyncVectorEnv
    return cls([WithStateAccess(env_fn)] * num_envs, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


class Collector:
    """Steps a vector env with a policy and writes (n-step) transitions into a replay buffer.

    Args:
        envs: the vector env (same-step autoreset, see :func:`make_vector_env`).
        n_step, gamma: n-step return settings of the agent.
        seed: seeds the env resets and the warm-up action generator.
        check_finite: raise :class:`NonFiniteError` naming the sub-env when the env returns
            NaN/inf observations or rewards.
    """

    def __init__(
        self,
        envs: gym.vector.VectorEnv,
        *,
        n_step: int = 1,
        gamma: float = 0.99,
        seed: int = 0,
        check_finite: bool = True,
    ) -> None:
        self.envs = envs
        self.num_envs = envs.num_envs
        self.accumulator = NStepAccumulator(self.num_envs, n_step, gamma)
        self.rng = numpy_generator(seed)
        self.seed = seed
        self.check_finite = check_finite
        self.total_steps = 0
        self.episodes = 0
        self.obs: np.ndarray | None = None
        #: the transitions finished by the last step (for on-policy agents), or None
        self.last_transitions: dict[str, np.ndarray] | None = None
        self.episode_return = np.zeros(self.num_envs)
        self.episode_length = np.zeros(self.num_envs, dtype=np.int64)
        self.recent_returns: deque[float] = deque(maxlen=20)
        self.recent_lengths: deque[int] = deque(maxlen=20)
        space = envs.single_action_space
        self._random_action = _uniform_action_sampler(space)

    def reset(self, reset_seed: int | None = None) -> None:
        """Reset every sub-env; sub-env i gets seed ``reset_seed + i`` (default: the collector's seed)."""
        base = self.seed if reset_seed is None else reset_seed
        self.obs, _ = self.envs.reset(seed=[base + i for i in range(self.num_envs)])
        # Episodes restart: pending n-step windows must not continue into the new episodes.
        self.accumulator = NStepAccumulator(self.num_envs, self.accumulator.n_step, self.accumulator.gamma)
        self.episode_return[:] = 0.0
        self.episode_length[:] = 0

    def random_actions(self) -> np.ndarray:
        """Uniform actions from the collector's own generator (warm-up before learning starts)."""
        return self._random_action(self.rng, self.num_envs)

    def step(
        self, policy: Callable[[np.ndarray], np.ndarray] | None, buffer: ReplayBuffer | None
    ) -> list[dict[str, Any]]:
        """One vector step; ``policy=None`` acts uniformly at random. Returns finished episodes
        as ``{"return": R, "length": L}`` dicts."""
        if self.obs is None:
            self.reset()
        obs = self.obs
        actions = self.random_actions() if policy is None else np.asarray(policy(obs))
        next_obs, rewards, terminated, truncated, infos = self.envs.step(actions)
        rewards = np.asarray(rewards, dtype=np.float64)
        if self.check_finite:
            _check_env_outputs(next_obs, rewards, self.total_steps)
        episode_end = np.logical_or(terminated, truncated)
        stored_next = next_obs
        if episode_end.any() and "final_obs" in infos:
            stored_next = np.array(next_obs, copy=True)
            for i in np.flatnonzero(episode_end):
                stored_next[i] = infos["final_obs"][i]
        finished = self.accumulator.push(
            obs,
            actions,
            rewards,
            stored_next,
            np.asarray(terminated),
            episode_end,
            extras={"step": self.episode_length.copy()},
        )
        self.last_transitions = finished
        if finished is not None and buffer is not None:
            buffer.add(**finished)
        self.total_steps += self.num_envs
        self.episode_return += rewards
        self.episode_length += 1
        done_episodes = []
        for i in np.flatnonzero(episode_end):
            done_episodes.append(
                {"return": float(self.episode_return[i]), "length": int(self.episode_length[i])}
            )
            self.recent_returns.append(float(self.episode_return[i]))
            self.recent_lengths.append(int(self.episode_length[i]))
            self.episode_return[i] = 0.0
            self.episode_length[i] = 0
        self.episodes += len(done_episodes)
        self.obs = next_obs
        return done_episodes

    def env_state_problem(self) -> str | None:
        """Why the sub-envs' state cannot be captured, or None when it can."""
        return next((p for p in self.envs.call("env_state_problem") if p), None)

    def state_dict(self) -> dict[str, Any]:
        """Counters, RNG, pending n-step windows, current observations and the sub-envs' states."""
        problem = self.env_state_problem()
        return {
            "total_steps": self.total_steps,
            "episodes": self.episodes,
            "rng": numpy_state(self.rng),
            "accumulator": self.accumulator.state_dict(),
            "recent_returns": list(self.recent_returns),
            "recent_lengths": list(self.recent_lengths),
            "obs": None if self.obs is None else np.array(self.obs, copy=True),
            "episode_return": self.episode_return.copy(),
            "episode_length": self.episode_length.copy(),
            "env_states": list(self.envs.get_attr("env_state")) if problem is None else None,
            "env_state_problem": problem,
        }

    def load_state_dict(self, state: dict[str, Any]) -> bool:
        """Restore a :meth:`state_dict`; True when the episodes continue exactly, False when the
        sub-envs must be reset (their state was not captured, or an older checkpoint)."""
        self.total_steps = int(state["total_steps"])
        self.episodes = int(state["episodes"])
        set_numpy_state(self.rng, state["rng"])
        self.recent_returns = deque(state["recent_returns"], maxlen=20)
        self.recent_lengths = deque(state["recent_lengths"], maxlen=20)
        if state.get("env_states") is None:
            return False  # pending n-step windows are dropped by the caller's reset()
        self.envs.set_attr("env_state", list(state["env_states"]))  # one state per sub-env
        self.accumulator.load_state_dict(state["accumulator"])
        self.obs = np.array(state["obs"], copy=True)
        self.episode_return[:] = state["episode_return"]
        self.episode_length[:] = state["episode_length"]
        return True

    def close(self) -> None:
        """Close the vector env."""
        self.envs.close()


def _uniform_action_sampler(space: gym.Space[Any]) -> Callable[[np.random.Generator, int], np.ndarray]:
    """A fast seeded uniform sampler (``space.sample()`` is slow and uses the space's own RNG)."""
    if isinstance(space, gym.spaces.Discrete):
        return lambda rng, n: (space.start + rng.integers(0, space.n, size=n)).astype(np.int64)
    if isinstance(space, gym.spaces.Box):
        low, high = space.low.astype(np.float64), space.high.astype(np.float64)
        if not (np.isfinite(low).all() and np.isfinite(high).all()):
            raise ConfigError(f"cannot sample warm-up actions uniformly from an unbounded space {space}")
        return lambda rng, n: rng.uniform(low, high, size=(n, *space.shape)).astype(space.dtype)
    raise ConfigError(f"unsupported action space {space}; valid: Discrete or Box")


def _check_env_outputs(obs: np.ndarray, rewards: np.ndarray, step: int) -> None:
    if not np.isfinite(rewards).all():
        env = int(np.flatnonzero(~np.isfinite(rewards))[0])
        raise NonFiniteError(f"env {env} returned a non-finite reward at env step {step}")
    if np.issubdtype(np.asarray(obs).dtype, np.floating):
        bad = ~np.isfinite(np.asarray(obs)).reshape(len(rewards), -1).all(axis=1)
        if bad.any():
            raise NonFiniteError(
                f"env {int(np.flatnonzero(bad)[0])} returned a non-finite observation at env step {step}"
            )
