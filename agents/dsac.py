"""DSAC / DSAC-T: Distributional Soft Actor-Critic (Duan et al., TNNLS 2021; TPAMI 2025).

Papers: https://arxiv.org/abs/2001.02811 (v1), https://arxiv.org/abs/2310.05858 (DSAC-T).
Reference code: Jingliang-Duan/DSAC-T ``dsac_v1.py`` / ``dsac_v2.py`` (cf323e7) and
Jingliang-Duan/DSAC-v2 ``dsac_v2.py`` (53447f4, the 2025 Huber loss).

The critic models the soft return as a Gaussian ``Z(s, a) ~ N(Q(s, a), σ(s, a)²)`` (one MLP
with outputs ``(Q, softplus⁻¹ σ)``); the actor is a tanh-squashed Gaussian rescaled to the action
box. One update on ``(s, a, r, s′, d, γ^k)`` with twin critics ``k ∈ {1, 2}`` (``variant="t"``;
bars over ``π, Q, σ`` mark target networks, ``s̄_k`` is the running std):

* ``a′, log π′ ~ π̄(·|s′)`` from the **Polyak-averaged target policy**;
* ``q′ = min_k Q̄_k(s′, a′)``; ``z′ = q′ + clip(ε, −3, 3)·σ̄_j(s′, a′)`` with ``j`` the target
  critic of lower mean and ``ε ~ N(0, 1)``;
* ``y_q = r + γ^k(1 − d)(q′ − α log π′)`` (expected-value substitution, drives the mean) and
  ``y_z = r + γ^k(1 − d)(z′ − α log π′)`` (drives the std);
* running std ``s̄_k ← (1 − τ)·s̄_k + τ·mean_B σ_k(s, a)`` (first batch initialises it);
* ``y_b,k = Q_k + clip(y_z − Q_k, ±3 s̄_k)`` (:func:`clipped_target`);
* ``L_k = (s̄_k² + 0.1)·mean[−(y_q − Q_k)/(σ_k² + 0.1)·Q_k − ((Q_k − y_b,k)² − σ_k²)/(σ_k³ + 0.1)·σ_k]``
  with every coefficient detached (:func:`gaussian_nll_surrogate`): its gradients are those of
  the Gaussian NLL, scaled by ``s̄_k² + 0.1`` so that the mean's step is reward-scale free;
* every ``policy_delay`` updates: actor ``mean[α log π(ã|s) − min_k ρ_k(s, ã)]``, temperature
  ``−log α·mean(log π + H̄)``, and Polyak ``τ`` for both target critics **and** the target actor.

``variant="v1"``: one critic, the mean is driven by the sampled ``y_z``, the std target is clipped
to ``Q ± td_bound`` and the loss has no leading factor. ``variant="t2025"``: the 2025 loss
``mean ratio_k·[Huber₅₀(Q_k, y_q) + σ_k(σ_k² − Huber₅₀(Q_k, y_b,k))/(σ_k + 0.1)]`` with
``ratio_k = clip(s̄_k²/(σ_k² + 0.1), 0.1, 10)``; Huber's ½ makes its σ fixed point ``1/√2`` of
the 2024 one (:func:`huber_gaussian_surrogate`).

Risk-sensitive control (an extension, off by default): the actor maximises ``ρ_k = Q_k − λ·σ_k``
(``risk="mean_std"``, ``λ = risk_lambda``; 0 is plain DSAC) or the Gaussian lower-tail
``CVaR_η = Q_k − σ_k·φ(Φ⁻¹(η))/η`` (``risk="cvar"``, ``η = risk_alpha``); critics stay neutral.

Deviations from the paper / official code:

* The actor and α losses are computed only on the delayed steps; the official code computes them
  every step but only applies every ``delay_update``-th (identical updates, half the compute).
  The actor loss uses the critic *before* its step, as the official code does, so critic, actor
  and α losses share one backward pass.
* Twin critics (and their targets) are one :class:`EnsembleMLP` (one batched matmul), and one
  fused Adam holds a param group per network (critic, actor, α) instead of four optimisers; Adam
  is per-parameter and skips parameters without gradients, so the updates are the same.
* Default update-to-data ratio 1 (the official scripts collect 20 env steps per gradient step).
* The running std and all counters are checkpointed (a plain attribute in the official code).
* ``ent_coef="auto"`` starts at the official ``log α = 1`` (α ≈ 2.72); ``"auto_X"`` starts at
  ``α = X`` as in SB3.

:meth:`DSAC.value_distribution` returns the learned Gaussian through the shared
:class:`~rlrobust.core.types.CriticOutput` (``q`` and ``std``).

One module of about 500 lines, on purpose: the pure functions at the top (the three critic
surrogates, the soft targets, the clipped std target, the Gaussian CVaR) are DSAC's own, each
used once by :meth:`DSAC.update` and tested alone in ``tests/agents/test_dsac.py``; kept next to
the update, the equations above and the code that runs them read together.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rlrobust.core.agent_base import AgentBase, batched_act, validate_config
from rlrobust.core.errors import ConfigError
from rlrobust.core.networks import EnsembleMLP, TanhGaussianActor
from rlrobust.core.optim import adam_step, fused_adam
from rlrobust.core.targets import frozen_copy, polyak_update
from rlrobust.core.types import CriticOutput, TransitionBatch

_BIAS = 0.1  # the official "bias" that keeps the NLL gradients finite as σ → 0
VARIANTS = ("t", "v1", "t2025")
RISKS = ("mean_std", "cvar")


# ----------------------------------------------------------------------------- pure functions
def gaussian_nll_surrogate(
    q: torch.Tensor,
    std: torch.Tensor,
    mean_target: torch.Tensor,
    std_target: torch.Tensor,
    scale: torch.Tensor | float = 1.0,
) -> torch.Tensor:
    """DSAC's critic surrogate: ``Σ_k c_k·mean_B[g_Q·Q + g_σ·σ]`` with detached coefficients.

    ``g_Q = −(y_q − Q)/(σ² + 0.1)`` and ``g_σ = −((Q − y_b)² − σ²)/(σ³ + 0.1)`` are the Gaussian
    NLL gradients (with the official 0.1 bias), so autograd gives ``∂L/∂Q = c·g_Q/B`` and
    ``∂L/∂σ = c·g_σ/B``. ``c = s̄² + 0.1`` for DSAC-T, ``1`` for v1.

    Args:
        q, std: ``(K, B)`` critic means and stds (σ > 0).
        mean_target: ``(K, B)`` or ``(B,)`` target ``y_q`` of the mean (v1: the sampled ``y_z``).
        std_target: ``(K, B)`` or ``(B,)`` clipped target ``y_b`` of the std.
        scale: ``c``, a float or ``(K,)``.

    Returns:
        The scalar surrogate (its value is not the NLL; only its gradients are meaningful).
    """
    if q.dim() != 2 or q.shape != std.shape:
        raise ValueError(f"q and std must both be (K, B), got {tuple(q.shape)} and {tuple(std.shape)}")
    for name, t in (("mean_target", mean_target), ("std_target", std_target)):
        if t.shape not in (q.shape, q.shape[1:]):
            raise ValueError(f"{name} must be (K, B) or (B,) for q {tuple(q.shape)}, got {tuple(t.shape)}")
    q_d, std_d = q.detach(), std.detach().clamp(min=0.0)  # the official clamp(σ, 0), detached
    grad_q = -(mean_target - q_d) / (std_d.pow(2) + _BIAS)  # (K, B)
    grad_std = -((q_d - std_target).pow(2) - std_d.pow(2)) / (std_d.pow(3) + _BIAS)  # (K, B)
    per_critic = (grad_q * q + grad_std * std).mean(dim=1)  # (K,)
    return (torch.as_tensor(scale, dtype=q.dtype, device=q.device) * per_critic).sum()


def huber_gaussian_surrogate(
    q: torch.Tensor,
    std: torch.Tensor,
    mean_target: torch.Tensor,
    std_target: torch.Tensor,
    running_std: torch.Tensor,
    delta: float = 50.0,
) -> torch.Tensor:
    """The 2025 DSAC-T loss (DSAC-v2 commit c5105eb), summed over critics.

    ``Σ_k mean_B ratio_k·[Huber_δ(Q_k, y_q) + σ_k(σ_k,d² − Huber_δ(Q_k,d, y_b,k))/(σ_k,d + 0.1)]``
    with ``ratio_k = clip(s̄_k²/(σ_k,d² + 0.1), 0.1, 10)`` detached. Shapes as in
    :func:`gaussian_nll_surrogate`; ``running_std`` is ``(K,)``.
    """
    if q.dim() != 2 or q.shape != std.shape or running_std.shape != q.shape[:1]:
        raise ValueError(
            f"need q, std (K, B) and running_std (K,), got {tuple(q.shape)}, {tuple(std.shape)}, "
            f"{tuple(running_std.shape)}"
        )
    q_d, std_d = q.detach(), std.detach().clamp(min=0.0)
    ratio = (running_std.unsqueeze(1).pow(2) / (std_d.pow(2) + _BIAS)).clamp(0.1, 10.0)  # (K, B)
    mean_term = F.huber_loss(q, mean_target.expand_as(q), delta=delta, reduction="none")
    spread = F.huber_loss(q_d, std_target.expand_as(q), delta=delta, reduction="none")  # (K, B)
    std_term = std * (std_d.pow(2) - spread) / (std_d + _BIAS)
    return (ratio * (mean_term + std_term)).mean(dim=1).sum()


def soft_gaussian_targets(
    rewards: torch.Tensor,
    discounts: torch.Tensor,
    dones: torch.Tensor,
    next_q: torch.Tensor,
    next_std: torch.Tensor,
    next_log_prob: torch.Tensor,
    alpha: torch.Tensor | float,
    noise: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """DSAC-T's soft targets from the target critics: ``(y_q, y_z)``, each ``(B,)``.

    ``y_q = r + γ^k(1 − d)(min_k Q̄_k − α log π′)``; ``y_z`` replaces the min by the sample
    ``Q̄_j + clip(ε, −3, 3)·σ̄_j`` of the critic ``j`` with the lower mean.

    Args:
        rewards, discounts, dones, next_log_prob, noise: ``(B,)``; ``noise`` is the raw ``ε``.
        next_q, next_std: ``(K, B)`` target critics at ``(s′, a′)``.
        alpha: temperature α.
    """
    if next_q.dim() != 2 or next_q.shape != next_std.shape:
        raise ValueError(
            f"next_q and next_std must both be (K, B), got {tuple(next_q.shape)}, {tuple(next_std.shape)}"
        )
    b = next_q.shape[1]
    for name, t in (
        ("rewards", rewards),
        ("discounts", discounts),
        ("dones", dones),
        ("next_log_prob", next_log_prob),
        ("noise", noise),
    ):
        if t.shape != (b,):
            raise ValueError(
                f"{name} must be ({b},) to match next_q {tuple(next_q.shape)}, got {tuple(t.shape)}"
            )
    q_min, j = next_q.min(dim=0)  # (B,), index of the lower-mean critic
    std_j = next_std.gather(0, j.unsqueeze(0)).squeeze(0)  # (B,)
    z = q_min + noise.clamp(-3.0, 3.0) * std_j
    bootstrap = discounts * (1.0 - dones)
    soft = alpha * next_log_prob
    return rewards + bootstrap * (q_min - soft), rewards + bootstrap * (z - soft)


def clipped_target(q: torch.Tensor, sample_target: torch.Tensor, bound: torch.Tensor | float) -> torch.Tensor:
    """``y_b = Q + clip(y_z − Q, −b, b)``: the std target, kept within ``b`` of the current mean.

    Args:
        q: ``(K, B)`` current critic means (detached by the caller or not; no gradient flows here).
        sample_target: ``(B,)`` or ``(K, B)`` sampled target ``y_z``.
        bound: ``b``; a float (v1's ``td_bound``) or ``(K, 1)`` (DSAC-T: ``3 × running std``).
    """
    if q.dim() != 2 or sample_target.shape not in (q.shape, q.shape[1:]):
        raise ValueError(
            f"need q (K, B) and sample_target (B,) or (K, B), got {tuple(q.shape)}, "
            f"{tuple(sample_target.shape)}"
        )
    bound = torch.as_tensor(bound, dtype=q.dtype, device=q.device)
    return q + torch.maximum(torch.minimum(sample_target - q, bound), -bound)


def gaussian_cvar_coefficient(eta: float) -> float:
    """``φ(Φ⁻¹(η))/η``, so that the lower-tail ``CVaR_η`` of ``N(μ, σ²)`` is ``μ − coef·σ``."""
    if not 0.0 < eta <= 1.0:
        raise ConfigError(f"risk_alpha (CVaR level η) must lie in (0, 1], got {eta}")
    if eta == 1.0:
        return 0.0
    x = statistics.NormalDist().inv_cdf(eta)
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi) / eta


# ----------------------------------------------------------------------------- config
@dataclass
class DSACConfig:
    """DSAC hyperparameters (SB3 SAC names); provenance of the defaults in ``conf/agent/dsac.yaml``."""

    variant: str = "t"  #: "t" (DSAC-T 2024, default), "v1", or "t2025" (Huber loss)
    learning_rate: float = 1e-4  #: default for every optimiser without its own value below
    critic_learning_rate: float | None = None  #: None → learning_rate
    actor_learning_rate: float | None = None  #: None → learning_rate
    alpha_learning_rate: float | None = 3e-4  #: None → learning_rate
    buffer_size: int = 1_000_000  #: read by the trainer
    learning_starts: int = 10_000  #: uniform random env steps before updates (trainer)
    batch_size: int = 256
    tau: float = 0.005  #: Polyak coefficient of target critics, target actor and running std
    gamma: float = 0.99  #: read by the replay buffer (discounts = γ^k)
    train_freq: int = 1  #: env steps between update rounds (trainer)
    gradient_steps: int = 1  #: updates per round (trainer)
    ent_coef: str | float = "auto"  #: "auto" (log α₀ = 1), "auto_X" (α₀ = X), or a fixed α
    target_entropy: str | float = "auto"  #: "auto" → −dim(A)
    net_arch: list[int] | dict[str, list[int]] = field(default_factory=lambda: [256, 256, 256])
    activation: str = "gelu"  #: see rlrobust.core.networks.ACTIVATIONS
    policy_delay: int = 2  #: actor, α and target updates every this many updates
    td_bound: float = 1.0  #: v1's fixed clip b of the std target
    target_clip_sigmas: float = 3.0  #: DSAC-T clips the std target at this many running stds
    huber_delta: float = 50.0  #: δ of the t2025 Huber loss
    log_std_min: float = -20.0
    log_std_max: float = 0.5
    risk: str = "mean_std"  #: actor objective: "mean_std" (Q − λσ) or "cvar" (Gaussian CVaR_η)
    risk_lambda: float = 0.0  #: λ of "mean_std"; 0 = plain DSAC
    risk_alpha: float = 1.0  #: η of "cvar"; 1 = plain DSAC


def _validate(cfg: DSACConfig) -> None:
    checks = [
        (cfg.variant in VARIANTS, f"variant must be one of {VARIANTS}"),
        (cfg.risk in RISKS, f"risk must be one of {RISKS}"),
        (cfg.learning_rate > 0, "learning_rate must be > 0"),
        (cfg.batch_size >= 1, "batch_size must be >= 1"),
        (0.0 < cfg.tau <= 1.0, "tau must lie in (0, 1]"),
        (cfg.policy_delay >= 1, "policy_delay must be >= 1"),
        (cfg.td_bound > 0 and cfg.target_clip_sigmas > 0, "td_bound and target_clip_sigmas must be > 0"),
        (cfg.log_std_min < cfg.log_std_max, "log_std_min must be < log_std_max"),
        (cfg.risk_lambda >= 0, "risk_lambda must be >= 0"),
        (0.0 < cfg.risk_alpha <= 1.0, "risk_alpha must lie in (0, 1]"),
    ]
    validate_config("DSAC", cfg, checks)


def _parse_ent_coef(value: str | float) -> tuple[float, bool]:
    """``(initial log α, learnable)`` from SB3-style ``ent_coef``."""
    if isinstance(value, str):
        if value == "auto":
            return 1.0, True  # DSAC's official log α initialisation
        if value.startswith("auto_"):
            try:
                init = float(value[5:])
            except ValueError:
                init = -1.0
            if init > 0:
                return math.log(init), True
        raise ConfigError(f"ent_coef must be 'auto', 'auto_<α₀ > 0>' or a positive float, got {value!r}")
    if value <= 0:
        raise ConfigError(f"a fixed ent_coef must be > 0, got {value}")
    return math.log(value), False


def _arch(net_arch: list[int] | dict[str, list[int]], key: str) -> list[int]:
    arch = net_arch.get(key) if isinstance(net_arch, Mapping) else net_arch
    if arch is None or len(arch) == 0 or any(int(w) < 1 for w in arch):
        raise ConfigError(
            f"net_arch must be a non-empty list of widths or a dict with 'pi' and 'qf', got {net_arch!r}"
        )
    return [int(w) for w in arch]


class Temperature(nn.Module):
    """Holds ``log α`` so it is checkpointed with the networks."""

    def __init__(self, log_alpha: float, learnable: bool) -> None:
        super().__init__()
        self.log_alpha = nn.Parameter(torch.tensor(float(log_alpha)), requires_grad=learnable)


# ----------------------------------------------------------------------------- agent
class DSAC(AgentBase):
    """Distributional Soft Actor-Critic (DSAC-T by default) for continuous Box actions.

    Args:
        config: a :class:`DSACConfig`.
        observation_space: a 1-D ``Box``.
        action_space: a ``Box`` with finite bounds.
        device: torch device of networks and batches.
        seed: seeds network init, the policy/target noise and exploration.

    Raises:
        SpaceError: a non-Box or unbounded action space, or non-vector observations.
        ConfigError: invalid hyperparameters.
    """

    name: ClassVar[str] = "dsac"
    Config: ClassVar[type] = DSACConfig
    offline: ClassVar[bool] = False

    def __init__(
        self,
        config: DSACConfig,
        observation_space: gym.Space,
        action_space: gym.Space,
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        super().__init__(config, observation_space, action_space, device=device, seed=seed)
        low, high = self.require_box_actions(self.name, action_space)
        obs_dim = self.require_vector_obs(self.name, observation_space)
        _validate(config)
        act_dim = int(np.prod(action_space.shape))
        self.n_critics = 1 if config.variant == "v1" else 2
        log_alpha, learn_alpha = _parse_ent_coef(config.ent_coef)
        if config.target_entropy == "auto":
            self.target_entropy = -float(act_dim)
        elif isinstance(config.target_entropy, (int, float)):
            self.target_entropy = float(config.target_entropy)
        else:
            raise ConfigError(f"target_entropy must be 'auto' or a float, got {config.target_entropy!r}")
        # The actor maximises min_k (Q_k − risk_coef·σ_k); CVaR_η of a Gaussian has that form too.
        if config.risk == "mean_std":
            self.risk_coef = float(config.risk_lambda)
        else:
            self.risk_coef = gaussian_cvar_coefficient(config.risk_alpha)
        with self.seeded_init():
            self.actor = TanhGaussianActor(
                obs_dim,
                act_dim,
                _arch(config.net_arch, "pi"),
                torch.as_tensor(low),
                torch.as_tensor(high),
                act=config.activation,
                log_std_bounds=(config.log_std_min, config.log_std_max),
            ).to(self.device)
            self.critic = EnsembleMLP(
                self.n_critics, obs_dim + act_dim, _arch(config.net_arch, "qf"), 2, act=config.activation
            ).to(self.device)
        self.actor_target = frozen_copy(self.actor)
        self.critic_target = frozen_copy(self.critic)
        self.temperature = Temperature(log_alpha, learn_alpha).to(self.device)
        # One Adam with a param group per network: a single fused kernel call per update. Params
        # without a gradient (the actor between its delayed steps) are skipped, exactly as if
        # they had their own optimiser that did not step.
        lr = config.learning_rate
        self._critic_params = list(self.critic.parameters())  # frozen for the actor's pass
        groups = [
            {"params": self._critic_params, "lr": config.critic_learning_rate or lr},
            {"params": list(self.actor.parameters()), "lr": config.actor_learning_rate or lr},
        ]
        if learn_alpha:
            groups.append({"params": [self.temperature.log_alpha], "lr": config.alpha_learning_rate or lr})
        self.optimizer = fused_adam(groups, lr)
        # Running mean of each critic's σ over batches (s̄_k); the first update's batch sets it.
        self.running_std = torch.zeros(self.n_critics, device=self.device)

    # ----------------------------------------------------------------- acting
    @batched_act
    @torch.inference_mode()
    def act(self, obs: np.ndarray, *, deterministic: bool = False) -> np.ndarray:
        """Squashed-Gaussian actions: ``(B, obs_dim)`` → ``(B, act_dim)``; unbatched → ``(act_dim,)``."""
        mean, log_std = self.actor.distribution_params(self.obs_tensor(obs))
        if deterministic:
            u = mean
        else:
            u = mean + log_std.exp() * torch.randn(mean.shape, generator=self.generator, device=self.device)
        return self.actor.squash(u).cpu().numpy()

    def policy_output(self, obs: torch.Tensor) -> torch.Tensor:
        """The deterministic action ``(B, act_dim)`` as a differentiable function of ``obs``
        (what observation attacks push on; ``act(deterministic=True)`` without the no-grad)."""
        return self.actor.mean_action(obs.float())

    @torch.no_grad()
    def value_distribution(self, obs: torch.Tensor, actions: torch.Tensor) -> CriticOutput:
        """The learned return distribution ``Z(s, a) ~ N(Q, σ²)`` through the shared critic interface.

        ``obs (B, obs_dim)``, ``actions (B, act_dim)`` → ``q (B,)`` and ``std (B,)`` of the critic
        with the lower mean at each row (the one the targets bootstrap from; with
        ``variant="v1"`` the only one).
        """
        q, std = self._critic(
            self.critic,
            torch.as_tensor(obs, device=self.device).float(),
            torch.as_tensor(actions, device=self.device).float(),
        )  # (K, B)
        q_min, j = q.min(dim=0)
        return CriticOutput(q=q_min, std=std.gather(0, j.unsqueeze(0)).squeeze(0))

    def _critic(
        self, net: nn.Module, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = net(torch.cat([obs, actions.reshape(obs.shape[0], -1)], dim=-1))  # (K, B, 2)
        return out[..., 0], F.softplus(out[..., 1])  # Q (K, B), σ (K, B)

    # ----------------------------------------------------------------- learning
    def update(self, batch: TransitionBatch) -> dict[str, float]:
        """One critic step; every ``policy_delay``-th call also an actor, α and target step."""
        cfg = self.config
        # MuJoCo observations arrive as float64; .float() is free when they are float32 already.
        obs, next_obs = batch.observations.float(), batch.next_observations.float()
        actions, rewards = batch.actions.float(), batch.rewards.float()
        update_actor = self.num_updates % cfg.policy_delay == 0
        log_alpha = self.temperature.log_alpha
        alpha = log_alpha.detach().exp()
        with torch.no_grad():
            next_actions, next_log_prob = self.actor_target(next_obs, generator=self.generator)
            next_q, next_std = self._critic(self.critic_target, next_obs, next_actions)
            noise = torch.randn(next_log_prob.shape, generator=self.generator, device=self.device)
            y_q, y_z = soft_gaussian_targets(
                rewards,
                batch.discounts.float(),
                batch.dones.float(),
                next_q,
                next_std,
                next_log_prob,
                alpha,
                noise,
            )

        losses: dict[str, torch.Tensor] = {}
        if update_actor:  # through the critic as it is before its step, with its weights frozen
            new_actions, log_prob = self.actor(obs, generator=self.generator)
            for p in self._critic_params:
                p.requires_grad_(False)
            q_pi, std_pi = self._critic(self.critic, obs, new_actions)
            for p in self._critic_params:
                p.requires_grad_(True)
            value = (q_pi - self.risk_coef * std_pi if self.risk_coef else q_pi).min(dim=0).values  # (B,)
            losses["loss/actor"] = (alpha * log_prob - value).mean()
            if self.temperature.log_alpha.requires_grad:
                losses["loss/alpha"] = -(log_alpha * (log_prob.detach() + self.target_entropy)).mean()

        q, std = self._critic(self.critic, obs, actions)
        with torch.no_grad():
            batch_std = std.mean(dim=1)  # (K,)
            running = batch_std if self.num_updates == 0 else torch.lerp(self.running_std, batch_std, cfg.tau)
            if cfg.variant == "v1":
                std_target = clipped_target(q, y_z, cfg.td_bound)
            else:
                std_target = clipped_target(q, y_z, cfg.target_clip_sigmas * running.unsqueeze(1))
        if cfg.variant == "t":
            losses["loss/critic"] = gaussian_nll_surrogate(q, std, y_q, std_target, running.pow(2) + _BIAS)
        elif cfg.variant == "v1":
            losses["loss/critic"] = gaussian_nll_surrogate(q, std, y_z, std_target)
        else:
            losses["loss/critic"] = huber_gaussian_surrogate(
                q, std, y_q, std_target, running, cfg.huber_delta
            )
        self.check_finite(losses)

        self.optimizer.zero_grad(set_to_none=True)
        # The losses touch disjoint parameters (critic weights were frozen for the actor's pass).
        torch.stack(list(losses.values())).sum().backward()
        adam_step(self.optimizer)
        self.running_std = running
        if update_actor:
            polyak_update(self.critic_target, self.critic, cfg.tau)
            polyak_update(self.actor_target, self.actor, cfg.tau)
        self.num_updates += 1

        names = [*losses, "q/mean", "q/std", "q/std_running", "alpha"]
        values = [*(v.detach() for v in losses.values())]
        values += [q.detach().mean(), std.detach().mean(), running.mean(), alpha]
        if update_actor:
            names.append("entropy")
            values.append(-log_prob.detach().mean())
        return dict(zip(names, torch.stack(values).tolist()))

    # ----------------------------------------------------------------- state
    @property
    def alpha(self) -> float:
        """Current temperature α."""
        return float(self.temperature.log_alpha.detach().exp())

    def networks(self) -> dict[str, nn.Module]:
        return {
            "actor": self.actor,
            "actor_target": self.actor_target,
            "critic": self.critic,
            "critic_target": self.critic_target,
            "temperature": self.temperature,
        }

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": self.optimizer}

    def extra_state(self) -> dict[str, Any]:
        return {"running_std": self.running_std.clone()}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        self.running_std = state["running_std"].to(self.device).clone()
