"""The data every rlrobust component exchanges.

* :class:`TransitionBatch` — what the replay buffer samples and ``Agent.update`` consumes.
* :class:`CriticOutput` — a learned return distribution: the expected value plus the quantiles
  and their fractions (IQN's critic, ``IQN.value_distribution``) or the std of a Gaussian
  (``DSAC.value_distribution``).
* :class:`TrainingServices` — what the trainer hands an agent that needs more than batches.

The agent contract itself (the required :class:`~rlrobust.core.interfaces.Agent` protocol and
every optional hook the trainer may call) is :mod:`rlrobust.core.interfaces`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

import gymnasium as gym
import torch


class PolicyEvaluator(Protocol):
    """``TrainingServices.evaluate``: the agent's current policy evaluated under ``params``."""

    def __call__(
        self, params: Mapping[str, float], episodes: int = 5, return_std: bool = False
    ) -> float | tuple[float, float]:
        """Mean return over ``episodes`` (``(mean, std)`` with ``return_std``)."""
        ...


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
    """A learned return distribution, as the agents that learn one return it (``value_distribution``).

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
    evaluate: PolicyEvaluator | None = None
    suite: Any = None
    model: tuple[torch.Tensor, torch.Tensor] | None = None
    generative_model: Any = None
    total_steps: int | None = None
