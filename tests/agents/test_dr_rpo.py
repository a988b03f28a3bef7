"""DR-RPO on small linear MDPs: its final policy is near the exact robust optimum.

With one-hot features a d-rectangular TV set is the (s, a)-rectangular TV set, so the exact robust
optimum and the robust value of the learned policy both come from the tabular solver
``robust_finite_horizon`` (itself checked against policy enumeration in test_robust_dp.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

import rlrobust
from rlrobust.agents.dr_rpo import d_rectangular_robust_q, mirror_descent_step
from rlrobust.core.errors import ConfigError, SpaceError
from rlrobust.core.types import TransitionBatch
from rlrobust.envs.tabular import BatchedTabularMDP, LinearMDP, garnet
from rlrobust.robust import make_kernel_set, robust_finite_horizon


def train(env, agent, horizon, updates, copies=8, seed=1):
    batched = BatchedTabularMDP(
        env.P,
        env.R,
        copies,
        seed=seed,
        initial_distribution=env.initial_distribution,
        max_episode_steps=horizon,
    )
    for _ in range(updates):  # one update per batch of `copies` episodes
        s = batched.reset()
        rows = []
        for h in range(horizon):
            a = torch.as_tensor(agent.act(s.numpy()))
            s2, r, _, _ = batched.step(a)
            rows.append((s, a, r, s2, torch.full((copies,), h)))
            s = batched.states
        s, a, r, s2, step = (torch.cat(x) for x in zip(*rows))
        n = len(r)
        agent.update(
            TransitionBatch(s, a, r.float(), s2, torch.zeros(n), torch.ones(n), extras={"step": step})
        )


@pytest.mark.parametrize("seed", [0, 2])
def test_final_policy_is_within_5_percent_of_the_robust_optimum(seed):
    S, A, H, rho = 4, 2, 5, 0.2
    base = garnet(S, A, 3, seed=seed)
    env = LinearMDP.from_tabular(base.P, base.R, np.full(S, 1 / S))
    agent = rlrobust.make_agent(
        "dr_rpo",
        env.observation_space,
        env.action_space,
        seed=0,
        horizon=H,
        radius=rho,
        features=env.features.tolist(),
    )
    train(env, agent, H, updates=150)
    ks = make_kernel_set("tv", rho)
    optimal, _ = robust_finite_horizon(env.P, env.R, ks, H)
    learned, _ = robust_finite_horizon(env.P, env.R, ks, H, policy=agent.probabilities())
    opt, got = env.initial_distribution @ optimal[0], env.initial_distribution @ learned[0]
    assert got >= 0.95 * opt, (got, opt)


def test_one_hot_least_squares_backup_is_the_tabular_tv_support():
    rng = np.random.default_rng(0)
    S, A = 4, 3
    P = rng.dirichlet(np.ones(S), size=(S, A))
    v = rng.uniform(0, 3, size=S)
    phi = torch.eye(S * A, dtype=torch.float64)
    n = 1e9  # exact expected counts with a negligible ridge
    counts = torch.as_tensor(P.reshape(S * A, S) * n)
    rewards = torch.zeros(S * A, dtype=torch.float64)
    q, bonus = d_rectangular_robust_q(
        phi, counts, rewards, torch.as_tensor(v), radius=0.3, ridge=1e-9, bonus_coef=0.0, cap=1e9
    )
    # independent reference: the TV worst case moves 0.3 of mass from the top of v to argmin v
    ref = []
    for p in P.reshape(-1, S):
        q_ = p.copy()
        budget = 0.3
        for i in np.argsort(-v):
            take = min(budget, q_[i]) if i != np.argmin(v) else 0.0
            q_[i] -= take
            budget -= take
        q_[np.argmin(v)] += 0.3 - budget
        ref.append(q_ @ v)
    np.testing.assert_allclose(q.numpy(), ref, atol=1e-6)
    assert torch.all(bonus == 0)


def test_bonus_shrinks_like_one_over_sqrt_n():
    phi = torch.tensor([[0.5, 0.5], [1.0, 0.0]], dtype=torch.float64)
    bonuses = []
    for n in (100.0, 400.0):
        counts = torch.tensor([[n, 0.0], [n, 0.0]], dtype=torch.float64)
        _, b = d_rectangular_robust_q(
            phi,
            counts,
            torch.zeros(2, dtype=torch.float64),
            torch.zeros(2, dtype=torch.float64),
            radius=0.1,
            ridge=1e-6,
            bonus_coef=1.0,
            cap=1.0,
        )
        bonuses.append(b)
    np.testing.assert_allclose((bonuses[0] / bonuses[1]).numpy(), 2.0, rtol=1e-3)


def test_mirror_descent_converges_to_the_regularised_greedy_policy():
    rng = np.random.default_rng(1)
    q = torch.as_tensor(rng.normal(size=(3, 4)))
    ref = torch.as_tensor(rng.dirichlet(np.ones(4), size=3))
    beta = 0.5
    logits = torch.zeros(3, 4, dtype=torch.float64)
    for _ in range(200):
        logits = mirror_descent_step(logits, q, ref.log(), 1.0, beta)
    pi = torch.softmax(logits, -1).numpy()
    for s in range(3):  # maximise <π, Q> − β KL(π‖π_ref) numerically

        def neg(x, s=s):
            p = np.exp(x - x.max()) / np.exp(x - x.max()).sum()
            return -(p @ q[s].numpy() - beta * np.sum(p * np.log(p / ref[s].numpy())))

        best = minimize(
            neg, np.zeros(4), method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20000}
        )
        x = best.x
        np.testing.assert_allclose(pi[s], np.exp(x - x.max()) / np.exp(x - x.max()).sum(), atol=1e-4)


def test_bad_inputs():
    import gymnasium as gym

    with pytest.raises(SpaceError, match="Discrete observation space"):
        rlrobust.make_agent("dr_rpo", gym.spaces.Box(-1, 1, (2,)), gym.spaces.Discrete(2))
    with pytest.raises(ConfigError, match="features"):
        rlrobust.make_agent(
            "dr_rpo", gym.spaces.Discrete(2), gym.spaces.Discrete(2), features=[[[2.0]] * 2] * 2
        )
    with pytest.raises(ConfigError, match=r"radius must lie in \[0, 1\]; ridge must be > 0"):
        rlrobust.make_agent("dr_rpo", gym.spaces.Discrete(2), gym.spaces.Discrete(2), radius=1.5, ridge=0.0)
    agent = rlrobust.make_agent("dr_rpo", gym.spaces.Discrete(2), gym.spaces.Discrete(2), horizon=3)
    batch = TransitionBatch(
        torch.zeros(1, dtype=torch.int64),
        torch.zeros(1, dtype=torch.int64),
        torch.zeros(1),
        torch.zeros(1, dtype=torch.int64),
        torch.zeros(1),
        torch.ones(1),
        extras={"step": torch.tensor([5])},
    )
    with pytest.raises(ConfigError, match="max_episode_steps"):
        agent.update(batch)
