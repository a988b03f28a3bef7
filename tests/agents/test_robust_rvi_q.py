"""Robust RVI Q-learning learns the exact robust gain of Garnet(6, 3, 3) for every set.

The exact gain comes from ``robust_relative_value_iteration`` (itself checked against brute force
in tests/unit/test_robust_dp.py). Short version: the vectorised path (synchronous updates of all
pairs for 8 independent copies); slow version: the agent itself, learning from ε-greedy
trajectories with its generative model attached.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch

import rlrobust
from rlrobust.agents.robust_rvi_q import estimate_next_values, update_tables
from rlrobust.core.errors import ConfigError, NonFiniteError, SpaceError
from rlrobust.core.types import TrainingServices, TransitionBatch
from rlrobust.envs.tabular import garnet
from rlrobust.robust import make_kernel_set, robust_relative_value_iteration

SETS = [("contamination", 0.2), ("tv", 0.2), ("chi2", 0.5), ("kl", 0.2), ("wasserstein", 0.5)]


@pytest.mark.parametrize("name,radius", SETS)
def test_vectorised_copies_learn_the_exact_robust_gain(name, radius):
    env = garnet(6, 3, 3, seed=0)
    ks = make_kernel_set(name, radius)
    exact, _, _ = robust_relative_value_iteration(env.P, env.R, ks)
    model, gen = env.generative_model(), torch.Generator().manual_seed(0)
    C, S, A = 8, 6, 3
    q = torch.zeros(C, S, A, dtype=torch.float64)
    counts = torch.zeros_like(q)
    states = torch.arange(S).repeat_interleave(A).repeat(C, 1)  # every pair, every copy
    actions = torch.arange(A).repeat(S).repeat(C, 1)
    rewards = torch.as_tensor(env.R)[states, actions]
    for _ in range(300):
        sigma = estimate_next_values(ks, q, states, actions, model, gen)
        update_tables(q, counts, states, actions, rewards, sigma)
    gains = q.mean(dim=(1, 2)).numpy()  # offset "mean": f(Q) → g*
    assert np.all(np.abs(gains - exact) <= 0.02 * abs(exact)), (gains, exact)


def test_agent_reports_gain_and_distance_to_exact_gain():
    env = garnet(6, 3, 3, seed=1)
    agent = rlrobust.make_agent(
        "robust_rvi_q",
        env.observation_space,
        env.action_space,
        kernel_set="kl",
        radius=0.1,
        offset="reference",
        reference_pair=[2, 1],
    )
    agent.attach(TrainingServices(model=env.tabular_model(), generative_model=env.generative_model()))
    exact, _, _ = robust_relative_value_iteration(env.P, env.R, make_kernel_set("kl", 0.1))
    assert agent.exact_gain == pytest.approx(exact)
    s = torch.arange(6).repeat_interleave(3)
    a = torch.arange(3).repeat(6)
    batch = TransitionBatch(
        s, a, torch.as_tensor(env.R[s, a], dtype=torch.float32), s, torch.zeros(18), torch.ones(18)
    )
    for _ in range(3):
        metrics = agent.update(batch)
    assert metrics["gain/estimate"] == pytest.approx(float(agent.table.q[2, 1])) == agent.gain_estimate
    assert metrics["gain/error"] == pytest.approx(abs(agent.gain_estimate - exact))
    assert agent.counts.sum() == 54


def test_update_tables_matches_a_hand_computation():
    q = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]], dtype=torch.float64)  # one copy, S = A = 2
    counts = torch.tensor([[[3.0, 0.0], [0.0, 0.0]]], dtype=torch.float64)
    s, a = torch.tensor([[0, 1]]), torch.tensor([[0, 1]])
    r, sigma = torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 5.0]])
    td, alpha = update_tables(q, counts, s, a, r, sigma, learning_rate=0.5, lr_power=1.0)
    f = 2.5  # mean of Q
    np.testing.assert_allclose(td.numpy(), [[1 - f + 2 - 1, 0 - f + 5 - 4]])
    np.testing.assert_allclose(alpha.numpy(), [[0.5 / 4, 0.5 / 1]])
    assert q[0, 0, 0] == pytest.approx(1 + 0.5 / 4 * (-0.5)) and q[0, 1, 1] == pytest.approx(4 + 0.5 * -1.5)
    assert counts[0, 0, 0] == 4 and counts[0, 1, 1] == 1


def test_bad_configuration_and_spaces():
    import gymnasium as gym

    with pytest.raises(SpaceError, match="Discrete observation space"):
        rlrobust.make_agent("robust_rvi_q", gym.spaces.Box(-1, 1, (2,)), gym.spaces.Discrete(2))
    with pytest.raises(SpaceError, match="Discrete action space"):
        rlrobust.make_agent("robust_rvi_q", gym.spaces.Discrete(2), gym.spaces.Box(-1, 1, (2,)))
    with pytest.raises(ConfigError, match="offset.*'mean', 'reference'"):
        rlrobust.make_agent("robust_rvi_q", gym.spaces.Discrete(2), gym.spaces.Discrete(2), offset="max")
    with pytest.raises(ConfigError, match="unknown lr_schedule 'fast'.*; mlmc_psi must lie in"):  # both named
        rlrobust.make_agent(
            "robust_rvi_q", gym.spaces.Discrete(2), gym.spaces.Discrete(2), lr_schedule="fast", mlmc_psi=0.4
        )
    with pytest.raises(ConfigError, match="valid range"):
        rlrobust.make_agent(
            "robust_rvi_q", gym.spaces.Discrete(2), gym.spaces.Discrete(2), kernel_set="tv", radius=2.0
        )
    with pytest.raises(ConfigError, match="reference_pair"):
        rlrobust.make_agent(
            "robust_rvi_q",
            gym.spaces.Discrete(2),
            gym.spaces.Discrete(2),
            offset="reference",
            reference_pair=[5, 0],
        )


@pytest.mark.slow
@pytest.mark.parametrize("name,radius", SETS)
def test_agent_learns_exact_gain_from_trajectories(name, radius):
    env = garnet(6, 3, 3, seed=0)
    agent = rlrobust.make_agent(
        "robust_rvi_q",
        env.observation_space,
        env.action_space,
        seed=0,
        kernel_set=name,
        radius=radius,
        exploration_rate=0.3,
    )
    agent.attach(TrainingServices(model=env.tabular_model(), generative_model=env.generative_model()))
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    states, actions, rewards = [], [], []
    for step in range(60_000):
        action = int(agent.act(np.array([obs]))[0])
        states.append(obs)
        actions.append(action)
        obs, reward, _, _, _ = env.step(action)
        rewards.append(reward)
        if step >= 100 and step % 4 == 0:  # a replay batch of 64 (s, a, r), like the trainer's
            idx = rng.integers(len(states), size=64)
            s = torch.as_tensor(np.asarray(states)[idx])
            a = torch.as_tensor(np.asarray(actions)[idx])
            r = torch.as_tensor(np.asarray(rewards)[idx], dtype=torch.float32)
            metrics = agent.update(TransitionBatch(s, a, r, s, torch.zeros(64), torch.ones(64)))
    assert metrics["gain/error"] <= 0.02 * abs(agent.exact_gain), (agent.gain_estimate, agent.exact_gain)


def test_generative_model_draws_by_inverse_cdf():
    """Same states as ``searchsorted`` on the same uniforms (the comparison chain and the NumPy
    path for small CPU batches are optimisations), and frequencies that match P."""
    env = garnet(6, 3, 3, seed=2)
    model = env.generative_model()
    s = torch.arange(6).repeat_interleave(3)
    a = torch.arange(3).repeat(6)
    got = model.sample(s, a, 20_000, torch.Generator().manual_seed(3))
    small = model.sample(s, a, 100, torch.Generator().manual_seed(4))  # a small batch: NumPy path
    model._flat_cdf_np = None  # the torch path (the one other devices take) gives the same states
    assert torch.equal(model.sample(s, a, 100, torch.Generator().manual_seed(4)), small)
    u = torch.rand(18, 20_000, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    cdf = np.cumsum(env.P[s.numpy(), a.numpy()], -1)
    cdf[:, -1] = 1.0
    want = np.stack([np.searchsorted(cdf[i], u[i].numpy(), side="right") for i in range(18)])
    np.testing.assert_array_equal(got.numpy(), want)
    freq = np.stack([np.bincount(row, minlength=6) for row in got.numpy()]) / 20_000
    assert np.abs(freq - env.P[s.numpy(), a.numpy()]).max() < 0.015


def test_update_tables_sums_repeated_pairs():
    q = torch.zeros(1, 2, 2, dtype=torch.float64)
    counts = torch.zeros_like(q)
    s, a = torch.tensor([[1, 1]]), torch.tensor([[0, 0]])
    update_tables(
        q,
        counts,
        s,
        a,
        torch.tensor([[1.0, 3.0]]),
        torch.zeros(1, 2),
        lr_schedule="constant",
        learning_rate=0.5,
    )
    assert (
        q[0, 1, 0] == pytest.approx(0.5 * 1 + 0.5 * 3)
        and counts[0, 1, 0] == 2
        and q.abs().sum() == q[0, 1, 0]
    )


@pytest.mark.parametrize("schedule", ["count", "constant", "global"])
@pytest.mark.parametrize("offset", ["mean", "reference"])
@pytest.mark.parametrize("model", [True, False])
def test_fast_path_equals_the_plain_path_bit_for_bit(schedule, offset, model):
    """fast_update/fast_act (the default on CPU for the contamination set) give the plain path's
    Q table, visit counts, actions and generator state bit for bit after 200 updates on batches
    with repeated pairs, and its metrics to float64 round-off (NumPy's means)."""
    env = garnet(6, 3, 3, seed=0)

    def make():
        agent = rlrobust.make_agent(
            "robust_rvi_q",
            env.observation_space,
            env.action_space,
            seed=3,
            lr_schedule=schedule,
            offset=offset,
            reference_pair=[2, 1],
            exploration_rate=0.3,
        )
        if model:
            agent.attach(TrainingServices(model=env.tabular_model(), generative_model=env.generative_model()))
        return agent

    fast, plain = make(), make()
    plain.fast_path = False
    assert fast.uses_fast_path and not plain.uses_fast_path
    rng = np.random.default_rng(0)
    for _ in range(200):
        s, a, s2 = (torch.as_tensor(rng.integers(n, size=32)) for n in (6, 3, 6))
        r = torch.as_tensor(rng.normal(size=32), dtype=torch.float32)
        batch = TransitionBatch(s, a, r, s2, torch.zeros(32), torch.full((32,), 0.99))
        m_fast, m_plain = fast.update(batch), plain.update(batch)
        assert m_fast.keys() == m_plain.keys()
        assert m_fast == pytest.approx(m_plain, rel=1e-12, abs=1e-14)
        obs = rng.integers(6, size=5)
        for deterministic in (False, True):
            np.testing.assert_array_equal(
                fast.act(obs, deterministic=deterministic), plain.act(obs, deterministic=deterministic)
            )
        assert fast.act(np.int64(obs[0])).shape == plain.act(np.int64(obs[0])).shape == ()
    assert torch.equal(fast.table.q, plain.table.q) and torch.equal(fast.counts, plain.counts)
    assert torch.equal(fast.generator.get_state(), plain.generator.get_state())
    assert fast.num_updates == plain.num_updates == 200


def test_fast_path_refuses_a_non_finite_td_before_changing_anything():
    env = garnet(6, 3, 3, seed=0)
    agent = rlrobust.make_agent("robust_rvi_q", env.observation_space, env.action_space)
    s = torch.tensor([0, 1])
    batch = TransitionBatch(s, s, torch.tensor([1.0, float("nan")]), s, torch.zeros(2), torch.ones(2))
    with pytest.raises(NonFiniteError, match="loss/td"):
        agent.update(batch)
    assert agent.table.q.abs().sum() == 0 and agent.counts.sum() == 0 and agent.num_updates == 0


def test_fast_path_of_a_copied_agent_updates_the_copy():
    """The fast path keeps NumPy views of the table: a deep copy (or pickle) of an agent that
    has used it must update its own table, not a detached copy of the views."""
    env = garnet(6, 3, 3, seed=0)
    agent = rlrobust.make_agent("robust_rvi_q", env.observation_space, env.action_space, seed=3)
    s = torch.tensor([0, 1, 2])
    batch = TransitionBatch(s, s, torch.ones(3), s, torch.zeros(3), torch.ones(3))
    agent.update(batch)
    for copied in (copy.deepcopy(agent), pickle.loads(pickle.dumps(agent))):
        before = copied.table.q.clone()
        copied.update(batch)
        assert not torch.equal(copied.table.q, before) and copied.counts.sum() == 6
