"""Replay buffer with device-resident tensors, and the n-step accumulator that feeds it.

The buffer stores *finished* (possibly n-step) transitions ``(s, a, R, s', done, γ^k)``; the
:class:`NStepAccumulator` turns the raw one-step stream of each vector sub-env into those, so the
buffer itself stays a plain circular array and sampling is two tensor ops.

Time limits are handled the way the TD target needs them:

* ``done`` is 1 only on *termination*; a truncated episode still bootstraps;
* the stored next observation on truncation is the final observation of the episode, never the
  observation of the next episode's reset (the collector passes the right one in);
* an n-step window never crosses an episode boundary: at an episode end the pending windows are
  flushed with ``k < n`` rewards and discount ``γ^k``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from rlrobust.core.errors import ConfigError
from rlrobust.core.seeding import torch_generator
from rlrobust.core.types import TransitionBatch

_FIELDS = ("observations", "actions", "rewards", "next_observations", "dones", "discounts")
#: the scalar fields, stored (and handed to agents) as float32 whatever dtype arrives
FLOAT32_FIELDS = ("rewards", "dones", "discounts")


class ReplayBuffer:
    """A circular buffer of transitions held as tensors on ``device``, sampled uniformly.

    Storage is allocated on the first :meth:`add` (shapes and dtypes come from the data), so the
    same class serves vector observations, integer (tabular) observations and discrete or
    continuous actions.

    Args:
        capacity: maximum number of transitions; the oldest are overwritten first (FIFO).
        device: where the tensors live (``"cuda"`` keeps sampling on the GPU).
        seed: seed of the buffer's own sampling generator.
    """

    def __init__(self, capacity: int, *, device: str | torch.device = "cpu", seed: int = 0) -> None:
        if capacity <= 0:
            raise ConfigError(f"replay capacity must be a positive integer, got {capacity}")
        self.capacity = int(capacity)
        self.device = torch.device(device)
        self.generator = torch_generator(seed, self.device)
        self.storage: dict[str, torch.Tensor] = {}
        self._host: dict[str, np.ndarray] = {}
        self._idx = torch.empty(0, dtype=torch.int64, device=self.device)  # sample's positions
        self.pos = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def _allocate(self, batch: Mapping[str, torch.Tensor]) -> None:
        self._host = {}
        for key, value in batch.items():
            # Floating data is stored as float32 (MuJoCo observations arrive as float64): the
            # networks run in float32, and it halves the memory. The scalar fields are float32
            # whatever arrives (the collector hands over the env's float64 rewards and boolean
            # terminations as they are; the row write casts them).
            scalar = key in FLOAT32_FIELDS
            dtype = torch.float32 if scalar or value.is_floating_point() else value.dtype
            shape = (self.capacity, *value.shape[1:])
            if self.device.type == "cpu":
                # On CPU the tensors are views of NumPy arrays: one env step's rows are written
                # through NumPy (far less per-call overhead than torch indexing), sampled by torch.
                array = np.zeros(shape, dtype=torch.empty((), dtype=dtype).numpy().dtype)
                self._host[key] = array
                self.storage[key] = torch.from_numpy(array)
            else:
                self.storage[key] = torch.zeros(shape, dtype=dtype, device=self.device)

    def add(self, **batch: np.ndarray | torch.Tensor) -> None:
        """Append a batch of E transitions; keys are the :class:`TransitionBatch` fields
        (``observations, actions, rewards, next_observations, dones, discounts``) plus any extras
        (e.g. ``step``), each with leading dimension E."""
        self.add_batch(batch)

    def add_batch(self, batch: Mapping[str, np.ndarray | torch.Tensor]) -> None:
        """:meth:`add` with the fields as one mapping (the collector's per-step call: no
        keyword re-packing)."""
        # Called once per env step: the fields are checked in full only on the first add and
        # when their number differs; otherwise a key the storage lacks fails its row write
        # below (as many keys as the storage and every one found: the same fields).
        if not self.storage or len(batch) != len(self.storage):
            self._check_fields(batch)
        try:
            self._write(batch)
        except KeyError:
            self._check_fields(batch)
            raise

    def _check_fields(self, batch: Mapping[str, np.ndarray | torch.Tensor]) -> None:
        """Allocate the storage on the first add; raise ``ValueError`` naming the fields when the
        batch does not hold exactly the fields the storage holds."""
        missing = set(_FIELDS) - set(batch)
        if missing:
            raise ValueError(f"ReplayBuffer.add is missing fields {sorted(missing)}")
        if not self.storage:
            self._allocate({k: torch.as_tensor(v) for k, v in batch.items()})
        if batch.keys() != self.storage.keys():
            raise ValueError(
                f"ReplayBuffer.add got fields {sorted(batch)}, buffer holds {sorted(self.storage)}"
            )

    def _write(self, batch: Mapping[str, np.ndarray | torch.Tensor]) -> None:
        n = int(len(batch["rewards"]))
        host, pos = self._host, self.pos
        if host and pos + n <= self.capacity:  # the common case: contiguous rows, CPU
            rows = slice(pos, pos + n)
            for key, value in batch.items():
                host[key][rows] = value
            self.pos = (pos + n) % self.capacity
            self.size = min(self.size + n, self.capacity)
            return
        tensors = {k: torch.as_tensor(v) for k, v in batch.items()}
        if n > self.capacity:  # only the newest `capacity` rows can survive anyway
            tensors = {k: v[-self.capacity :] for k, v in tensors.items()}
            n = self.capacity
        if self.pos + n <= self.capacity:  # contiguous: slice copies (cheaper than index_put)
            for key, value in tensors.items():
                self.storage[key][self.pos : self.pos + n] = value
        else:
            idx = (self.pos + torch.arange(n, device=self.device)) % self.capacity
            for key, value in tensors.items():
                self.storage[key][idx] = value.to(self.device, self.storage[key].dtype)
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def clear(self) -> None:
        """Forget every transition (storage is kept and reused)."""
        self.pos = self.size = 0

    def sample(self, batch_size: int) -> TransitionBatch:
        """A uniform sample (with replacement) from the buffer's own seeded generator."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        # into a kept index tensor (randint's out=: the same draws, no allocation per sample;
        # gather only reads it)
        if self._idx.shape != (batch_size,):
            self._idx = torch.empty(batch_size, dtype=torch.int64, device=self.device)
        idx = torch.randint(0, self.size, (batch_size,), generator=self.generator, out=self._idx)
        return self.gather(idx)

    def gather(self, idx: torch.Tensor) -> TransitionBatch:
        """The transitions at buffer positions ``idx`` as a :class:`TransitionBatch`."""
        if self._host:
            # CPU: NumPy's take on the host arrays (the same rows as index_select, for a
            # fraction of the per-call cost of a torch op).
            rows = idx.numpy()
            taken = {k: torch.from_numpy(v.take(rows, axis=0)) for k, v in self._host.items()}
        else:
            taken = {k: v.index_select(0, idx) for k, v in self.storage.items()}
        extras = {k: v for k, v in taken.items() if k not in _FIELDS}
        return TransitionBatch(**{k: taken[k] for k in _FIELDS}, extras=extras)

    @classmethod
    def from_dataset(
        cls, dataset: Any, *, gamma: float, device: str | torch.device = "cpu", seed: int = 0
    ) -> ReplayBuffer:
        """A buffer holding a whole offline dataset (one-step transitions, discount ``gamma``).

        ``dataset`` has numpy arrays ``observations, actions, rewards, next_observations,
        terminals`` (validated by :mod:`rlrobust.data` before it gets here) and optionally a
        dict ``extras`` of per-transition arrays (e.g. ``corrupted`` flags).
        """
        n = len(dataset.rewards)
        buffer = cls(max(n, 1), device=device, seed=seed)
        extras = dict(getattr(dataset, "extras", None) or {})
        buffer.add(
            observations=np.asarray(dataset.observations, dtype=np.float32),
            actions=np.asarray(dataset.actions, dtype=np.float32),
            rewards=np.asarray(dataset.rewards, dtype=np.float32).reshape(n),
            next_observations=np.asarray(dataset.next_observations, dtype=np.float32),
            dones=np.asarray(dataset.terminals, dtype=np.float32).reshape(n),
            discounts=np.full(n, gamma, dtype=np.float32),
            **{k: np.asarray(v) for k, v in extras.items()},
        )
        return buffer

    def state_dict(self) -> dict[str, Any]:
        """The filled part of the storage, the write position and the sampler's RNG state."""
        return {
            "capacity": self.capacity,
            "pos": self.pos,
            "size": self.size,
            "storage": {k: v[: self.size].clone().cpu() for k, v in self.storage.items()},
            "rng": self.generator.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`state_dict`; the capacity must match."""
        if int(state["capacity"]) != self.capacity:
            raise ConfigError(
                f"replay capacity {self.capacity} differs from the checkpoint's {state['capacity']}"
            )
        self.storage = {}
        if state["storage"]:
            self._allocate({k: v for k, v in state["storage"].items()})
            for key, value in state["storage"].items():
                self.storage[key][: len(value)] = value.to(self.device)
        self.pos, self.size = int(state["pos"]), int(state["size"])
        self.generator.set_state(state["rng"])


class NStepAccumulator:
    """Turns per-env one-step transitions into n-step transitions (one window per sub-env).

    For ``n = 1`` it is a pass-through: rewards and terminations are handed on as the env
    returned them (float64, bool; :class:`ReplayBuffer` stores them as float32, and a cast per
    step would be a measurable share of a cheap env's loop). For ``n > 1`` the transition
    starting at ``t`` is emitted once ``n`` rewards are known, or earlier when the episode ends
    (terminated: ``done = 1``; truncated: bootstrap from the final observation with ``γ^k``).
    """

    def __init__(self, num_envs: int, n_step: int, gamma: float) -> None:
        if n_step < 1:
            raise ConfigError(f"n_step must be >= 1, got {n_step}")
        self.n_step, self.gamma = int(n_step), float(gamma)
        # Per env: the last n steps as (obs, action, reward, extras) tuples.
        self.windows: list[deque[tuple[Any, ...]]] = [deque() for _ in range(num_envs)]
        # The one-step discounts are the same every step: every batch hands out this one array
        # instead of a copy (nothing writes to it: the buffer copies it into its storage,
        # on-policy batches are concatenated, checkpoints pickle it).
        self._discounts = np.full(num_envs, self.gamma, dtype=np.float32)

    def push(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        episode_end: np.ndarray,
        extras: Mapping[str, np.ndarray] | None = None,
    ) -> dict[str, np.ndarray] | None:
        """Feed one vector step; returns the finished transitions (dict of arrays) or None."""
        extras = extras or {}
        num_envs = len(rewards)
        if self.n_step == 1:
            discounts = self._discounts
            if len(discounts) != num_envs:
                discounts = np.full(num_envs, self.gamma, np.float32)
            return {
                "observations": obs,
                "actions": actions,
                "rewards": rewards,
                "next_observations": next_obs,
                "dones": terminated,
                "discounts": discounts,
                **extras,
            }
        out: list[dict[str, Any]] = []
        for e in range(num_envs):
            window = self.windows[e]
            window.append((obs[e], actions[e], float(rewards[e]), {k: v[e] for k, v in extras.items()}))
            if len(window) == self.n_step or episode_end[e]:
                # emit the oldest window (full) or, at an episode end, every pending one
                while window and (len(window) == self.n_step or episode_end[e]):
                    out.append(self._emit(window, next_obs[e], bool(terminated[e])))
                    window.popleft()
        if not out:
            return None
        return {k: np.stack([o[k] for o in out]) for k in out[0]}

    def _emit(self, window: deque[tuple[Any, ...]], next_obs: np.ndarray, terminated: bool) -> dict[str, Any]:
        ret, discount = 0.0, 1.0
        for _, _, r, _ in window:
            ret += discount * r
            discount *= self.gamma
        obs, action, _, extras = window[0]
        return {
            "observations": obs,
            "actions": action,
            "rewards": np.float32(ret),
            "next_observations": next_obs,
            "dones": np.float32(terminated),
            "discounts": np.float32(discount),
            **extras,
        }

    def state_dict(self) -> dict[str, Any]:
        """The pending n-step windows of every sub-env."""
        return {"windows": [list(w) for w in self.windows]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        self.windows = [deque(w) for w in state["windows"]]
