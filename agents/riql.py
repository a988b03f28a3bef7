"""RIQL: Robust Implicit Q-Learning under diverse data corruption (Yang et al., ICLR 2024).

Paper: https://arxiv.org/abs/2310.12955. Reference code: YangRui2015/RIQL ``RIQL.py`` (cc07d81),
itself built on CORL's IQL. RIQL is IQL plus three robust parts, each switchable here:

* **observation normalization** on ``obs ∪ next_obs`` of the (corrupted) dataset, ``eps = 1e-3``
  (:meth:`RIQL.prepare`; ``act`` applies it too);
* **quantile ensemble estimator**: ``Q_α(s, a)`` = the α-quantile (linear interpolation) over the
  ``K`` *target* critics (:func:`ensemble_estimate`);
* **Huber critic loss** ``H_δ`` with ``δ = 1/σ²`` (:func:`huber_critic_loss`).

One update on ``(s, a, r, s′, d, γ^k)``:

* value: ``L_V = E[|τ − 1{Q_α − V < 0}|·(Q_α − V)²]``, ``τ = expectile``; ``adv = Q_α − V``;
* critic: ``y = clip(r + γ^k(1 − d)·V(s′), −100, 1000)`` (online V), ``L_Q = mean_{k,B} H_δ(y − Q_k)``;
* actor (deterministic, tanh): ``L_π = E[min(exp(β·adv), 100)·‖π(s) − a‖²]``, cosine-annealed lr;
* Polyak ``τ`` on the target critics.

Plain IQL (the baseline): ``n_critics=2, quantile_alpha=None, ensemble_reduction="min",
huber_sigma=None, normalize_obs=False, target_clip=None`` (:data:`IQL_BASELINE`).

Deviations from the paper / official code:

* All three losses are computed from the same pre-update networks and checked for NaN/inf before
  any optimizer step (the official code steps V, then computes Q's target with the new V).
* The K critics are one :class:`~rlrobust.core.networks.EnsembleMLP`, and one backward pass and
  one fused Adam step over three param groups (critic, value, actor) replace three optimizers:
  the losses touch disjoint parameters, so the updates are the same (``tests/agents/test_riql.py``
  checks them against a plain CORL-style loop). Q/V/AWR-weight statistics are computed only at
  log steps (:meth:`RIQL.diagnostics`).
* The actor regresses in the action box mapped to ``[−1, 1]`` (identical for D4RL's ``[−1, 1]``).
* ``act(deterministic=False)`` returns the same deterministic action (RIQL's default policy).
* ``normalize_reward=True`` scales rewards by ``1000/(max − min episode return)`` as IQL's
  locomotion configs do; the card does not state RIQL's own setting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rlrobust.core.agent_base import AgentBase, batched_act, validate_config
from rlrobust.core.losses import expectile_loss
from rlrobust.core.networks import BoxRescale, EnsembleLinear, EnsembleMLP, mlp
from rlrobust.core.optim import adam_step, cosine_lr, fused_adam
from rlrobust.core.targets import frozen_copy, polyak_update
from rlrobust.core.types import TransitionBatch

#: Config overrides that turn RIQL into plain (deterministic-actor) IQL.
IQL_BASELINE: dict[str, Any] = {
    "n_critics": 2,
    "quantile_alpha": None,
    "ensemble_reduction": "min",
    "huber_sigma": None,
    "normalize_obs": False,
    "target_clip": None,
}


# ----------------------------------------------------------------------------- pure functions
def ensemble_estimate(q: torch.Tensor, alpha: float | None, reduction: str = "min") -> torch.Tensor:
    """Reduce ``q (K, B)`` over the ensemble: the α-quantile (linear interpolation) or min/mean.

    ``alpha=0.5`` with odd ``K`` is the median; ``alpha=None`` uses ``reduction``.
    """
    if q.dim() != 2:
        raise ValueError(f"ensemble_estimate needs q (K, B), got {tuple(q.shape)}")
    if alpha is not None:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"quantile alpha must lie in [0, 1], got {alpha}")
        return torch.quantile(q, alpha, dim=0)  # (B,)
    if reduction == "min":
        return q.min(dim=0).values
    if reduction == "mean":
        return q.mean(dim=0)
    raise ValueError(f"unknown ensemble reduction {reduction!r}; valid: 'min', 'mean'")


def huber_delta(sigma: float) -> float:
    """RIQL's ``δ = 1/σ²``: a larger σ is a smaller δ, i.e. a more L1-like loss."""
    if sigma <= 0:
        raise ValueError(f"huber_sigma must be > 0, got {sigma}")
    return 1.0 / sigma**2


def huber_critic_loss(q: torch.Tensor, target: torch.Tensor, sigma: float | None) -> torch.Tensor:
    """Elementwise critic loss ``(K, B)``: ``H_δ(y − Q_k)`` with ``δ = 1/σ²``, or ``(y − Q_k)²`` if σ is None.

    ``H_δ(x) = x²/(2δ)`` if ``|x| < δ`` else ``|x| − δ/2`` (SmoothL1 with ``beta = δ``).

    Args:
        q: ``(K, B)`` the critics' values.
        target: ``(B,)`` the TD target (no gradient flows into it).
    """
    if q.dim() != 2 or target.shape != q.shape[1:]:
        raise ValueError(
            f"huber_critic_loss needs q (K, B) and target (B,), got {tuple(q.shape)}, {tuple(target.shape)}"
        )
    y = target.detach().unsqueeze(0).expand_as(q)
    if sigma is None:
        return (q - y).square()
    return F.smooth_l1_loss(q, y, reduction="none", beta=huber_delta(sigma))


def advantage_weights(adv: torch.Tensor, beta: float, max_weight: float = 100.0) -> torch.Tensor:
    """Advantage-weighted regression weights ``min(exp(β·adv), max_weight)`` (no gradient)."""
    return torch.exp(beta * adv.detach()).clamp(max=max_weight)


def awr_diagnostics(
    weights: torch.Tensor, adv: torch.Tensor, beta: float, max_weight: float
) -> dict[str, float]:
    """Statistics of advantage weights ``w (B,)``: mean, effective sample size fraction
    ``(Σw)²/(B·Σw²)`` (Kish), fraction of samples whose ``exp(β·adv)`` reached ``max_weight``, mean advantage."""
    ess = weights.sum().square() / (weights.numel() * weights.square().sum())
    at_clip = (beta * adv >= math.log(max_weight)).float().mean()
    values = torch.stack([weights.mean(), ess, at_clip, adv.mean()]).tolist()
    return dict(zip(("actor/weight_mean", "actor/weight_ess", "actor/weight_clip_frac", "adv/mean"), values))


# ----------------------------------------------------------------------------- agent
@dataclass
class RIQLConfig:
    """RIQL hyperparameters (defaults: RIQL.py / RIQL_config.py at cc07d81)."""

    learning_rate: float = 3e-4  # critics, value and actor
    batch_size: int = 256
    gamma: float = 0.99
    tau: float = 0.005  # Polyak rate of the target critics
    net_arch: list[int] = field(default_factory=lambda: [256, 256])
    n_critics: int = 5  # ensemble size K
    expectile: float = 0.7  # τ of the value's expectile regression
    beta: float = 3.0  # inverse temperature of the advantage weights
    max_weight: float = 100.0  # cap of exp(β·adv)
    quantile_alpha: float | None = 0.25  # None: use ensemble_reduction
    ensemble_reduction: str = "min"  # "min" | "mean", used when quantile_alpha is None
    huber_sigma: float | None = 1.0  # δ = 1/σ²; None: squared loss
    normalize_obs: bool = True
    obs_norm_eps: float = 1e-3
    target_clip: list[float] | None = field(default_factory=lambda: [-100.0, 1000.0])
    normalize_reward: bool = True  # rewards × 1000/(max − min episode return), set by prepare()
    actor_lr_decay_steps: int | None = 3_000_000  # cosine decay horizon of the actor lr; None: constant


class RIQL(AgentBase):
    """Robust IQL; see the module docstring."""

    name: ClassVar[str] = "riql"
    Config: ClassVar[type] = RIQLConfig
    offline: ClassVar[bool] = True

    def __init__(
        self,
        config: RIQLConfig,
        observation_space: gym.Space,
        action_space: gym.Space,
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        super().__init__(config, observation_space, action_space, device=device, seed=seed)
        obs_dim = self.require_vector_obs(self.name, observation_space)
        low, high = self.require_box_actions(self.name, action_space)
        validate_config(
            "RIQL",
            config,
            [
                (config.ensemble_reduction in ("min", "mean"), "ensemble_reduction must be 'min' or 'mean'"),
                (
                    config.target_clip is None or len(config.target_clip) == 2,
                    "target_clip must be [low, high] or null",
                ),
            ],
        )
        if config.huber_sigma is not None:
            huber_delta(config.huber_sigma)  # validates σ > 0
        act_dim = int(np.prod(action_space.shape))
        self.act_dim = act_dim
        self.action_box = BoxRescale(low, high, self.device)
        with self.seeded_init():
            self.critic = EnsembleMLP(config.n_critics, obs_dim + act_dim, config.net_arch, 1)
            linears = [m for m in self.critic.modules() if isinstance(m, EnsembleLinear)]
            with torch.no_grad():  # EDAC-style init (RIQL's VectorizedQ)
                for layer in linears[:-1]:
                    layer.bias.fill_(0.1)
                linears[-1].weight.uniform_(-3e-3, 3e-3)
                linears[-1].bias.uniform_(-3e-3, 3e-3)
            self.value = mlp(obs_dim, config.net_arch, 1)
            self.actor = mlp(obs_dim, config.net_arch, act_dim)
        self.critic.to(self.device)
        self.value.to(self.device)
        self.actor.to(self.device)
        self.critic_target = frozen_copy(self.critic)
        # Param groups in a fixed order: critic, value, actor (the actor's lr is annealed).
        self.optimizer = fused_adam(
            [{"params": list(m.parameters())} for m in (self.critic, self.value, self.actor)],
            config.learning_rate,
        )
        self.obs_mean = torch.zeros(obs_dim, device=self.device)
        self.obs_std = torch.ones(obs_dim, device=self.device)
        self.reward_scale = 1.0

    # ----------------------------------------------------------------- protocol plumbing
    def networks(self) -> dict[str, nn.Module]:
        return {
            "critic": self.critic,
            "critic_target": self.critic_target,
            "value": self.value,
            "actor": self.actor,
        }

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": self.optimizer}

    def extra_state(self) -> dict[str, Any]:
        return {
            "obs_mean": self.obs_mean.clone(),
            "obs_std": self.obs_std.clone(),
            "reward_scale": self.reward_scale,
        }

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        self.obs_mean = torch.as_tensor(state["obs_mean"], device=self.device).clone()
        self.obs_std = torch.as_tensor(state["obs_std"], device=self.device).clone()
        self.reward_scale = float(state["reward_scale"])

    def prepare(self, dataset: Any) -> None:
        """Set the observation statistics (over ``obs ∪ next_obs``) and reward scale from the dataset."""
        if self.config.normalize_obs:
            both = np.concatenate([dataset.observations, dataset.next_observations]).astype(np.float64)
            self.obs_mean = torch.as_tensor(both.mean(0), dtype=torch.float32, device=self.device)
            self.obs_std = torch.as_tensor(
                both.std(0) + self.config.obs_norm_eps, dtype=torch.float32, device=self.device
            )
        if self.config.normalize_reward:
            from rlrobust.data.dataset import return_range_scale

            self.reward_scale = return_range_scale(dataset)

    # ----------------------------------------------------------------- differentiable views
    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        """Observations normalized with the dataset's statistics (identity without ``normalize_obs``)."""
        return (obs - self.obs_mean) / self.obs_std if self.config.normalize_obs else obs

    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic action in env units for raw observations (differentiable)."""
        return self.action_box.to_box(torch.tanh(self.actor(self.normalize(obs))))

    def q_value(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``Q_α(s, a)`` of the online critics for raw obs/actions, ``(B,)`` (differentiable in the inputs;
        what :func:`rlrobust.data.corrupt` attacks)."""
        q = self.critic(torch.cat([self.normalize(obs), actions], -1)).squeeze(-1)
        return ensemble_estimate(q, self.config.quantile_alpha, self.config.ensemble_reduction)

    @batched_act
    @torch.no_grad()
    def act(self, obs: np.ndarray, *, deterministic: bool = False) -> np.ndarray:
        """The deterministic policy (both modes): ``(B, obs_dim)`` → ``(B, act_dim)``; unbatched → ``(act_dim,)``."""
        return self.policy(self.obs_tensor(obs)).cpu().numpy()

    # ----------------------------------------------------------------- learning
    def _losses(self, batch: TransitionBatch) -> dict[str, torch.Tensor]:
        """The three losses of one update and the intermediates the diagnostics read, all from
        the current networks (the value loss and the actor weights share ``adv``)."""
        cfg = self.config
        obs, next_obs = self.normalize(batch.observations), self.normalize(batch.next_observations)
        actions = batch.actions.reshape(len(batch), self.act_dim)
        sa = torch.cat([obs, actions], -1)
        with torch.no_grad():
            q_target = ensemble_estimate(
                self.critic_target(sa).squeeze(-1), cfg.quantile_alpha, cfg.ensemble_reduction
            )  # (B,)
            y = batch.rewards * self.reward_scale + batch.discounts * (1 - batch.dones) * self.value(
                next_obs
            ).squeeze(-1)
            if cfg.target_clip is not None:
                y = y.clamp(cfg.target_clip[0], cfg.target_clip[1])
        v = self.value(obs).squeeze(-1)  # (B,)
        adv = q_target - v
        q = self.critic(sa).squeeze(-1)  # (K, B)
        per_sample = huber_critic_loss(q, y, cfg.huber_sigma)  # (K, B)
        weights = advantage_weights(adv, cfg.beta, cfg.max_weight)
        target_act = self.action_box.to_unit(actions)
        pi = torch.tanh(self.actor(obs))
        return {
            "loss/value": expectile_loss(adv, cfg.expectile),
            "loss/critic": per_sample.mean(),
            "loss/actor": (weights * (pi - target_act).square().sum(-1)).mean(),
            "per_sample": per_sample,
            "q": q,
            "v": v,
            "adv": adv,
            "weights": weights,
        }

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        """One step of all three networks: the losses touch disjoint parameters (targets and AWR
        weights carry no gradient), so one backward and one fused Adam step over three param
        groups make the same update as three optimizers stepping in turn."""
        cfg = self.config
        out = self._losses(batch)
        losses = {k: out[k] for k in ("loss/value", "loss/critic", "loss/actor")}
        self.check_finite(losses)
        actor_lr = cosine_lr(cfg.learning_rate, self.num_updates, cfg.actor_lr_decay_steps)
        self.optimizer.param_groups[2]["lr"] = actor_lr
        self.optimizer.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        adam_step(self.optimizer)
        polyak_update(self.critic_target, self.critic, cfg.tau)
        self.num_updates += 1

        names, values = list(losses), [v.detach() for v in losses.values()]
        corrupted = batch.extras.get("corrupted") if batch.extras else None
        if corrupted is not None:  # RIQL logs clean and corrupted statistics apart
            mask = corrupted.reshape(-1).bool()
            per_row = out["per_sample"].detach().mean(0)
            for label, rows in (("clean", ~mask), ("corrupted", mask)):
                if rows.any():
                    names.append(f"loss/critic_{label}")
                    values.append(per_row[rows].mean())
        return dict(zip(names, torch.stack(values).tolist())) | {"lr/actor": actor_lr}

    @torch.no_grad()
    def diagnostics(self, batch: TransitionBatch) -> dict[str, float]:
        """Why offline learning fails, on ``batch`` with the current networks (the trainer calls
        this at log steps only): mean Q (online ensemble), V and advantage, and the AWR weights'
        mean, effective sample size ``(Σw)²/(B·Σw²)`` (1: uniform, 1/B: one sample carries the
        batch) and fraction at the ``max_weight`` clip."""
        out = self._losses(batch)
        return awr_diagnostics(out["weights"], out["adv"], self.config.beta, self.config.max_weight) | {
            "q/mean": out["q"].mean().item(),
            "v/mean": out["v"].mean().item(),
        }
