"""IQN: Implicit Quantile Networks for Distributional RL (Dabney, Ostrovski, Silver, Munos, ICML 2018).

Paper: https://arxiv.org/abs/1806.06923. Reference code: google/dopamine
``dopamine/jax/agents/implicit_quantile/implicit_quantile_agent.py``.

IQN learns the quantile function ``Z_τ(s, a)`` of the return for any fraction ``τ ∈ [0, 1]``
(see :class:`~rlrobust.core.critics.ImplicitQuantileCritic`). One update on a batch of (n-step)
transitions ``(s, a, r, s′, d, γ^k)``:

* draw ``τ_i ~ U`` (``i ≤ N``, online), ``τ′_j ~ U`` (``j ≤ N′``, target) and ``τ̃_k ~ U``
  (``k ≤ K``, action selection) independently (see ``shared_taus`` below);
* ``a* = argmax_a (1/K) Σ_k Z̄_{τ̃_k}(s′, a)`` with the target net ``Z̄`` (the online net with
  ``double_q``);
* ``δ_ij = r + γ^k (1 − d) Z̄_{τ′_j}(s′, a*) − Z_{τ_i}(s, a)``;
* ``loss = mean_b Σ_i mean_j |τ_i − 1{δ_ij < 0}|·L_κ(δ_ij)/κ``
  (:func:`~rlrobust.core.losses.quantile_huber_loss`), minimised with Adam (eps 3.125e-4);
* every ``target_update_interval`` updates ``θ̄ ← (1 − tau)·θ̄ + tau·θ`` (``tau = 1``: hard copy).

:meth:`IQN.update` reads as the textbook loop: fractions, target, prediction, loss, ``backward``,
``clip_grad_norm_``, ``Adam.step``. By default (``IQN.fast_path = True``) the same step runs
through :func:`fast_update`, which removes per-step overhead that dominates on CPU with small
batches: one torso pass and one embedding pass serve both the target's action selection and its
quantiles, a linear head computes only the taken action's quantiles (``addmm``), the loss comes
with its gradient (:func:`~rlrobust.core.losses.quantile_huber_loss_and_grad`) so no autograd
node is built for it, clipping runs only when it changes the gradient, and Adam's fused kernel
is called directly (:func:`~rlrobust.core.optim.adam_step`). ``tests/agents/test_iqn.py`` checks that both paths of
the agent (and a plain copy in the test) take the same steps.

Acting is ε-greedy on ``Q_β(s, a) = (1/K) Σ_k Z_{β(τ̃_k)}(s, a)`` where ``β`` is the risk
distortion chosen by ``risk``/``risk_param`` (:mod:`rlrobust.core.risk`); training is always
risk-neutral. ε decays linearly from ``exploration_initial_eps`` to ``exploration_final_eps``
over the first ``exploration_fraction`` of training, as in SB3's DQN; the trainer reports the
progress through :meth:`IQN.set_progress` (``step / total_steps``), so the agent needs no total.

Deviations from the paper:

* Vector observations and an MLP torso (``net_arch``) instead of the Atari conv net; by default
  the product ``ψ(s) ⊙ φ(τ)`` is followed by one linear layer (``head_arch = []``) instead of the
  paper's ``Linear_512 → ReLU → Linear_A``; ``head_arch=[512]`` restores that shape. This keeps
  the per-fraction cost to the embedding and one small matmul.
* ``shared_taus=True`` (default) draws one set of ``τ``, ``τ′`` and ``τ̃`` per batch instead of
  one per transition (dopamine). Each transition's loss stays an unbiased estimate, and the
  embedding runs on ``N`` rows instead of ``B·N``, which is most of the update's cost on CPU;
  ``shared_taus=False`` restores per-transition draws.
* ``deterministic=True`` acting uses the fixed grid ``τ̃_k = β((k + ½)/K)`` instead of random
  draws, so evaluation is reproducible (the estimate of ``Q_β`` also has lower variance).
* ``target_update_interval`` counts gradient updates (SB3 counts env steps); with
  ``train_freq = gradient_steps = 1`` the two agree. ``gamma`` and ``n_step`` are read by the
  replay buffer, which hands the agent ``γ^k`` as ``batch.discounts``.
* Optional gradient-norm clipping (``max_grad_norm``, SB3 DQN's default 10); the paper has none.
* Defaults suit small control tasks (CartPole); ``conf/agent/iqn.yaml`` lists the paper's values.

:meth:`IQN.value_distribution` returns the learned quantiles through the shared
:class:`~rlrobust.core.types.CriticOutput`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from rlrobust.core.agent_base import AgentBase, batched_act, validate_config
from rlrobust.core.critics import ImplicitQuantileCritic
from rlrobust.core.losses import distributional_td_target, quantile_huber_loss, quantile_huber_loss_and_grad
from rlrobust.core.optim import adam_step, fused_adam
from rlrobust.core.risk import distortion
from rlrobust.core.targets import frozen_copy, polyak_update
from rlrobust.core.types import CriticOutput, TransitionBatch


@dataclass
class IQNConfig:
    """IQN hyperparameters (SB3 names where SB3's DQN/QR-DQN has the concept)."""

    learning_rate: float = 1e-3
    #: None: constant ``learning_rate``; a value: linear decay from ``learning_rate`` to it over
    #: training (SB3/rl-zoo's ``lin_`` schedules), so late rounds of updates move the policy less
    learning_rate_final: float | None = None
    buffer_size: int = 100_000  #: read by the trainer's replay buffer
    learning_starts: int = 1_000  #: env steps of uniform random actions before updates (trainer)
    batch_size: int = 64
    tau: float = 1.0  #: Polyak coefficient of a target update; 1.0 = hard copy
    gamma: float = 0.99  #: used by the replay buffer (discounts = gamma^k)
    train_freq: int = 1  #: env steps between update rounds (trainer)
    gradient_steps: int = 1  #: updates per round (trainer)
    target_update_interval: int = 500  #: in gradient updates
    exploration_fraction: float = 0.1  #: fraction of training over which ε decays
    exploration_initial_eps: float = 1.0
    exploration_final_eps: float = 0.01
    net_arch: list[int] = field(default_factory=lambda: [256, 256])  #: torso ψ widths
    head_arch: list[int] = field(default_factory=list)  #: widths after ψ ⊙ φ (paper: [512])
    n_quantiles: int = 32  #: N, online fractions per transition
    n_target_quantiles: int = 32  #: N′, target fractions per transition
    n_action_quantiles: int = 32  #: K, fractions to estimate Q for action selection
    embedding_dim: int = 64  #: cosines in φ(τ)
    kappa: float = 1.0  #: Huber threshold κ
    double_q: bool = False  #: select a* with the online net
    shared_taus: bool = True  #: one τ/τ′/τ̃ draw per batch instead of per transition (speed)
    n_step: int = 1  #: read by the replay buffer
    max_grad_norm: float | None = 10.0  #: None disables clipping
    adam_eps: float = 3.125e-4  #: 0.01/32, dopamine's IQN gin
    risk: str = "neutral"  #: acting distortion: neutral, cvar, wang, cpw, pow
    risk_param: float | None = None  #: η of the distortion (None = its default)


def _validate(cfg: IQNConfig) -> None:
    checks = [
        (cfg.learning_rate > 0, "learning_rate must be > 0"),
        (
            cfg.learning_rate_final is None or 0.0 <= cfg.learning_rate_final <= cfg.learning_rate,
            "learning_rate_final must be None or lie in [0, learning_rate]",
        ),
        (cfg.batch_size >= 1, "batch_size must be >= 1"),
        (0.0 < cfg.tau <= 1.0, "tau must lie in (0, 1]"),
        (0.0 <= cfg.gamma <= 1.0, "gamma must lie in [0, 1]"),
        (cfg.target_update_interval >= 1, "target_update_interval must be >= 1"),
        (0.0 < cfg.exploration_fraction <= 1.0, "exploration_fraction must lie in (0, 1]"),
        (0.0 <= cfg.exploration_final_eps <= 1.0, "exploration_final_eps must lie in [0, 1]"),
        (0.0 <= cfg.exploration_initial_eps <= 1.0, "exploration_initial_eps must lie in [0, 1]"),
        (len(cfg.net_arch) >= 1 and all(w >= 1 for w in cfg.net_arch), "net_arch needs >= 1 positive width"),
        (
            min(cfg.n_quantiles, cfg.n_target_quantiles, cfg.n_action_quantiles) >= 1,
            "quantile counts must be >= 1",
        ),
        (cfg.embedding_dim >= 1, "embedding_dim must be >= 1"),
        (cfg.kappa > 0, "kappa must be > 0"),
        (cfg.n_step >= 1, "n_step must be >= 1"),
        (cfg.max_grad_norm is None or cfg.max_grad_norm > 0, "max_grad_norm must be > 0 or None"),
        (cfg.adam_eps > 0, "adam_eps must be > 0"),
    ]
    validate_config("IQN", cfg, checks)


class IQN(AgentBase):
    """Implicit Quantile Network agent for discrete actions and vector observations.

    Args:
        config: an :class:`IQNConfig`.
        observation_space: a 1-D ``Box``.
        action_space: a ``Discrete`` space.
        device: torch device of networks and batches.
        seed: seeds network init, the τ draws and exploration.

    Raises:
        SpaceError: non-Discrete actions or non-vector observations.
        ConfigError: invalid hyperparameters or risk distortion.
    """

    name: ClassVar[str] = "iqn"
    Config: ClassVar[type] = IQNConfig
    offline: ClassVar[bool] = False
    #: run :meth:`update` through :func:`fast_update` (same step, less overhead); set it to False
    #: on an instance to run the textbook loop written out in :meth:`update`.
    fast_path: bool = True

    def __init__(
        self,
        config: IQNConfig,
        observation_space: gym.Space,
        action_space: gym.Space,
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        super().__init__(config, observation_space, action_space, device=device, seed=seed)
        self.n_actions = self.require_discrete_actions(self.name, action_space)
        obs_dim = self.require_vector_obs(self.name, observation_space)
        _validate(config)
        self._distortion = distortion(config.risk, config.risk_param)  # ConfigError if invalid
        with self.seeded_init():
            self.critic = ImplicitQuantileCritic(
                obs_dim,
                self.n_actions,
                config.net_arch,
                head_arch=config.head_arch,
                embedding_dim=config.embedding_dim,
            ).to(self.device)
        self.critic_target = frozen_copy(self.critic)
        self._params = list(self.critic.parameters())
        self.optimizer = fused_adam(self._params, config.learning_rate, eps=config.adam_eps)
        k = config.n_action_quantiles
        midpoints = (torch.arange(k, dtype=torch.float32, device=self.device) + 0.5) / k
        # Fixed (distorted) midpoint grid for deterministic acting, shared by the batch: (1, K).
        self._eval_taus = self._distortion(midpoints).unsqueeze(0)
        self._max_norm = math.inf if config.max_grad_norm is None else float(config.max_grad_norm)
        self._progress = 0.0

    # ----------------------------------------------------------------- schedules
    def set_progress(self, fraction: float) -> None:
        """Tell the agent how far training is (``step / total_steps``); drives the ε schedule
        and, with ``learning_rate_final``, the linear learning-rate decay."""
        self._progress = min(max(float(fraction), 0.0), 1.0)
        c = self.config
        if c.learning_rate_final is not None:
            lr = c.learning_rate + self._progress * (c.learning_rate_final - c.learning_rate)
            for group in self.optimizer.param_groups:
                group["lr"] = lr

    @property
    def exploration_rate(self) -> float:
        """Current ε: linear from the initial to the final value over ``exploration_fraction``."""
        c = self.config
        frac = min(self._progress / c.exploration_fraction, 1.0)
        return c.exploration_initial_eps + frac * (c.exploration_final_eps - c.exploration_initial_eps)

    # ----------------------------------------------------------------- acting
    @batched_act
    def act(self, obs: np.ndarray, *, deterministic: bool = False) -> np.ndarray:
        """ε-greedy (greedy if ``deterministic``) actions under the risk distortion.

        ``obs (B, obs_dim)`` → int64 ``(B,)``; an unbatched ``(obs_dim,)`` gives a 0-d array.
        """
        obs_np = np.asarray(obs, dtype=np.float32)
        if not obs_np.flags.writeable:  # torch.from_numpy warns on read-only arrays
            obs_np = obs_np.copy()
        b = obs_np.shape[0]
        explore = None
        if not deterministic:
            explore = self.np_rng.random(b) < self.exploration_rate
            if explore.all():  # no network call when every action is random
                return self.np_rng.integers(self.n_actions, size=b)
        with torch.inference_mode():
            obs_t = torch.from_numpy(obs_np).to(self.device)
            if deterministic:
                taus = self._eval_taus  # (1, K), shared by the batch
            else:
                rows = 1 if self.config.shared_taus else b
                u = torch.rand(
                    rows, self.config.n_action_quantiles, generator=self.generator, device=self.device
                )
                taus = self._distortion(u)
            q = self.critic.head_q(self.critic.features(obs_t), self.critic.embed(taus))  # (B, A)
            actions = q.argmax(dim=1).cpu().numpy()
        if explore is not None and explore.any():
            actions = np.where(explore, self.np_rng.integers(self.n_actions, size=b), actions)
        return actions

    def policy_output(self, obs: torch.Tensor) -> torch.Tensor:
        """``Q_β(s, ·)`` on the deterministic fraction grid, ``(B, A)``, as a differentiable
        function of ``obs``: deterministic acting takes its argmax (observation attacks push on it)."""
        return self.critic.head_q(self.critic.features(obs.float()), self.critic.embed(self._eval_taus))

    @torch.no_grad()
    def value_distribution(self, obs: torch.Tensor, taus: torch.Tensor | None = None) -> CriticOutput:
        """The learned return distribution of every action through the shared critic interface.

        ``obs (B, obs_dim)``; ``taus (B|1, N)`` fractions, by default the risk-neutral midpoints
        ``(k + ½)/K`` of ``n_action_quantiles``. Returns quantiles ``(B, N, A)``, ``taus (B, N)``
        and ``q (B, A)``, their mean (the risk-neutral Q).
        """
        if taus is None:
            k = self.config.n_action_quantiles
            taus = ((torch.arange(k, dtype=torch.float32, device=self.device) + 0.5) / k).unsqueeze(0)
        return self.critic(torch.as_tensor(obs, device=self.device).float(), taus)

    # ----------------------------------------------------------------- learning
    def update(self, batch: TransitionBatch) -> dict[str, float]:
        """One gradient step of the quantile Huber loss on ``batch`` (equations: module docstring)."""
        c = self.config
        n, n_t, b = c.n_quantiles, c.n_target_quantiles, len(batch)
        # τ (online), τ′ (target) and τ̃ (action selection): disjoint columns of one uniform draw.
        rows = 1 if c.shared_taus else b  # one set per batch (shared_taus) or per transition
        u = torch.rand(rows, n + n_t + c.n_action_quantiles, generator=self.generator, device=self.device)
        taus, next_taus = u[:, :n], u[:, n:]  # (B|1, N), (B|1, N′ + K) = [τ′ | τ̃]
        if self.fast_path:
            metrics = fast_update(self, batch, taus, next_taus)
        else:
            with torch.no_grad():
                # a* = argmax_a (1/K) Σ_k Z̄_{τ̃_k}(s′, a), with the online net under double_q.
                selector = self.critic if c.double_q else self.critic_target
                a_star = selector(batch.next_observations, next_taus[:, n_t:]).q.argmax(dim=1)  # (B,)
                # y_j = r + γ^k (1 − d) Z̄_{τ′_j}(s′, a*)
                z_next = self.critic_target.action_quantiles(
                    batch.next_observations, next_taus[:, :n_t], a_star
                )
                target = distributional_td_target(
                    batch.rewards, batch.discounts, batch.dones, z_next
                )  # (B, N′)
            pred = self.critic.action_quantiles(
                batch.observations, taus, batch.actions
            )  # Z_{τ_i}(s, a), (B, N)
            loss = quantile_huber_loss(pred, target, taus.expand(b, n), c.kappa)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(self._params, self._max_norm)  # inf: only the norm
            terms = {
                "loss/critic": loss.detach(),
                "q/mean": pred.detach().mean(),
                "grad_norm/critic": grad_norm,
            }
            self.check_finite(terms)  # before the step: a NaN/inf never reaches the weights
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            metrics = dict(zip(terms, torch.stack(list(terms.values())).tolist()))
        self.num_updates += 1
        if self.num_updates % c.target_update_interval == 0:
            polyak_update(self.critic_target, self.critic, c.tau)  # θ̄ ← (1 − tau)·θ̄ + tau·θ
        return metrics

    # ----------------------------------------------------------------- state
    def networks(self) -> dict[str, torch.nn.Module]:
        return {"critic": self.critic, "critic_target": self.critic_target}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"critic": self.optimizer}

    def extra_state(self) -> dict[str, Any]:
        return {"progress": self._progress}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        self._progress = float(state["progress"])


# ----------------------------------------------------------------------------- the fast path
def fast_update(
    agent: IQN, batch: TransitionBatch, taus: torch.Tensor, next_taus: torch.Tensor
) -> dict[str, float]:
    """The step of :meth:`IQN.update`'s textbook loop (``IQN.fast_path``), with less overhead.

    Same fractions, target, loss, clipping and Adam step; the differences are only in how they
    are computed: the target's torso ``ψ(s′)`` and the embedding of ``[τ′ | τ̃]`` run once for
    both action selection and the target quantiles; the critic's ``head_*`` methods evaluate a
    linear head without forming the ``(B, N, W)`` product; the loss comes with its gradient and
    ``torch.autograd.grad`` back-propagates it (no loss node, no ``.grad`` accumulation); one host
    sync reads every metric; clipping runs only when it changes the gradient; :func:`~rlrobust.core.optim.adam_step`
    calls the fused Adam kernel directly. Does not count the update or sync the target net.
    """
    c, critic, target_net = agent.config, agent.critic, agent.critic_target
    n, n_t, b = c.n_quantiles, c.n_target_quantiles, len(batch)
    with torch.no_grad():
        psi_next = target_net.features(batch.next_observations)  # (B, W)
        phi_next = target_net.embed(next_taus)  # (B|1, N′ + K, W): τ′ and τ̃ in one pass
        if c.double_q:  # select a* with the online net
            online_next = critic.features(batch.next_observations)
            q_sel = critic.head_q(online_next, critic.embed(next_taus[:, n_t:]))
        else:
            q_sel = target_net.head_q(psi_next, phi_next[:, n_t:])  # (B, A)
        a_star = q_sel.argmax(dim=1)  # (B,)
        z_next = target_net.head_action_quantiles(psi_next, phi_next[:, :n_t], a_star)  # (B, N′)
        target = distributional_td_target(batch.rewards, batch.discounts, batch.dones, z_next)
    pred = critic.action_quantiles(batch.observations, taus, batch.actions)  # (B, N)
    loss, grad_pred = quantile_huber_loss_and_grad(pred, target, taus.expand(b, n), c.kappa)
    grads = list(torch.autograd.grad(pred, agent._params, grad_pred))
    grad_norm = _grad_norm(grads)
    # One host sync for all metrics; check_finite (which names the bad terms) only on failure.
    values = torch.stack([loss, pred.detach().mean(), grad_norm]).tolist()
    if not all(map(math.isfinite, values)):
        agent.check_finite(
            {"loss/critic": loss, "q/mean": pred.detach().mean(), "grad_norm/critic": grad_norm}
        )
    if values[2] + 1e-6 > agent._max_norm:  # else clip_grad_norm_'s factor would be >= 1: skip it
        _clip_grad_norm(grads, agent._max_norm, grad_norm)
    adam_step(agent.optimizer, grads)
    return dict(zip(("loss/critic", "q/mean", "grad_norm/critic"), values))


def _clip_grad_norm(
    grads: list[torch.Tensor], max_norm: float, total: torch.Tensor | None = None
) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_`` on a list of gradients of one device and dtype, in a few
    ops (it is on the hot path of every update); returns the norm before clipping. A norm the
    caller already computed (``_grad_norm``) can be passed as ``total``."""
    if total is None:
        total = _grad_norm(grads)
    if max_norm < math.inf:
        torch._foreach_mul_(grads, torch.clamp(max_norm / (total + 1e-6), max=1.0))
    return total


def _grad_norm(grads: list[torch.Tensor]) -> torch.Tensor:
    """The 2-norm of all ``grads`` together (a 0-d tensor)."""
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
