"""The offline dataset type and its validation.

A :class:`Dataset` is a set of flat one-step transitions, validated *before* anyone sees it, so
``ReplayBuffer.from_dataset`` either gets a complete, finite, consistent dataset or nothing.

Conventions (the ones D4RL/Minari users trip over):

* ``next_observations[i]`` is the observation that really followed ``observations[i]`` in the
  same episode; it never comes from the next episode. On a terminal transition whose successor
  was not recorded (old D4RL files), it is a copy of ``observations[i]``: the TD target masks it.
* ``terminals`` are true terminations only (the agent's ``dones``); a step that is both terminal
  and truncated counts as terminal.
* ``timeouts`` mark the last transition of an episode that ended *without* termination (time
  limit, or the end of the recording). ``terminals | timeouts`` are exactly the episode ends, so
  episode returns can be recovered; ``terminals & timeouts`` is never true.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import gymnasium as gym
import numpy as np

from rlrobust.core.checkpoint import DATASET_ARRAYS, dataset_fingerprint
from rlrobust.core.errors import RlrobustError

ARRAY_FIELDS = DATASET_ARRAYS  # defined in core, where the offline trainer fingerprints them


class DatasetError(RlrobustError, ValueError):
    """A dataset is missing, unreadable, incomplete, non-finite or does not fit the environment."""


@dataclass
class Dataset:
    """Flat one-step transitions of an offline dataset (all arrays share the first dim ``N``).

    Attributes:
        observations: ``(N, *obs_shape)`` float32.
        actions: ``(N, *act_shape)`` float32 (int64 ``(N,)`` for discrete actions).
        rewards: ``(N,)`` float32.
        next_observations: ``(N, *obs_shape)`` float32, never from another episode.
        terminals: ``(N,)`` bool, true terminations only.
        timeouts: ``(N,)`` bool, last step of an episode that ended without termination.
        metadata: ``source``, ``dataset_id``/``path``, ``env_spec`` (JSON string or ``None``),
            ``observation_space``/``action_space`` (gym spaces or ``None``), ``ref_min_score``/
            ``ref_max_score`` (raw-return units) when known, ``corruption`` (list of records).
        extras: per-transition arrays carried into the replay buffer (e.g. ``corrupted`` flags,
            ``info/<key>`` step infos).
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    def copy(self) -> Dataset:
        """A deep copy of every array (metadata dicts are copied one level deep)."""
        return replace(
            self,
            **{k: getattr(self, k).copy() for k in ARRAY_FIELDS},
            metadata={k: (list(v) if isinstance(v, list) else v) for k, v in self.metadata.items()},
            extras={k: v.copy() for k, v in self.extras.items()},
        )

    def fingerprint(self) -> str:
        """16 hex digits identifying the transition arrays and extras (not the metadata): equal for
        a copy, different after any change, e.g. a rebuilt or corrupted dataset under the same id."""
        return dataset_fingerprint(self)

    def episode_ends(self) -> np.ndarray:
        """Indices of the last transition of each episode (the final row always ends one)."""
        ends = self.terminals | self.timeouts
        if len(self) and not ends[-1]:
            ends = ends.copy()
            ends[-1] = True
        return np.flatnonzero(ends)

    def episode_returns(self) -> np.ndarray:
        """Undiscounted return of each episode, ``(num_episodes,)`` float64."""
        ends = self.episode_ends()
        sums = np.cumsum(self.rewards, dtype=np.float64)[ends]
        return np.diff(sums, prepend=0.0)


def _first_bad(x: np.ndarray) -> tuple[int, int]:
    """(count of non-finite values, first offending row)."""
    bad = ~np.isfinite(x)
    rows = bad.reshape(bad.shape[0], -1).any(axis=1) if bad.ndim > 1 else bad
    return int(bad.sum()), int(np.argmax(rows))


def validate(dataset: Dataset, *, source: str = "dataset", allow_nonfinite: bool = False) -> Dataset:
    """Check a :class:`Dataset` fully and normalise dtypes; raise :class:`DatasetError` otherwise.

    Checks: every array present, one common length ``N > 0``, matching observation shapes,
    1-D rewards/terminals/timeouts, never ``terminal & timeout``, and (unless
    ``allow_nonfinite``) finite observations, next observations, actions and rewards (count and
    first row reported).

    Args:
        dataset: the dataset to check.
        source: the path or id, named in error messages.
        allow_nonfinite: accept NaN/inf values (they will reach the agent).

    Returns:
        The same dataset with ``float32`` observations/rewards and ``bool`` flags.
    """
    missing = [k for k in ARRAY_FIELDS if getattr(dataset, k, None) is None]
    if missing:
        raise DatasetError(f"{source}: missing arrays {missing}; a dataset needs all of {list(ARRAY_FIELDS)}")
    arrays = {k: np.asarray(getattr(dataset, k)) for k in ARRAY_FIELDS}
    lengths = {k: (v.shape[0] if v.ndim else -1) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise DatasetError(
            f"{source}: arrays have different lengths {lengths}; all must share the first dim N"
        )
    n = lengths["rewards"]
    if n <= 0:
        raise DatasetError(f"{source}: the dataset holds no transitions (N = {n})")
    for key in ("rewards", "terminals", "timeouts"):
        if arrays[key].ndim == 2 and arrays[key].shape[1] == 1:  # D4RL stores some as (N, 1)
            arrays[key] = arrays[key][:, 0]
        if arrays[key].ndim != 1:
            raise DatasetError(f"{source}: {key} must be (N,) or (N, 1), got shape {arrays[key].shape}")
    if arrays["observations"].shape != arrays["next_observations"].shape:
        raise DatasetError(
            f"{source}: observations {arrays['observations'].shape} and next_observations "
            f"{arrays['next_observations'].shape} differ in shape"
        )
    terminals = arrays["terminals"].astype(bool)
    timeouts = arrays["timeouts"].astype(bool)
    both = terminals & timeouts
    if both.any():
        raise DatasetError(
            f"{source}: {int(both.sum())} transitions (first at row {int(np.argmax(both))}) are both terminal "
            "and timeout; a step that terminates counts as terminal only (set its timeout to False)"
        )
    floats: tuple[str, ...] = ("observations", "next_observations", "rewards")
    if np.issubdtype(arrays["actions"].dtype, np.floating):
        floats += ("actions",)
    if not allow_nonfinite:
        for key in floats:
            count, row = _first_bad(arrays[key].astype(np.float64, copy=False))
            if count:
                raise DatasetError(
                    f"{source}: {count} non-finite values (NaN/inf) in {key}, first at row {row}; "
                    "clean the data or pass allow_nonfinite=True (dataset.allow_nonfinite=true on the command line)"
                )
    for key, value in dataset.extras.items():
        if np.asarray(value).shape[:1] != (n,):
            raise DatasetError(
                f"{source}: extras[{key!r}] has shape {np.shape(value)}, expected first dim {n}"
            )
    out = replace(
        dataset,
        observations=arrays["observations"].astype(np.float32, copy=False),
        next_observations=arrays["next_observations"].astype(np.float32, copy=False),
        actions=(
            arrays["actions"].astype(np.float32, copy=False)
            if np.issubdtype(arrays["actions"].dtype, np.floating)
            else arrays["actions"].astype(np.int64, copy=False)
        ),
        rewards=arrays["rewards"].astype(np.float32, copy=False),
        terminals=terminals,
        timeouts=timeouts,
    )
    return out


def _describe(space: Any, shape: tuple[int, ...]) -> str:
    return str(space) if space is not None else f"(not stored; arrays have shape {shape})"


def check_spaces(dataset: Dataset, observation_space: gym.Space[Any], action_space: gym.Space[Any]) -> None:
    """Raise :class:`DatasetError` if the dataset does not fit an environment's spaces.

    Compares kinds and shapes (Box vs Discrete, ``(obs_dim,)``, ``(act_dim,)``) and checks that
    every dataset action lies inside a Box action space (1e-5 tolerance). Both spaces are shown.
    """
    obs_shape = tuple(dataset.observations.shape[1:])
    act_shape = tuple(dataset.actions.shape[1:])
    ds_obs = dataset.metadata.get("observation_space")
    ds_act = dataset.metadata.get("action_space")
    problems: list[str] = []
    if tuple(observation_space.shape or ()) != obs_shape:
        problems.append(
            f"observation space: dataset {_describe(ds_obs, obs_shape)} vs env {observation_space}"
        )
    if isinstance(action_space, gym.spaces.Discrete):
        if act_shape != () or (isinstance(ds_act, gym.spaces.Discrete) and ds_act.n != action_space.n):
            problems.append(f"action space: dataset {_describe(ds_act, act_shape)} vs env {action_space}")
    elif isinstance(action_space, gym.spaces.Box):
        if tuple(action_space.shape) != act_shape:
            problems.append(f"action space: dataset {_describe(ds_act, act_shape)} vs env {action_space}")
        else:
            tol = 1e-5
            outside = (dataset.actions < action_space.low - tol) | (dataset.actions > action_space.high + tol)
            rows = outside.reshape(len(dataset), -1).any(axis=1)
            if rows.any():
                problems.append(
                    f"{int(rows.sum())} dataset actions (first at row {int(np.argmax(rows))}) lie outside the env "
                    f"action space {action_space} (dataset action range [{dataset.actions.min():.4g}, "
                    f"{dataset.actions.max():.4g}], dataset space {_describe(ds_act, act_shape)})"
                )
    if problems:
        source = dataset.metadata.get("dataset_id") or dataset.metadata.get("path") or "dataset"
        raise DatasetError(f"{source} does not fit the environment: " + "; ".join(problems))


def return_range_scale(dataset: Dataset, target: float = 1000.0) -> float:
    """IQL/IDQL's locomotion reward scale ``target / (max − min episode return)``.

    Multiplying rewards by it makes the spread of episode returns exactly ``target`` (1.0 when
    all episodes have the same return).
    """
    returns = dataset.episode_returns()
    spread = float(returns.max() - returns.min())
    return target / spread if spread > 0 else 1.0
