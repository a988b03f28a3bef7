"""Tabular and linear MDP environments: gymnasium API, sampling frequencies, generators."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from rlrobust.envs import BatchedTabularMDP, LinearMDP, TabularMDP, garnet, linear_mdp, river_swim
from rlrobust.robust import ModelError


def test_gymnasium_api_and_determinism():
    env = garnet(5, 3, 2, seed=0)
    check_env(env, skip_render_check=True)
    assert env.observation_space == gym.spaces.Discrete(5) and env.action_space == gym.spaces.Discrete(3)

    def rollout(seed):
        obs, _ = env.reset(seed=seed)
        out = [obs]
        for t in range(50):
            obs, r, term, trunc, _ = env.step(t % 3)
            assert not term and not trunc and r == pytest.approx(env.R[out[-1], t % 3])
            out.append(obs)
        return out

    assert rollout(3) == rollout(3)


def test_step_frequencies_follow_P():
    env = garnet(4, 2, 3, seed=1)
    env.reset(seed=0)
    counts = np.zeros(4)
    for _ in range(20_000):
        env.state = 2
        obs, *_ = env.step(1)
        counts[obs] += 1
    np.testing.assert_allclose(counts / 20_000, env.P[2, 1], atol=0.015)


def test_generative_model_and_batched_env_sample_P():
    env = garnet(5, 2, 3, seed=2)
    gen = torch.Generator().manual_seed(0)
    samples = env.generative_model().sample(torch.tensor([3, 0]), torch.tensor([1, 0]), 40_000, gen)
    assert samples.shape == (2, 40_000) and samples.dtype == torch.int64
    np.testing.assert_allclose(np.bincount(samples[0], minlength=5) / 40_000, env.P[3, 1], atol=0.01)
    np.testing.assert_allclose(np.bincount(samples[1], minlength=5) / 40_000, env.P[0, 0], atol=0.01)

    batched = BatchedTabularMDP(env.P, env.R, 40_000, seed=0, max_episode_steps=3)
    start = batched.reset()
    np.testing.assert_allclose(np.bincount(start, minlength=5) / 40_000, 0.2, atol=0.01)
    batched.states = torch.full((40_000,), 3)
    nxt, rew, term, trunc = batched.step(torch.ones(40_000, dtype=torch.int64))
    np.testing.assert_allclose(np.bincount(nxt, minlength=5) / 40_000, env.P[3, 1], atol=0.01)
    assert torch.all(rew == env.R[3, 1]) and not term.any() and not trunc.any()
    batched.step(torch.zeros(40_000, dtype=torch.int64))
    _, _, _, trunc = batched.step(torch.zeros(40_000, dtype=torch.int64))
    assert trunc.all() and batched.elapsed == 0  # truncated at 3 steps and reset together


def test_garnet_and_river_swim_structure():
    env = garnet(8, 3, 4, seed=5)
    assert np.all((env.P > 0).sum(-1) == 4) and np.allclose(env.P.sum(-1), 1)
    assert env.R.min() >= 0 and env.R.max() <= 1
    np.testing.assert_array_equal(garnet(8, 3, 4, seed=5).P, env.P)
    rs = river_swim(5)
    assert rs.P[2, 1, 3] == 0.35 and rs.P[2, 0, 1] == 1.0 and rs.R[4, 1] == 1.0 and rs.R[0, 0] == 0.005
    assert rs.reset(seed=0)[0] == 0


def test_linear_mdps():
    env = linear_mdp(6, 2, 3, seed=0)
    np.testing.assert_allclose(env.P, np.einsum("sad,dt->sat", env.features, env.factors))
    np.testing.assert_allclose(env.R, env.features @ env.theta)
    assert env.dim == 3 and np.allclose(env.features.sum(-1), 1)
    base = garnet(3, 2, 2, seed=0)
    one_hot = LinearMDP.from_tabular(base.P, base.R)
    np.testing.assert_allclose(one_hot.P, base.P)
    np.testing.assert_allclose(one_hot.R, base.R)
    assert one_hot.dim == 6


def test_registered_ids_build_through_make_env():
    env = gym.make(
        "rlrobust.envs.tabular:rlrobust/Garnet-v0",
        n_states=4,
        n_actions=2,
        branching=2,
        seed=0,
        max_episode_steps=5,
    )
    obs, _ = env.reset(seed=0)
    assert env.unwrapped.P.shape == (4, 2, 4) and env.observation_space.contains(obs)
    for _ in range(4):
        assert not env.step(0)[3]
    assert env.step(0)[3]  # truncated by the time limit


def test_bad_models_raise():
    P = np.full((2, 2, 2), 0.5)
    with pytest.raises(ModelError, match=r"R must have shape \(S, A\)"):
        TabularMDP(P, np.zeros((2, 3)))
    with pytest.raises(ModelError, match="sum to 1"):
        TabularMDP(P * 1.5, np.zeros((2, 2)))
    with pytest.raises(ModelError, match="initial_distribution"):
        TabularMDP(P, np.zeros((2, 2)), initial_distribution=[1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="branching"):
        garnet(3, 2, 5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batched_env_on_gpu():
    env = garnet(5, 2, 3, seed=2)
    batched = BatchedTabularMDP(env.P, env.R, 10_000, device="cuda", seed=0)
    s = batched.reset()
    nxt, rew, _, _ = batched.step(torch.zeros_like(s))
    assert nxt.device.type == "cuda" and rew.device.type == "cuda"
