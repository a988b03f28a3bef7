"""IDQL: Implicit Q-Learning as an Actor-Critic Method with Diffusion Policies (Hansen-Estruch et al., 2023).

Paper: https://arxiv.org/abs/2304.10573. Reference code: philippe-eecs/IDQL ``jaxrl5/agents/
ddpm_iql_simple/ddpm_iql_learner.py`` (7582571). The critic is plain IQL;
the actor is an *unweighted* diffusion model of the behaviour policy; the critic acts only by
choosing among sampled actions.

One update on ``(s, a, r, s′, d, γ^k)`` (actions mapped to ``[−1, 1]``, clipped to ``±(1 − 1e-5)``):

* diffusion: ``t ~ U{0..T−1}``, ``ε ~ N(0, I)``, ``ã = √ᾱ_t·a + √(1 − ᾱ_t)·ε``,
  ``L = E‖ε − ε_ψ(s, ã, t)‖²``; EMA copy ``ψ̄ ← (1 − 0.001)ψ̄ + 0.001ψ`` every step;
* value: ``L_V = E[|τ − 1{Q̄ − V < 0}|·(Q̄ − V)²]``, ``Q̄ = min_k`` of the target critics;
* critic: ``L_Q = Σ_k E[(r + γ^k(1 − d)·V(s′) − Q_k(s, a))²]`` (online V); Polyak ``τ = 0.005``.

Acting: ``N`` samples from the EMA model with the VP schedule (:func:`ddpm_step`), then
``a = argmax_i min_k Q̄_k(s, a_i)``.

Deviations from the paper / official code:

* The three losses come from the same pre-update networks and are checked for NaN/inf before any
  optimizer step (the official code steps the actor, then V, then Q with the new V).
* ``act(deterministic=True)`` draws its diffusion noise from a generator re-seeded from the
  fixed seed on every call (the same observation always gives the same action, also after a
  checkpoint is reloaded);
  ``deterministic=False`` uses the agent's own generator.
* Dropout masks come from the agent's generator (no global RNG).
* AdamW's weight decay is optax's default ``1e-4``. One fused AdamW with three param groups
  (score network with weight decay and the cosine lr; critic and value without decay, i.e. Adam)
  and one backward pass replace the three optimizers; the updates are the same.
* :meth:`IDQL.diagnostics` (log steps only) reports the spread of the critic-selected actions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlrobust.agents.idql_diffusion import ScoreNetwork, ddpm_step, vp_beta_schedule
from rlrobust.core.agent_base import AgentBase, batched_act
from rlrobust.core.losses import expectile_loss
from rlrobust.core.networks import BoxRescale, EnsembleLinear, EnsembleMLP, mlp
from rlrobust.core.optim import adam_step, cosine_lr, fused_adam
from rlrobust.core.seeding import torch_generator
from rlrobust.core.targets import frozen_copy, polyak_update
from rlrobust.core.types import TransitionBatch

_ACTION_CLIP = 1.0 - 1e-5  # the official data clip, keeps targets strictly inside [−1, 1]
# Fixed noise seed of deterministic acting: a saved and reloaded agent acts identically.
_DETERMINISTIC_SEED = 12345


@dataclass
class IDQLConfig:
    """IDQL hyperparameters (defaults: IDQL launcher + simple learner at 7582571)."""

    learning_rate: float = 3e-4  # critic and value (Adam)
    actor_learning_rate: float = 3e-4  # diffusion model (AdamW, cosine decay)
    actor_lr_decay_steps: int | None = 3_000_000
    actor_weight_decay: float = 1e-4  # optax.adamw default
    batch_size: int = 512
    gamma: float = 0.99
    tau: float = 0.005  # Polyak rate of the target critics
    expectile: float = 0.7  # 0.7 locomotion, 0.9 AntMaze
    net_arch: list[int] = field(default_factory=lambda: [256, 256])  # critic and value MLPs
    n_critics: int = 2
    diffusion_steps: int = 5  # T
    beta_min: float = 0.1
    beta_max: float = 10.0
    time_dim: int = 128  # learnable Fourier features of t
    cond_arch: list[int] = field(default_factory=lambda: [256, 256])  # MLP on the time features
    score_width: int = 256
    score_blocks: int = 3
    dropout: float = 0.1
    ema_rate: float = 0.001  # EMA of the score network (the sampler)
    num_samples: int = 64  # N candidates per state
    temperature: float = 1.0
    normalize_reward: bool = True  # rewards × 1000/(max − min episode return), set by prepare()


def _xavier(module: nn.Module) -> None:
    """Flax's default for the critic/value: xavier-uniform weights, zero biases (member by member)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, EnsembleLinear):
            for k in range(m.weight.shape[0]):
                nn.init.xavier_uniform_(m.weight.data[k])
            nn.init.zeros_(m.bias)


class IDQL(AgentBase):
    """IDQL with the expectile critic; see the module docstring."""

    name: ClassVar[str] = "idql"
    Config: ClassVar[type] = IDQLConfig
    offline: ClassVar[bool] = True

    def __init__(
        self,
        config: IDQLConfig,
        observation_space: gym.Space,
        action_space: gym.Space,
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        super().__init__(config, observation_space, action_space, device=device, seed=seed)
        obs_dim = self.require_vector_obs(self.name, observation_space)
        low, high = self.require_box_actions(self.name, action_space)
        self.act_dim = int(np.prod(action_space.shape))
        self.action_box = BoxRescale(low, high, self.device)
        betas = vp_beta_schedule(config.diffusion_steps, config.beta_min, config.beta_max)
        self.betas = betas.to(self.device)
        self.alpha_bars = torch.cumprod(1.0 - betas, 0).to(self.device)
        with self.seeded_init():
            self.critic = EnsembleMLP(config.n_critics, obs_dim + self.act_dim, config.net_arch, 1)
            self.value = nn.Sequential(nn.LayerNorm(obs_dim), mlp(obs_dim, config.net_arch, 1))
            _xavier(self.critic)
            _xavier(self.value)
            self.score = ScoreNetwork(
                obs_dim,
                self.act_dim,
                time_dim=config.time_dim,
                cond_arch=config.cond_arch,
                width=config.score_width,
                blocks=config.score_blocks,
                dropout=config.dropout,
            )
        for module in (self.critic, self.value, self.score):
            module.to(self.device)
        self.critic_target = frozen_copy(self.critic)
        self.score_ema = frozen_copy(self.score)
        # One fused AdamW, param groups score (cosine lr, weight decay), critic, value (AdamW with
        # weight_decay 0 is Adam): the same updates as the official three optimizers.
        self.optimizer = fused_adam(
            [
                {
                    "params": list(self.score.parameters()),
                    "lr": config.actor_learning_rate,
                    "weight_decay": config.actor_weight_decay,
                },
                {"params": list(self.critic.parameters()), "weight_decay": 0.0},
                {"params": list(self.value.parameters()), "weight_decay": 0.0},
            ],
            config.learning_rate,
            decoupled=True,
        )
        self.reward_scale = 1.0

    # ----------------------------------------------------------------- protocol plumbing
    def networks(self) -> dict[str, nn.Module]:
        return {
            "critic": self.critic,
            "critic_target": self.critic_target,
            "value": self.value,
            "score": self.score,
            "score_ema": self.score_ema,
        }

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"adamw": self.optimizer}

    def extra_state(self) -> dict[str, Any]:
        return {"reward_scale": self.reward_scale}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        self.reward_scale = float(state["reward_scale"])

    def prepare(self, dataset: Any) -> None:
        """Set the reward scale ``1000/(max − min episode return)`` from the dataset (if enabled)."""
        if self.config.normalize_reward:
            from rlrobust.data.dataset import return_range_scale

            self.reward_scale = return_range_scale(dataset)

    # ----------------------------------------------------------------- acting
    @torch.no_grad()
    def sample_actions(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Reverse diffusion with the EMA model: ``(M, obs_dim)`` → ``(M, A)`` in ``[−1, 1]``.

        ``noise (T, M, A)``: ``noise[0]`` is the starting point ``x_T``, ``noise[j]`` the noise
        injected at step ``t = T − j`` (the last step ``t = 0`` injects none).
        """
        x = noise[0]
        steps_total = self.config.diffusion_steps
        for j, t in enumerate(reversed(range(steps_total))):
            steps = torch.full((obs.shape[0],), float(t), device=self.device)
            eps_hat = self.score_ema(obs, x, steps)
            x = ddpm_step(
                x,
                eps_hat,
                t,
                self.betas,
                self.alpha_bars,
                noise[j + 1] if t > 0 else None,
                self.config.temperature,
            )
        return x

    @torch.no_grad()
    def candidates(
        self, obs: torch.Tensor, generator: torch.Generator, *, per_state_noise: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``N`` diffusion samples per state and their ``min_k Q̄_k``: ``(B, N, A)`` in ``[−1, 1]``, ``(B, N)``.

        ``per_state_noise`` draws each state's noise as its own block, in order, so a state's
        samples do not depend on the other states in the batch (deterministic acting).
        """
        b, n, steps = obs.shape[0], self.config.num_samples, self.config.diffusion_steps
        rep = obs.repeat_interleave(n, dim=0)  # (B·N, obs_dim), state-major
        shape = (steps, n, self.act_dim)
        if per_state_noise:
            noise = torch.cat(
                [torch.randn(shape, generator=generator, device=self.device) for _ in range(b)], 1
            )
        else:
            noise = torch.randn((steps, b * n, self.act_dim), generator=generator, device=self.device)
        cand = self.sample_actions(rep, noise)  # (B·N, A)
        q = self.critic_target(torch.cat([rep, cand], -1)).squeeze(-1).min(0).values  # (B·N,)
        return cand.view(b, n, -1), q.view(b, n)

    def select(
        self, obs: torch.Tensor, generator: torch.Generator, *, per_state_noise: bool = False
    ) -> torch.Tensor:
        """``argmax_i min_k Q̄_k(s, a_i)`` over ``N`` samples per state; ``(B, A)`` in ``[−1, 1]``."""
        cand, q = self.candidates(obs, generator, per_state_noise=per_state_noise)
        return cand[torch.arange(cand.shape[0], device=self.device), q.argmax(dim=1)]

    @batched_act
    def act(self, obs: np.ndarray, *, deterministic: bool = False) -> np.ndarray:
        """Critic-selected diffusion samples: ``(B, obs_dim)`` → ``(B, act_dim)``; unbatched → ``(act_dim,)``."""
        x = self.obs_tensor(obs)
        if deterministic:
            a = self.select(x, torch_generator(_DETERMINISTIC_SEED, self.device), per_state_noise=True)
        else:
            a = self.select(x, self.generator)
        return self.action_box.to_box(a).cpu().numpy()

    # ----------------------------------------------------------------- learning
    def update(self, batch: TransitionBatch) -> dict[str, float]:
        cfg = self.config
        obs, next_obs = batch.observations, batch.next_observations
        b = len(batch)
        actions = self.action_box.to_unit(batch.actions.reshape(b, self.act_dim), _ACTION_CLIP)
        sa = torch.cat([obs, actions], -1)
        # Diffusion (ε-prediction) loss.
        t = torch.randint(0, cfg.diffusion_steps, (b,), generator=self.generator, device=self.device)
        eps = torch.randn(actions.shape, generator=self.generator, device=self.device)
        ab = self.alpha_bars[t].unsqueeze(1).float()
        noisy = ab.sqrt() * actions + (1 - ab).sqrt() * eps
        actor_loss = (eps - self.score(obs, noisy, t.float(), self.generator)).square().sum(-1).mean()
        # Expectile value against the min of the target critics.
        with torch.no_grad():
            q_target = self.critic_target(sa).squeeze(-1).min(0).values  # (B,)
            y = batch.rewards * self.reward_scale + batch.discounts * (1 - batch.dones) * self.value(
                next_obs
            ).squeeze(-1)
        v = self.value(obs).squeeze(-1)
        value_loss = expectile_loss(q_target - v, cfg.expectile)
        q = self.critic(sa).squeeze(-1)  # (K, B)
        critic_loss = (q - y).square().mean(1).sum()
        losses = {"loss/actor": actor_loss, "loss/value": value_loss, "loss/critic": critic_loss}
        self.check_finite(losses)

        actor_group = self.optimizer.param_groups[0]
        if cfg.actor_lr_decay_steps:
            actor_group["lr"] = cosine_lr(cfg.actor_learning_rate, self.num_updates, cfg.actor_lr_decay_steps)
        # The losses touch disjoint parameters (targets carry no gradient): one backward, one step.
        self.optimizer.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        adam_step(self.optimizer)
        polyak_update(self.critic_target, self.critic, cfg.tau)
        polyak_update(self.score_ema, self.score, cfg.ema_rate)
        self.num_updates += 1
        values = torch.stack(
            [*(loss.detach() for loss in losses.values()), q.detach().mean(), v.detach().mean()]
        ).tolist()
        return dict(zip([*losses, "q/mean", "v/mean"], values)) | {"lr/actor": actor_group["lr"]}

    @torch.no_grad()
    def diagnostics(self, batch: TransitionBatch, states: int = 32) -> dict[str, float]:
        """The spread of the critic-selected actions (the trainer calls this at log steps only) on
        the first ``states`` states of ``batch``: the std over states of the selected actions and
        the mean std of the ``N`` diffusion candidates within a state (both in ``[−1, 1]`` units,
        averaged over action dimensions), and the mean Q of the selected vs all candidates."""
        # Own generator, seeded by the update count: logging never moves the training RNG.
        generator = torch_generator(_DETERMINISTIC_SEED + self.num_updates, self.device)
        cand, q = self.candidates(batch.observations[:states], generator)
        selected = cand[torch.arange(cand.shape[0], device=self.device), q.argmax(dim=1)]  # (B, A)
        values = torch.stack(
            [selected.std(0).mean(), cand.std(1).mean(), q.max(1).values.mean(), q.mean()]
        ).tolist()
        return dict(
            zip(("actions/selected_std", "actions/candidate_std", "q/selected", "q/candidates"), values)
        )
