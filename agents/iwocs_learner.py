"""IWOCS's inner learner: DSAC plus the two heads of the paper's "enhanced critic".

IWOCS: Zouitine, Geist, Rachelson, arXiv 2410.06212 (deep variant, §5 and Appendices F-H).
:class:`~rlrobust.agents.iwocs.IWOCS` holds one :class:`IWOCSLearner` per parameter point; each
one is DSAC (``agents/dsac.py``) plus, each with its own Adam (ε = 1e-5):

* an unregularised twin Q: ``L = Σ_k mean[(Q_k(s,a) − y)²]``, ``y = r + γ^k(1−d)·min_k Q̄_k(s′, π(s′))``
  (``π(s′)`` the actor's mean action, ``Q̄`` Polyak targets; :func:`unregularized_q_target`),
  which ranks the learners when the robust policy acts;
* a dynamics twin ``T̂(s,a) = s + f(s,a)``: ``L = Σ_k mean|T̂_k(s,a) − s′|``, whose one-step
  prediction error (:func:`gating_error`) decides which learners are valid at a state.

A module of its own so that ``agents/iwocs.py`` holds the meta-agent (search, gating, schedule)
and this one the per-point learning step.
"""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlrobust.agents.dsac import DSAC, DSACConfig
from rlrobust.core.networks import EnsembleMLP
from rlrobust.core.seeding import spawn_seeds
from rlrobust.core.targets import frozen_copy, polyak_update
from rlrobust.core.types import TransitionBatch


# ----------------------------------------------------------------------------- pure functions
def gating_error(
    predicted: torch.Tensor, observed: torch.Tensor, scale: torch.Tensor | None = None
) -> torch.Tensor:
    """One-step prediction error of a dynamics model, the quantity IWOCS's gate compares with ρ.

    Args:
        predicted, observed: ``(..., obs_dim)`` predicted and observed next states.
        scale: ``(obs_dim,)`` per-dimension spread of the state changes, or None.

    Returns:
        ``(...)``: with ``scale`` None the raw L1 error ``Σ_d |ŝ_d − s_d|`` (the paper's), else the
        unit-free ``mean_d |ŝ_d − s_d| / scale_d``.
    """
    error = (predicted - observed).abs()
    return error.sum(dim=-1) if scale is None else (error / scale).mean(dim=-1)


def unregularized_q_target(
    rewards: torch.Tensor, discounts: torch.Tensor, dones: torch.Tensor, next_q: torch.Tensor
) -> torch.Tensor:
    """``y = r + γ^k(1 − d)·min_k Q̄_k(s′, π(s′))`` — no entropy term; ``next_q`` is ``(K, B)``, the rest ``(B,)``."""
    if next_q.dim() != 2 or any(t.shape != next_q.shape[1:] for t in (rewards, discounts, dones)):
        raise ValueError(
            f"need next_q (K, B) and rewards/discounts/dones (B,), got {tuple(next_q.shape)}, "
            f"{tuple(rewards.shape)}, {tuple(discounts.shape)}, {tuple(dones.shape)}"
        )
    return rewards + discounts * (1.0 - dones) * next_q.min(dim=0).values


# ----------------------------------------------------------------------------- inner learner
class IWOCSLearner(DSAC):
    """DSAC plus the unregularised twin Q and the dynamics twin of the paper's enhanced critic."""

    name: ClassVar[str] = "iwocs"

    def __init__(
        self,
        config: DSACConfig,
        observation_space: gym.Space,
        action_space: gym.Space,
        *,
        device: str | torch.device,
        seed: int,
        head_learning_rate: float,
    ) -> None:
        super().__init__(config, observation_space, action_space, device=device, seed=seed)
        obs_dim, act_dim = int(observation_space.shape[0]), int(np.prod(action_space.shape))
        arch = config.net_arch if isinstance(config.net_arch, list) else config.net_arch["qf"]
        self._init_seed = spawn_seeds(self._init_seed, 1)[0]  # heads get their own init stream
        with self.seeded_init():
            self.q_head = EnsembleMLP(2, obs_dim + act_dim, arch, 1, act=config.activation).to(self.device)
            self.dynamics = EnsembleMLP(2, obs_dim + act_dim, arch, obs_dim, act=config.activation).to(
                self.device
            )
        self.q_head_target = frozen_copy(self.q_head)
        self.q_optimizer = torch.optim.Adam(self.q_head.parameters(), lr=head_learning_rate, eps=1e-5)
        self.dynamics_optimizer = torch.optim.Adam(
            self.dynamics.parameters(), lr=head_learning_rate, eps=1e-5
        )
        # Running first and second moments of the state change s′ − s over the batches trained on
        # (the average over batches: an estimate of the spread in this learner's replay).
        self.delta_moments = torch.zeros(2, obs_dim, device=self.device)
        self.delta_batches = 0

    @property
    def delta_scale(self) -> torch.Tensor:
        """``(obs_dim,)`` std of each dimension's state change in the training data (floored at 1e-6)."""
        mean, second = self.delta_moments
        return (second - mean.pow(2)).clamp(min=0.0).sqrt().clamp(min=1e-6)

    def mean_action(self, obs: torch.Tensor) -> torch.Tensor:
        """The deterministic (mean) action ``(B, act_dim)`` in the action box."""
        return self.actor.mean_action(obs)

    def unregularized_q(self, obs: torch.Tensor, actions: torch.Tensor, target: bool = False) -> torch.Tensor:
        """Twin unregularised Q ``(2, B)``."""
        net = self.q_head_target if target else self.q_head
        return net(torch.cat([obs, actions.reshape(obs.shape[0], -1)], dim=-1)).squeeze(-1)

    def predict_next(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Twin next-state predictions ``(2, B, obs_dim)``."""
        return obs + self.dynamics(torch.cat([obs, actions.reshape(obs.shape[0], -1)], dim=-1))

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        obs, next_obs, actions = (
            batch.observations.float(),
            batch.next_observations.float(),
            batch.actions.float(),
        )
        with torch.no_grad():
            next_q = self.unregularized_q(next_obs, self.mean_action(next_obs), target=True)
            y = unregularized_q_target(
                batch.rewards.float(), batch.discounts.float(), batch.dones.float(), next_q
            )
        q = self.unregularized_q(obs, actions)
        heads = {
            "loss/q_unregularized": (q - y).pow(2).mean(dim=1).sum(),
            "loss/dynamics": (self.predict_next(obs, actions) - next_obs).abs().mean(dim=(1, 2)).sum(),
        }
        self.check_finite(heads)  # before any step, DSAC's included
        with torch.no_grad():
            delta = next_obs - obs
            self.delta_batches += 1
            moments = torch.stack([delta.mean(dim=0), delta.pow(2).mean(dim=0)])
            self.delta_moments += (moments - self.delta_moments) / self.delta_batches
        metrics = super().update(batch)
        self.q_optimizer.zero_grad(set_to_none=True)
        self.dynamics_optimizer.zero_grad(set_to_none=True)
        (heads["loss/q_unregularized"] + heads["loss/dynamics"]).backward()
        self.q_optimizer.step()
        self.dynamics_optimizer.step()
        polyak_update(self.q_head_target, self.q_head, self.config.tau)
        metrics.update({k: float(v.detach()) for k, v in heads.items()})
        metrics["q/unregularized_mean"] = float(q.detach().mean())
        return metrics

    def networks(self) -> dict[str, nn.Module]:
        return {
            **super().networks(),
            "q_head": self.q_head,
            "q_head_target": self.q_head_target,
            "dynamics": self.dynamics,
        }

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {**super().optimizers(), "q_adam": self.q_optimizer, "dynamics_adam": self.dynamics_optimizer}
