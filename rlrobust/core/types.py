"""The interfaces every rlrobust component agrees on (in the spirit of Acme's ``core.py``).

* :class:`TransitionBatch` — what the replay buffer samples and ``Agent.update`` consumes.
* :class:`CriticOutput` — what every critic returns (d3rlpy's idea): the expected value plus,
  for distributional critics, the quantiles and their fractions, so any agent can take a
  distributional critic.
* :class:`Agent` — the protocol every agent satisfies. Agents never touch environments, files or
  loggers; the trainer does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
import torch


@dataclass(frozen=True)
class TransitionBatch:
    """A batch of (n-step) transitions, tensors on the agent's device.

    Attributes:
        observations: ``(B, *obs_shape)`` float32.
        actions: ``(B, *act_shape)``; int64 ``(B,)`` for discrete actions.
        rewards: ``(B,)`` the discounted sum of the ``k ≤ n`` rewards that were observed.
        next_observations: ``(B, *obs_shape)`` the observation after those ``k`` steps; on a
            time-limit truncation it is the *final* observation, never the reset one.
        dones: ``(B,)`` float 1.0 only if the episode *terminated* within those steps
            (truncations bootstrap, they are not terminal).
        discounts: ``(B,)`` ``γ^k``, the factor in front of the bootstrap value, so the TD target
            is ``rewards + discounts * (1 - dones) * V(next_observations)``.
        extras: optional per-transition tensors (e.g. ``corrupted`` flags of offline datasets).
    """

    observations: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_observations: torch.Tensor
    dones: torch.Tensor
    discounts: torch.Tensor
    extras: Mapping[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    def to(self, device: str | torch.device) -> TransitionBatch:
        """A copy with every tensor (extras included) on ``device``."""
        moved = {f.name: getattr(self, f.name).to(device) for f in fields(self) if f.name != "extras"}
        return TransitionBatch(**moved, extras={k: v.to(device) for k, v in self.extras.items()})


@dataclass(frozen=True)
class CriticOutput:
    """What a critic returns.

    Attributes:
        q: ``(B, A)`` for discrete critics or ``(B,)`` for state-action critics: the expected
            return under the critic's own risk-neutral estimate.
        quantiles: ``(B, N, A)`` / ``(B, N)`` return quantiles, or ``None`` for a mean critic.
        taus: ``(B, N)`` the fractions the quantiles belong to, or ``None``.
        std: ``(B,)`` the return standard deviation of Gaussian critics (DSAC), else ``None``.
    """

    q: torch.Tensor
    quantiles: torch.Tensor | None = None
    taus: torch.Tensor | None = None
    std: torch.Tensor | None = None


@runtime_checkable
class Agent(Protocol):
    """The agent protocol.

    Class attributes:
        name: registry key (``"iqn"``).
        Config: a dataclass, also the Hydra schema of ``conf/agent/<name>.yaml``.
        offline: True if the agent learns from a fixed dataset only.
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    offline: ClassVar[bool]

    num_updates: int

    def act(self, obs: np.ndarray, *, deterministic: bool = False) -> np.ndarray:
        """Actions for a batch of observations ``(B, *obs_shape)`` → ``(B, *act_shape)``;
        an unbatched observation gives an unbatched action (as SB3's ``predict``).

        No gradients; no side effects except advancing the agent's own RNG (exploration).
        """
        ...

    def update(self, batch: Any) -> dict[str, float]:
        """One learning step; returns finite named floats (``loss/critic``, ``q/mean``, …).

        Raises :class:`~rlrobust.core.errors.NonFiniteError` instead of stepping on NaN/inf.
        """
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: networks *and* targets, optimizers, counters,
        running statistics and the agent's RNG state."""
        ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`state_dict`; raises listing missing/unexpected/mis-shaped keys."""
        ...


@dataclass
class TrainingServices:
    """What the trainer hands agents that need more than batches (``agent.attach(services)``).

    Agents declare the services they need in a class attribute ``requires`` (a frozenset of
    the attribute names below); the trainer checks them before step 0 and fails naming what is
    missing.

    Attributes:
        make_env: builds a fresh (possibly perturbable) environment of the task.
        evaluate: Monte-Carlo return of the agent's current policy under the given physical
            parameters (IWOCS's worst-case search).
        suite: the perturbation suite (parameter box) of the run, if any.
        model: ``(P, R)`` tensors of a tabular model when the env exposes one (exact baselines).
        generative_model: ``sample(states, actions, n, generator) -> next_states`` for agents
            that learn from a generative model (robust RVI Q-learning's MLMC estimator).
        total_steps: the run's length (env steps online), for agents whose schedule must fit it.
    """

    make_env: Callable[[], gym.Env] | None = None
    evaluate: Callable[[Mapping[str, float]], float] | None = None
    suite: Any = None
    model: tuple[torch.Tensor, torch.Tensor] | None = None
    generative_model: Any = None
    total_steps: int | None = None
