"""DSAC / DSAC-T known-answer tests (Duan et al., TNNLS 2021; TPAMI 2025): targets, losses, a continuous bandit.

References are written here independently (NumPy, closed forms, numerical derivatives).
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlrobust.agents.dsac import (
    DSAC,
    DSACConfig,
    clipped_target,
    gaussian_cvar_coefficient,
    gaussian_nll_surrogate,
    huber_gaussian_surrogate,
    soft_gaussian_targets,
)
from rlrobust.core.errors import ConfigError, SpaceError
from rlrobust.core.networks import squashed_gaussian_log_prob
from rlrobust.core.types import CriticOutput, TransitionBatch

Box = gym.spaces.Box
ONE_D = Box(-1.0, 1.0, (1,), np.float32)


def make(obs_space: gym.Space = ONE_D, act_space: gym.Space = ONE_D, seed: int = 0, **overrides) -> DSAC:
    return DSAC(DSACConfig(**{"net_arch": [32, 32], **overrides}), obs_space, act_space, seed=seed)


# ----------------------------------------------------------------------------- pure functions
@pytest.mark.parametrize("variant", ["t", "v1"])
def test_surrogate_gradients_equal_analytic_nll_gradients(variant):
    rng = np.random.default_rng(0)
    k, b = 2, 7
    q_np, std_np = rng.normal(size=(k, b)), rng.uniform(0.2, 2.0, size=(k, b))
    y_q, y_b = rng.normal(size=(k, b)) * 3, rng.normal(size=(k, b)) * 3
    running = rng.uniform(0.5, 1.5, size=k)
    c = running**2 + 0.1 if variant == "t" else np.ones(k)
    q = torch.tensor(q_np, requires_grad=True)
    std = torch.tensor(std_np, requires_grad=True)
    loss = gaussian_nll_surrogate(q, std, torch.tensor(y_q), torch.tensor(y_b), torch.tensor(c))
    loss.backward()
    # ∂L/∂Q = −c(y_q − Q)/(σ² + 0.1), ∂L/∂σ = −c((Q − y_b)² − σ²)/(σ³ + 0.1), per sample (mean over B).
    d_q = -c[:, None] * (y_q - q_np) / (std_np**2 + 0.1) / b
    d_std = -c[:, None] * ((q_np - y_b) ** 2 - std_np**2) / (std_np**3 + 0.1) / b
    np.testing.assert_allclose(q.grad.numpy(), d_q, rtol=1e-10)
    np.testing.assert_allclose(std.grad.numpy(), d_std, rtol=1e-10)


def test_surrogate_rejects_bad_shapes():
    with pytest.raises(ValueError, match="K, B"):
        gaussian_nll_surrogate(torch.zeros(4), torch.ones(4), torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match="mean_target"):
        gaussian_nll_surrogate(torch.zeros(2, 4), torch.ones(2, 4), torch.zeros(3), torch.zeros(4))


def _stationary_fit(loss_fn, m: float, s: float, steps: int = 2500) -> tuple[float, float]:
    """Fit a free (Q, σ) pair to fixed targets y ~ N(m, s²) (no bootstrap, no clipping)."""
    gen = torch.Generator().manual_seed(0)
    q = torch.zeros(1, 1, requires_grad=True)
    raw = torch.zeros(1, 1, requires_grad=True)  # σ = softplus(raw), as in the critic
    opt = torch.optim.Adam([q, raw], lr=0.01)
    for i in range(steps):
        if i == steps - 500:
            opt.param_groups[0]["lr"] = 0.001
        y = m + s * torch.randn(512, generator=gen)
        std = torch.nn.functional.softplus(raw)
        loss = loss_fn(q.expand(1, 512), std.expand(1, 512), y, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(q.detach()), float(torch.nn.functional.softplus(raw.detach()))


def test_stationary_fit_2024_loss_recovers_mean_and_std():
    m, s = 2.0, 0.7
    scale = torch.tensor([s**2 + 0.1])
    q, std = _stationary_fit(lambda q, st, yq, yb: gaussian_nll_surrogate(q, st, yq, yb, scale), m, s)
    assert q == pytest.approx(m, abs=0.05)
    assert std == pytest.approx(s, rel=0.05)


def test_stationary_fit_2025_huber_loss_gives_std_over_sqrt2():
    # Huber's ½ in the quadratic zone moves σ's fixed point to s/√2: this tells the variants apart.
    m, s = 2.0, 0.7
    running = torch.tensor([s])
    q, std = _stationary_fit(lambda q, st, yq, yb: huber_gaussian_surrogate(q, st, yq, yb, running), m, s)
    assert q == pytest.approx(m, abs=0.05)
    assert std == pytest.approx(s / math.sqrt(2.0), rel=0.05)


def test_clipped_target_stays_within_three_running_stds():
    gen = torch.Generator().manual_seed(1)
    q = torch.randn(2, 1000, generator=gen)
    y_z = 10.0 * torch.randn(1000, generator=gen)
    running = torch.tensor([0.3, 1.2])
    y_b = clipped_target(q, y_z, 3.0 * running.unsqueeze(1))
    dev = (y_b - q).numpy()
    bound = 3.0 * running.numpy()[:, None]
    assert np.all(np.abs(dev) <= bound + 1e-6)
    inside = np.abs(y_z.numpy()[None] - q.numpy()) <= bound
    np.testing.assert_allclose(y_b.numpy()[inside], np.broadcast_to(y_z.numpy(), q.shape)[inside], rtol=1e-6)
    np.testing.assert_allclose(np.abs(dev[~inside]), np.broadcast_to(bound, q.shape)[~inside], rtol=1e-6)


def test_twin_target_sample_comes_from_lower_mean_critic():
    next_q = torch.tensor([[0.0, 5.0, 2.0], [3.0, 1.0, 2.5]])
    next_std = torch.tensor([[0.5, 2.0, 0.1], [1.0, 4.0, 9.0]])
    rewards, dones = torch.tensor([1.0, 0.0, -1.0]), torch.tensor([0.0, 0.0, 1.0])
    discounts = torch.full((3,), 0.9)
    log_prob, alpha = torch.tensor([0.2, -0.4, 0.0]), 0.5
    noise = torch.tensor([1.0, -10.0, 2.0])  # the second is clipped to −3
    y_q, y_z = soft_gaussian_targets(rewards, discounts, dones, next_q, next_std, log_prob, alpha, noise)
    # by hand: lower-mean critic = 0, 1, 0; its std = 0.5, 4.0, 0.1
    min_q = np.array([0.0, 1.0, 2.0])
    sample = min_q + np.array([1.0, -3.0, 2.0]) * np.array([0.5, 4.0, 0.1])
    boot = 0.9 * np.array([1.0, 1.0, 0.0])
    np.testing.assert_allclose(
        y_q.numpy(), [1.0, 0.0, -1.0] + boot * (min_q - 0.5 * log_prob.numpy()), rtol=1e-6
    )
    np.testing.assert_allclose(
        y_z.numpy(), [1.0, 0.0, -1.0] + boot * (sample - 0.5 * log_prob.numpy()), rtol=1e-6
    )


def test_gaussian_cvar_coefficient_matches_monte_carlo():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(2_000_000, generator=gen, dtype=torch.float64)
    eta = 0.1
    tail = z[z <= torch.quantile(z[:200_000], eta)].mean().item()  # mean of the lowest 10%
    assert -gaussian_cvar_coefficient(eta) == pytest.approx(tail, abs=0.01)
    assert gaussian_cvar_coefficient(1.0) == 0.0


# ----------------------------------------------------------------------------- actor
def test_tanh_gaussian_log_prob_matches_numerical_change_of_variables():
    from statistics import NormalDist

    low, high, mu, log_std = -2.0, 3.0, 0.3, -0.5
    scale, offset, sigma = (high - low) / 2, (high + low) / 2, math.exp(log_std)

    def cdf(a: float) -> float:  # P(A ≤ a) for A = offset + scale·tanh(U), U ~ N(μ, σ²)
        return NormalDist(mu, sigma).cdf(math.atanh((a - offset) / scale))

    actions = np.linspace(-1.0, 2.5, 15)
    h = 1e-5
    numeric = np.array([(cdf(a + h) - cdf(a - h)) / (2 * h) for a in actions])
    u = torch.atanh(torch.tensor((actions - offset) / scale, dtype=torch.float64)).unsqueeze(1)
    log_prob = squashed_gaussian_log_prob(
        u, torch.full_like(u, mu), torch.full_like(u, log_std), torch.tensor([scale], dtype=torch.float64)
    )
    np.testing.assert_allclose(np.exp(log_prob.numpy()), numeric, rtol=1e-4)


def test_actions_stay_in_bounds_even_for_saturated_policies():
    act_space = Box(np.array([-2.0, 0.0], np.float32), np.array([1.0, 5.0], np.float32))
    agent = make(Box(-1, 1, (3,), np.float32), act_space)
    obs = np.random.default_rng(0).normal(size=(500, 3)).astype(np.float32) * 100
    with torch.no_grad():
        agent.actor.mean.bias.add_(torch.tensor([1e3, -1e3]))  # push tanh into saturation
    for det in (False, True):
        a = agent.act(obs, deterministic=det)
        assert a.shape == (500, 2)
        assert np.all(a >= act_space.low) and np.all(a <= act_space.high)
    assert agent.act(obs[0]).shape == (2,)


@pytest.mark.parametrize(("target_entropy", "direction"), [(5.0, 1.0), (-50.0, -1.0)])
def test_alpha_rises_when_entropy_is_below_target(target_entropy, direction):
    # 1-D actions on [−1, 1]: the squashed entropy is at most log 2 < 5 and far above −50.
    agent = make(target_entropy=target_entropy)
    before = float(agent.temperature.log_alpha.detach())
    for i in range(3):
        agent.update(_bandit_batch(np.random.default_rng(i), 64, noise=0.1))
    assert direction * (float(agent.temperature.log_alpha.detach()) - before) > 0


# ----------------------------------------------------------------------------- agent
def test_bad_spaces_and_config_raise():
    with pytest.raises(SpaceError, match="Box"):
        make(act_space=gym.spaces.Discrete(3))
    with pytest.raises(SpaceError, match="finite"):
        make(act_space=Box(-np.inf, np.inf, (2,), np.float32))
    with pytest.raises(ConfigError, match="variant"):
        make(variant="v3")
    with pytest.raises(ConfigError, match="ent_coef"):
        make(ent_coef="auto_x")


def test_running_std_starts_from_first_batch_then_follows_polyak():
    agent = make(tau=0.1)
    rng = np.random.default_rng(0)
    batches = [_bandit_batch(rng, 64, noise=0.3) for _ in range(3)]
    expected = None
    for batch in batches:
        with torch.no_grad():  # the critics' σ on this batch before the step
            _, std = agent._critic(agent.critic, batch.observations, batch.actions)
        mean_std = std.mean(dim=1).numpy()
        expected = mean_std if expected is None else 0.9 * expected + 0.1 * mean_std
        agent.update(batch)
        np.testing.assert_allclose(agent.running_std.numpy(), expected, rtol=1e-5)


def test_resume_is_exact_including_running_std():
    rng = np.random.default_rng(0)
    batches = [_bandit_batch(rng, 32, noise=0.3) for _ in range(7)]
    a = make(seed=3)
    for batch in batches[:3]:
        a.update(batch)
    b = make(seed=99)
    b.load_state_dict(a.state_dict())
    for batch in batches[3:]:
        a.update(batch)
        b.update(batch)
    for (name, pa), pb in zip(a.state_dict()["networks"].items(), b.state_dict()["networks"].values()):
        for key in pa:
            assert torch.equal(pa[key], pb[key]), f"{name}.{key}"
    assert torch.equal(a.running_std, b.running_std)


# ----------------------------------------------------------------------------- bandits
def _bandit_batch(rng: np.random.Generator, n: int, noise: float, reward_fn=None) -> TransitionBatch:
    """One-step transitions (dones = 1) from a constant observation and uniform actions."""
    a = rng.uniform(-1.0, 1.0, size=(n, 1)).astype(np.float32)
    if reward_fn is None:
        r = -((a[:, 0] - 0.3) ** 2) + noise * rng.normal(size=n)
    else:
        r = reward_fn(a[:, 0], rng)
    obs = np.zeros((n, 1), np.float32)
    return TransitionBatch(
        observations=torch.from_numpy(obs),
        actions=torch.from_numpy(a),
        rewards=torch.as_tensor(r, dtype=torch.float32),
        next_observations=torch.from_numpy(obs),
        dones=torch.ones(n),
        discounts=torch.full((n,), 0.99),
    )


def _train_bandit(agent: DSAC, updates: int, noise: float, reward_fn=None) -> DSAC:
    rng = np.random.default_rng(0)
    for _ in range(updates):
        agent.update(_bandit_batch(rng, 256, noise, reward_fn))
    return agent


FAST_BANDIT = {"learning_rate": 3e-3, "net_arch": [64, 64], "tau": 0.02, "ent_coef": "auto_0.1"}


def test_continuous_bandit_is_solved_and_std_is_learned():
    noise = 0.5
    agent = _train_bandit(make(**FAST_BANDIT), 1500, noise)
    action = agent.act(np.zeros(1, np.float32), deterministic=True)
    assert abs(float(action[0]) - 0.3) < 0.1
    with torch.no_grad():
        _, std = agent._critic(agent.critic, torch.zeros(1, 1), torch.tensor([[0.3]]))
    assert float(std.mean()) == pytest.approx(noise, rel=0.3)


def _risky(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # mean 0.5·a rewards a = +1; std (a + 1) makes a = +1 the risky end (σ from 0 to 2).
    return 0.5 * a + (a + 1.0) * rng.normal(size=a.shape)


@pytest.mark.parametrize(
    ("risk", "expect_low_variance"),
    [
        ({"risk_lambda": 0.0}, False),
        ({"risk_lambda": 1.0}, True),
        ({"risk": "cvar", "risk_alpha": 0.1}, True),
    ],
)
def test_risk_sensitive_actor_prefers_low_variance_action(risk, expect_low_variance):
    # Q − λσ = 0.5a − λ(a + 1): λ = 0 → a = +1; λ = 1 (or CVaR_0.1, coefficient ≈ 1.75) → a = −1.
    agent = _train_bandit(make(**FAST_BANDIT, **risk), 800, 0.0, _risky)
    action = float(agent.act(np.zeros(1, np.float32), deterministic=True)[0])
    if expect_low_variance:
        assert action < -0.5
    else:
        assert action > 0.5


@pytest.mark.parametrize("variant", ["t", "v1"])
def test_value_distribution_is_the_shared_critic_output(variant):
    agent = make(Box(-1, 1, (3,), np.float32), Box(-2, 2, (2,), np.float32), variant=variant)
    obs, actions = torch.rand(6, 3) * 2 - 1, torch.rand(6, 2) * 4 - 2
    out = agent.value_distribution(obs, actions)
    assert isinstance(out, CriticOutput) and out.quantiles is None
    assert out.q.shape == (6,) and out.std.shape == (6,) and bool((out.std > 0).all())
    q, std = agent._critic(agent.critic, obs, actions)  # (K, B)
    lower = q.argmin(dim=0)
    torch.testing.assert_close(out.q, q.min(dim=0).values)
    torch.testing.assert_close(out.std, std[lower, torch.arange(6)])
