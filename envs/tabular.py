"""Tabular and d-rectangular linear MDPs: a gymnasium env, a batched torch env, generators.

* :class:`TabularMDP` — a continuing gymnasium env over a model ``P`` (S, A, S), ``R`` (S, A) with
  ``Discrete`` observations and actions. The trainer reads ``env.unwrapped.P`` / ``.R`` (exact
  baselines) and ``env.unwrapped.generative_model()`` (next-state samples for any (s, a)).
* :class:`GenerativeModel` — ``sample(states, actions, n, generator) -> (B, n)`` next states by
  inverse-CDF sampling, on CPU or GPU.
* :class:`BatchedTabularMDP` — many copies of one model stepped at once in torch on one device
  (this is where tabular rollouts are truly vectorised).
* :func:`garnet`, :func:`river_swim` — the standard random and hard-exploration test models.
* :class:`LinearMDP` / :func:`linear_mdp` — d-rectangular linear MDPs with known features
  ``φ(s, a) ∈ Δ_d``, ``P(·|s, a) = Σ_i φ_i(s, a) μ_i``, ``R = φᵀθ`` (the setting of DR-RPO); a
  tabular MDP is the special case of one-hot features (:meth:`LinearMDP.from_tabular`).

Gymnasium ids registered on import: ``rlrobust/Garnet-v0``, ``rlrobust/RiverSwim-v0``,
``rlrobust/LinearMDP-v0``.
"""

from __future__ import annotations

import bisect
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlrobust.core.errors import ConfigError
from rlrobust.core.seeding import torch_generator
from rlrobust.robust.dynamic_programming import check_model
from rlrobust.robust.kernel_sets import ModelError, check_distribution


class GenerativeModel:
    """Next-state samples from a tabular kernel for arbitrary (state, action) pairs."""

    def __init__(self, P: torch.Tensor) -> None:
        self.cdf = P.to(torch.float64).cumsum(-1)  # (S, A, S)
        self.cdf[..., -1] = 1.0  # rounding must never push a draw past the last state
        self.n_states, self.n_actions = P.shape[-1], P.shape[1]
        self._flat_cdf = self.cdf.reshape(-1, self.n_states)  # row s·A + a
        self._flat_cdf_np = self._flat_cdf.numpy() if self.cdf.device.type == "cpu" else None
        self._uniforms = torch.empty(0, 0, dtype=torch.float64)  # sample_numpy's draws

    def sample(
        self, states: torch.Tensor, actions: torch.Tensor, n: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``(B, n)`` int64 next states, i.i.d. from ``P(·|states[b], actions[b])``.

        Inverse CDF: the state is the number of CDF entries ≤ u (u ~ U[0, 1)). With few states a
        chain of comparisons is about twice as fast as ``searchsorted`` (and gives the same states);
        a small batch on the CPU (an agent's update) takes NumPy, where a torch call per operation
        would cost more than the arithmetic. Every path draws the same uniforms.
        """
        if self.numpy_path(len(states) * n):
            return torch.from_numpy(
                self.sample_numpy(states.cpu().numpy(), actions.cpu().numpy(), n, generator)
            )
        pair = states.to(self.cdf.device) * self.n_actions + actions.to(self.cdf.device)
        cdf = self._flat_cdf.index_select(0, pair)  # (B, S)
        u = torch.rand(cdf.shape[0], n, generator=generator, dtype=torch.float64, device=cdf.device)
        if self.n_states > 16:
            return torch.searchsorted(cdf, u, right=True).clamp_(max=self.n_states - 1)
        out = torch.zeros(u.shape, dtype=torch.int64, device=u.device)
        for s in range(self.n_states - 1):  # the last entry is exactly 1 > u
            out += u >= cdf[:, s : s + 1]
        return out

    def numpy_path(self, draws: int) -> bool:
        """Whether :meth:`sample` takes NumPy for ``draws`` = B·n draws (then
        :meth:`sample_numpy` gives the same states for NumPy inputs)."""
        return self._flat_cdf_np is not None and self.n_states <= 16 and draws <= 4096

    def sample_numpy(
        self, states: np.ndarray, actions: np.ndarray, n: int, generator: torch.Generator | None = None
    ) -> np.ndarray:
        """:meth:`sample`'s NumPy path on NumPy indices (when :meth:`numpy_path` holds): the
        same uniforms and states, without the tensor round trips of a caller that holds arrays."""
        pair = states * self.n_actions + actions
        # the uniforms go into a kept tensor (torch.rand's out=: the same kernel and draws,
        # without an allocation per call); ``take`` selects the rows as fancy indexing does
        if self._uniforms.shape != (len(pair), n):
            self._uniforms = torch.empty(len(pair), n, dtype=torch.float64)
        u = torch.rand(len(pair), n, generator=generator, dtype=torch.float64, out=self._uniforms).numpy()
        rows = self._flat_cdf_np.take(pair, axis=0)  # (B, S); its last entry is exactly 1 > u
        return (u[:, :, None] >= rows[:, None, :-1]).sum(-1)


class TabularMDP(gym.Env):
    """A continuing (never terminating) tabular MDP as a gymnasium env.

    Args:
        P: ``(S, A, S)`` transition probabilities. R: ``(S, A)`` rewards.
        initial_distribution: ``(S,)`` start-state distribution (default uniform).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, P: Any, R: Any, initial_distribution: Any = None) -> None:
        P_t, R_t = check_model(P, R)
        self.P, self.R = P_t.numpy(), R_t.numpy()
        self.n_states, self.n_actions = self.R.shape
        if initial_distribution is None:
            initial_distribution = np.full(self.n_states, 1.0 / self.n_states)
        self.initial_distribution = check_distribution(initial_distribution, "initial_distribution")
        if self.initial_distribution.shape != (self.n_states,):
            raise ModelError(
                f"initial_distribution must have shape ({self.n_states},), "
                f"got {self.initial_distribution.shape}"
            )
        self.observation_space = gym.spaces.Discrete(self.n_states)
        self.action_space = gym.spaces.Discrete(self.n_actions)
        # step reads Python floats: bisect_right on a short list costs a fraction of
        # np.searchsorted's call overhead and makes the same float64 comparisons (same state)
        self._cdf_rows = np.cumsum(self.P, -1).tolist()
        self._reward_rows = self.R.tolist()
        self.state = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        self.state = int(self.np_random.choice(self.n_states, p=self.initial_distribution))
        return self.state, {}

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict]:
        a = int(action)
        if not 0 <= a < self.n_actions:
            raise gym.error.InvalidAction(f"action {action!r} is outside Discrete({self.n_actions})")
        reward = self._reward_rows[self.state][a]
        u = self.np_random.random()
        self.state = min(bisect.bisect_right(self._cdf_rows[self.state][a], u), self.n_states - 1)
        return self.state, reward, False, False, {}

    def capture_state(self) -> int:
        """The current state (:mod:`rlrobust.core.env_state`'s protocol; ``np_random`` is captured
        generically)."""
        return self.state

    def restore_state(self, state: int) -> None:
        """Continue from a state returned by :meth:`capture_state`."""
        self.state = int(state)

    def tabular_model(self, device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """``(P, R)`` as float64 tensors on ``device``."""
        return torch.as_tensor(self.P, device=device), torch.as_tensor(self.R, device=device)

    def generative_model(self, device: str | torch.device = "cpu") -> GenerativeModel:
        """A sampler of next states for any (s, a) (what robust RVI Q-learning's MLMC needs)."""
        return GenerativeModel(torch.as_tensor(self.P, device=device))


class BatchedTabularMDP:
    """``num_envs`` independent copies of one tabular MDP, stepped together in torch.

    Copies never terminate; with ``max_episode_steps`` they are truncated and reset together
    (``step`` returns the final states; :attr:`states` already holds the reset ones).
    """

    def __init__(
        self,
        P: Any,
        R: Any,
        num_envs: int,
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
        initial_distribution: Any = None,
        max_episode_steps: int | None = None,
    ) -> None:
        if num_envs < 1:
            raise ConfigError(f"num_envs={num_envs} must be ≥ 1")
        env = TabularMDP(P, R, initial_distribution)  # validates
        self.device = torch.device(device)
        self.num_envs, self.n_states, self.n_actions = num_envs, env.n_states, env.n_actions
        self.single_observation_space, self.single_action_space = env.observation_space, env.action_space
        self.P, self.R = env.tabular_model(self.device)
        self.model = GenerativeModel(self.P)
        self._init_cdf = torch.as_tensor(np.cumsum(env.initial_distribution), device=self.device)
        self._init_cdf[-1] = 1.0
        self.max_episode_steps = max_episode_steps
        self.generator = torch_generator(seed, self.device)
        self.states = torch.zeros(num_envs, dtype=torch.int64, device=self.device)
        self.elapsed = 0

    def generative_model(self) -> GenerativeModel:
        """The shared next-state sampler of the copies."""
        return self.model

    def reset(self, seed: int | None = None) -> torch.Tensor:
        """Reset every copy; returns ``(num_envs,)`` int64 start states."""
        if seed is not None:
            self.generator.manual_seed(int(seed))
        u = torch.rand(self.num_envs, generator=self.generator, dtype=torch.float64, device=self.device)
        self.states = torch.searchsorted(self._init_cdf, u, right=True).clamp_(max=self.n_states - 1)
        self.elapsed = 0
        return self.states

    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Step every copy: ``(next_states, rewards, terminated, truncated)``, each ``(num_envs,)``."""
        actions = actions.to(self.device)
        rewards = self.R.view(-1).index_select(0, self.states * self.n_actions + actions)
        next_states = self.model.sample(self.states, actions, 1, self.generator)[:, 0]
        self.elapsed += 1
        terminated = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        truncated = torch.full_like(
            terminated, self.max_episode_steps is not None and self.elapsed >= self.max_episode_steps
        )
        self.states = next_states
        if bool(truncated[0]):
            self.reset()
        return next_states, rewards, terminated, truncated


def garnet(n_states: int = 6, n_actions: int = 3, branching: int = 3, seed: int = 0) -> TabularMDP:
    """A Garnet MDP (Archibald et al., 1995): each (s, a) reaches ``branching`` distinct random
    states with probabilities from a uniform random partition of [0, 1]; rewards ~ U[0, 1]."""
    if not 1 <= branching <= n_states or n_states < 1 or n_actions < 1:
        raise ConfigError(
            f"garnet needs n_states ≥ 1, n_actions ≥ 1 and 1 ≤ branching ≤ n_states; "
            f"got ({n_states}, {n_actions}, {branching})"
        )
    rng = np.random.default_rng(seed)
    P = np.zeros((n_states, n_actions, n_states))
    for s in range(n_states):
        for a in range(n_actions):
            succ = rng.choice(n_states, size=branching, replace=False)
            cuts = np.sort(rng.uniform(size=branching - 1))
            P[s, a, succ] = np.diff(np.concatenate([[0.0], cuts, [1.0]]))
    return TabularMDP(P, rng.uniform(size=(n_states, n_actions)))


def river_swim(n_states: int = 6, small_reward: float = 0.005, large_reward: float = 1.0) -> TabularMDP:
    """RiverSwim (Strehl & Littman, 2008), in the parametrisation of Osband et al. (2013).

    Action 0 swims left (deterministic; ``small_reward`` at the left bank). Action 1 swims right
    against the current: right w.p. 0.35, stay 0.6, left 0.05 in the middle; right 0.4 / stay 0.6
    at the left bank; stay 0.6 / left 0.4 at the right bank, where it earns ``large_reward``.
    Starts at the left bank.
    """
    if n_states < 2:
        raise ConfigError(f"river_swim needs n_states ≥ 2, got {n_states}")
    S = n_states
    P = np.zeros((S, 2, S))
    R = np.zeros((S, 2))
    for s in range(S):
        P[s, 0, max(s - 1, 0)] = 1.0
        if s == 0:
            P[s, 1, 0], P[s, 1, 1] = 0.6, 0.4
        elif s == S - 1:
            P[s, 1, s], P[s, 1, s - 1] = 0.6, 0.4
        else:
            P[s, 1, s + 1], P[s, 1, s], P[s, 1, s - 1] = 0.35, 0.6, 0.05
    R[0, 0], R[S - 1, 1] = small_reward, large_reward
    init = np.zeros(S)
    init[0] = 1.0
    return TabularMDP(P, R, init)


class LinearMDP(TabularMDP):
    """A d-rectangular linear MDP over finitely many states, with its features known.

    ``P(·|s, a) = Σ_i φ_i(s, a) μ_i(·)`` and ``R(s, a) = φ(s, a)ᵀθ`` with ``φ(s, a) ∈ Δ_d`` (non-negative,
    summing to 1) and each factor ``μ_i`` a distribution, so every d-rectangular uncertainty set
    ``{Σ_i φ_i μ'_i : μ'_i ∈ 𝒫(μ_i)}`` is well defined. Episodic use: wrap with a time limit H.

    Args:
        features: ``(S, A, d)``. factors: ``(d, S)`` the μ_i. theta: ``(d,)``.
    """

    def __init__(self, features: Any, factors: Any, theta: Any, initial_distribution: Any = None) -> None:
        phi = np.asarray(features, dtype=np.float64)
        mu = check_distribution(factors, "factors μ_i")
        theta = np.asarray(theta, dtype=np.float64)
        if (
            phi.ndim != 3
            or mu.ndim != 2
            or phi.shape[2] != mu.shape[0]
            or theta.shape != (mu.shape[0],)
            or mu.shape[1] != phi.shape[0]
        ):
            raise ModelError(
                f"features (S, A, d), factors (d, S) and theta (d,) disagree: got {phi.shape}, "
                f"{mu.shape}, {theta.shape}"
            )
        phi = check_distribution(phi, "features φ(s, a)")
        self.features, self.factors, self.theta = phi, mu, theta
        super().__init__(phi @ mu, phi @ theta, initial_distribution)

    @property
    def dim(self) -> int:
        """Feature dimension d."""
        return int(self.theta.shape[0])

    @classmethod
    def from_tabular(cls, P: Any, R: Any, initial_distribution: Any = None) -> LinearMDP:
        """Any tabular MDP as a linear MDP with one-hot features (d = S·A, μ_(s,a) = P(·|s, a))."""
        P_t, R_t = check_model(P, R)
        S, A, _ = P_t.shape
        return cls(
            np.eye(S * A).reshape(S, A, S * A),
            P_t.numpy().reshape(S * A, S),
            R_t.numpy().reshape(-1),
            initial_distribution,
        )


def linear_mdp(
    n_states: int = 5, n_actions: int = 2, dim: int = 3, seed: int = 0, concentration: float = 0.3
) -> LinearMDP:
    """A random linear MDP: φ(s, a) ~ Dirichlet(concentration) (sparse for small values), factors
    μ_i ~ Dirichlet(1), θ ~ U[0, 1]^d (so rewards lie in [0, 1])."""
    rng = np.random.default_rng(seed)
    phi = rng.dirichlet(np.full(dim, concentration), size=(n_states, n_actions))
    return LinearMDP(phi, rng.dirichlet(np.ones(n_states), size=dim), rng.uniform(size=dim))


def _register() -> None:
    for env_id, entry in (
        ("rlrobust/Garnet-v0", "garnet"),
        ("rlrobust/RiverSwim-v0", "river_swim"),
        ("rlrobust/LinearMDP-v0", "linear_mdp"),
    ):
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=f"rlrobust.envs.tabular:{entry}")


_register()
