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

import math
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast

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
    fns = [WithStateAccess(env_fn)] * num_envs
    if vectorization == "sync":
        return LeanSyncVectorEnv(fns)
    return gym.vector.AsyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


#: spaces whose batches are plain NumPy arrays (a sub-env's value is one row of the batch)
_ARRAY_SPACES = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)


class LeanSyncVectorEnv(gym.vector.SyncVectorEnv):
    """gymnasium's ``SyncVectorEnv`` in same-step autoreset mode, without the per-step work the
    training loop does not need; its ``step`` returns what the parent's returns.

    With one cheap env (CartPole) the parent's ``step`` costs several times the env's own step:
    the space-generic ``iterate``/``concatenate`` (``functools.singledispatch`` each step), an
    ``_add_info`` call per sub-env even when its info is empty (it adds nothing then), a
    ``deepcopy`` of the observation batch. Here, for observation and action spaces whose batches
    are plain arrays (Box, Discrete, MultiDiscrete, MultiBinary), each sub-env gets row ``i`` of
    the actions (what ``iterate`` yields), its observation is written into row ``i`` of the
    preallocated batch (what ``concatenate`` does), ``_add_info`` runs only for a non-empty info
    and the batch is copied with ``ndarray.copy`` (what ``deepcopy`` does to a numeric array).
    Other spaces (Dict, Tuple, ...) take the parent's ``step``. ``_autoreset_envs`` is not
    updated: only the other autoreset modes read it.
    """

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], copy: bool = True) -> None:
        super().__init__(env_fns, copy=copy, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
        self._lean = isinstance(self.single_observation_space, _ARRAY_SPACES) and isinstance(
            self.single_action_space, _ARRAY_SPACES
        )

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """One step of every sub-env; a finished one is reset in the same step (its last
        observation and info in ``infos["final_obs"]``/``infos["final_info"]``)."""
        if not self._lean:
            return super().step(actions)
        if len(actions) != self.num_envs:
            raise ValueError(f"expected actions for {self.num_envs} sub-envs, got {len(actions)}")
        infos: dict[str, Any] = {}
        batch, rewards = self._observations, self._rewards
        terminations, truncations = self._terminations, self._truncations
        for i, env in enumerate(self.envs):
            obs, rewards[i], terminations[i], truncations[i], info = env.step(actions[i])
            if terminations[i] or truncations[i]:
                infos = self._add_info(infos, {"final_obs": obs, "final_info": info}, i)
                obs, info = env.reset()
            if info:
                infos = self._add_info(infos, info, i)
            self._env_obs[i] = batch[i] = obs
        return (
            batch.copy() if self.copy else batch,
            rewards.copy(),
            terminations.copy(),
            truncations.copy(),
            infos,
        )


class SubEnvAccess(Protocol):
    """What the collector and the trainer use beyond ``gym.vector.VectorEnv``'s declared API: a
    reset with one seed per sub-env, and per-sub-env calls and attributes. gymnasium's Sync and
    Async vector envs (and the batched MuJoCo Warp worlds, for ``call``) have them; the base
    class does not declare them."""

    def reset(self, *, seed: list[int] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every sub-env, sub-env ``i`` with ``seed[i]``."""
        ...

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Call method ``name`` of every sub-env; one result per sub-env."""
        ...

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """Attribute ``name`` of every sub-env."""
        ...

    def set_attr(self, name: str, values: Any) -> None:
        """Set attribute ``name`` of every sub-env (one value per sub-env, or one for all)."""
        ...


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
        self.sub_envs = cast(SubEnvAccess, envs)  # the same object, seen through what it also offers
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

    def reset(self, reset_seed: int | None = None) -> np.ndarray:
        """Reset every sub-env; sub-env i gets seed ``reset_seed + i`` (default: the collector's seed).
        Returns the first observations (also kept as ``obs``)."""
        base = self.seed if reset_seed is None else reset_seed
        obs, _ = self.sub_envs.reset(seed=[base + i for i in range(self.num_envs)])
        self.obs = obs
        # Episodes restart: pending n-step windows must not continue into the new episodes.
        self.accumulator = NStepAccumulator(self.num_envs, self.accumulator.n_step, self.accumulator.gamma)
        self.episode_return[:] = 0.0
        self.episode_length[:] = 0
        return obs

    def random_actions(self) -> np.ndarray:
        """Uniform actions from the collector's own generator (warm-up before learning starts)."""
        return self._random_action(self.rng, self.num_envs)

    def step(
        self, policy: Callable[[np.ndarray], np.ndarray] | None, buffer: ReplayBuffer | None
    ) -> list[dict[str, Any]]:
        """One vector step; ``policy=None`` acts uniformly at random. Returns finished episodes
        as ``{"return": R, "length": L}`` dicts."""
        # This runs once per env step: with a cheap env its own NumPy calls are most of the
        # loop's cost, so each is there once (one reduction per finiteness check, one
        # ``nonzero`` for the finished sub-envs, no per-step arrays that do not change).
        obs = self.reset() if self.obs is None else self.obs
        actions = self.random_actions() if policy is None else np.asarray(policy(obs))
        next_obs, rewards, terminated, truncated, infos = self.envs.step(actions)
        rewards = np.asarray(rewards, dtype=np.float64)
        if self.check_finite:
            _check_env_outputs(next_obs, rewards, self.total_steps)
        terminated = np.asarray(terminated)
        episode_end = np.logical_or(terminated, truncated)
        ended = episode_end.nonzero()[0]  # the sub-envs whose episode ended (usually none)
        stored_next = next_obs
        if len(ended) and "final_obs" in infos:
            stored_next = np.array(next_obs, copy=True)
            for i in ended:
                stored_next[i] = infos["final_obs"][i]
        # Each step's episode lengths are a new array (so the transitions keep theirs).
        step_in_episode = self.episode_length
        self.episode_length = step_in_episode + 1
        finished = self.accumulator.push(
            obs, actions, rewards, stored_next, terminated, episode_end, extras={"step": step_in_episode}
        )
        self.last_transitions = finished
        if finished is not None and buffer is not None:
            buffer.add_batch(finished)
        self.total_steps += self.num_envs
        self.episode_return += rewards
        self.obs = next_obs
        if not len(ended):
            return []
        done_episodes = []
        for i in ended.tolist():
            episode_return, length = float(self.episode_return[i]), int(self.episode_length[i])
            done_episodes.append({"return": episode_return, "length": length})
            self.recent_returns.append(episode_return)
            self.recent_lengths.append(length)
            self.episode_return[i] = 0.0
            self.episode_length[i] = 0
        self.episodes += len(done_episodes)
        return done_episodes

    def env_state_problem(self) -> str | None:
        """Why the sub-envs' state cannot be captured, or None when it can."""
        return next((p for p in self.sub_envs.call("env_state_problem") if p), None)

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
            "env_states": list(self.sub_envs.get_attr("env_state")) if problem is None else None,
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
        self.sub_envs.set_attr("env_state", list(state["env_states"]))  # one state per sub-env
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
    """Raise :class:`NonFiniteError` naming the first sub-env with a NaN/inf reward or observation."""
    # One dot product per array in the common case (a fraction of ``isfinite(x).all()``'s cost
    # on small arrays): x·x is NaN or inf when x holds a NaN or inf. Only then, or when finite
    # values overflow the sum of squares, is each entry checked.
    if not math.isfinite(rewards.dot(rewards)):
        bad = ~np.isfinite(rewards)
        if bad.any():
            raise NonFiniteError(
                f"env {int(np.flatnonzero(bad)[0])} returned a non-finite reward at env step {step}"
            )
    obs = np.asarray(obs)
    if obs.dtype.kind != "f":
        return
    flat = obs.ravel()
    if not math.isfinite(flat.dot(flat)):
        bad = ~np.isfinite(obs).reshape(len(rewards), -1).all(axis=1)
        if bad.any():
            raise NonFiniteError(
                f"env {int(np.flatnonzero(bad)[0])} returned a non-finite observation at env step {step}"
            )
