"""DR-RPO: Distributionally Robust Regularized Policy Optimization on d-rectangular linear MDPs.

Paper: Gu, He, Liu, Xu, "Distributionally Robust Regularized Policy Optimization", arXiv
2510.14246 (2025). Only its abstract was available: online, model-free policy optimisation over
softmax policies, with reference-policy (KL) regularisation, d-rectangular linear MDPs, linear
function approximation and a UCB bonus. **The update below is a reconstruction**
from the d-rectangular TV machinery of Liu & Xu (AISTATS 2024) plus KL-regularised mirror
descent, not a transcription of the paper's Algorithm 1.

Model: episodic, horizon H; known features φ(s, a) ∈ Δ_d; nominal kernel Σ_i φ_i(s, a) μ_i; the
uncertainty set replaces each factor μ_i by any μ'_i with TV(μ'_i, μ_i) ≤ ρ. Regularised robust
value: ``V_h(s) = ⟨π_h(·|s), Q_h(s, ·)⟩ − β KL(π_h(·|s) ‖ π_ref(·|s))``.

Per update (one "episode" k of the paper; here: the transitions collected since the last update),
for h = H−1 … 0 on all data so far:

1. ``Λ_h = Σ_τ φ_τ φ_τᵀ + λI``, ``θ̂_h = Λ_h⁻¹ Σ_τ φ_τ r_τ``.
2. ``ẑ_h(α) = Λ_h⁻¹ Σ_τ φ_τ min(V_{h+1}(s'_τ), α)`` and, per coordinate i (d-rectangularity),
   ``ν̂_{h,i} = max_α ẑ_{h,i}(α) − ρ(α − min_s V_{h+1}(s))`` — the TV dual of Iyengar (2005), as in :mod:`rlrobust.robust`. ẑ is piecewise
   linear in α with kinks only at values of V_{h+1}, so maximising over α ∈ {V_{h+1}(s)} is exact.
3. ``Q_h = min{φᵀ(θ̂_h + ν̂_h) + Γ_h, (H − h)·r_max}``, ``Γ_h(s, a) = b·(H − h)·r_max·Σ_i φ_i √(Λ_h⁻¹)_ii``.
4. ``V_h`` as above under the current policy π^k (policy evaluation, OPPO style).
5. Mirror descent: ``π^{k+1}_h ∝ [π^k_h · π_ref^{ηβ} · exp(η Q_h)]^{1/(1+ηβ)}``, whose fixed point is
   the regularised greedy policy ``π ∝ π_ref exp(Q/β)``.

Deviations / choices (the paper could not be checked):
* Everything in steps 1–5 is a reconstruction (see above); β, η, b, λ defaults are ours.
* The bonus is scaled by the value range (H − h)·r_max, so b is dimensionless and an unvisited
  pair starts at the optimistic cap once b ≥ √λ (theory's β ∝ dH is far more conservative).
* min_s V_{h+1}(s) is computed exactly over the finite state space (prior work assumes a fail
  state with V = 0 to avoid it), so observations must be ``Discrete`` state indices.
* Data are kept as sufficient statistics: counts N_h(s, a, s') and reward sums per (h, s, a) — exact,
  since φ depends on (s, a) only — instead of one (w, Λ⁻¹) per past episode.
* π⁰ is π_ref with a 1e-6 random perturbation of the logits (random tie-breaking).
* Policies are softmax tables (H, S, A) of logits: the truncation in step 3 makes Q non-linear in φ,
  so the mirror-descent iterates are not a linear policy class anyway.
* ``act`` has no step index: it counts its own calls modulo H (episodes of exactly H steps, all
  vector envs aligned, as the collector runs them) and resynchronises from ``extras["step"]`` at
  every update.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlrobust.core.agent_base import AgentBase, batched_act, validate_config
from rlrobust.core.errors import ConfigError
from rlrobust.core.types import TransitionBatch


@dataclass
class DRRPOConfig:
    """Hyperparameters (our choices: the paper's values were not retrieved)."""

    horizon: int = 10  #: H
    radius: float = 0.1  #: ρ, TV radius of each factor, in [0, 1]
    regularization: float = 0.01  #: β, weight of KL(π ‖ π_ref)
    learning_rate: float = 1.0  #: η, mirror-descent step size
    ridge: float = 1.0  #: λ of Λ_h
    bonus_coef: float = 0.5  #: b of the UCB bonus, relative to the value range (H − h)·r_max
    reward_max: float = 1.0  #: rewards in [0, reward_max]; Q_h ≤ (H − h)·reward_max
    features: list | None = None  #: (S, A, d) features φ; None = one-hot (d = S·A)
    reference_policy: list | None = None  #: (S, A) π_ref; None = uniform
    train_freq: int = 10
    gradient_steps: int = 1
    learning_starts: int = 0


def d_rectangular_robust_q(
    phi: torch.Tensor,
    counts: torch.Tensor,
    reward_sums: torch.Tensor,
    v_next: torch.Tensor,
    *,
    radius: float,
    ridge: float,
    bonus_coef: float,
    cap: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Optimistic robust Q of one step from least squares (steps 1–3 of the module docstring).

    Args:
        phi: ``(SA, d)`` features of every (s, a) pair.
        counts: ``(SA, S)`` transition counts N(s, a, s') at this step.
        reward_sums: ``(SA,)`` summed rewards observed at each pair at this step.
        v_next: ``(S,)`` value of the next step.
        radius, ridge, bonus_coef, cap: ρ, λ, b and the truncation level (H − h)·r_max.

    Returns:
        ``(q (SA,), bonus (SA,))``.
    """
    SA, d = phi.shape
    if counts.shape != (SA, v_next.shape[0]) or reward_sums.shape != (SA,):
        raise ValueError(
            f"counts {tuple(counts.shape)} must be (SA, S) = ({SA}, {v_next.shape[0]}) and "
            f"reward_sums {tuple(reward_sums.shape)} must be ({SA},)"
        )
    n = counts.sum(-1)  # visits per pair
    gram = phi.T @ (n.unsqueeze(-1) * phi) + ridge * torch.eye(d, dtype=phi.dtype, device=phi.device)
    gram_inv = torch.linalg.inv(gram)
    theta = gram_inv @ (phi.T @ reward_sums)  # (d,)
    alphas = v_next  # the kinks of ẑ(α): every value of V_{h+1}
    clipped = torch.minimum(v_next.unsqueeze(1), alphas.unsqueeze(0))  # (S', G): min(V(s'), α_g)
    z = gram_inv @ (phi.T @ (counts @ clipped))  # (d, G)
    nu = (z - radius * (alphas - v_next.min()).unsqueeze(0)).max(-1).values  # (d,)
    # b is relative to the value range (cap): an unvisited pair starts fully optimistic at b ≥ √λ.
    bonus = bonus_coef * cap * (phi * torch.sqrt(torch.diagonal(gram_inv)).unsqueeze(0)).sum(-1)
    q = (phi @ (theta + nu) + bonus).clamp(max=cap)
    return q, bonus


def mirror_descent_step(
    logits: torch.Tensor, q: torch.Tensor, log_ref: torch.Tensor, learning_rate: float, regularization: float
) -> torch.Tensor:
    """KL-regularised mirror descent on softmax logits (step 5), returned log-normalised.

    ``log π' = (log π + ηβ log π_ref + η Q)/(1 + ηβ) − log Z``; shapes ``(..., A)``.
    """
    eb = learning_rate * regularization
    new = (torch.log_softmax(logits, -1) + eb * log_ref + learning_rate * q) / (1.0 + eb)
    return torch.log_softmax(new, -1)


class PolicyTable(nn.Module):
    """Softmax policy logits per (step, state); no gradients (updated by mirror descent)."""

    def __init__(self, horizon: int, n_states: int, n_actions: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(
            torch.zeros(horizon, n_states, n_actions, dtype=torch.float64), requires_grad=False
        )


class DRRPO(AgentBase):
    """DR-RPO; see the module docstring."""

    name: ClassVar[str] = "dr_rpo"
    Config: ClassVar[type] = DRRPOConfig
    offline: ClassVar[bool] = False
    batch_source: ClassVar[str] = "fresh"

    def __init__(
        self,
        config: DRRPOConfig,
        observation_space: gym.Space,
        action_space: gym.Space,
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        super().__init__(config, observation_space, action_space, device=device, seed=seed)
        S = self.require_discrete_obs(self.name, observation_space)
        A = self.require_discrete_actions(self.name, action_space)
        H = int(config.horizon)
        validate_config(
            "DR-RPO",
            config,
            [
                (H >= 1, "horizon must be >= 1"),
                (0.0 <= config.radius <= 1.0, "radius must lie in [0, 1]"),
                (config.regularization >= 0, "regularization must be >= 0"),
                (config.learning_rate > 0, "learning_rate must be > 0"),
                (config.ridge > 0, "ridge must be > 0"),
                (config.bonus_coef >= 0, "bonus_coef must be >= 0"),
            ],
        )
        self.n_states, self.n_actions, self.horizon = S, A, H
        if config.features is None:
            phi = np.eye(S * A).reshape(S, A, S * A)
        else:
            phi = np.asarray(config.features, dtype=np.float64)
            if (
                phi.ndim != 3
                or phi.shape[:2] != (S, A)
                or np.any(phi < 0)
                or not np.allclose(phi.sum(-1), 1.0, atol=1e-6)
            ):
                raise ConfigError(
                    f"features must be an (S, A, d) = ({S}, {A}, d) array of non-negative rows summing "
                    f"to 1 (d-rectangular linear MDP); got shape {phi.shape}"
                )
        self.phi = torch.as_tensor(phi.reshape(S * A, -1), dtype=torch.float64, device=self.device)
        ref = (
            np.full((S, A), 1.0 / A)
            if config.reference_policy is None
            else np.asarray(config.reference_policy)
        )
        if ref.shape != (S, A) or np.any(ref <= 0) or not np.allclose(ref.sum(-1), 1.0, atol=1e-6):
            raise ConfigError(f"reference_policy must be (S, A) = ({S}, {A}) positive rows summing to 1")
        self.log_ref = torch.as_tensor(np.log(ref), dtype=torch.float64, device=self.device)
        self.policy = PolicyTable(H, S, A).to(self.device)
        # π⁰ = π_ref, up to a 1e-6 random perturbation so that exact ties (e.g. deterministic
        # acting before any data) break at random instead of always towards action 0.
        jitter = torch.rand(S, A, generator=self.generator, dtype=torch.float64, device=self.device)
        self.policy.logits.copy_(self.log_ref + 1e-6 * jitter.expand(H, S, A))
        # Sufficient statistics of all data so far (see the deviations list).
        self.counts = torch.zeros(H, S, A, S, dtype=torch.float64, device=self.device)
        self.reward_sums = torch.zeros(H, S, A, dtype=torch.float64, device=self.device)
        self.act_step = 0  # step index of the next act() call
        self.update_step = 0  # step index assumed for batches without extras["step"]

    # ------------------------------------------------------------------ acting
    def probabilities(self) -> np.ndarray:
        """The current policy ``(H, S, A)`` (for exact evaluation, e.g. ``robust_finite_horizon``)."""
        return torch.softmax(self.policy.logits, -1).cpu().numpy()

    @batched_act
    @torch.no_grad()
    def act(self, obs: np.ndarray, *, deterministic: bool = False) -> np.ndarray:
        """Actions of the step-``h`` softmax policy (greedy if ``deterministic``): states ``(B,)`` → ``(B,)``."""
        s = self.index_tensor(obs)
        logits = self.policy.logits[self.act_step, s]  # (B, A)
        self.act_step = (self.act_step + 1) % self.horizon
        if deterministic:
            out = logits.argmax(-1).cpu().numpy()
        else:
            out = (
                torch.multinomial(torch.softmax(logits, -1), 1, generator=self.generator)
                .squeeze(-1)
                .cpu()
                .numpy()
            )
        return out

    # ------------------------------------------------------------------ learning
    @torch.no_grad()
    def update(self, batch: TransitionBatch) -> dict[str, float]:
        cfg, H, S, A = self.config, self.horizon, self.n_states, self.n_actions
        s, a = self.index_tensor(batch.observations), self.index_tensor(batch.actions)
        s2, r = (
            self.index_tensor(batch.next_observations),
            batch.rewards.to(self.device, torch.float64).reshape(-1),
        )
        if "step" in batch.extras:
            steps = self.index_tensor(batch.extras["step"])
            if len(steps) and int(steps.max()) >= H:
                raise ConfigError(
                    f"dr_rpo got a transition at episode step {int(steps.max())} but horizon={H}: "
                    f"set the env's max_episode_steps to the agent's horizon"
                )
        else:  # consecutive steps of aligned episodes
            steps = (self.update_step + torch.arange(len(r), device=self.device)) % H
            self.update_step = (self.update_step + len(r)) % H
        self.check_finite({"loss/least_squares_targets (rewards)": r})
        self.counts.index_put_((steps, s, a, s2), torch.ones_like(r), accumulate=True)
        self.reward_sums.index_put_((steps, s, a), r, accumulate=True)
        if "step" in batch.extras and len(steps):
            self.act_step = (int(steps[-1]) + 1) % H

        # Robust optimistic evaluation of the current policy, backwards in h.
        pi = torch.softmax(self.policy.logits, -1)
        v_next = torch.zeros(S, dtype=torch.float64, device=self.device)
        q_all = torch.empty(H, S, A, dtype=torch.float64, device=self.device)
        bonus_mean = 0.0
        for h in reversed(range(H)):
            q, bonus = d_rectangular_robust_q(
                self.phi,
                self.counts[h].reshape(S * A, S),
                self.reward_sums[h].reshape(-1),
                v_next,
                radius=cfg.radius,
                ridge=cfg.ridge,
                bonus_coef=cfg.bonus_coef,
                cap=(H - h) * cfg.reward_max,
            )
            q_all[h] = q.reshape(S, A)
            kl = (pi[h] * (torch.log(pi[h].clamp(min=1e-300)) - self.log_ref)).sum(-1)
            v_next = (pi[h] * q_all[h]).sum(-1) - cfg.regularization * kl
            bonus_mean += float(bonus.mean()) / H
        self.check_finite({"q": q_all})
        self.policy.logits.copy_(
            mirror_descent_step(
                self.policy.logits, q_all, self.log_ref, cfg.learning_rate, cfg.regularization
            )
        )
        self.num_updates += 1
        new_pi = torch.softmax(self.policy.logits, -1)
        return {
            "value/initial_mean": float(v_next.mean()),
            "q/mean": float(q_all.mean()),
            "bonus/mean": bonus_mean,
            "policy/entropy": float(-(new_pi * torch.log(new_pi.clamp(min=1e-300))).sum(-1).mean()),
            "data/transitions": float(self.counts.sum()),
        }

    # ------------------------------------------------------------------ state
    def networks(self) -> dict[str, nn.Module]:
        return {"policy": self.policy}

    def extra_state(self) -> dict[str, Any]:
        return {
            "counts": self.counts.clone(),
            "reward_sums": self.reward_sums.clone(),
            "act_step": self.act_step,
            "update_step": self.update_step,
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.counts.copy_(state["counts"])
        self.reward_sums.copy_(state["reward_sums"])
        self.act_step, self.update_step = int(state["act_step"]), int(state["update_step"])
