"""Robust RVI Q-learning for average-reward robust MDPs.

Paper: Y. Wang, A. Velasquez, G. Atia, A. Prater-Bennette, S. Zou, "Model-Free Robust
Average-Reward Reinforcement Learning", ICML 2023.

Setting: tabular, model-free, average reward, (s, a)-rectangular uncertainty set 𝒫 centred on the
unknown nominal kernel P̃, learning from samples of P̃ only. The robust Bellman equation is
``Q(s, a) = r(s, a) − g + σ_{𝒫(s,a)}(V)``, ``V(s) = max_a Q(s, a)``, with ``g`` the optimal robust
gain and σ the support function of the set (``rlrobust.robust``).

Update, for each sampled (s, a, r):

    Q(s, a) ← Q(s, a) + α · [ r − f(Q) + σ̂_{𝒫(s,a)}(V) − Q(s, a) ]

* σ̂ is an *unbiased* estimate of σ(V) from nominal next-state samples: one sample for the
  contamination set (σ is linear in P̃ there), multilevel Monte Carlo for TV, χ², KL and
  Wasserstein (``KernelSet.estimate``; Ψ = ``mlmc_psi``). The extra samples come from the
  generative model of the environment (``TrainingServices.generative_model``).
* f is the RVI offset: ``mean`` (mean of Q over all pairs) or ``reference`` (Q(s₀, a₀)); both are
  Lipschitz with f(e) = 1, f(Q + c·e) = f(Q) + c, so f(Q) → g at convergence: ``gain_estimate``.
* α follows ``lr_schedule``: ``count`` (α = lr/(1 + n(s,a))^p, per-pair visit counts, the
  asynchronous Robbins–Monro choice), ``global`` (α = lr/(1 + n)^p over updates) or ``constant``.

The Q table is a ``(copies, S, A)`` float64 tensor: :func:`update_tables` updates many independent
copies at once (the vectorised path of ``benchmarks/bench_robust.py``); the agent is one copy.

Fast path (``RobustRVIQ.fast_path``, on by default): a step of one small table is some fifty
tiny torch operations, each costing far more than its arithmetic. On the CPU, for the
contamination set, :func:`fast_update` and :func:`fast_act` do the same step on NumPy views of
the table: the same random draws from the agent's generator (torch calls of the same shapes),
the same float64 operations in the same order, and torch itself wherever its result could differ
in the last bit from NumPy's (the RVI offset's matrix–vector product, ``pow`` of the step sizes).
The table and the counts come out bit for bit as the plain path gives them (tested); the
metrics' means are NumPy's, equal to the plain path's to float64 round-off. Other sets and
devices take the plain path.

About 500 lines, on purpose: the plain update (the paper's equations, batched over copies) and its
bit-identical fast path stay side by side, so a reader checks one against the other in one file.

Deviations from the paper:
* Exploration is ε-greedy on Q (the paper analyses a generic behaviour policy / generative model).
* The MLMC level is capped at 20 (tail mass folded into the last level): unbiased for σ of a
  2²¹-sample empirical distribution rather than of P̃ itself; see ``rlrobust.robust.kernel_sets``.
* Without an attached generative model (e.g. the contract tests) the batch's own next state is
  used as a single sample: exact in expectation for contamination, a biased plug-in otherwise.
* Several samples of the same pair in one batch are applied as one summed step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlrobust.core.agent_base import AgentBase, batched_act, validate_config
from rlrobust.core.errors import ConfigError, choices
from rlrobust.core.types import TrainingServices, TransitionBatch
from rlrobust.robust import KernelSet, make_kernel_set, robust_relative_value_iteration
from rlrobust.robust.kernel_sets import Contamination

OFFSETS = ("mean", "reference")
SCHEDULES = ("constant", "count", "global")


@dataclass
class RobustRVIQConfig:
    """Hyperparameters (defaults: our choices; the paper's experiment values were not retrieved)."""

    kernel_set: str = "contamination"  #: contamination | tv | chi2 | kl | wasserstein
    radius: float = 0.1  #: δ of the set
    metric: list | None = None  #: Wasserstein ground metric (S×S); None = |i − j|
    mlmc_psi: float = 0.6  #: MLMC geometric parameter Ψ ∈ (0.5, 0.75)
    offset: str = "mean"  #: RVI offset f: mean | reference
    reference_pair: list = field(default_factory=lambda: [0, 0])  #: (s₀, a₀) for offset=reference
    learning_rate: float = 1.0  #: α scale
    lr_schedule: str = "count"  #: constant | count | global
    lr_power: float = 0.6  #: p in α = lr/(1 + n)^p; Robbins–Monro needs 0.5 < p ≤ 1
    exploration_rate: float = 0.1  #: ε of ε-greedy acting
    # trainer settings
    batch_size: int = 32
    buffer_size: int = 100_000
    learning_starts: int = 0
    train_freq: int = 1
    gradient_steps: int = 1


def rvi_offset(q: torch.Tensor, offset: str, reference_pair: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """The RVI offset f(Q) of each copy: ``q`` (C, S, A) → (C,)."""
    if q.dim() != 3:
        raise ValueError(f"q must have shape (copies, S, A), got {tuple(q.shape)}")
    if offset == "mean":
        # a matrix–vector product: reductions over short trailing axes are slow on CPU
        flat = q.reshape(q.shape[0], -1)
        return flat @ torch.full((flat.shape[1],), 1.0 / flat.shape[1], dtype=q.dtype, device=q.device)
    if offset == "reference":
        return q[:, reference_pair[0], reference_pair[1]]
    raise ConfigError(f"unknown offset {offset!r}; valid: {choices(OFFSETS)}")


def estimate_next_values(
    kernel_set: KernelSet,
    q: torch.Tensor,
    states: torch.Tensor,
    actions: torch.Tensor,
    generative_model: Any,
    generator: torch.Generator | None,
    psi: float = 0.6,
    next_states: torch.Tensor | None = None,
) -> torch.Tensor:
    """σ̂_{𝒫(s,a)}(V) for every (copy, sample): ``q`` (C, S, A), ``states``/``actions`` (C, B) → (C, B).

    Draws nominal next states from ``generative_model.sample`` (unbiased); with no model it falls
    back to ``next_states`` (C, B) as one sample each (biased for non-linear sets).
    """
    if states.shape != actions.shape or states.dim() != 2 or states.shape[0] != q.shape[0]:
        raise ValueError(
            f"states {tuple(states.shape)} and actions {tuple(actions.shape)} must both be "
            f"(copies, B) with copies = {q.shape[0]}"
        )
    C, B = states.shape
    S = q.shape[1]
    v = q.amax(-1)  # (C, S)
    rows_v = v.unsqueeze(1).expand(C, B, S).reshape(C * B, S)
    flat_s, flat_a = states.reshape(-1), actions.reshape(-1)
    if generative_model is not None:

        def sampler(rows: torch.Tensor, n: int) -> torch.Tensor:
            return generative_model.sample(
                flat_s.index_select(0, rows), flat_a.index_select(0, rows), n, generator
            ).to(q.device)
    elif next_states is not None:
        flat_next = next_states.reshape(-1)

        def sampler(rows: torch.Tensor, n: int) -> torch.Tensor:
            return flat_next.index_select(0, rows).unsqueeze(1).expand(len(rows), n)
    else:
        raise ValueError("either a generative model or next_states is needed to estimate σ")
    return kernel_set.estimate(rows_v, sampler, generator, psi).reshape(C, B)


def step_sizes(
    visits: torch.Tensor, lr_schedule: str, learning_rate: float, lr_power: float, num_updates: int
) -> torch.Tensor:
    """α for each sample (the module docstring's ``lr_schedule``), shaped like ``visits``: the
    float64 visit counts n(s, a) of the samples' pairs before this update."""
    if lr_schedule == "constant":
        return torch.full_like(visits, learning_rate)
    if lr_schedule == "count":
        return learning_rate / (1.0 + visits) ** lr_power
    if lr_schedule == "global":
        return torch.full_like(visits, learning_rate / (1.0 + num_updates) ** lr_power)
    raise ConfigError(f"unknown lr_schedule {lr_schedule!r}; valid: {choices(SCHEDULES)}")


def update_tables(
    q: torch.Tensor,
    counts: torch.Tensor,
    states: torch.Tensor,
    actions: torch.Tensor,
    rewards: torch.Tensor,
    sigma: torch.Tensor,
    *,
    offset: str = "mean",
    reference_pair: tuple[int, int] = (0, 0),
    learning_rate: float = 1.0,
    lr_schedule: str = "count",
    lr_power: float = 0.6,
    num_updates: int = 0,
    check_finite: Callable[[dict[str, torch.Tensor]], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One robust RVI Q-learning step on many independent copies, in place.

    Args:
        q: ``(C, S, A)`` float64 Q tables. counts: ``(C, S, A)`` visit counts (float64).
        states, actions: ``(C, B)`` int64. rewards, sigma: ``(C, B)`` rewards and σ̂(V) estimates.
        num_updates: updates done so far (for ``lr_schedule="global"``).
        check_finite: called with ``{"loss/td": td}`` before anything is written (it raises on NaN/inf).

    Returns:
        ``(td (C, B), alpha (C, B))``: the TD errors r − f(Q) + σ̂ − Q(s, a) and step sizes used.
    """
    C, S, A = q.shape
    if (
        not (states.shape == actions.shape == rewards.shape == sigma.shape)
        or states.dim() != 2
        or states.shape[0] != C
    ):
        raise ValueError(
            f"states, actions, rewards, sigma must all be (C, B) with C = {C}; got "
            f"{tuple(states.shape)}, {tuple(actions.shape)}, {tuple(rewards.shape)}, {tuple(sigma.shape)}"
        )
    flat = (torch.arange(C, device=q.device).unsqueeze(1) * (S * A) + states * A + actions).reshape(-1)
    q_sa = q.view(-1).index_select(0, flat).view(states.shape)
    td = rewards.to(q.dtype) - rvi_offset(q, offset, reference_pair).unsqueeze(1) + sigma.to(q.dtype) - q_sa
    visits = counts.view(-1).index_select(0, flat).view(states.shape)
    alpha = step_sizes(visits, lr_schedule, learning_rate, lr_power, num_updates)
    if check_finite is not None:
        check_finite({"loss/td": td})
    q.view(-1).index_add_(0, flat, (alpha * td).reshape(-1))
    counts.view(-1).index_add_(0, flat, torch.ones_like(td).reshape(-1))
    return td, alpha


class QTable(nn.Module):
    """The Q table as a module (so checkpoints and the contract suite see it); no gradients."""

    def __init__(self, n_states: int, n_actions: int) -> None:
        super().__init__()
        self.q = nn.Parameter(torch.zeros(n_states, n_actions, dtype=torch.float64), requires_grad=False)


class RobustRVIQ(AgentBase):
    """Robust RVI Q-learning; see the module docstring."""

    name: ClassVar[str] = "robust_rvi_q"
    Config: ClassVar[type] = RobustRVIQConfig
    offline: ClassVar[bool] = False
    requires: ClassVar[frozenset[str]] = frozenset({"generative_model"})
    #: run :meth:`act`/:meth:`update` through :func:`fast_act`/:func:`fast_update` where they
    #: apply (same results, far less overhead; module docstring); False: always the plain path
    fast_path: bool = True
    _fast_state: _FastState | None = None  #: the fast path's views and buffers (built on first use)

    def __init__(
        self,
        config: RobustRVIQConfig,
        observation_space: gym.Space,
        action_space: gym.Space,
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        super().__init__(config, observation_space, action_space, device=device, seed=seed)
        self.n_states = self.require_discrete_obs(self.name, observation_space)
        self.n_actions = self.require_discrete_actions(self.name, action_space)
        kw = {"metric": np.asarray(config.metric)} if config.metric is not None else {}
        self.kernel_set = make_kernel_set(config.kernel_set, config.radius, **kw)
        s0, a0 = (int(x) for x in config.reference_pair)
        validate_config(
            "robust RVI Q-learning",
            config,
            [
                (config.offset in OFFSETS, f"unknown offset {config.offset!r}; valid: {choices(OFFSETS)}"),
                (
                    config.lr_schedule in SCHEDULES,
                    f"unknown lr_schedule {config.lr_schedule!r}; valid: {choices(SCHEDULES)}",
                ),
                (
                    0.5 < config.mlmc_psi < 1.0,
                    "mlmc_psi must lie in (0.5, 1); (0.5, 0.75) keeps variance finite",
                ),
                (
                    0 <= s0 < self.n_states and 0 <= a0 < self.n_actions,
                    f"reference_pair {config.reference_pair} is outside the {self.n_states}×{self.n_actions} table",
                ),
            ],
        )
        self.reference_pair = (s0, a0)
        with self.seeded_init():
            self.table = QTable(self.n_states, self.n_actions).to(self.device)
        self.counts = torch.zeros(self.n_states, self.n_actions, dtype=torch.float64, device=self.device)
        #: the weights of the ``mean`` offset's product (rvi_offset's), kept for the fast path
        n_pairs = self.n_states * self.n_actions
        self.mean_weights = torch.full((n_pairs,), 1.0 / n_pairs, dtype=torch.float64, device=self.device)
        self.generative_model: Any = None
        self.exact_gain: float | None = None

    # ------------------------------------------------------------------ services
    def attach(self, services: TrainingServices) -> None:
        """Take the generative model (next-state samples) and, if known, the model's exact robust gain."""
        self.generative_model = services.generative_model
        if services.model is not None:
            P, R = services.model
            try:
                self.exact_gain, _, _ = robust_relative_value_iteration(P, R, self.kernel_set)
            except RuntimeError:  # a multichain worst case has no single gain to compare with
                self.exact_gain = None

    @property
    def gain_estimate(self) -> float:
        """The current robust gain estimate f(Q)."""
        return float(rvi_offset(self.table.q.unsqueeze(0), self.config.offset, self.reference_pair)[0])

    # ------------------------------------------------------------------ protocol
    @batched_act
    def act(self, obs: np.ndarray, *, deterministic: bool = False) -> np.ndarray:
        """ε-greedy (greedy if ``deterministic``) on the Q table: state indices ``(B,)`` → actions ``(B,)``."""
        if self.uses_fast_path:
            return fast_act(self, obs, deterministic)
        return self._plain_act(obs, deterministic)

    @torch.no_grad()
    def _plain_act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        s = self.index_tensor(obs)
        actions = self.table.q[s].argmax(-1)
        if not deterministic and self.config.exploration_rate > 0:
            explore = (
                torch.rand(len(s), generator=self.generator, device=self.device)
                < self.config.exploration_rate
            )
            random = torch.randint(self.n_actions, (len(s),), generator=self.generator, device=self.device)
            actions = torch.where(explore, random, actions)
        return actions.cpu().numpy()

    @property
    def uses_fast_path(self) -> bool:
        """Whether :meth:`act`/:meth:`update` take the fast path (``fast_path``, CPU, contamination)."""
        return self.fast_path and self.device.type == "cpu" and isinstance(self.kernel_set, Contamination)

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        if self.uses_fast_path:
            return fast_update(self, batch)
        return self._plain_update(batch)

    @torch.no_grad()
    def _plain_update(self, batch: TransitionBatch) -> dict[str, float]:
        cfg = self.config
        s = self.index_tensor(batch.observations).unsqueeze(0)  # (1, B): one copy
        a = self.index_tensor(batch.actions).unsqueeze(0)
        r = batch.rewards.to(self.device, torch.float64).reshape(1, -1)
        q = self.table.q.unsqueeze(0)  # a view: updates land in the parameter
        sigma = estimate_next_values(
            self.kernel_set,
            q,
            s,
            a,
            self.generative_model,
            self.generator,
            cfg.mlmc_psi,
            next_states=self.index_tensor(batch.next_observations).unsqueeze(0),
        )
        td, alpha = update_tables(
            q,
            self.counts.unsqueeze(0),
            s,
            a,
            r,
            sigma,
            offset=cfg.offset,
            reference_pair=self.reference_pair,
            learning_rate=cfg.learning_rate,
            lr_schedule=cfg.lr_schedule,
            lr_power=cfg.lr_power,
            num_updates=self.num_updates,
            check_finite=self.check_finite,
        )
        self.num_updates += 1
        metrics = {
            "gain/estimate": self.gain_estimate,
            "td/abs_mean": float(td.abs().mean()),
            "q/mean": float(self.table.q.mean()),
            "sigma/mean": float(sigma.mean()),
            "lr/mean": float(alpha.mean()),
        }
        return self._with_gain_error(metrics)

    def _with_gain_error(self, metrics: dict[str, float]) -> dict[str, float]:
        """``metrics`` plus ``gain/error`` (the distance to the exact robust gain) when it is known."""
        if self.exact_gain is not None:
            metrics["gain/error"] = abs(metrics["gain/estimate"] - self.exact_gain)
        return metrics

    def networks(self) -> dict[str, nn.Module]:
        return {"q": self.table}

    def extra_state(self) -> dict[str, Any]:
        return {"counts": self.counts.clone()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.counts.copy_(state["counts"])


def _indices(x: Any) -> np.ndarray:
    """State or action indices as a flat int64 array (``AgentBase.index_tensor`` in NumPy)."""
    # a CPU tensor's .numpy() directly: np.asarray goes through Tensor.__array__ in Python
    array = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return array.astype(np.int64, copy=False).reshape(-1)


class _FastState:
    """What the fast path would otherwise build anew at every step: NumPy views of the table and
    the counts, the flat table for the offset's product, and the outputs (tensors with NumPy
    views) that ``torch.mv``, ``torch.pow``, ``torch.rand`` and ``torch.randint`` write into with
    ``out=``: the same kernels and generator draws as the calls without ``out=`` (same bits),
    without a tensor allocated per call. Rebuilt when the agent's table or counts are other
    tensors (e.g. moved); the per-batch buffers when the batch size changes."""

    def __init__(self, agent: RobustRVIQ) -> None:
        self.q_param, self.counts_t = agent.table.q, agent.counts
        q_t = self.q_param.detach()
        self.q, self.counts = q_t.numpy(), self.counts_t.numpy()  # views: writes land in the tensors
        self.q_row = q_t.view(1, -1)
        self.mv_out = torch.empty(1, dtype=torch.float64)
        self.mv_np = self.mv_out.numpy()
        self.batch = self.acting = -1

    def __reduce__(self) -> tuple[Any, ...]:
        # a copy of the views would no longer be views of the copied agent's tensors: a copied
        # (deepcopy, pickle) agent gets None and builds its own on first use
        return (type(None), ())

    def act_buffers(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The exploration draws' outputs (``torch.rand``, ``torch.randint``) for ``batch`` states."""
        if batch != self.acting:
            self.rand_out = torch.empty(batch, dtype=torch.float32)
            self.randint_out = torch.empty(batch, dtype=torch.int64)
            self.acting = batch
        return self.rand_out, self.randint_out

    def pow_buffers(self, batch: int) -> tuple[torch.Tensor, np.ndarray, torch.Tensor, np.ndarray]:
        """``pow``'s input and output for ``batch`` samples (each as a tensor and a NumPy view)."""
        if batch != self.batch:
            self.pow_in, self.pow_out = (
                torch.empty(batch, dtype=torch.float64),
                torch.empty(batch, dtype=torch.float64),
            )
            self.pow_in_np, self.pow_out_np = self.pow_in.numpy(), self.pow_out.numpy()
            self.batch = batch
        return self.pow_in, self.pow_in_np, self.pow_out, self.pow_out_np


def _fast_state(agent: RobustRVIQ) -> _FastState:
    state = agent._fast_state
    if state is None or state.q_param is not agent.table.q or state.counts_t is not agent.counts:
        state = agent._fast_state = _FastState(agent)
    return state


def fast_act(agent: RobustRVIQ, obs: Any, deterministic: bool) -> np.ndarray:
    """:meth:`RobustRVIQ.act`'s ε-greedy step on a NumPy view of the table (``agent.uses_fast_path``).

    Same actions and generator draws: ``argmax`` picks the first maximum in both libraries, the
    exploration draws are the same torch calls, compared with ε in float32 as torch compares.
    """
    s = _indices(obs)
    fs = _fast_state(agent)
    actions = fs.q[s].argmax(-1)
    eps = agent.config.exploration_rate
    if not deterministic and eps > 0:
        rand_out, randint_out = fs.act_buffers(len(s))
        explore = torch.rand(len(s), generator=agent.generator, out=rand_out).numpy() < np.float32(eps)
        random = torch.randint(agent.n_actions, (len(s),), generator=agent.generator, out=randint_out).numpy()
        actions = np.where(explore, random, actions)
    return actions


def fast_update(agent: RobustRVIQ, batch: TransitionBatch) -> dict[str, float]:
    """:meth:`RobustRVIQ.update` for the contamination set on NumPy views of the table and the
    counts (``agent.uses_fast_path``; see the module docstring for what stays in torch)."""
    cfg = agent.config
    fs = _fast_state(agent)
    q, counts = fs.q, fs.counts
    s, a = _indices(batch.observations), _indices(batch.actions)
    rewards = batch.rewards.numpy().astype(np.float64).reshape(-1)
    # σ̂ = (1 − δ)·V(s') + δ·min V from one nominal sample s' per row (Contamination.estimate)
    v = q.max(1)
    model = agent.generative_model
    if model is None:
        s_next = _indices(batch.next_observations)
    elif getattr(model, "numpy_path", None) is not None and model.numpy_path(len(s)):
        s_next = model.sample_numpy(s, a, 1, agent.generator)[:, 0]  # the same draws as sample
    else:
        s_next = model.sample(torch.from_numpy(s), torch.from_numpy(a), 1, agent.generator).numpy()[:, 0]
    radius = agent.kernel_set.radius
    sigma = (1.0 - radius) * v[s_next] + radius * v.min()
    # update_tables, one copy: td = r − f(Q) + σ̂ − Q(s, a), α from the visit counts
    flat = s * agent.n_actions + a
    if cfg.offset == "mean":  # rvi_offset's product, one torch call (the weights are kept)
        torch.mv(fs.q_row, agent.mean_weights, out=fs.mv_out)
        offset = float(fs.mv_np[0])
    else:
        offset = float(q[agent.reference_pair])
    td = rewards - offset + sigma - q.reshape(-1)[flat]
    visits = counts.reshape(-1)[flat]
    if cfg.lr_schedule == "count":
        # step_sizes' lr / (1 + n)^p op for op: torch's pow (its last bit depends on an element's
        # position in the tensor), then lr · (1/x) as torch divides a number by a tensor
        pow_in, pow_in_np, pow_out, pow_out_np = fs.pow_buffers(len(visits))
        np.add(visits, 1.0, out=pow_in_np)
        torch.pow(pow_in, cfg.lr_power, out=pow_out)
        alpha = np.reciprocal(pow_out_np) * cfg.learning_rate
    else:
        alpha = step_sizes(
            torch.from_numpy(visits), cfg.lr_schedule, cfg.learning_rate, cfg.lr_power, agent.num_updates
        ).numpy()
    if not np.isfinite(td).all():
        agent.check_finite({"loss/td": torch.from_numpy(td)})  # raises, naming it
    # np.add.at adds repeated pairs one after another in batch order, as index_add_ does
    np.add.at(q.reshape(-1), flat, alpha * td)
    # the counts are whole numbers far below 2⁵³: adding a pair's k visits at once is exact,
    # the same as adding 1 k times
    counts.reshape(-1)[:] += np.bincount(flat, minlength=counts.size)
    agent.num_updates += 1
    # NumPy's means as sum / size (what np.mean computes, without its Python-level overhead);
    # their summation order may differ from torch's in the last bit
    q_mean = float(q.sum()) / q.size
    metrics = {
        "gain/estimate": q_mean if cfg.offset == "mean" else float(q[agent.reference_pair]),
        "td/abs_mean": float(np.abs(td).sum()) / td.size,
        "q/mean": q_mean,
        "sigma/mean": float(sigma.sum()) / sigma.size,
        "lr/mean": float(alpha.sum()) / alpha.size,
    }
    return agent._with_gain_error(metrics)
